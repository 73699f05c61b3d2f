"""Goal: workflow updates in the shard core: admission (in state, not history, bounded per
run), delivery with the next workflow task, the worker's accept or reject, completion, the
outcome remembered by update id (dedup), and what a caller reads once the run closed.

Method: drive a shard through each path with the test driver (invariants after every step);
refusals are checked to change nothing.
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    CompleteWorkflowUpdate,
    Failure,
    RespondWorkflowTaskCompleted,
    StartTimer,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Rejected
from raftflow.protocol.updates import (
    RequestWorkflowUpdate,
    UpdateStage,
    WorkflowUpdateResponse,
    WorkflowUpdateResult,
)
from raftflow.shards.core.on_update import (
    UPDATE_NOT_ANSWERED,
    UPDATES_IN_FLIGHT_PER_RUN_MAX,
    update_view,
)
from raftflow.shards.core.output import Output
from tests.core.core_driver import NAMESPACE, Shard


def _request(shard: Shard, update_id: str = "u1", name: str = "set") -> RequestWorkflowUpdate:
    return RequestWorkflowUpdate(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                 update_id=update_id, name=name, input=b'["v"]')


def _complete(shard: Shard, token: TaskToken, responses: tuple[WorkflowUpdateResponse, ...],
              *commands: WorkflowCommand) -> Output:
    return shard.run(RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token,
                                                  commands=commands, update_responses=responses,
                                                  identity="worker-1"))


def _accept(update_id: str = "u1") -> WorkflowUpdateResponse:
    return WorkflowUpdateResponse(update_id=update_id)


def _idle_run(shard: Shard) -> str:
    """A started run waiting on a timer, with no workflow task."""
    run_id = shard.start()
    shard.decide(run_id, StartTimer(timer_id="t", start_to_fire_timeout_ms=60_000))
    assert shard.execution(run_id).workflow_task is None
    return run_id


def _view(shard: Shard, update_id: str = "u1") -> WorkflowUpdateResult | Rejected:
    return update_view(shard.state, NAMESPACE, "wf", update_id)


def test_accepted_update_records_accepted_and_completed_and_remembers_the_outcome() -> None:
    shard = Shard()
    run_id = _idle_run(shard)
    history_before = shard.execution(run_id).history_length
    admitted = shard.run(_request(shard))
    assert admitted.result == WorkflowUpdateResult(run_id=run_id, update_id="u1",
                                                   stage=UpdateStage.ADMITTED)
    # Admission writes no update event: only the workflow task that delivers it.
    assert [e.event_type for e in admitted.events] == ["WorkflowTaskScheduled"]
    task = shard.poll_workflow_task(run_id)
    assert [(u.update_id, u.name, u.input) for u in task.updates] == [("u1", "set", b'["v"]')]
    output = _complete(shard, task.token, (_accept(),),
                       CompleteWorkflowUpdate(update_id="u1", result=b'"done"'))
    assert [e.event_type for e in output.events] == [
        "WorkflowTaskCompleted", "WorkflowExecutionUpdateAccepted",
        "WorkflowExecutionUpdateCompleted"]
    accepted, completed = output.events[1], output.events[2]
    assert completed.attributes.accepted_event_id == accepted.event_id  # type: ignore[union-attr]
    assert shard.execution(run_id).history_length == history_before + 5
    outcome = WorkflowUpdateResult(run_id=run_id, update_id="u1", stage=UpdateStage.COMPLETED,
                                   value=b'"done"')
    assert _view(shard) == outcome
    assert not shard.execution(run_id).updates
    again = shard.run(_request(shard))  # the same update id: the outcome, nothing new
    assert again.result == outcome and not again.events


def test_rejected_update_leaves_no_event_and_the_caller_gets_the_failure() -> None:
    shard = Shard()
    run_id = _idle_run(shard)
    shard.run(_request(shard))
    task = shard.poll_workflow_task(run_id)
    failure = Failure(message="bad value", type="ValueError")
    output = _complete(shard, task.token, (WorkflowUpdateResponse(update_id="u1",
                                                                  rejection=failure),))
    assert [e.event_type for e in output.events] == ["WorkflowTaskCompleted"]
    assert "WorkflowExecutionUpdateAccepted" not in shard.event_types(run_id)
    assert _view(shard) == WorkflowUpdateResult(run_id=run_id, update_id="u1",
                                                stage=UpdateStage.COMPLETED, failure=failure)
    assert shard.run(_request(shard)).result == _view(shard)


def test_a_second_request_with_the_same_id_attaches_to_the_update_in_flight() -> None:
    shard = Shard()
    run_id = _idle_run(shard)
    shard.run(_request(shard))
    again = shard.run(_request(shard))
    assert isinstance(again.result, WorkflowUpdateResult) and not again.events
    assert again.result.stage is UpdateStage.ADMITTED
    assert list(shard.execution(run_id).updates) == ["u1"]
    task = shard.poll_workflow_task(run_id)
    _complete(shard, task.token, (_accept(),))  # accepted; the handler still runs
    attached = shard.run(_request(shard))
    assert isinstance(attached.result, WorkflowUpdateResult)
    assert attached.result.stage is UpdateStage.ACCEPTED and not attached.events
    # Completed by a later task (the handler waited on something).
    shard.wake(run_id)
    output = shard.decide(run_id, CompleteWorkflowUpdate(update_id="u1",
                                                         result=b"1"))
    assert output.events[-1].event_type == "WorkflowExecutionUpdateCompleted"
    assert _view(shard) == WorkflowUpdateResult(run_id=run_id, update_id="u1",
                                                stage=UpdateStage.COMPLETED, value=b"1")


def test_update_admitted_during_a_started_task_waits_for_the_next_task() -> None:
    shard = Shard()
    run_id = _idle_run(shard)
    shard.wake(run_id)
    task = shard.poll_workflow_task(run_id)
    assert task.updates == ()
    shard.run(_request(shard))  # the task is started: it does not carry the update
    output = _complete(shard, task.token, ())
    assert output.events[-1].event_type == "WorkflowTaskScheduled"
    following = shard.poll_workflow_task(run_id)
    assert [u.update_id for u in following.updates] == ["u1"]


def test_in_flight_updates_are_bounded_per_run() -> None:
    shard = Shard()
    _idle_run(shard)
    for index in range(UPDATES_IN_FLIGHT_PER_RUN_MAX):
        assert isinstance(shard.run(_request(shard, f"u{index}")).result, WorkflowUpdateResult)
    refused = shard.run_unchanged(_request(shard, "one-too-many"))
    assert refused.code is ErrorCode.LIMIT_EXCEEDED
    assert refused.field == "UPDATES_IN_FLIGHT_PER_RUN_MAX"


def test_an_update_the_completion_leaves_out_is_rejected() -> None:
    """A worker that knows no updates answers none: the update fails, the run goes on."""
    shard = Shard()
    run_id = _idle_run(shard)
    shard.run(_request(shard))
    task = shard.poll_workflow_task(run_id)
    output = _complete(shard, task.token, ())
    assert [e.event_type for e in output.events] == ["WorkflowTaskCompleted"]
    view = _view(shard)
    assert isinstance(view, WorkflowUpdateResult) and view.stage is UpdateStage.COMPLETED
    assert view.failure is not None and view.failure.type == UPDATE_NOT_ANSWERED
    assert shard.execution(run_id).workflow_task is None and not shard.execution(run_id).updates


def test_completion_answers_only_carried_updates_and_completes_only_accepted_ones() -> None:
    shard = Shard()
    run_id = _idle_run(shard)
    shard.run(_request(shard))
    task = shard.poll_workflow_task(run_id)
    unknown = shard.run_unchanged(RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=task.token,
        update_responses=(_accept(), _accept("nope"))))
    assert unknown.field == "update_responses[1].update_id"
    not_accepted = shard.run_unchanged(RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=task.token,
        update_responses=(WorkflowUpdateResponse(update_id="u1", rejection=Failure()),),
        commands=(CompleteWorkflowUpdate(update_id="u1"),)))
    assert not_accepted.field == "commands[0].update_id"
    twice = shard.run_unchanged(RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=task.token, update_responses=(_accept(),),
        commands=(CompleteWorkflowUpdate(update_id="u1"), CompleteWorkflowUpdate(update_id="u1"))))
    assert twice.field == "commands[1].update_id"


def test_a_run_that_closes_before_the_update_completed_answers_workflow_not_running() -> None:
    shard = Shard()
    run_id = _idle_run(shard)
    shard.run(_request(shard))
    task = shard.poll_workflow_task(run_id)
    _complete(shard, task.token, (_accept(),), CompleteWorkflowExecution())
    assert shard.event_types(run_id)[-2:] == ["WorkflowExecutionUpdateAccepted",
                                              "WorkflowExecutionCompleted"]
    view = _view(shard)
    assert isinstance(view, Rejected) and view.code is ErrorCode.WORKFLOW_NOT_RUNNING
    refused = shard.run_unchanged(_request(shard, "u2"))
    assert refused.code is ErrorCode.WORKFLOW_NOT_RUNNING
    unknown = update_view(shard.state, NAMESPACE, "other", "u1")
    assert isinstance(unknown, Rejected) and unknown.code is ErrorCode.NOT_FOUND


def test_bad_request_fields_are_refused_naming_the_field() -> None:
    shard = Shard()
    _idle_run(shard)
    refused = shard.run_unchanged(RequestWorkflowUpdate(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf", update_id="u", name=""))
    assert refused.code is ErrorCode.INVALID_ARGUMENT and refused.field == "name"
