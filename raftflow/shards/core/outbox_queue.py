"""Queueing a message in the shard's outbox: the one write every sender shares (a workflow
task's signal, cancel or child start; a closing run's notice to its parent or children).

Kept apart from outbox.py (which settles outcomes and so writes events through writes.py) so
that `writes.do_close_run` can queue the notices a close causes without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftflow.protocol.effects import MessageQueued
from raftflow.protocol.messages import (
    CancelMessage,
    ChildClosedMessage,
    MessageBody,
    OutboxEntry,
    ScheduleActionClosedMessage,
    ScheduleStartMessage,
    SignalMessage,
    StartChildMessage,
    TerminateMessage,
    message_id,
)
from raftflow.shards.core import limits

if TYPE_CHECKING:
    from raftflow.shards.core.changes import Changes
    from raftflow.shards.core.runs import Execution
    from raftflow.shards.core.state import ShardState


def entry_bytes(body: MessageBody) -> int:
    """What a message counts against OUTBOX_BYTES_PER_SHARD_MAX: its payload and texts."""
    match body:
        case SignalMessage() | StartChildMessage() | ScheduleStartMessage():
            return len(body.input)
        case CancelMessage() | TerminateMessage():
            return len(body.reason)
        case ScheduleActionClosedMessage():
            return 0
        case ChildClosedMessage():
            failure = body.failure
            return len(body.result) + (0 if failure is None else
                                       len(failure.details) + len(failure.message))


def do_queue(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
             initiated_event_id: int, body: MessageBody, *, suffix: str = "") -> None:
    """Queue the message `execution`'s event `initiated_event_id` (already written) causes."""
    entry = OutboxEntry(message_id=message_id(execution.run_id, initiated_event_id, suffix),
                        created_ms=now_ms, source_namespace=execution.namespace,
                        source_workflow_id=execution.workflow_id,
                        source_run_id=execution.run_id, initiated_event_id=initiated_event_id,
                        body=body)
    assert entry.message_id not in state.outbox, entry.message_id
    state.outbox[entry.message_id] = entry
    state.outbox_bytes += entry_bytes(body)
    execution.pending_messages += 1
    changes.effects.append(queued_effect(entry))
    horizon_ms = now_ms + limits.MESSAGE_RETRY_HORIZON_MS
    if changes.armed_at_ms is None or horizon_ms < changes.armed_at_ms:
        changes.armed_at_ms = horizon_ms  # the leader must wake to give it up, if need be


def queued_effect(entry: OutboxEntry) -> MessageQueued:
    return MessageQueued(message_id=entry.message_id, namespace=entry.body.namespace,
                         workflow_id=entry.body.workflow_id)


def queued_effects(state: ShardState) -> list[MessageQueued]:
    """One order per outbox entry, in queue order: what a new leader's courier must send."""
    return [queued_effect(entry) for entry in state.outbox.values()]
