"""A schedule's actions through the cross-shard outbox: start them, stop them, hear them close.

Theory of operation (protocol/messages.py tells a message's trip). An overlap decision
(`schedule_overlap.OverlapStep`) is committed by `do_take`, in the command that made it: the
record takes the new running / buffered actions and budget, and each order becomes an outbox
entry whose source is the schedule (`ScheduleRecord.source_run_id`, message ids
`{source}/{seq}`):
- a start is a `ScheduleStartMessage` for the action's deterministic workflow id; the target's
  shard starts the run idempotently by the message id (`start_action`), derives its run id
  from it (`action_run_id`, so the schedule knows the run before any answer) and links it to
  the schedule (`ParentRef.schedule_id`);
- CANCEL_OTHER / TERMINATE_OTHER send `CancelMessage` / `TerminateMessage` to the running
  action's open run.
When the linked run's chain closes, the target's shard queues a `ScheduleActionClosedMessage`
(child_links.py), delivered here as `on_action_closed`, which runs `schedule_overlap.on_closed`.
A start the target refused, or that timed out, settles as if the action had closed
(`settle_start`): nothing runs, the buffer moves on. Every notice names the action's run, so a
repeated, late or foreign one (a schedule deleted and created again) changes nothing.
"""

from __future__ import annotations

import hashlib

import msgspec

from raftflow.protocol.limits import WORKFLOW_TASK_TIMEOUT_MS_DEFAULT
from raftflow.protocol.messages import (
    CancelMessage,
    MessageBody,
    MessageOutcome,
    OutboxEntry,
    ScheduleActionClosedMessage,
    ScheduleStartMessage,
    TerminateMessage,
    message_id,
)
from raftflow.protocol.schedules import ScheduleActionResult, ScheduleActionRun
from raftflow.shards.core.changes import Changes
from raftflow.shards.core.outbox_queue import entry_bytes, queued_effect
from raftflow.shards.core.schedule_overlap import (
    ActionOutcome,
    OverlapStep,
    PendingAction,
    on_closed,
)
from raftflow.shards.core.schedule_records import (
    ScheduleRecord,
    actions_state,
    buffered_of,
)
from raftflow.shards.core.state import ShardState

PAUSED_BY_FAILURE_NOTE = "paused: an action failed or timed out (pause_on_failure)"


def action_run_id(start_message_id: str) -> str:
    """The first run id of an action, derived from its start message's id."""
    return hashlib.sha256(f"schedule-action/{start_message_id}".encode()).hexdigest()[:32]


def do_take(state: ShardState, record: ScheduleRecord, changes: Changes, now_ms: int,
            step: OverlapStep) -> None:
    """Commit one overlap decision: the record's new actions state and counters, and an outbox
    message per order."""
    actions = step.state
    schedule_state = record.schedule.state
    new_state = msgspec.structs.replace(
        schedule_state, paused=actions.paused, remaining_actions=actions.remaining_actions,
        note=PAUSED_BY_FAILURE_NOTE if step.paused_by_failure else schedule_state.note)
    record.schedule = msgspec.structs.replace(record.schedule, state=new_state)
    record.buffered = buffered_of(actions)
    record.num_skipped += step.skipped + step.not_taken  # not taken: paused or out of actions
    for workflow_id in step.cancel:
        _queue(state, record, changes, now_ms, CancelMessage(
            namespace=record.namespace, workflow_id=workflow_id,
            reason=f"schedule {record.schedule_id}: overlap policy cancel_other"))
    for workflow_id in step.terminate:
        _queue(state, record, changes, now_ms, TerminateMessage(
            namespace=record.namespace, workflow_id=workflow_id,
            reason=f"schedule {record.schedule_id}: overlap policy terminate_other"))
    running = {w: record.running[w] for w in actions.running if w in record.running}
    for action in step.start:
        running[action.workflow_id] = _start(state, record, changes, now_ms, action)
    assert list(running) == list(actions.running), (running, actions.running)
    record.running = running


def _start(state: ShardState, record: ScheduleRecord, changes: Changes, now_ms: int,
           action: PendingAction) -> str:
    spec = record.schedule.action
    entry = _queue(state, record, changes, now_ms, ScheduleStartMessage(
        namespace=record.namespace, workflow_id=action.workflow_id,
        schedule_id=record.schedule_id, workflow_type=spec.workflow_type,
        task_queue=spec.task_queue, input=bytes(spec.input),
        execution_timeout_ms=spec.execution_timeout_ms, run_timeout_ms=spec.run_timeout_ms,
        task_timeout_ms=spec.task_timeout_ms or WORKFLOW_TASK_TIMEOUT_MS_DEFAULT,
        search_attributes=dict(spec.search_attributes), retry_policy=spec.retry_policy))
    run_id = action_run_id(entry.message_id)
    record.num_actions += 1
    record.note_action(ScheduleActionResult(
        scheduled_at_ms=action.nominal_ms, started_at_ms=now_ms,
        action=ScheduleActionRun(workflow_id=action.workflow_id, run_id=run_id)))
    return run_id


def _queue(state: ShardState, record: ScheduleRecord, changes: Changes, now_ms: int,
           body: MessageBody) -> OutboxEntry:
    seq = record.next_message_seq
    record.next_message_seq = seq + 1
    source = record.source_run_id
    entry = OutboxEntry(message_id=message_id(source, seq), created_ms=now_ms,
                        source_namespace=record.namespace, source_workflow_id=record.schedule_id,
                        source_run_id=source, initiated_event_id=seq, body=body)
    assert entry.message_id not in state.outbox, entry.message_id
    state.outbox[entry.message_id] = entry
    state.outbox_bytes += entry_bytes(body)
    changes.effects.append(queued_effect(entry))
    return entry


def _closed(state: ShardState, record: ScheduleRecord, changes: Changes, now_ms: int,
            workflow_id: str, run_id: str, outcome: ActionOutcome) -> None:
    if record.running.get(workflow_id) != run_id:
        return  # not (or no longer) this schedule's running action: a repeated notice
    step = on_closed(actions_state(record), workflow_id, outcome,
                     pause_on_failure=record.schedule.policies.pause_on_failure)
    do_take(state, record, changes, now_ms, step)


def on_action_closed(state: ShardState, changes: Changes, now_ms: int,
                     body: ScheduleActionClosedMessage) -> None:
    """A `ScheduleActionClosedMessage` delivered to the schedule's shard."""
    record = state.schedules.get((body.namespace, body.workflow_id))
    if record is None:
        return  # deleted meanwhile
    try:
        outcome = ActionOutcome(body.status)
    except ValueError:
        outcome = ActionOutcome.COMPLETED
    _closed(state, record, changes, now_ms, body.action_workflow_id, body.action_run_id,
            outcome)


def settle_start(state: ShardState, changes: Changes, now_ms: int, entry: OutboxEntry,
                 outcome: MessageOutcome) -> None:
    """The first outcome of a schedule's message (the outbox entry is already gone): a start
    that never took effect frees its slot; every other outcome needs nothing."""
    body = entry.body
    if not isinstance(body, ScheduleStartMessage) or outcome.error is None:
        return
    record = state.schedules.get((entry.source_namespace, entry.source_workflow_id))
    if record is None or record.source_run_id != entry.source_run_id:
        return
    _closed(state, record, changes, now_ms, body.workflow_id, action_run_id(entry.message_id),
            ActionOutcome.TERMINATED)
