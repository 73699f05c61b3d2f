"""Workflow task lifecycle: hand-out (RecordWorkflowTaskStarted), failure, timeout.

Theory of operation. A run has at most one workflow task, scheduled then started. Handing it to
a worker is a committed command: it writes WorkflowTaskStarted and arms the start-to-close
timer. The answer names the attempt in its token; a completion or failure that does not name
the current started attempt of the current open run is stale and changes nothing (I3). A retry
of the hand-out with the same request id gets the same task again (Temporal's behaviour).
When a task ends (completed, failed, timed out) the events buffered meanwhile are written and,
if there were any, a new task is scheduled so the workflow sees them.
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    RecordWorkflowTaskStarted,
    RespondWorkflowTaskFailed,
    TaskKind,
    TaskToken,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    TimeoutType,
    WorkflowTaskFailedEventAttributes,
    WorkflowTaskStartedEventAttributes,
    WorkflowTaskTimedOutEventAttributes,
)
from raftflow.protocol.results import (
    Rejected,
    WorkflowTaskInfo,
    WorkflowTaskStartedResult,
)
from raftflow.shards.core import run_history, validate
from raftflow.shards.core.on_update import delivered_updates
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import Execution, ShardState, TimerKind, WorkflowTaskState
from raftflow.shards.core.writes import (
    Changes,
    dispatch_workflow_task,
    do_append,
    do_arm,
    do_disarm,
    do_flush_buffered,
    do_schedule_workflow_task,
    drop_dispatch,
)


def check_workflow_token(state: ShardState,
                         token: TaskToken) -> tuple[Execution, WorkflowTaskState] | Rejected:
    """The open run and started workflow task a token names, or stale_task."""
    execution = state.find_run(token.run_id)
    if token.kind is not TaskKind.WORKFLOW:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field="token.kind",
                        message="not a workflow task token")
    if execution is None or execution.key != (token.namespace, token.workflow_id):
        return validate.stale(f"run {token.run_id} unknown")
    task = execution.workflow_task
    if not execution.is_open or task is None or task.started_event_id == 0:
        return validate.stale(f"run {token.run_id} has no started workflow task")
    if task.scheduled_event_id != token.scheduled_event_id or task.attempt != token.attempt:
        return validate.stale(f"workflow task {token.scheduled_event_id}/{token.attempt} is not "
                              f"the current one ({task.scheduled_event_id}/{task.attempt})")
    assert state.open_runs[execution.key] == execution.run_id
    assert task.started_event_id == execution.history_length, "started task sees all history"
    return execution, task


def task_info(state: ShardState, execution: Execution, task: WorkflowTaskState,
              sticky_queue: str = "") -> WorkflowTaskInfo:
    """The task for a worker; the sticky worker of the run gets only the events it has not
    seen (after the previous task's WorkflowTaskStarted), any other the whole history (its
    oldest events read from the archive once the run has spilled them)."""
    assert task.started_event_id > 0, task
    assert task.started_event_id == execution.history_length, "started task sees all history"
    assert execution.history[-1].event_type == "WorkflowTaskStarted"
    sticky = bool(sticky_queue) and sticky_queue == execution.sticky_queue
    first_index = execution.previous_started_event_id if sticky else 0
    assert 0 <= first_index < task.started_event_id, (first_index, task.started_event_id)
    token = TaskToken(namespace=execution.namespace, workflow_id=execution.workflow_id,
                      run_id=execution.run_id, scheduled_event_id=task.scheduled_event_id,
                      attempt=task.attempt, kind=TaskKind.WORKFLOW)
    return WorkflowTaskInfo(
        token=token, namespace=execution.namespace, workflow_id=execution.workflow_id,
        run_id=execution.run_id, workflow_type=execution.workflow_type,
        task_queue=execution.task_queue, attempt=task.attempt,
        scheduled_event_id=task.scheduled_event_id, started_event_id=task.started_event_id,
        previous_started_event_id=execution.previous_started_event_id,
        history=tuple(run_history.events(state.archive, execution, first_index + 1,
                                         task.started_event_id)),
        updates=delivered_updates(execution, task))


def on_record_workflow_task_started(state: ShardState,
                                    command: RecordWorkflowTaskStarted) -> Output:
    execution = state.find_run(command.run_id)
    if execution is None or execution.key != (command.namespace, command.workflow_id):
        return Output(result=validate.not_found(f"run {command.run_id} not found"))
    task = execution.workflow_task
    if not execution.is_open or task is None:
        return Output(result=validate.stale(f"run {command.run_id} has no workflow task"))
    if task.scheduled_event_id != command.scheduled_event_id:
        return Output(result=validate.stale(f"workflow task {command.scheduled_event_id} is "
                                            f"not the scheduled one"))
    if task.started_event_id > 0:
        if task.request_id == command.request_id:  # a retried hand-out: same task again
            return Output(result=WorkflowTaskStartedResult(
                task=task_info(state, execution, task, command.sticky_queue)))
        return Output(result=validate.stale("workflow task already started"))
    rejected = validate.check_id("request_id", command.request_id)
    rejected = rejected or validate.check_optional_id("sticky_queue", command.sticky_queue)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    info = do_start_workflow_task(state, execution, changes, command.now_ms, (
        command.request_id, command.identity, command.sticky_queue))
    return Output.of(WorkflowTaskStartedResult(task=info), changes)


def do_start_workflow_task(state: ShardState, execution: Execution, changes: Changes,
                           now_ms: int, worker: tuple[str, str, str]) -> WorkflowTaskInfo:
    """Hand the scheduled task to a worker (request id, identity, sticky queue): write
    WorkflowTaskStarted and arm its start-to-close timer; a dispatch of the task by this same
    command (an eager start) is dropped."""
    request_id, identity, sticky_queue = worker
    task = execution.workflow_task
    assert task is not None and task.started_event_id == 0 and not execution.buffered
    drop_dispatch(changes, dispatch_workflow_task(execution))
    event = do_append(execution, changes, now_ms, WorkflowTaskStartedEventAttributes(
        scheduled_event_id=task.scheduled_event_id, identity=identity, request_id=request_id))
    task.started_event_id = event.event_id
    task.started_time_ms = now_ms
    task.request_id = request_id
    task.identity = identity
    do_arm(state, changes, (execution.run_id, TimerKind.WORKFLOW_TASK_START_TO_CLOSE,
                            task.scheduled_event_id), now_ms + execution.task_timeout_ms)
    info = task_info(state, execution, task, sticky_queue)
    assert execution.task_started() and info.history[-1].event_id == event.event_id
    return info


def do_end_workflow_task(state: ShardState, execution: Execution, changes: Changes) -> None:
    """Forget the current task (its closing event is already written) and its timer."""
    task = execution.workflow_task
    assert task is not None and task.started_event_id > 0, execution.run_id
    do_disarm(state, (execution.run_id, TimerKind.WORKFLOW_TASK_START_TO_CLOSE,
                      task.scheduled_event_id))
    execution.workflow_task = None
    assert not execution.task_started()


def do_retry_workflow_task(state: ShardState, execution: Execution, changes: Changes,
                           now_ms: int, *, attempt: int) -> None:
    """After a failed or timed-out task: write buffered events, schedule the next attempt."""
    assert execution.workflow_task is None and execution.is_open, execution.run_id
    # The worker that held the run may be gone or ahead of history: the next task goes to
    # whoever polls, with the whole history (Temporal resets stickiness the same way).
    execution.sticky_queue = ""
    do_flush_buffered(execution, changes)
    do_schedule_workflow_task(state, execution, changes, now_ms, attempt=attempt)
    assert execution.workflow_task is not None


def on_respond_workflow_task_failed(state: ShardState,
                                    command: RespondWorkflowTaskFailed) -> Output:
    checked = check_workflow_token(state, command.token)
    if isinstance(checked, Rejected):
        return Output(result=checked)
    execution, task = checked
    rejected = validate.check_payload("failure", command.failure)
    rejected = rejected or validate.history_room(execution.history_length,
                                                 len(execution.buffered), 2)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    assert execution.workflow_task is task
    do_append(execution, changes, command.now_ms, WorkflowTaskFailedEventAttributes(
        scheduled_event_id=task.scheduled_event_id, started_event_id=task.started_event_id,
        cause=command.cause, failure=command.failure, identity=command.identity))
    do_end_workflow_task(state, execution, changes)
    do_retry_workflow_task(state, execution, changes, command.now_ms, attempt=task.attempt + 1)
    assert execution.workflow_task is not None and execution.workflow_task.attempt > 1
    return Output.of(validate.ack(), changes)


def on_workflow_task_timeout(state: ShardState, execution: Execution, changes: Changes,
                             now_ms: int, scheduled_event_id: int) -> None:
    """The start-to-close timer of a started workflow task fired."""
    task = execution.workflow_task
    assert task is not None and task.scheduled_event_id == scheduled_event_id, execution.run_id
    assert task.started_event_id > 0, "the timer is armed only once the task started"
    do_append(execution, changes, now_ms, WorkflowTaskTimedOutEventAttributes(
        scheduled_event_id=task.scheduled_event_id, started_event_id=task.started_event_id,
        timeout_type=TimeoutType.START_TO_CLOSE))
    do_end_workflow_task(state, execution, changes)
    do_retry_workflow_task(state, execution, changes, now_ms, attempt=task.attempt + 1)
