"""Answers to task completions retried after their first attempt committed.

A worker retries a completion when it did not get the answer: the leader moved mid-call, or a
slow link outlasted the HTTP timeout. If the first attempt committed, the token is stale by
then and the retry is refused as `stale_task`, which is right for the completion itself (it is
applied once) but loses what the first answer carried: a task the same commit started eagerly
for this worker. That task then sits started, with nobody running it, until its start-to-close
timeout (found by the chaos harness: 10 s stalls of workflows after `loss` faults).

These functions find such a task from state alone and return it again, as the first answer
did. An eager task's request id names the exact task attempt whose completion started it
(`eager_request_id`), and its identity must be the retrying worker's, so no other completion
can claim it. They change nothing; they only read.
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    StartWorkflow,
    TaskKind,
    TaskToken,
)
from raftflow.protocol.events import (
    ActivityTaskScheduledEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskScheduledEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from raftflow.protocol.results import (
    ActivityTaskCompletedResult,
    ActivityTaskInfo,
    WorkflowTaskInfo,
)
from raftflow.shards.core import run_history
from raftflow.shards.core.activity_start import activity_info
from raftflow.shards.core.archive import Archive
from raftflow.shards.core.on_workflow_task import task_info
from raftflow.shards.core.state import ActivityPhase, ActivityState, Execution, ShardState


def eager_request_id(scheduled_event_id: int, attempt: int) -> str:
    """The request id of a task started eagerly. For an eager workflow task the ids are those
    of the activity attempt whose completion started it; for an eager activity, its own (only
    attempt 1 is ever started eagerly)."""
    return f"eager-{scheduled_event_id}-{attempt}"


def eager_start_request_id(start_request_id: str) -> str:
    """The request id of the first workflow task an eager start started."""
    return f"eager-start-{start_request_id}"


def workflow_task_of_retried_eager_start(state: ShardState, command: StartWorkflow,
                                         run_id: str) -> WorkflowTaskInfo | None:
    """The first workflow task the committed first attempt of this eager start started for
    its caller's worker, if it is still started (the same 10 s stall as above, found by a
    drain benchmark: the start's answer was lost to a leadership hand-off, and the retry got
    the remembered answer, which holds no task)."""
    execution = state.executions.get(run_id) if command.eager_task_queue else None
    if (execution is None or not execution.is_open
            or execution.key != (command.namespace, command.workflow_id)):
        return None
    task = execution.workflow_task
    if (task is None or task.started_event_id == 0
            or command.eager_task_queue != execution.task_queue
            or task.request_id != eager_start_request_id(command.request_id)
            or task.identity != command.eager_identity):
        return None
    return task_info(state, execution, task)


def _open_run(state: ShardState, token: TaskToken) -> Execution | None:
    execution = state.executions.get(token.run_id)
    if (execution is None or not execution.is_open
            or execution.key != (token.namespace, token.workflow_id)):
        return None
    return execution


def workflow_task_of_retried_activity_completion(
        state: ShardState, command: RespondActivityTaskCompleted) -> WorkflowTaskInfo | None:
    """The workflow task the committed first attempt of this completion started eagerly, if
    it is still started."""
    execution = _open_run(state, command.token) if command.eager_task_queue else None
    task = None if execution is None else execution.workflow_task
    # The first attempt started the task only if it asked with the run's queue: a retry
    # carries the same body, so a request naming another queue is not one.
    if (execution is None or task is None or task.started_event_id == 0
            or command.eager_task_queue != execution.task_queue
            or task.request_id != eager_request_id(command.token.scheduled_event_id,
                                                   command.token.attempt)
            or task.identity != command.identity):
        return None
    return task_info(state, execution, task, command.sticky_queue)


def result_of_retried_folded_completion(
        state: ShardState, command: RespondActivityTaskCompleted,
) -> ActivityTaskCompletedResult | None:
    """The answer of this activity completion's committed first attempt if that attempt also
    completed the workflow task it carried (on_folded_task.py): that task was scheduled and
    started right after `after_event_id`, for this worker, by this activity attempt."""
    folded = command.workflow_task_completion
    execution = _open_run(state, command.token) if folded is not None else None
    if execution is None or folded is None:
        return None
    scheduled_id = folded.after_event_id + 3
    if not scheduled_id + 2 <= execution.history_length:
        return None
    started, completed = (e.attributes for e in run_history.events(
        state.archive, execution, scheduled_id + 1, scheduled_id + 2))
    # Started for this worker by this activity attempt and completed right after: the fold.
    # (Had the fold been refused, the answer would have handed this worker the task; a worker
    # retries only a completion whose answer it never got.)
    if (not isinstance(started, WorkflowTaskStartedEventAttributes)
            or started.scheduled_event_id != scheduled_id
            or started.request_id != eager_request_id(command.token.scheduled_event_id,
                                                      command.token.attempt)
            or started.identity != command.identity
            or not isinstance(completed, WorkflowTaskCompletedEventAttributes)
            or completed.scheduled_event_id != scheduled_id):
        return None
    activities = activities_of_retried_workflow_task_completion(state, RespondWorkflowTaskCompleted(
        now_ms=command.now_ms, identity=command.identity,
        token=TaskToken(namespace=execution.namespace, workflow_id=execution.workflow_id,
                        run_id=execution.run_id, scheduled_event_id=scheduled_id, attempt=1,
                        kind=TaskKind.WORKFLOW),
        eager_task_queue=command.eager_task_queue,
        eager_activities_max=folded.eager_activities_max))
    return ActivityTaskCompletedResult(workflow_task_completed=True, activity_tasks=activities or ())


def activities_of_retried_workflow_task_completion(
        state: ShardState, command: RespondWorkflowTaskCompleted,
) -> tuple[ActivityTaskInfo, ...] | None:
    """The activities the committed first attempt of this workflow task completion started
    eagerly and that are still running that first attempt; None if there are none."""
    token = command.token
    execution = _open_run(state, token) if command.eager_task_queue else None
    if execution is None or not 1 <= token.scheduled_event_id <= execution.history_length:
        return None
    archive = state.archive
    scheduled = run_history.event(archive, execution, token.scheduled_event_id).attributes
    if (not isinstance(scheduled, WorkflowTaskScheduledEventAttributes)
            or scheduled.attempt != token.attempt):
        return None
    # The task's completion comes after its scheduling: only the events from there are read.
    completed_id = next((e.event_id for e in run_history.events(
                             archive, execution, token.scheduled_event_id,
                             execution.history_length)
                         if isinstance(e.attributes, WorkflowTaskCompletedEventAttributes)
                         and e.attributes.scheduled_event_id == token.scheduled_event_id),
                        None)
    if completed_id is None:
        return None
    started = [
        activity for activity in execution.activities.values()
        if activity.phase is ActivityPhase.STARTED and activity.identity == command.identity
        and activity.task_queue == command.eager_task_queue  # the first attempt's queue only
        and activity.request_id == eager_request_id(activity.scheduled_event_id, activity.attempt)
        and _scheduled_by(archive, execution, activity) == completed_id]
    if not started or len(started) > command.eager_activities_max:
        return None  # a retry carries the first attempt's body; anything else is not one
    return tuple(activity_info(execution, a)
                 for a in sorted(started, key=lambda a: a.scheduled_event_id))


def _scheduled_by(archive: Archive, execution: Execution, activity: ActivityState) -> int:
    """The WorkflowTaskCompleted event id whose commands scheduled `activity`."""
    scheduled = run_history.event(archive, execution, activity.scheduled_event_id).attributes
    assert isinstance(scheduled, ActivityTaskScheduledEventAttributes), scheduled
    return scheduled.workflow_task_completed_event_id
