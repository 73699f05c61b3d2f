"""RespondWorkflowTaskCompleted: turn a workflow task's commands into history, in one commit.

Theory of operation. The token must name the current started attempt of an open run, else the
completion is stale and changes nothing (I3). All commands are validated first
(`task_commands.check_commands`); then WorkflowTaskCompleted is written and each command becomes
its events in order. If the task asked to close the run while new events were buffered during
the task, the close would lose them: as Temporal does, the whole answer is refused with
`unhandled_command`, the task is recorded as WorkflowTaskFailed (cause UnhandledCommand), the
buffered events are written and a new task is scheduled, so the workflow sees them first.
"""

from __future__ import annotations

import hashlib
import uuid

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
    RespondWorkflowTaskCompleted,
    RetryPolicy,
    ScheduleActivityTask,
    SignalExternalWorkflowExecution,
    StartChildWorkflowExecution,
    StartTimer,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    ActivityTaskCanceledEventAttributes,
    ActivityTaskCancelRequestedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    HistoryEvent,
    MarkerRecordedEventAttributes,
    TimerCanceledEventAttributes,
    TimerStartedEventAttributes,
    WorkflowExecutionCanceledEventAttributes,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionContinuedAsNewEventAttributes,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskFailedEventAttributes,
)
from raftflow.protocol.results import (
    ActivityTaskInfo,
    Rejected,
    Result,
    WorkflowStatus,
    WorkflowTaskCompletedResult,
)
from raftflow.protocol.search_attributes import UpsertWorkflowSearchAttributes
from raftflow.shards.core import on_update, run_history, validate
from raftflow.shards.core.activity_start import do_start_activity
from raftflow.shards.core.children import do_start_child
from raftflow.shards.core.limits import EAGER_ACTIVITIES_MAX
from raftflow.shards.core.on_start import RunSpec, do_start_run
from raftflow.shards.core.on_workflow_task import (
    check_workflow_token,
    do_end_workflow_task,
    do_retry_workflow_task,
)
from raftflow.shards.core.outbox import do_send
from raftflow.shards.core.output import Output
from raftflow.shards.core.retried_completions import (
    activities_of_retried_workflow_task_completion,
    eager_request_id,
)
from raftflow.shards.core.run_attributes import do_upsert
from raftflow.shards.core.state import (
    ActivityState,
    Execution,
    ShardState,
    TimerKind,
)
from raftflow.shards.core.task_commands import CLOSE_COMMANDS, check_commands
from raftflow.shards.core.workflow_retry import do_fail_run
from raftflow.shards.core.writes import (
    Changes,
    dispatch_activity_task,
    do_append,
    do_arm,
    do_close_run,
    do_disarm,
    do_disarm_activity,
    do_flush_buffered,
    do_schedule_workflow_task,
)


def continued_run_id(run_id: str, started_event_id: int) -> str:
    """The new run id of a continue-as-new: derived, so every replica picks the same (I2)."""
    digest = hashlib.sha256(f"{run_id}/{started_event_id}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def on_respond_workflow_task_completed(state: ShardState,
                                       command: RespondWorkflowTaskCompleted,
                                       into: Changes | None = None) -> Output:
    """`into`: the changes of the command this completion is part of (a folded task,
    on_folded_task.py); a refusal changes nothing either way."""
    checked = check_workflow_token(state, command.token)
    if isinstance(checked, Rejected):
        again = activities_of_retried_workflow_task_completion(state, command)
        return Output(result=checked if again is None else
                      WorkflowTaskCompletedResult(activity_tasks=again))
    execution, task = checked
    events, rejected = check_commands(state, execution, command.commands)
    accepts, rejected_update = on_update.check_responses(execution, task, command)
    rejected = rejected or rejected_update
    rejected = rejected or validate.check_optional_id("sticky_queue", command.sticky_queue)
    rejected = rejected or validate.check_optional_id("eager_task_queue",
                                                      command.eager_task_queue)
    if rejected is None and not 0 <= command.eager_activities_max <= EAGER_ACTIVITIES_MAX:
        rejected = Rejected(code=ErrorCode.INVALID_ARGUMENT, field="eager_activities_max",
                            message=f"must be in [0, EAGER_ACTIVITIES_MAX={EAGER_ACTIVITIES_MAX}]")
    # WorkflowTaskCompleted, the commands' events, buffered events, the next WorkflowTaskScheduled.
    rejected = rejected or validate.history_room(execution.history_length,
                                                 len(execution.buffered), events + accepts + 2)
    # Derived only when needed: a sha256 per completion was 8 % of apply under load.
    continues = any(isinstance(c, ContinueAsNewWorkflowExecution) for c in command.commands)
    new_run_id = continued_run_id(execution.run_id, task.started_event_id) if continues else ""
    if rejected is None and continues and state.run_id_used(new_run_id):
        rejected = Rejected(code=ErrorCode.INTERNAL, message="derived run id collides")
    if rejected is not None:
        return Output(result=rejected)
    closes = bool(command.commands) and isinstance(command.commands[-1], CLOSE_COMMANDS)
    changes = Changes() if into is None else into
    if closes and execution.buffered:
        do_append(execution, changes, command.now_ms, WorkflowTaskFailedEventAttributes(
            scheduled_event_id=task.scheduled_event_id,
            started_event_id=task.started_event_id, cause="UnhandledCommand",
            identity=command.identity))
        do_end_workflow_task(state, execution, changes)
        do_retry_workflow_task(state, execution, changes, command.now_ms, attempt=1)
        assert execution.is_open and not execution.buffered
        result = Rejected(code=ErrorCode.UNHANDLED_COMMAND,
                          message="new events arrived during the task; a new task is scheduled")
        return Output.of(result, changes)
    completed = do_append(execution, changes, command.now_ms, WorkflowTaskCompletedEventAttributes(
        scheduled_event_id=task.scheduled_event_id, started_event_id=task.started_event_id,
        identity=command.identity))
    do_end_workflow_task(state, execution, changes)
    execution.previous_started_event_id = task.started_event_id
    execution.sticky_queue = command.sticky_queue
    on_update.do_responses(state, execution, changes, command.now_ms, completed.event_id, task,
                           command)
    scheduled: list[ActivityState] = []
    for workflow_command in command.commands:
        activity = _do_command(state, execution, changes, command.now_ms, completed.event_id,
                               workflow_command, new_run_id)
        if activity is not None:
            scheduled.append(activity)
    if execution.is_open and do_flush_buffered(execution, changes) > 0:
        do_schedule_workflow_task(state, execution, changes, command.now_ms, attempt=1)
    on_update.do_schedule_for_waiting(state, execution, changes, command.now_ms)
    assert not closes or not execution.is_open
    eager = _do_start_eager(state, execution, changes, command, scheduled)
    # A sticky worker's cached replay follows the events written to the open run.
    written = (_written_since(execution, completed.event_id)
               if command.sticky_queue and execution.is_open else ())
    # A plain Ack when there is nothing to hand back (a worker that asked for nothing).
    answer: Result = (WorkflowTaskCompletedResult(activity_tasks=eager, events=written)
                      if eager or written else validate.ack())
    return Output.of(answer, changes)


def _written_since(execution: Execution, first_event_id: int) -> tuple[HistoryEvent, ...]:
    """The run's events from `first_event_id` on: all in its in-memory tail (a spill, which
    keeps HISTORY_HOT_EVENTS_MAX events there, happens after the command)."""
    first = first_event_id - execution.spilled_events - 1
    assert first >= 0 and execution.history[first].event_id == first_event_id
    return tuple(execution.history[first:])


def _do_start_eager(state: ShardState, execution: Execution, changes: Changes,
                    command: RespondWorkflowTaskCompleted,
                    scheduled: list[ActivityState]) -> tuple[ActivityTaskInfo, ...]:
    """Start for the completing worker the activities it asked to run itself (in order, on its
    queue, at most as many as it has free slots); the others wait for pollers as usual."""
    if not execution.is_open or not command.eager_task_queue:
        return ()
    started: list[ActivityTaskInfo] = []
    for activity in scheduled:
        if len(started) >= command.eager_activities_max:
            break
        if activity.task_queue != command.eager_task_queue:
            continue
        assert activity.scheduled_event_id in execution.activities
        request_id = eager_request_id(activity.scheduled_event_id, activity.attempt)
        started.append(do_start_activity(state, execution, activity, changes, command.now_ms,
                                         (request_id, command.identity)))
    assert len(started) <= EAGER_ACTIVITIES_MAX
    return tuple(started)


def _do_command(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                completed_id: int, command: WorkflowCommand,
                new_run_id: str) -> ActivityState | None:
    """Write one validated command's events; returns the activity it scheduled, if any."""
    assert execution.is_open and execution.workflow_task is None, execution.run_id
    match command:
        case ScheduleActivityTask():
            return _do_schedule_activity(state, execution, changes, now_ms, completed_id,
                                         command)
        case RequestCancelActivityTask():
            _do_cancel_activity(state, execution, changes, now_ms, completed_id, command)
        case StartTimer():
            event = do_append(execution, changes, now_ms, TimerStartedEventAttributes(
                timer_id=command.timer_id,
                start_to_fire_timeout_ms=command.start_to_fire_timeout_ms,
                workflow_task_completed_event_id=completed_id))
            execution.timers[command.timer_id] = event.event_id
            do_arm(state, changes, (execution.run_id, TimerKind.USER, event.event_id),
                   now_ms + command.start_to_fire_timeout_ms)
        case CancelTimer():
            started_id = execution.timers.pop(command.timer_id)
            do_disarm(state, (execution.run_id, TimerKind.USER, started_id))
            do_append(execution, changes, now_ms, TimerCanceledEventAttributes(
                timer_id=command.timer_id, started_event_id=started_id,
                workflow_task_completed_event_id=completed_id))
        case RecordMarker():
            do_append(execution, changes, now_ms, MarkerRecordedEventAttributes(
                marker_name=command.marker_name, details=command.details,
                workflow_task_completed_event_id=completed_id))
        case CompleteWorkflowExecution():
            do_close_run(state, execution, changes, now_ms, (
                WorkflowStatus.COMPLETED, WorkflowExecutionCompletedEventAttributes(
                    result=command.result, workflow_task_completed_event_id=completed_id)))
        case FailWorkflowExecution():
            do_fail_run(state, execution, changes, now_ms, WorkflowExecutionFailedEventAttributes(
                failure=command.failure, workflow_task_completed_event_id=completed_id))
        case CancelWorkflowExecution():
            do_close_run(state, execution, changes, now_ms, (
                WorkflowStatus.CANCELED, WorkflowExecutionCanceledEventAttributes(
                    details=command.details, workflow_task_completed_event_id=completed_id)))
        case ContinueAsNewWorkflowExecution():
            _do_continue_as_new(state, execution, changes, now_ms, completed_id, command,
                                new_run_id)
        case UpsertWorkflowSearchAttributes():
            do_upsert(state, execution, changes, now_ms, completed_id, command)
        case SignalExternalWorkflowExecution() | RequestCancelExternalWorkflowExecution():
            do_send(state, execution, changes, now_ms, completed_id, command)
        case StartChildWorkflowExecution():
            do_start_child(state, execution, changes, now_ms, completed_id, command)
        case CompleteWorkflowUpdate():
            on_update.do_complete_update(state, execution, changes, now_ms, completed_id, command)
    assert execution.history[-1].event_id == execution.history_length
    return None


def _do_schedule_activity(state: ShardState, execution: Execution, changes: Changes,
                          now_ms: int, completed_id: int,
                          command: ScheduleActivityTask) -> ActivityState:
    policy = command.retry_policy or RetryPolicy()
    task_queue = command.task_queue or execution.task_queue
    start_to_close_ms = command.start_to_close_timeout_ms or command.schedule_to_close_timeout_ms
    assert start_to_close_ms is not None, "validated: one of the two is set"
    event = do_append(execution, changes, now_ms, ActivityTaskScheduledEventAttributes(
        activity_id=command.activity_id, activity_type=command.activity_type,
        task_queue=task_queue, input=command.input,
        schedule_to_close_timeout_ms=command.schedule_to_close_timeout_ms,
        schedule_to_start_timeout_ms=command.schedule_to_start_timeout_ms,
        start_to_close_timeout_ms=start_to_close_ms,
        heartbeat_timeout_ms=command.heartbeat_timeout_ms, retry_policy=policy,
        workflow_task_completed_event_id=completed_id, traceparent=command.traceparent))
    sid = event.event_id
    activity = ActivityState(
        scheduled_event_id=sid, activity_id=command.activity_id,
        activity_type=command.activity_type, task_queue=task_queue, input=command.input,
        schedule_to_close_timeout_ms=command.schedule_to_close_timeout_ms,
        schedule_to_start_timeout_ms=command.schedule_to_start_timeout_ms,
        start_to_close_timeout_ms=start_to_close_ms,
        heartbeat_timeout_ms=command.heartbeat_timeout_ms, retry_policy=policy,
        scheduled_time_ms=now_ms, attempt_scheduled_time_ms=now_ms,
        traceparent=command.traceparent)
    assert sid not in execution.activities and command.activity_id not in execution.activity_ids
    execution.activities[sid] = activity
    execution.activity_ids[command.activity_id] = sid
    if command.schedule_to_start_timeout_ms is not None:
        do_arm(state, changes, (execution.run_id, TimerKind.ACTIVITY_SCHEDULE_TO_START, sid),
               now_ms + command.schedule_to_start_timeout_ms)
    if command.schedule_to_close_timeout_ms is not None:
        do_arm(state, changes, (execution.run_id, TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE, sid),
               now_ms + command.schedule_to_close_timeout_ms)
    changes.effects.append(dispatch_activity_task(execution, activity))
    return activity


def _do_cancel_activity(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                        completed_id: int, command: RequestCancelActivityTask) -> None:
    """A running attempt learns of the request through its heartbeat; any other is canceled
    at once (Temporal: ActivityTaskCancelRequested then ActivityTaskCanceled)."""
    sid = command.scheduled_event_id
    activity = execution.activities[sid]
    assert activity.cancel_requested_event_id == 0, "validated: not requested twice"
    requested = do_append(execution, changes, now_ms, ActivityTaskCancelRequestedEventAttributes(
        scheduled_event_id=sid, workflow_task_completed_event_id=completed_id))
    if activity.phase == "started":
        activity.cancel_requested_event_id = requested.event_id
        return
    do_append(execution, changes, now_ms, ActivityTaskCanceledEventAttributes(
        scheduled_event_id=sid, started_event_id=0,
        latest_cancel_requested_event_id=requested.event_id))
    do_remove_activity(state, execution, activity)
    assert not any(key[2] == sid and key[0] == execution.run_id for key in state.timers
                   if key[1].startswith("activity"))


def do_remove_activity(state: ShardState, execution: Execution, activity: ActivityState) -> None:
    sid = activity.scheduled_event_id
    do_disarm_activity(state, execution.run_id, sid)
    del execution.activities[sid]
    del execution.activity_ids[activity.activity_id]
    assert sid not in execution.activities


def _do_continue_as_new(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                        completed_id: int, command: ContinueAsNewWorkflowExecution,
                        new_run_id: str) -> None:
    started = run_history.event(state.archive, execution, 1).attributes
    assert isinstance(started, WorkflowExecutionStartedEventAttributes), started
    spec = RunSpec(
        namespace=execution.namespace, workflow_id=execution.workflow_id, run_id=new_run_id,
        workflow_type=command.workflow_type or execution.workflow_type,
        task_queue=command.task_queue or execution.task_queue, input=command.input,
        request_id="", task_timeout_ms=command.task_timeout_ms or execution.task_timeout_ms,
        run_timeout_ms=command.run_timeout_ms or execution.run_timeout_ms,
        execution_timeout_ms=execution.execution_timeout_ms,
        execution_expire_ms=execution.execution_expire_ms,
        first_execution_run_id=execution.first_execution_run_id,
        continued_execution_run_id=execution.run_id,
        # Carried over, as Temporal does (a new chain of attempts starts at 1):
        search_attributes=execution.search_attributes, retry_policy=execution.retry_policy,
        traceparent=started.traceparent)  # the next run stays in the starter's trace
    do_close_run(state, execution, changes, now_ms, (
        WorkflowStatus.CONTINUED_AS_NEW, WorkflowExecutionContinuedAsNewEventAttributes(
            new_execution_run_id=new_run_id, workflow_type=spec.workflow_type,
            task_queue=spec.task_queue, input=spec.input, run_timeout_ms=spec.run_timeout_ms,
            task_timeout_ms=spec.task_timeout_ms,
            workflow_task_completed_event_id=completed_id)))
    new_run = do_start_run(state, changes, spec, now_ms)
    new_run.parent = execution.parent  # a child's chain tells its parent when it ends
    assert new_run.is_open and not execution.is_open


