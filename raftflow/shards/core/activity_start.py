"""Starting an activity attempt for a worker, shared by the poll hand-out and eager starts.

Theory of operation. An attempt goes from SCHEDULED to STARTED when a worker takes it: either
through `RecordActivityTaskStarted` (a poll) or, eagerly, inside the workflow task completion
that scheduled it (the completing worker asked to run it itself). Both write no history (as in
Temporal, ActivityTaskStarted is written when the activity closes), stop the schedule-to-start
timer and arm start-to-close and heartbeat timers, so the two paths cannot differ. An eager
start drops the dispatch its own command made, so pollers are never offered the attempt.
"""

from __future__ import annotations

from raftflow.protocol.commands import TaskKind, TaskToken
from raftflow.protocol.results import ActivityTaskInfo
from raftflow.shards.core.state import (
    ActivityPhase,
    ActivityState,
    Execution,
    ShardState,
    TimerKind,
)
from raftflow.shards.core.writes import (
    Changes,
    dispatch_activity_task,
    do_arm,
    do_disarm,
    drop_dispatch,
)


def activity_info(execution: Execution, activity: ActivityState) -> ActivityTaskInfo:
    assert activity.phase is ActivityPhase.STARTED, activity.phase
    assert activity.scheduled_event_id in execution.activities, activity.scheduled_event_id
    token = TaskToken(namespace=execution.namespace, workflow_id=execution.workflow_id,
                      run_id=execution.run_id, scheduled_event_id=activity.scheduled_event_id,
                      attempt=activity.attempt, kind=TaskKind.ACTIVITY)
    return ActivityTaskInfo(
        token=token, namespace=execution.namespace, workflow_id=execution.workflow_id,
        run_id=execution.run_id, workflow_type=execution.workflow_type,
        activity_id=activity.activity_id, activity_type=activity.activity_type,
        task_queue=activity.task_queue, input=activity.input, attempt=activity.attempt,
        heartbeat_details=activity.heartbeat_details, scheduled_time_ms=activity.scheduled_time_ms,
        current_attempt_scheduled_time_ms=activity.attempt_scheduled_time_ms,
        started_time_ms=activity.started_time_ms,
        schedule_to_close_timeout_ms=activity.schedule_to_close_timeout_ms,
        start_to_close_timeout_ms=activity.start_to_close_timeout_ms,
        heartbeat_timeout_ms=activity.heartbeat_timeout_ms, traceparent=activity.traceparent)


def do_start_activity(state: ShardState, execution: Execution, activity: ActivityState,
                      changes: Changes, now_ms: int, worker: tuple[str, str]) -> ActivityTaskInfo:
    """Give the scheduled attempt to a worker (request id, identity) and arm its timers; a
    dispatch of it by this same command (an eager start) is dropped."""
    request_id, identity = worker
    assert execution.is_open and activity.phase is ActivityPhase.SCHEDULED, activity.phase
    drop_dispatch(changes, dispatch_activity_task(execution, activity))
    run_id, sid = execution.run_id, activity.scheduled_event_id
    activity.phase = ActivityPhase.STARTED
    activity.started_time_ms = now_ms
    activity.request_id = request_id
    activity.identity = identity
    do_disarm(state, (run_id, TimerKind.ACTIVITY_SCHEDULE_TO_START, sid))
    do_arm(state, changes, (run_id, TimerKind.ACTIVITY_START_TO_CLOSE, sid),
           now_ms + activity.start_to_close_timeout_ms)
    if activity.heartbeat_timeout_ms is not None:
        do_arm(state, changes, (run_id, TimerKind.ACTIVITY_HEARTBEAT, sid),
               now_ms + activity.heartbeat_timeout_ms)
    assert (run_id, TimerKind.ACTIVITY_START_TO_CLOSE, sid) in state.timers
    return activity_info(execution, activity)
