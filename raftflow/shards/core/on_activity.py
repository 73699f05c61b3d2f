"""Activity task lifecycle: hand-out, heartbeat, completion, failure with server-side retry.

Theory of operation. An activity is pending from ActivityTaskScheduled until it closes. Each
attempt is SCHEDULED (dispatched), then STARTED (a worker holds it), and on a retryable failure
or timeout goes to BACKOFF until its retry timer fires and it is dispatched again with
attempt+1. As in Temporal, retries write no history: ActivityTaskStarted is written only when
the activity closes, with the final attempt, immediately before its closing event
(Completed / Failed / TimedOut / Canceled). A token that does not name the current started
attempt is stale and changes nothing (I3).
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    Failure,
    RecordActivityTaskHeartbeat,
    RecordActivityTaskStarted,
    RespondActivityTaskCanceled,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    TaskKind,
    TaskToken,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    ActivityTaskCanceledEventAttributes,
    ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes,
    ActivityTaskStartedEventAttributes,
    EventAttributes,
)
from raftflow.protocol.results import (
    ActivityTaskCompletedResult,
    ActivityTaskStartedResult,
    HeartbeatResult,
    Rejected,
    WorkflowTaskInfo,
)
from raftflow.shards.core import retry, validate
from raftflow.shards.core.activity_start import activity_info, do_start_activity
from raftflow.shards.core.on_folded_task import do_folded_task, fold_time_ms
from raftflow.shards.core.on_task_completed import do_remove_activity
from raftflow.shards.core.on_workflow_task import do_start_workflow_task
from raftflow.shards.core.output import Output
from raftflow.shards.core.retried_completions import (
    eager_request_id,
    result_of_retried_folded_completion,
    workflow_task_of_retried_activity_completion,
)
from raftflow.shards.core.state import (
    ActivityPhase,
    ActivityState,
    Execution,
    ShardState,
    TimerKind,
)
from raftflow.shards.core.writes import (
    ActivityClosedAttributes,
    Changes,
    do_arm,
    do_deliver,
    do_disarm,
)

# Events an activity's close writes: ActivityTaskStarted, the closing event, and possibly a
# WorkflowTaskScheduled to deliver them.
_CLOSE_EVENTS = 3


def check_activity_token(state: ShardState,
                         token: TaskToken) -> tuple[Execution, ActivityState] | Rejected:
    """The open run and started activity attempt a token names, or stale_task."""
    if token.kind is not TaskKind.ACTIVITY:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field="token.kind",
                        message="not an activity task token")
    execution = state.find_run(token.run_id)
    if execution is None or execution.key != (token.namespace, token.workflow_id):
        return validate.stale(f"run {token.run_id} unknown")
    activity = execution.activities.get(token.scheduled_event_id)
    if not execution.is_open or activity is None:
        return validate.stale(f"no pending activity {token.scheduled_event_id}")
    assert activity.scheduled_event_id == token.scheduled_event_id
    if activity.attempt != token.attempt or activity.phase is not ActivityPhase.STARTED:
        return validate.stale(f"attempt {token.attempt} of activity {token.scheduled_event_id} "
                              f"is not running (attempt {activity.attempt}, {activity.phase})")
    assert state.open_runs[execution.key] == execution.run_id
    return execution, activity


def on_record_activity_task_started(state: ShardState,
                                    command: RecordActivityTaskStarted) -> Output:
    execution = state.find_run(command.run_id)
    if execution is None or execution.key != (command.namespace, command.workflow_id):
        return Output(result=validate.not_found(f"run {command.run_id} not found"))
    activity = execution.activities.get(command.scheduled_event_id)
    if not execution.is_open or activity is None or activity.attempt != command.attempt:
        return Output(result=validate.stale("no such pending activity attempt"))
    if activity.phase is ActivityPhase.STARTED and activity.request_id == command.request_id:
        return Output(result=ActivityTaskStartedResult(task=activity_info(execution, activity)))
    if activity.phase is not ActivityPhase.SCHEDULED:
        return Output(result=validate.stale(f"activity attempt is {activity.phase.value}"))
    rejected = validate.check_id("request_id", command.request_id)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    info = do_start_activity(state, execution, activity, changes, command.now_ms,
                             (command.request_id, command.identity))
    return Output.of(ActivityTaskStartedResult(task=info), changes)


def started_attributes(activity: ActivityState) -> ActivityTaskStartedEventAttributes:
    return ActivityTaskStartedEventAttributes(
        scheduled_event_id=activity.scheduled_event_id, identity=activity.identity,
        request_id=activity.request_id, attempt=activity.attempt,
        last_failure=activity.last_failure)


def do_close_activity(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                      activity: ActivityState, closing: ActivityClosedAttributes) -> None:
    """Remove the activity and deliver its closing event, preceded by ActivityTaskStarted
    when an attempt was running (its id fills the closing event's started_event_id)."""
    assert closing.started_event_id == 0, "filled in here"
    deliveries: tuple[EventAttributes, ...]
    if activity.phase is ActivityPhase.STARTED:
        # The close's started_event_id is filled when the pair is written (writes._resolve).
        deliveries = (started_attributes(activity), closing)
    else:
        deliveries = (closing,)
    assert execution.is_open and activity.scheduled_event_id in execution.activities
    do_remove_activity(state, execution, activity)
    do_deliver(state, execution, changes, now_ms, deliveries)
    assert activity.scheduled_event_id not in execution.activities


def do_retry_activity(state: ShardState, changes: Changes, execution: Execution,
                      activity: ActivityState, retry_at_ms: int, failure: Failure) -> None:
    """End the running attempt and wait for the retry timer (no history event)."""
    assert activity.phase is ActivityPhase.STARTED and retry_at_ms > activity.started_time_ms
    run_id, sid = execution.run_id, activity.scheduled_event_id
    do_disarm(state, (run_id, TimerKind.ACTIVITY_START_TO_CLOSE, sid))
    do_disarm(state, (run_id, TimerKind.ACTIVITY_HEARTBEAT, sid))
    activity.phase = ActivityPhase.BACKOFF
    activity.attempt += 1
    activity.last_failure = failure
    activity.request_id = ""
    activity.identity = ""
    do_arm(state, changes, (run_id, TimerKind.ACTIVITY_RETRY, sid), retry_at_ms)


def on_respond_activity_task_completed(state: ShardState,
                                       command: RespondActivityTaskCompleted) -> Output:
    checked = check_activity_token(state, command.token)
    if isinstance(checked, Rejected):
        again = workflow_task_of_retried_activity_completion(state, command)
        if again is not None:
            return Output(result=ActivityTaskCompletedResult(workflow_task=again))
        folded = result_of_retried_folded_completion(state, command)
        return Output(result=checked if folded is None else folded)
    execution, activity = checked
    rejected = validate.check_payload("result", command.result)
    rejected = rejected or validate.check_optional_id("eager_task_queue",
                                                      command.eager_task_queue)
    rejected = rejected or validate.check_optional_id("sticky_queue", command.sticky_queue)
    rejected = rejected or validate.history_room(execution.history_length,
                                                 len(execution.buffered), _CLOSE_EVENTS)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    assert activity.phase is ActivityPhase.STARTED
    task_was_pending = execution.workflow_task is not None
    # With the next workflow task completed in advance (on_folded_task.py), the worker's time.
    folded_ms = fold_time_ms(execution, command)
    now_ms = command.now_ms if folded_ms is None else folded_ms
    do_close_activity(state, execution, changes, now_ms, activity,
                      ActivityTaskCompletedEventAttributes(
                          scheduled_event_id=activity.scheduled_event_id, result=command.result,
                          identity=command.identity))
    assert execution.workflow_task is not None, "the completion must reach the workflow"
    eager = None if task_was_pending else _try_start_eager_workflow_task(
        state, execution, changes, command, now_ms)
    if eager is not None and folded_ms is not None:
        return Output.of(do_folded_task(state, changes, command, eager, folded_ms), changes)
    result = validate.ack() if eager is None else ActivityTaskCompletedResult(workflow_task=eager)
    return Output.of(result, changes)


def _try_start_eager_workflow_task(state: ShardState, execution: Execution, changes: Changes,
                                   command: RespondActivityTaskCompleted, now_ms: int,
                                   ) -> WorkflowTaskInfo | None:
    """Start the workflow task this completion just scheduled for the completing worker, when
    that worker runs workflows of the run's queue (it asked with `eager_task_queue`). The
    caller leaves a task scheduled earlier to the pollers it was dispatched to."""
    task = execution.workflow_task
    assert task is not None and task.started_event_id == 0, "scheduled by this completion"
    if not command.eager_task_queue or command.eager_task_queue != execution.task_queue:
        return None
    if validate.history_room(execution.history_length, len(execution.buffered), 1) is not None:
        return None  # no room for WorkflowTaskStarted: the task waits for a poller (who fails)
    return do_start_workflow_task(state, execution, changes, now_ms, (
        eager_request_id(command.token.scheduled_event_id, command.token.attempt),
        command.identity, command.sticky_queue))


def on_respond_activity_task_failed(state: ShardState,
                                    command: RespondActivityTaskFailed) -> Output:
    checked = check_activity_token(state, command.token)
    if isinstance(checked, Rejected):
        return Output(result=checked)
    execution, activity = checked
    rejected = validate.check_failure("failure", command.failure)
    retry_at_ms = retry.next_retry_at_ms(activity, command.failure, command.now_ms)
    if rejected is None and retry_at_ms is None:
        rejected = validate.history_room(execution.history_length, len(execution.buffered),
                                         _CLOSE_EVENTS)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    assert activity.phase is ActivityPhase.STARTED
    if retry_at_ms is not None:
        do_retry_activity(state, changes, execution, activity, retry_at_ms, command.failure)
        assert not changes.events, "a retry writes no history"
        assert (execution.run_id, TimerKind.ACTIVITY_RETRY, activity.scheduled_event_id) in (
            state.timers)
        return Output.of(validate.ack(), changes)
    do_close_activity(state, execution, changes, command.now_ms, activity,
                      ActivityTaskFailedEventAttributes(
                          scheduled_event_id=activity.scheduled_event_id,
                          failure=command.failure, identity=command.identity,
                          retry_state=retry.retry_state(activity, command.failure)))
    return Output.of(validate.ack(), changes)


def on_respond_activity_task_canceled(state: ShardState,
                                      command: RespondActivityTaskCanceled) -> Output:
    checked = check_activity_token(state, command.token)
    if isinstance(checked, Rejected):
        return Output(result=checked)
    execution, activity = checked
    rejected = validate.check_payload("details", command.details)
    rejected = rejected or validate.history_room(execution.history_length,
                                                 len(execution.buffered), _CLOSE_EVENTS)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    assert activity.phase is ActivityPhase.STARTED
    do_close_activity(state, execution, changes, command.now_ms, activity,
                      ActivityTaskCanceledEventAttributes(
                          scheduled_event_id=activity.scheduled_event_id,
                          latest_cancel_requested_event_id=activity.cancel_requested_event_id,
                          details=command.details, identity=command.identity))
    assert activity.scheduled_event_id not in execution.activities
    return Output.of(validate.ack(), changes)


def on_record_activity_task_heartbeat(state: ShardState,
                                      command: RecordActivityTaskHeartbeat) -> Output:
    checked = check_activity_token(state, command.token)
    if isinstance(checked, Rejected):
        return Output(result=checked)
    execution, activity = checked
    rejected = validate.check_payload("details", command.details)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    assert activity.phase is ActivityPhase.STARTED and execution.is_open
    activity.heartbeat_details = command.details
    if activity.heartbeat_timeout_ms is not None:
        do_arm(state, changes, (execution.run_id, TimerKind.ACTIVITY_HEARTBEAT,
                                activity.scheduled_event_id),
               command.now_ms + activity.heartbeat_timeout_ms)
    result = HeartbeatResult(cancel_requested=activity.cancel_requested_event_id > 0)
    assert not changes.events, "a heartbeat writes no history"
    return Output.of(result, changes)
