"""Workflow updates in the shard core: admission, the worker's answers, completion, and the
read a waiting caller makes (protocol/updates.py tells the whole path).

Theory of operation. `RequestWorkflowUpdate` admits an update into the open run's `updates`
(state, not history), at most UPDATES_IN_FLIGHT_PER_RUN_MAX at a time, and schedules a workflow
task if the run has none; a request whose update id is in flight attaches to it, and one whose
update completed (or was rejected) gets the remembered outcome (request id memory, kind
"update", as signals use it). A workflow task carries the updates admitted before it started;
its completion must answer each of them (`WorkflowUpdateResponse`): a rejection writes nothing
and remembers the failure, an acceptance writes WorkflowExecutionUpdateAccepted right after
WorkflowTaskCompleted. `CompleteWorkflowUpdate` (a workflow command) must name an accepted
update; it writes WorkflowExecutionUpdateCompleted and remembers the outcome. An update
admitted while a task was started waits for the next task, scheduled when that one completes.
Everything is checked before anything is written (compute, then commit).
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    CompleteWorkflowUpdate,
    RespondWorkflowTaskCompleted,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    HistoryEvent,
)
from raftflow.protocol.events_updates import (
    WorkflowExecutionUpdateAcceptedEventAttributes,
    WorkflowExecutionUpdateCompletedEventAttributes,
)
from raftflow.protocol.results import Rejected
from raftflow.protocol.updates import (
    RequestWorkflowUpdate,
    UpdateStage,
    WorkflowUpdateRequest,
    WorkflowUpdateResult,
)
from raftflow.protocol.workflow_commands import Failure
from raftflow.shards.core import validate
from raftflow.shards.core.on_requests import resolve_run
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import Execution, RequestKey, ShardState, WorkflowTaskState
from raftflow.shards.core.update_state import UpdateState
from raftflow.shards.core.writes import Changes, do_append, do_remember, do_schedule_workflow_task

# Updates admitted or accepted and not completed, per run: beyond it a request gets 429-style
# limit_exceeded (Temporal bounds in-flight updates per workflow the same way).
UPDATES_IN_FLIGHT_PER_RUN_MAX = 10
REQUEST_KIND = "update"
UPDATE_NOT_ANSWERED = "UpdateNotAnswered"  # the failure type of an update a task left out


def update_key(namespace: str, workflow_id: str, update_id: str) -> RequestKey:
    return (REQUEST_KIND, namespace, workflow_id, update_id)


def _stage_of(execution: Execution, update: UpdateState) -> WorkflowUpdateResult:
    stage = UpdateStage.ACCEPTED if update.accepted else UpdateStage.ADMITTED
    return WorkflowUpdateResult(run_id=execution.run_id, update_id=update.update_id, stage=stage)


def on_request_workflow_update(state: ShardState, command: RequestWorkflowUpdate) -> Output:
    key = update_key(command.namespace, command.workflow_id, command.update_id)
    previous = state.archive.recall(key)
    if previous is not None:
        return Output(result=previous)
    rejected = (validate.check_ids(workflow_id=command.workflow_id, update_id=command.update_id,
                                   name=command.name)
                or validate.check_payload("input", command.input))
    if rejected is not None:
        return Output(result=rejected)
    target = resolve_run(state, command.namespace, command.workflow_id, command.run_id)
    if isinstance(target, Rejected):
        return Output(result=target)
    in_flight = target.updates.get(command.update_id)
    if in_flight is not None:  # the same update asked again: attach to it
        return Output(result=_stage_of(target, in_flight))
    if len(target.updates) >= UPDATES_IN_FLIGHT_PER_RUN_MAX:
        return Output(result=validate.limit_exceeded("UPDATES_IN_FLIGHT_PER_RUN_MAX",
                                                     UPDATES_IN_FLIGHT_PER_RUN_MAX))
    # A retried attempt waiting out its back-off gets its first task from the timer.
    schedules = target.workflow_task is None and not target.awaiting_backoff
    rejected = validate.history_room(target.history_length, len(target.buffered),
                                     1 if schedules else 0)
    if rejected is not None:
        return Output(result=rejected)
    changes = Changes()
    update = UpdateState(update_id=command.update_id, name=command.name, input=command.input,
                         admitted_at=target.history_length)
    target.updates[command.update_id] = update
    if schedules:
        do_schedule_workflow_task(state, target, changes, command.now_ms, attempt=1)
    assert target.workflow_task is not None or target.awaiting_backoff
    return Output.of(_stage_of(target, update), changes)


def delivered_updates(execution: Execution,
                      task: WorkflowTaskState) -> tuple[WorkflowUpdateRequest, ...]:
    """The updates the started workflow task `task` carries to its worker."""
    return tuple(WorkflowUpdateRequest(update_id=u.update_id, name=u.name, input=u.input)
                 for u in execution.updates.values() if u.delivered_by(task.started_event_id))


def check_update_completion(where: str, command: CompleteWorkflowUpdate) -> Rejected | None:
    """The shape of one CompleteWorkflowUpdate (whether its update is accepted is checked with
    the task's responses, `check_responses`)."""
    rejected = (validate.check_id(f"{where}.update_id", command.update_id)
                or validate.check_payload(f"{where}.result", command.result))
    if rejected is None and command.failure is not None:
        rejected = validate.check_failure(f"{where}.failure", command.failure)
    return rejected


def _invalid(field: str, message: str) -> Rejected:
    return Rejected(code=ErrorCode.INVALID_ARGUMENT, message=message, field=field)


def check_responses(execution: Execution, task: WorkflowTaskState,
                    command: RespondWorkflowTaskCompleted) -> tuple[int, Rejected | None]:
    """(Accepted events the completion writes, first refusal or None). An answer names an
    update the task carried, once (one left out is rejected: `do_responses`); a completion
    names an update accepted before or by this same answer, once."""
    carried = {u.update_id for u in delivered_updates(execution, task)}
    answered: set[str] = set()
    accepted = {u.update_id for u in execution.updates.values() if u.accepted}
    accepts = 0
    for index, response in enumerate(command.update_responses):
        where = f"update_responses[{index}]"
        if response.update_id not in carried or response.update_id in answered:
            return 0, _invalid(f"{where}.update_id", f"update {response.update_id!r} is not "
                               "one this workflow task carries, or is answered twice")
        answered.add(response.update_id)
        if response.rejection is None:
            accepts += 1
            accepted.add(response.update_id)
        else:
            rejected = validate.check_failure(f"{where}.rejection", response.rejection)
            if rejected is not None:
                return 0, rejected
    return accepts, _check_completions(command.commands, accepted)


def _check_completions(commands: tuple[WorkflowCommand, ...],
                       accepted: set[str]) -> Rejected | None:
    for index, workflow_command in enumerate(commands):
        if not isinstance(workflow_command, CompleteWorkflowUpdate):
            continue
        if workflow_command.update_id not in accepted:
            return _invalid(f"commands[{index}].update_id", f"update "
                            f"{workflow_command.update_id!r} is not accepted, or completed twice")
        accepted.discard(workflow_command.update_id)
    return None


def do_responses(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                 completed_id: int, task: WorkflowTaskState,
                 command: RespondWorkflowTaskCompleted) -> None:
    """Write the checked answers: WorkflowExecutionUpdateAccepted per acceptance, in order,
    right after WorkflowTaskCompleted; a rejection's failure is remembered, nothing written.
    An update the task carried and the answer left out (a worker that knows no updates) is
    rejected with UPDATE_NOT_ANSWERED, so it cannot hold the run's tasks forever."""
    answered = {r.update_id for r in command.update_responses}
    for request in delivered_updates(execution, task):
        if request.update_id not in answered:
            _do_settle(state, execution, execution.updates[request.update_id], now_ms,
                       failure=Failure(message=f"the workflow task did not answer update "
                                       f"{request.update_id} (does its worker support "
                                       "updates?)", type=UPDATE_NOT_ANSWERED))
    for response in command.update_responses:
        update = execution.updates[response.update_id]
        assert not update.accepted, update.update_id
        if response.rejection is not None:
            _do_settle(state, execution, update, now_ms, failure=response.rejection)
            continue
        event = do_append(execution, changes, now_ms,
                          WorkflowExecutionUpdateAcceptedEventAttributes(
                              update_id=update.update_id, name=update.name, input=update.input,
                              workflow_task_completed_event_id=completed_id))
        update.accepted_event_id = event.event_id


def do_complete_update(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                       completed_id: int, command: CompleteWorkflowUpdate) -> None:
    update = execution.updates[command.update_id]
    assert update.accepted, update.update_id
    do_append(execution, changes, now_ms, WorkflowExecutionUpdateCompletedEventAttributes(
        update_id=update.update_id, accepted_event_id=update.accepted_event_id,
        result=command.result, failure=command.failure,
        workflow_task_completed_event_id=completed_id))
    _do_settle(state, execution, update, now_ms, value=command.result, failure=command.failure)


def _do_settle(state: ShardState, execution: Execution, update: UpdateState, now_ms: int, *,
               value: bytes = b"", failure: Failure | None) -> None:
    """The update's outcome is final: forget it in the run, remember it by update id."""
    del execution.updates[update.update_id]
    do_remember(state, update_key(execution.namespace, execution.workflow_id, update.update_id),
                WorkflowUpdateResult(run_id=execution.run_id, update_id=update.update_id,
                                     stage=UpdateStage.COMPLETED, value=value, failure=failure),
                now_ms)


def do_schedule_for_waiting(state: ShardState, execution: Execution, changes: Changes,
                            now_ms: int) -> None:
    """After a task completed: updates admitted while it was started need the next task."""
    if (execution.is_open and execution.workflow_task is None
            and any(not u.accepted for u in execution.updates.values())):
        do_schedule_workflow_task(state, execution, changes, now_ms, attempt=1)


def update_view(state: ShardState, namespace: str, workflow_id: str,
                update_id: str) -> WorkflowUpdateResult | Rejected:
    """Where update `update_id` of the workflow stands (a read: changes nothing). An update
    neither remembered nor in flight in the open run is not found; when the workflow has no
    open run it is workflow_not_running (its run closed before the update completed)."""
    remembered = state.archive.recall(update_key(namespace, workflow_id, update_id))
    if isinstance(remembered, WorkflowUpdateResult):
        return remembered
    run_id = state.open_runs.get((namespace, workflow_id))
    if run_id is None:
        if state.archive.latest_closed((namespace, workflow_id)) is not None:
            return validate.not_running(f"workflow {workflow_id} is closed and update "
                                        f"{update_id} has no outcome")
        return validate.not_found(f"workflow {workflow_id} not found")
    execution = state.executions[run_id]
    update = execution.updates.get(update_id)
    if update is None:
        return validate.not_found(f"update {update_id} of workflow {workflow_id} not found")
    return _stage_of(execution, update)


def update_problem(execution: Execution, history: list[HistoryEvent]) -> str | None:
    """What is wrong with an open run's updates (None: nothing), for `check_invariants`: at
    most UPDATES_IN_FLIGHT_PER_RUN_MAX, each under its own id, an accepted one naming its
    Accepted event, and a workflow task pending (or a retried attempt's back-off timer, which
    schedules one) while any waits to be delivered."""
    if len(execution.updates) > UPDATES_IN_FLIGHT_PER_RUN_MAX:
        return f"run {execution.run_id}: more than UPDATES_IN_FLIGHT_PER_RUN_MAX updates"
    for update_id, update in execution.updates.items():
        if update_id != update.update_id or update.admitted_at > execution.history_length:
            return f"run {execution.run_id}: update {update_id} mislabelled"
        if update.accepted:
            event = history[update.accepted_event_id - 1].attributes
            if not (isinstance(event, WorkflowExecutionUpdateAcceptedEventAttributes)
                    and event.update_id == update_id):
                return f"run {execution.run_id}: update {update_id} names no Accepted event"
        elif execution.workflow_task is None and not execution.awaiting_backoff:
            return f"run {execution.run_id}: update {update_id} waits with no workflow task"
    return None
