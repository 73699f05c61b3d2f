"""Goal: runs close exactly once, by every path: cancel request + CancelWorkflowExecution,
terminate, run timeout, execution timeout (spanning continue-as-new), continue-as-new, and the
server-side history limit; client requests are idempotent per request id.

Method: drive a shard through each path, compare the history tail and run status, check that
nothing of the closed run stays pending (invariants run after every step) and that late worker
answers are stale.
"""

from __future__ import annotations

import pytest

from raftflow.protocol.commands import (
    CancelWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    RequestCancelWorkflow,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    StartTimer,
    TerminateWorkflow,
)
from raftflow.protocol.effects import DispatchWorkflowTask, WorkflowClosed
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Ack, WorkflowStatus
from raftflow.shards.core import limits, queries
from tests.core.core_driver import NAMESPACE, Shard, activity


def _cancel(shard: Shard, request_id: str = "c1", run_id: str | None = None,
            ) -> RequestCancelWorkflow:
    return RequestCancelWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                 run_id=run_id, reason="user", request_id=request_id)


def _terminate(shard: Shard, request_id: str = "t1") -> TerminateWorkflow:
    return TerminateWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                             reason="ops", request_id=request_id)


def test_cancel_request_then_workflow_cancels_itself() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, StartTimer(timer_id="t", start_to_fire_timeout_ms=1_000))
    output = shard.run(_cancel(shard))
    assert [e.event_type for e in output.events] == ["WorkflowExecutionCancelRequested",
                                                     "WorkflowTaskScheduled"]
    duplicate = shard.run(_cancel(shard, "c2"))  # already requested: accepted, no new event
    assert duplicate.result == Ack() and not duplicate.events
    retried = shard.run(_cancel(shard))
    assert retried.result == Ack() and not retried.events
    closed = shard.decide(run_id, CancelWorkflowExecution(details=b'"bye"'))
    assert closed.events[-1].event_type == "WorkflowExecutionCanceled"
    assert shard.execution(run_id).status is WorkflowStatus.CANCELED
    assert not shard.state.timers
    assert shard.run_unchanged(_cancel(shard, "c3")).code is ErrorCode.WORKFLOW_NOT_RUNNING


def test_retried_cancel_gets_its_first_answer_on_a_later_run() -> None:
    shard = Shard()
    shard.start()
    shard.run(_cancel(shard, "c1"))
    assert shard.run(_cancel(shard, "c2")).result == Ack()  # already requested
    shard.run(_terminate(shard))
    shard.start(run_id="run-2", request_id="req-2")
    retried = shard.run(_cancel(shard, "c2"))
    assert retried.result == Ack() and not retried.events
    assert not shard.execution("run-2").cancel_requested


def test_terminate_closes_at_once_and_makes_tasks_stale() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    activity_token = shard.poll_activity(run_id, "a").token
    shard.wake(run_id)
    task = shard.poll_workflow_task(run_id)
    assert shard.run(_cancel(shard)).events == ()  # buffered while the task runs
    output = shard.run(_terminate(shard))
    assert [e.event_type for e in output.events] == ["WorkflowTaskFailed",
                                                     "WorkflowExecutionCancelRequested",
                                                     "WorkflowExecutionTerminated"]
    assert output.events[0].attributes.cause == "ForceCloseCommand"
    assert WorkflowClosed(namespace=NAMESPACE, workflow_id="wf", run_id=run_id) in output.effects
    assert shard.run(_terminate(shard)).result == Ack()  # retried: first answer
    late_task = RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=task.token)
    assert shard.run_unchanged(late_task).code is ErrorCode.STALE_TASK
    late_activity = RespondActivityTaskCompleted(now_ms=shard.now_ms, token=activity_token)
    assert shard.run_unchanged(late_activity).code is ErrorCode.STALE_TASK
    assert shard.run_unchanged(_terminate(shard, "t2")).code is ErrorCode.WORKFLOW_NOT_RUNNING


def test_request_on_unknown_run_id() -> None:
    shard = Shard()
    shard.start()
    assert shard.run_unchanged(_cancel(shard, run_id="nope")).code is ErrorCode.NOT_FOUND


def test_run_timeout() -> None:
    shard = Shard()
    run_id = shard.start(run_timeout_ms=10_000)
    shard.decide(run_id, activity("a"), StartTimer(timer_id="t", start_to_fire_timeout_ms=60_000))
    output = shard.advance(10_000)
    assert [e.event_type for e in output.events] == ["WorkflowExecutionTimedOut"]
    assert output.events[0].attributes.timeout_type == "run"
    assert shard.execution(run_id).status is WorkflowStatus.TIMED_OUT
    assert not shard.state.timers and not shard.state.open_runs


def test_continue_as_new_opens_a_derived_run_and_keeps_the_execution_deadline() -> None:
    shard = Shard()
    first = shard.start(execution_timeout_ms=30_000)
    output = shard.decide(first, ContinueAsNewWorkflowExecution(input=b'"next"'))
    closed = shard.execution(first)
    assert closed.status is WorkflowStatus.CONTINUED_AS_NEW
    second = closed.history[-1].attributes.new_execution_run_id
    assert isinstance(second, str) and second != first
    assert shard.state.open_runs[(NAMESPACE, "wf")] == second
    new_run = shard.execution(second)
    assert new_run.history[0].attributes.continued_execution_run_id == first
    assert new_run.first_execution_run_id == first
    assert any(isinstance(e, DispatchWorkflowTask) and e.run_id == second
               for e in output.effects)
    shard.advance(20_000)
    shard.decide(second, ContinueAsNewWorkflowExecution())
    third = shard.state.open_runs[(NAMESPACE, "wf")]
    timed_out = shard.advance(10_000)  # 30 s after the first start, whatever the run
    assert timed_out.events[-1].event_type == "WorkflowExecutionTimedOut"
    assert timed_out.events[-1].attributes.timeout_type == "execution"
    assert shard.execution(third).status is WorkflowStatus.TIMED_OUT
    described = queries.describe(shard.state, NAMESPACE, "wf")
    assert not isinstance(described, Exception) and described.run_id == third  # type: ignore[union-attr]


def test_server_terminates_a_run_at_the_history_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "HISTORY_EVENTS_MAX", 12)
    shard = Shard()
    run_id = shard.start(task_timeout_ms=1_000)
    for _ in range(4):  # each timeout adds WorkflowTaskTimedOut + WorkflowTaskScheduled
        if not shard.execution(run_id).is_open:
            break
        shard.poll_workflow_task(run_id)
        shard.advance(1_000)
    execution = shard.execution(run_id)
    assert execution.status is WorkflowStatus.TERMINATED
    assert execution.history[-1].attributes.reason == "HISTORY_EVENTS_MAX reached"
