"""Validation of the commands a workflow task completes with (no writes).

Theory of operation. `check_commands` walks the commands in order against a scratch view of the
run (ids of live activities and timers, counts) so that every refusal is known before the
completion writes anything: compute, then commit. It returns the number of history events the
commands will write so the caller can check the history limit up front.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raftflow.protocol.commands import (
    CancelTimer,
    CancelWorkflowExecution,
    CompleteWorkflowExecution,
    CompleteWorkflowUpdate,
    ContinueAsNewWorkflowExecution,
    FailWorkflowExecution,
    RecordMarker,
    RequestCancelActivityTask,
    RequestCancelExternalWorkflowExecution,
    ScheduleActivityTask,
    SignalExternalWorkflowExecution,
    StartChildWorkflowExecution,
    StartTimer,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Rejected
from raftflow.protocol.search_attributes import SearchAttribute, UpsertWorkflowSearchAttributes
from raftflow.shards.core import limits, validate
from raftflow.shards.core.children import check_child
from raftflow.shards.core.on_update import check_update_completion
from raftflow.shards.core.outbox import body_of, check_message, check_outbox_room
from raftflow.shards.core.outbox_queue import entry_bytes
from raftflow.shards.core.run_attributes import check_upsert
from raftflow.shards.core.state import Execution, ShardState

CLOSE_COMMANDS = (CompleteWorkflowExecution, FailWorkflowExecution, CancelWorkflowExecution,
                  ContinueAsNewWorkflowExecution)


@dataclass(slots=True)
class _Scratch:
    activity_ids: set[str]
    timer_ids: set[str]
    cancel_requested: set[int] = field(default_factory=set)
    activities_added: int = 0
    timers_added: int = 0
    events: int = 0
    # The run's search attributes after the upserts checked so far (limit across upserts).
    attributes: tuple[SearchAttribute, ...] = ()
    # Messages (and their payload bytes) queued in the outbox by the commands checked so far.
    messages_added: int = 0
    message_bytes_added: int = 0
    children_added: int = 0


def _invalid(field_name: str, message: str) -> Rejected:
    return Rejected(code=ErrorCode.INVALID_ARGUMENT, message=message, field=field_name)


def check_commands(state: ShardState, execution: Execution,
                   commands: tuple[WorkflowCommand, ...]) -> tuple[int, Rejected | None]:
    """(events the commands will write, first refusal or None). `state` only gives the
    namespace's registered search attributes (upserts are typed against them)."""
    if len(commands) > limits.COMMANDS_PER_TASK_MAX:
        return 0, validate.limit_exceeded("COMMANDS_PER_TASK_MAX", limits.COMMANDS_PER_TASK_MAX)
    assert execution.is_open, execution.run_id
    scratch = _Scratch(activity_ids=set(execution.activity_ids), timer_ids=set(execution.timers),
                       attributes=execution.search_attributes)
    for index, command in enumerate(commands):
        where = f"commands[{index}]"
        if isinstance(command, CLOSE_COMMANDS) and index != len(commands) - 1:
            return 0, _invalid(where, "a workflow-closing command must be the last command")
        if isinstance(command, UpsertWorkflowSearchAttributes):
            scratch.events += 1
            after = check_upsert(state, execution, where, command, scratch.attributes)
            if isinstance(after, Rejected):
                return 0, after
            scratch.attributes = after
            continue
        rejected = _check_one(execution, scratch, where, command)
        if rejected is not None:
            return 0, rejected
    if len(execution.activities) + scratch.activities_added > limits.PENDING_ACTIVITIES_MAX:
        return 0, validate.limit_exceeded("PENDING_ACTIVITIES_MAX", limits.PENDING_ACTIVITIES_MAX)
    if len(execution.timers) + scratch.timers_added > limits.PENDING_TIMERS_MAX:
        return 0, validate.limit_exceeded("PENDING_TIMERS_MAX", limits.PENDING_TIMERS_MAX)
    rejected = check_outbox_room(state, scratch.messages_added, scratch.message_bytes_added)
    if rejected is not None:
        return 0, rejected
    assert scratch.events <= 2 * len(commands)
    return scratch.events, None


def _check_one(execution: Execution, scratch: _Scratch, where: str,
               command: WorkflowCommand) -> Rejected | None:
    assert execution.is_open and scratch.events >= 0
    scratch.events += 1
    match command:
        case ScheduleActivityTask():
            return _check_schedule(scratch, where, command)
        case RequestCancelActivityTask():
            sid = command.scheduled_event_id
            activity = execution.activities.get(sid)
            if activity is None or activity.cancel_requested_event_id or sid in scratch.cancel_requested:
                return _invalid(f"{where}.scheduled_event_id",
                                f"no pending, uncanceled activity scheduled at event {sid}")
            scratch.cancel_requested.add(sid)
            scratch.events += 1  # an activity not running is canceled at once
            return None
        case StartTimer():
            rejected = validate.check_id(f"{where}.timer_id", command.timer_id)
            rejected = rejected or validate.check_duration(f"{where}.start_to_fire_timeout_ms",
                                                           command.start_to_fire_timeout_ms)
            if rejected is None and command.timer_id in scratch.timer_ids:
                rejected = _invalid(f"{where}.timer_id", f"timer {command.timer_id} is pending")
            scratch.timer_ids.add(command.timer_id)
            scratch.timers_added += 1
            return rejected
        case CancelTimer():
            if command.timer_id not in scratch.timer_ids:
                return _invalid(f"{where}.timer_id", f"no pending timer {command.timer_id}")
            scratch.timer_ids.discard(command.timer_id)
            return None
        case RecordMarker():
            return (validate.check_id(f"{where}.marker_name", command.marker_name)
                    or validate.check_payload(f"{where}.details", command.details))
        case CompleteWorkflowExecution():
            return validate.check_payload(f"{where}.result", command.result)
        case FailWorkflowExecution():
            return validate.check_failure(f"{where}.failure", command.failure)
        case CancelWorkflowExecution():
            return validate.check_payload(f"{where}.details", command.details)
        case ContinueAsNewWorkflowExecution():
            return _check_continue(where, command)
        case StartChildWorkflowExecution():
            scratch.children_added += 1
            scratch.messages_added += 1
            scratch.message_bytes_added += len(command.input)
            if execution.pending_messages + scratch.messages_added > (
                    limits.PENDING_MESSAGES_PER_RUN_MAX):
                return validate.limit_exceeded("PENDING_MESSAGES_PER_RUN_MAX",
                                               limits.PENDING_MESSAGES_PER_RUN_MAX)
            return check_child(execution, where, command, scratch.children_added)
        case SignalExternalWorkflowExecution() | RequestCancelExternalWorkflowExecution():
            rejected = check_message(execution, where, command, scratch.messages_added + 1)
            scratch.messages_added += 1
            scratch.message_bytes_added += entry_bytes(body_of(execution, command))
            return rejected
        case CompleteWorkflowUpdate():
            return check_update_completion(where, command)
    raise AssertionError(f"unknown workflow command {command!r}")


def _check_schedule(scratch: _Scratch, where: str,
                    command: ScheduleActivityTask) -> Rejected | None:
    rejected = validate.check_ids(**{f"{where}.activity_id": command.activity_id,
                                     f"{where}.activity_type": command.activity_type})
    if rejected is None and command.task_queue:
        rejected = validate.check_id(f"{where}.task_queue", command.task_queue)
    rejected = rejected or validate.check_payload(f"{where}.input", command.input)
    for name in ("schedule_to_close_timeout_ms", "schedule_to_start_timeout_ms",
                 "start_to_close_timeout_ms", "heartbeat_timeout_ms"):
        rejected = rejected or validate.check_duration(f"{where}.{name}", getattr(command, name))
    if rejected is None and command.retry_policy is not None:
        rejected = validate.check_retry_policy(f"{where}.retry_policy", command.retry_policy)
    if rejected is not None:
        return rejected
    if command.schedule_to_close_timeout_ms is None and command.start_to_close_timeout_ms is None:
        return _invalid(f"{where}.start_to_close_timeout_ms", "set schedule_to_close_timeout_ms "
                        "or start_to_close_timeout_ms")
    assert command.retry_policy is None or command.retry_policy.initial_interval_ms >= 1
    if command.activity_id in scratch.activity_ids:
        return _invalid(f"{where}.activity_id", f"activity {command.activity_id} is pending")
    scratch.activity_ids.add(command.activity_id)
    scratch.activities_added += 1
    assert len(scratch.activity_ids) >= scratch.activities_added
    return None


def _check_continue(where: str, command: ContinueAsNewWorkflowExecution) -> Rejected | None:
    rejected = validate.check_payload(f"{where}.input", command.input)
    rejected = rejected or validate.check_duration(f"{where}.run_timeout_ms",
                                                   command.run_timeout_ms)
    if rejected is None and command.workflow_type:
        rejected = validate.check_id(f"{where}.workflow_type", command.workflow_type)
    if rejected is None and command.task_queue:
        rejected = validate.check_id(f"{where}.task_queue", command.task_queue)
    timeout_ms = command.task_timeout_ms
    if rejected is None and timeout_ms is not None and not (
            1 <= timeout_ms <= limits.WORKFLOW_TASK_TIMEOUT_MS_MAX):
        rejected = _invalid(f"{where}.task_timeout_ms", "task_timeout_ms must be in "
                            f"[1, WORKFLOW_TASK_TIMEOUT_MS_MAX={limits.WORKFLOW_TASK_TIMEOUT_MS_MAX}]")
    return rejected
