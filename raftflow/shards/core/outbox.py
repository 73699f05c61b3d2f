"""The source side of messages to other workflows: queue, acknowledge, give up.

Theory of operation (protocol/messages.py tells the whole trip). A workflow task that signals
or asks another workflow to cancel writes `...Initiated` and queues an `OutboxEntry` in
`ShardState.outbox` in the same commit, so the intent is as durable as the event. Nothing here
sends: the entry's `MessageQueued` effect (and, on a new leader, `queued_effects`) tells the
shell's courier to deliver it. `AckMessages` brings the target's outcome back: the first
outcome of a message id removes the entry and writes exactly one outcome event to the source
run, if it is still open (a run that closed meanwhile just lets the entry go: the message was
still delivered, the outbox outlives its sender). A duplicate or late outcome finds no entry
and changes nothing. A message with no outcome after MESSAGE_RETRY_HORIZON_MS is given up
(`DeliveryTimedOut`, by `FireTimers`), well before the target could forget its id.
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    RequestCancelExternalWorkflowExecution,
    SignalExternalWorkflowExecution,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import EventAttributes
from raftflow.protocol.events_external import (
    ExternalFailedCause,
    ExternalWorkflowExecutionCancelRequestedEventAttributes,
    ExternalWorkflowExecutionSignaledEventAttributes,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.messages import (
    AckMessages,
    CancelMessage,
    ChildClosedMessage,
    MessageBody,
    MessageOutcome,
    OutboxEntry,
    ScheduleActionClosedMessage,
    ScheduleStartMessage,
    SignalMessage,
    StartChildMessage,
    TerminateMessage,
)
from raftflow.protocol.results import Ack, Rejected
from raftflow.shards.core import limits, validate
from raftflow.shards.core.children import do_child_start_outcome
from raftflow.shards.core.outbox_queue import do_queue, entry_bytes
from raftflow.shards.core.output import Output
from raftflow.shards.core.schedule_actions import settle_start
from raftflow.shards.core.schedule_records import is_schedule_source
from raftflow.shards.core.state import Execution, ShardState
from raftflow.shards.core.writes import Changes, do_append, do_deliver

MessageCommand = SignalExternalWorkflowExecution | RequestCancelExternalWorkflowExecution


def check_message(execution: Execution, where: str, command: MessageCommand,
                  queued: int) -> Rejected | None:
    """Refusals of one message command, given how many messages the same task queued up to
    and including it (the shard-wide bounds, bytes included, are `check_outbox_room`'s). Only the workflow's own namespace for now: a message to another namespace would need
    that namespace's authorization, which the shards do not hold."""
    if command.namespace and command.namespace != execution.namespace:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field=f"{where}.namespace",
                        message="only the workflow's own namespace can be addressed")
    rejected = validate.check_id(f"{where}.workflow_id", command.workflow_id)
    if isinstance(command, SignalExternalWorkflowExecution):
        rejected = (rejected or validate.check_id(f"{where}.signal_name", command.signal_name)
                    or validate.check_payload(f"{where}.input", command.input))
    if rejected is None and command.run_id:
        rejected = validate.check_id(f"{where}.run_id", command.run_id)
    if rejected is not None:
        return rejected
    if execution.pending_messages + queued > limits.PENDING_MESSAGES_PER_RUN_MAX:
        return validate.limit_exceeded("PENDING_MESSAGES_PER_RUN_MAX",
                                       limits.PENDING_MESSAGES_PER_RUN_MAX)
    return None


def check_outbox_room(state: ShardState, count: int, size: int) -> Rejected | None:
    """The shard-wide bounds, for all the messages one task queues."""
    if len(state.outbox) + count > limits.OUTBOX_MESSAGES_PER_SHARD_MAX:
        return validate.limit_exceeded("OUTBOX_MESSAGES_PER_SHARD_MAX",
                                       limits.OUTBOX_MESSAGES_PER_SHARD_MAX)
    if count and state.outbox_bytes + size > limits.OUTBOX_BYTES_PER_SHARD_MAX:
        return validate.limit_exceeded("OUTBOX_BYTES_PER_SHARD_MAX",
                                       limits.OUTBOX_BYTES_PER_SHARD_MAX)
    return None


def body_of(execution: Execution, command: MessageCommand) -> SignalMessage | CancelMessage:
    if isinstance(command, SignalExternalWorkflowExecution):
        return SignalMessage(namespace=execution.namespace, workflow_id=command.workflow_id,
                             run_id=command.run_id, signal_name=command.signal_name,
                             # Plain bytes, not the command's Payload (the JSON value itself
                             # over HTTP): the courier's JSON body carries them as base64.
                             input=bytes(command.input))
    return CancelMessage(namespace=execution.namespace, workflow_id=command.workflow_id,
                         run_id=command.run_id, reason=command.reason)


def do_send(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
            completed_id: int, command: MessageCommand) -> None:
    """Write the `...Initiated` event and queue its message, in this one commit."""
    body = body_of(execution, command)
    initiated: EventAttributes
    if isinstance(body, SignalMessage):
        initiated = SignalExternalWorkflowExecutionInitiatedEventAttributes(
            namespace=body.namespace, workflow_id=body.workflow_id, run_id=body.run_id,
            signal_name=body.signal_name, input=body.input,
            workflow_task_completed_event_id=completed_id)
    else:
        initiated = RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
            namespace=body.namespace, workflow_id=body.workflow_id, run_id=body.run_id,
            reason=body.reason, workflow_task_completed_event_id=completed_id)
    event = do_append(execution, changes, now_ms, initiated)
    do_queue(state, execution, changes, now_ms, event.event_id, body)


def initiated_body(execution: Execution, attributes: EventAttributes) -> MessageBody | None:
    """The message an `...Initiated` event of `execution` stands for; None for other events."""
    match attributes:
        case SignalExternalWorkflowExecutionInitiatedEventAttributes():
            return SignalMessage(namespace=attributes.namespace or execution.namespace,
                                 workflow_id=attributes.workflow_id, run_id=attributes.run_id,
                                 signal_name=attributes.signal_name, input=attributes.input)
        case RequestCancelExternalWorkflowExecutionInitiatedEventAttributes():
            return CancelMessage(namespace=attributes.namespace or execution.namespace,
                                 workflow_id=attributes.workflow_id, run_id=attributes.run_id,
                                 reason=attributes.reason)
    return None


def on_ack_messages(state: ShardState, command: AckMessages) -> Output:
    if len(command.outcomes) > limits.MESSAGES_PER_DELIVERY_MAX:
        return Output(result=validate.limit_exceeded("MESSAGES_PER_DELIVERY_MAX",
                                                     limits.MESSAGES_PER_DELIVERY_MAX))
    changes = Changes()
    for outcome in command.outcomes:
        do_settle(state, changes, command.now_ms, outcome)
    return Output.of(Ack(), changes)


def do_expire_messages(state: ShardState, changes: Changes, now_ms: int, limit: int) -> int:
    """Give up the oldest messages past their retry horizon (at most `limit`); returns how
    many. Queue order, stopping at the first one not due: a leader's clock may have run behind
    an earlier one's, which then waits for its predecessors (by at most that difference)."""
    expired = 0
    for entry in list(state.outbox.values()):
        if expired >= limit or entry.created_ms + limits.MESSAGE_RETRY_HORIZON_MS > now_ms:
            break
        do_settle(state, changes, now_ms, MessageOutcome(
            message_id=entry.message_id, error=ErrorCode.TIMEOUT,
            detail=f"no answer from the target's shard within "
                   f"MESSAGE_RETRY_HORIZON_MS={limits.MESSAGE_RETRY_HORIZON_MS}"))
        expired += 1
    return expired


def do_settle(state: ShardState, changes: Changes, now_ms: int, outcome: MessageOutcome) -> None:
    """The first outcome of a message: drop the entry, tell the source run if still open."""
    entry = state.outbox.pop(outcome.message_id, None)
    if entry is None:
        return  # settled before: a duplicate or late acknowledgement
    state.outbox_bytes -= entry_bytes(entry.body)
    assert state.outbox_bytes >= 0, state.outbox_bytes
    if is_schedule_source(entry.source_run_id):
        settle_start(state, changes, now_ms, entry, outcome)
        return
    source = state.open_execution(entry.source_namespace, entry.source_workflow_id)
    if source is None or source.run_id != entry.source_run_id:
        return  # the source run closed: nobody waits for the outcome
    source.pending_messages -= 1
    assert source.pending_messages >= 0, source.run_id
    body = entry.body
    match body:
        case SignalMessage() | CancelMessage():
            do_deliver(state, source, changes, now_ms, (outcome_event(entry, body, outcome),))
        case StartChildMessage():
            do_child_start_outcome(state, source, changes, now_ms, entry, outcome)
        case (TerminateMessage() | ChildClosedMessage() | ScheduleStartMessage()
              | ScheduleActionClosedMessage()):
            pass  # a closed run's notices: their source never waits (it is not open)


def outcome_event(entry: OutboxEntry, body: SignalMessage | CancelMessage,
                  outcome: MessageOutcome) -> EventAttributes:
    ns, wid, rid, initiated = (body.namespace, body.workflow_id, body.run_id,
                               entry.initiated_event_id)
    signal = isinstance(body, SignalMessage)
    if outcome.error is None:
        if signal:
            return ExternalWorkflowExecutionSignaledEventAttributes(
                initiated_event_id=initiated, namespace=ns, workflow_id=wid, run_id=rid)
        return ExternalWorkflowExecutionCancelRequestedEventAttributes(
            initiated_event_id=initiated, namespace=ns, workflow_id=wid, run_id=rid)
    cause = _CAUSES.get(outcome.error, ExternalFailedCause.EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND)
    if signal:
        return SignalExternalWorkflowExecutionFailedEventAttributes(
            cause=cause.value, detail=outcome.detail, initiated_event_id=initiated,
            namespace=ns, workflow_id=wid, run_id=rid)
    return RequestCancelExternalWorkflowExecutionFailedEventAttributes(
        cause=cause.value, detail=outcome.detail, initiated_event_id=initiated, namespace=ns,
        workflow_id=wid, run_id=rid)


# Temporal reports a closed target as not found, and so does raftflow.
_CAUSES = {
    ErrorCode.NOT_FOUND: ExternalFailedCause.EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
    ErrorCode.WORKFLOW_NOT_RUNNING: ExternalFailedCause.EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
    ErrorCode.NAMESPACE_NOT_FOUND: ExternalFailedCause.NAMESPACE_NOT_FOUND,
    ErrorCode.LIMIT_EXCEEDED: ExternalFailedCause.SIGNAL_COUNT_LIMIT_EXCEEDED,
    ErrorCode.TIMEOUT: ExternalFailedCause.DELIVERY_TIMED_OUT,
}
