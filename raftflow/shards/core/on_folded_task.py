"""An activity's completion carrying the workflow task it makes, completed in advance: one
commit instead of two.

Why. A step of a workflow costs two commits: the activity's completion (which schedules and,
eagerly, starts the run's next workflow task for the completing worker) and that task's
completion. A worker that holds the run in its sticky cache can run the task before it answers
the activity: it knows the events the completion will write (ActivityTaskStarted,
ActivityTaskCompleted, WorkflowTaskScheduled, WorkflowTaskStarted) and feeds them to its
replayed run. Its completion then carries the task's commands (`FoldedWorkflowTask`), and
both are applied in one command.

When. Only if the history is exactly what the worker replayed: no workflow task scheduled or
running (so no update waits for one), nothing buffered, the run's last event is
`after_event_id`, the completion asks for the task on the run's queue (eager), and the
worker's clock reading `workflow_time_ms` lies between the last event's time and the proposer's now. That time
is then the time of every event and timer of the command, so the code, when it is replayed from
this history, sees the `now` it saw when it ran. Otherwise the completion is applied alone, at
the proposer's time, and answers as before (with the started task for the worker, who runs it
from history: its speculative run is dropped). Commands the task refuses leave the started task
with the worker in the same way; they are refused again when it runs it.
"""

from __future__ import annotations

from raftflow.protocol.commands import RespondActivityTaskCompleted, RespondWorkflowTaskCompleted
from raftflow.protocol.results import (
    ActivityTaskCompletedResult,
    Rejected,
    WorkflowTaskCompletedResult,
    WorkflowTaskInfo,
)
from raftflow.shards.core.on_task_completed import on_respond_workflow_task_completed
from raftflow.shards.core.state import Execution, ShardState
from raftflow.shards.core.writes import Changes

# The events the completion writes before the task's own: ActivityTaskStarted,
# ActivityTaskCompleted, WorkflowTaskScheduled, WorkflowTaskStarted.
FOLDED_EVENTS_BEFORE_TASK = 4


def fold_time_ms(execution: Execution, command: RespondActivityTaskCompleted) -> int | None:
    """The time of the command's events if its folded task may be applied, else None. Read
    before anything is written (the module docstring's conditions)."""
    folded = command.workflow_task_completion
    if folded is None or execution.workflow_task is not None or execution.buffered:
        return None
    # An update not yet delivered always has a workflow task pending (an invariant,
    # on_update.update_problem), so it is refused above; accepted ones may be completed here.
    if execution.history_length != folded.after_event_id:
        return None
    if not command.eager_task_queue or command.eager_task_queue != execution.task_queue:
        return None
    last_time_ms = execution.history[-1].time_ms  # the in-memory tail holds the last event
    if not last_time_ms <= folded.workflow_time_ms <= command.now_ms:
        return None
    return folded.workflow_time_ms


def do_folded_task(state: ShardState, changes: Changes, command: RespondActivityTaskCompleted,
                   task: WorkflowTaskInfo, time_ms: int) -> ActivityTaskCompletedResult:
    """Complete `task` (started by this completion for its worker) with the worker's commands;
    if they are refused, the task stays started for the worker, as without a fold."""
    folded = command.workflow_task_completion
    assert folded is not None
    assert task.started_event_id == folded.after_event_id + FOLDED_EVENTS_BEFORE_TASK, (
        task.started_event_id, folded.after_event_id)
    output = on_respond_workflow_task_completed(state, RespondWorkflowTaskCompleted(
        now_ms=time_ms, token=task.token, commands=folded.commands, identity=command.identity,
        sticky_queue=command.sticky_queue, eager_task_queue=command.eager_task_queue,
        eager_activities_max=folded.eager_activities_max), into=changes)
    if isinstance(output.result, Rejected):
        assert not output.events, "a refused completion writes nothing (no events buffered)"
        return ActivityTaskCompletedResult(workflow_task=task)
    done = output.result
    if not isinstance(done, WorkflowTaskCompletedResult):
        return ActivityTaskCompletedResult(workflow_task_completed=True)
    return ActivityTaskCompletedResult(workflow_task_completed=True,
                                       activity_tasks=done.activity_tasks, events=done.events)
