"""Schedule commands: create, update, patch (pause, note, trigger, backfill), delete, and the
leader's tick. Each decides first and writes after (a refusal changes nothing).

Theory of operation (docs/internals/schedules.md, protocol/schedule_commands.py). Client
commands are idempotent by request id (remembered under the kind `schedule`). A create sets the
cursor to its `now_ms` (no action for a time before the schedule existed) and asks for a step at
once (`next_wake_ms = now_ms`): the leader's shell then computes the first wake-up with the
schedule's time zones. An update keeps counters, running and buffered actions and backfills,
moves the cursor to at least its `now_ms` and bumps the revision (ticks computed for the old
spec become stale). A tick applies only to the revision and cursor it was computed from: it
moves the cursor, counts missed times, hands the due ones to the overlap policy
(schedule_overlap.take_due) and commits the decision (schedule_actions.do_take). Paused
schedules keep stepping: their times pass and are counted not taken, as in Temporal.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Ack, Rejected, Result
from raftflow.protocol.schedule_commands import (
    CreateSchedule,
    DeleteSchedule,
    PatchSchedule,
    ScheduleTick,
    UpdateSchedule,
)
from raftflow.protocol.schedules import (
    SCHEDULE_NOTE_LENGTH_MAX,
    Schedule,
    backfill_problem,
    schedule_problem,
)
from raftflow.shards.core import limits, validate
from raftflow.shards.core.changes import Changes
from raftflow.shards.core.output import Output
from raftflow.shards.core.schedule_actions import do_take
from raftflow.shards.core.schedule_overlap import (
    ActionOrigin,
    PendingAction,
    resume,
    take_due,
)
from raftflow.shards.core.schedule_records import (
    PendingBackfill,
    ScheduleRecord,
    actions_state,
)
from raftflow.shards.core.schedule_times import action_workflow_id
from raftflow.shards.core.state import ShardState
from raftflow.shards.core.writes import do_remember

SCHEDULE_KIND = "schedule"

ClientCommand = CreateSchedule | UpdateSchedule | PatchSchedule | DeleteSchedule


def _remembered(state: ShardState, command: ClientCommand) -> Result | None:
    return state.archive.recall(_key(command))


def _key(command: ClientCommand) -> tuple[str, str, str, str]:
    return (SCHEDULE_KIND, command.namespace, command.schedule_id, command.request_id)


def _done(state: ShardState, command: ClientCommand, changes: Changes) -> Output:
    do_remember(state, _key(command), Ack(), command.now_ms)
    return Output.of(Ack(), changes)


def _check_ids(command: ClientCommand) -> Rejected | None:
    return validate.check_ids(namespace=command.namespace, schedule_id=command.schedule_id,
                              request_id=command.request_id)


def _check_schedule(schedule: Schedule) -> Rejected | None:
    problem = schedule_problem(schedule, check_time_zones=False)
    if problem is None:
        return None
    return Rejected(code=ErrorCode.INVALID_ARGUMENT, message=problem.message,
                    field=f"schedule.{problem.field}")


def _not_found(command: ClientCommand) -> Rejected:
    return validate.not_found(f"schedule {command.schedule_id} not found in namespace "
                              f"{command.namespace}")


def on_create_schedule(state: ShardState, command: CreateSchedule) -> Output:
    previous = _remembered(state, command)
    if previous is not None:
        return Output(result=previous)
    rejected = _check_ids(command) or _check_schedule(command.schedule)
    if rejected is not None:
        return Output(result=rejected)
    key = (command.namespace, command.schedule_id)
    if key in state.schedules:
        return Output(result=Rejected(
            code=ErrorCode.SCHEDULE_ALREADY_EXISTS, field="schedule_id",
            message=f"schedule {command.schedule_id} exists in namespace {command.namespace}"))
    if len(state.schedules) >= limits.SCHEDULES_PER_SHARD_MAX:
        return Output(result=validate.limit_exceeded("SCHEDULES_PER_SHARD_MAX",
                                                     limits.SCHEDULES_PER_SHARD_MAX))
    state.schedules[key] = ScheduleRecord(
        namespace=command.namespace, schedule_id=command.schedule_id,
        schedule=command.schedule, incarnation=state.applied_index + 1,
        created_at_ms=command.now_ms, processed_through_ms=command.now_ms,
        next_wake_ms=command.now_ms)
    return _done(state, command, Changes())


def on_update_schedule(state: ShardState, command: UpdateSchedule) -> Output:
    previous = _remembered(state, command)
    if previous is not None:
        return Output(result=previous)
    rejected = _check_ids(command) or _check_schedule(command.schedule)
    if rejected is not None:
        return Output(result=rejected)
    record = state.schedules.get((command.namespace, command.schedule_id))
    if record is None:
        return Output(result=_not_found(command))
    changes = Changes()
    record.schedule = command.schedule
    record.revision += 1
    record.last_updated_at_ms = command.now_ms
    record.processed_through_ms = max(record.processed_through_ms, command.now_ms)
    record.next_wake_ms = command.now_ms
    do_take(state, record, changes, command.now_ms, resume(actions_state(record)))
    return _done(state, command, changes)


def on_patch_schedule(state: ShardState, command: PatchSchedule) -> Output:
    previous = _remembered(state, command)
    if previous is not None:
        return Output(result=previous)
    rejected = _check_ids(command) or _check_patch(command)
    if rejected is not None:
        return Output(result=rejected)
    record = state.schedules.get((command.namespace, command.schedule_id))
    if record is None:
        return Output(result=_not_found(command))
    if len(record.backfills) + len(command.backfills) > limits.SCHEDULE_BACKFILLS_PENDING_MAX:
        return Output(result=validate.limit_exceeded("SCHEDULE_BACKFILLS_PENDING_MAX",
                                                     limits.SCHEDULE_BACKFILLS_PENDING_MAX))
    changes = Changes()
    now_ms = command.now_ms
    current = record.schedule.state
    if command.pause is not None or command.note is not None:
        record.schedule = msgspec.structs.replace(record.schedule, state=msgspec.structs.replace(
            current, paused=current.paused if command.pause is None else command.pause,
            note=current.note if command.note is None else command.note))
        record.last_updated_at_ms = now_ms
        if command.pause is False:
            do_take(state, record, changes, now_ms, resume(actions_state(record)))
    if command.trigger:
        overlap = command.trigger_overlap or record.schedule.policies.overlap
        action = PendingAction(
            nominal_ms=now_ms, actual_ms=now_ms, overlap=overlap,
            workflow_id=action_workflow_id(record.schedule.action.workflow_id, now_ms),
            origin=ActionOrigin.TRIGGERED)
        do_take(state, record, changes, now_ms, take_due(actions_state(record), (action,)))
    for backfill in command.backfills:
        record.backfills.append(PendingBackfill(
            backfill_id=record.next_backfill_id, start_at_ms=backfill.start_at_ms,
            end_at_ms=backfill.end_at_ms, overlap=backfill.overlap))
        record.next_backfill_id += 1
    return _done(state, command, changes)


def _check_patch(command: PatchSchedule) -> Rejected | None:
    for index, backfill in enumerate(command.backfills):
        problem = backfill_problem(backfill)
        if problem is not None:
            return Rejected(code=ErrorCode.INVALID_ARGUMENT, message=problem.message,
                            field=f"backfills[{index}].{problem.field}")
    if command.note is not None and len(command.note) > SCHEDULE_NOTE_LENGTH_MAX:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field="note", message=(
            f"note longer than SCHEDULE_NOTE_LENGTH_MAX={SCHEDULE_NOTE_LENGTH_MAX}"))
    return None


def on_delete_schedule(state: ShardState, command: DeleteSchedule) -> Output:
    previous = _remembered(state, command)
    if previous is not None:
        return Output(result=previous)
    rejected = _check_ids(command)
    if rejected is not None:
        return Output(result=rejected)
    if state.schedules.pop((command.namespace, command.schedule_id), None) is None:
        return Output(result=_not_found(command))
    return _done(state, command, Changes())


def on_schedule_tick(state: ShardState, command: ScheduleTick) -> Output:
    record = state.schedules.get((command.namespace, command.schedule_id))
    if record is None:
        return Output(result=validate.stale("no such schedule (deleted meanwhile)"))
    rejected = _check_tick(state, record, command)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    now_ms = command.now_ms
    record.processed_through_ms = command.processed_through_ms
    record.next_wake_ms = command.next_wake_ms
    record.num_missed += command.missed
    policy = record.schedule.policies.overlap
    prefix = record.schedule.action.workflow_id
    due = tuple(PendingAction(nominal_ms=d.nominal_ms, actual_ms=d.actual_ms, overlap=policy,
                              workflow_id=action_workflow_id(prefix, d.nominal_ms))
                for d in command.due)
    step = take_due(actions_state(record), due)
    do_take(state, record, changes, now_ms, step)
    tick = command.backfill
    if tick is not None:
        backfill = record.backfills[0]
        overlap = backfill.overlap or policy
        times = tuple(PendingAction(nominal_ms=t, actual_ms=now_ms, overlap=overlap,
                                    workflow_id=action_workflow_id(prefix, t),
                                    origin=ActionOrigin.BACKFILL)
                      for t in tick.nominal_times)
        do_take(state, record, changes, now_ms, take_due(actions_state(record), times))
        backfill.processed_through_ms = tick.processed_through_ms
        if tick.done:
            record.backfills.pop(0)
    return Output.of(Ack(), changes)


def _check_tick(state: ShardState, record: ScheduleRecord, tick: ScheduleTick) -> Rejected | None:
    if tick.revision != record.revision or tick.from_cursor_ms != record.processed_through_ms:
        return validate.stale("schedule tick computed from an older state")
    if (tick.processed_through_ms == tick.from_cursor_ms and tick.backfill is None
            and tick.next_wake_ms == record.next_wake_ms):
        return validate.stale("schedule tick changes nothing (applied before)")
    nominals = [d.nominal_ms for d in tick.due]
    if (tick.processed_through_ms < tick.from_cursor_ms or tick.missed < 0
            or nominals != sorted(set(nominals))
            or any(not tick.from_cursor_ms < t <= tick.processed_through_ms for t in nominals)
            or len(tick.due) > limits.SCHEDULE_TIMES_PER_TICK_MAX):
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, message="inconsistent schedule tick")
    backfill = tick.backfill
    room = len(tick.due) + len(record.running) + 1
    if backfill is not None:
        first = record.backfills[0] if record.backfills else None
        if (first is None or first.backfill_id != backfill.backfill_id
                or first.processed_through_ms != backfill.from_cursor_ms):
            return validate.stale("schedule backfill tick computed from an older state")
        if (len(backfill.nominal_times) > limits.SCHEDULE_TIMES_PER_TICK_MAX
                or any(not first.start_at_ms <= t <= first.end_at_ms
                       for t in backfill.nominal_times)):
            return Rejected(code=ErrorCode.INVALID_ARGUMENT,
                            message="inconsistent schedule backfill tick")
        room += len(backfill.nominal_times)
    # The tick's starts (and stop orders) go to the outbox: wait for room rather than pass
    # its bound (the shell retries the tick later, the cursor has not moved).
    if len(state.outbox) + room > limits.OUTBOX_MESSAGES_PER_SHARD_MAX:
        return validate.limit_exceeded("OUTBOX_MESSAGES_PER_SHARD_MAX",
                                       limits.OUTBOX_MESSAGES_PER_SHARD_MAX)
    return None
