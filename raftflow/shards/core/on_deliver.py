"""The target side of messages from other workflows: `DeliverMessages`.

Theory of operation (protocol/messages.py tells the whole trip). Each entry is decided on its
own, in order, and a refusal of one never holds back the others. A message takes effect like
the client request it stands for (a signal, a cancel request; on_requests.py), with its message
id as the request id, remembered under its own kind (`message`, so that no client request id
can shadow it) for REQUEST_IDS_RETENTION_MS: the same id delivered again, by a retry, a new
source leader, or a duplicate in flight, answers "delivered" and writes nothing (exactly-once
effect). Refusals (no such workflow, not running, history full) are final outcomes and are not
remembered, as for a client's signal: nothing took effect, so a later delivery may.
"""

from __future__ import annotations

from raftflow.protocol.events import (
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
)
from raftflow.protocol.messages import (
    DeliverMessages,
    MessageOutcome,
    OutboxEntry,
    SignalMessage,
)
from raftflow.protocol.results import Ack, MessagesDelivered, Rejected
from raftflow.shards.core import limits, validate
from raftflow.shards.core.on_requests import resolve_run
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import ShardState
from raftflow.shards.core.writes import Changes, do_deliver, do_remember

MESSAGE_KIND = "message"


def on_deliver_messages(state: ShardState, command: DeliverMessages) -> Output:
    if len(command.entries) > limits.MESSAGES_PER_DELIVERY_MAX:
        return Output(result=validate.limit_exceeded("MESSAGES_PER_DELIVERY_MAX",
                                                     limits.MESSAGES_PER_DELIVERY_MAX))
    changes = Changes()
    outcomes = tuple(_deliver_one(state, changes, command.now_ms, entry)
                     for entry in command.entries)
    assert len(outcomes) == len(command.entries)
    return Output.of(MessagesDelivered(outcomes=outcomes), changes)


def _refused(entry: OutboxEntry, rejected: Rejected) -> MessageOutcome:
    return MessageOutcome(message_id=entry.message_id, error=rejected.code,
                          detail=rejected.message)


def _deliver_one(state: ShardState, changes: Changes, now_ms: int,
                 entry: OutboxEntry) -> MessageOutcome:
    body = entry.body
    key = (MESSAGE_KIND, body.namespace, body.workflow_id, entry.message_id)
    delivered = MessageOutcome(message_id=entry.message_id)
    if state.archive.recall(key) is not None:
        return delivered  # took effect at an earlier delivery
    target = resolve_run(state, body.namespace, body.workflow_id, body.run_id or None)
    if isinstance(target, Rejected):
        return _refused(entry, target)
    if isinstance(body, SignalMessage):
        rejected = validate.history_room(target.history_length, len(target.buffered), 2)
        if rejected is not None:
            return _refused(entry, rejected)
        do_deliver(state, target, changes, now_ms, (WorkflowExecutionSignaledEventAttributes(
            signal_name=body.signal_name, input=body.input, request_id=entry.message_id),))
    elif not target.cancel_requested:  # one already requested: nothing new to tell it
        rejected = validate.history_room(target.history_length, len(target.buffered), 2)
        if rejected is not None:
            return _refused(entry, rejected)
        target.cancel_requested = True
        do_deliver(state, target, changes, now_ms, (
            WorkflowExecutionCancelRequestedEventAttributes(cause=body.reason,
                                                            request_id=entry.message_id),))
    do_remember(state, key, Ack(), now_ms)
    return delivered
