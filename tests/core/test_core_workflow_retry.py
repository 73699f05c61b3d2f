"""Goal: a run with a retry policy that fails, or reaches its run timeout, starts the chain's
next attempt after the policy's back-off, and only when the policy allows it (Temporal's rules).

Method: drive a shard through failures and timeouts of runs with and without a policy; check the
closed run names its successor, the successor's attempt, input, policy and back-off, that no
workflow task is scheduled before the back-off timer fires (signals and updates that arrive
meanwhile wait for it), and every way the chain ends for good: non-retryable failure, listed
error type, attempts used up, execution timeout, cancel and terminate. Invariants run after
every step (core_driver.Shard).
"""

from __future__ import annotations

from raftflow.protocol.commands import (
    CancelWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    RequestWorkflowUpdate,
    RetryPolicy,
    TerminateWorkflow,
)
from raftflow.protocol.effects import DispatchWorkflowTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import (
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
)
from raftflow.protocol.results import WorkflowStatus
from raftflow.shards.core.state import TimerKind
from raftflow.shards.core.workflow_retry import retry_run_id
from tests.core.core_driver import NAMESPACE, Shard, start_command

POLICY = RetryPolicy(initial_interval_ms=1_000, backoff_coefficient=2.0, maximum_attempts=3,
                     non_retryable_error_types=("Fatal",))
BOOM = Failure(message="boom", type="Boom")


def _fail(shard: Shard, run_id: str, failure: Failure = BOOM) -> str:
    """Fail the run from its workflow code; the successor's run id, or "" if none."""
    shard.decide(run_id, FailWorkflowExecution(failure=failure))
    closed = shard.execution(run_id)
    assert closed.status is WorkflowStatus.FAILED
    close = closed.history[-1].attributes
    assert isinstance(close, WorkflowExecutionFailedEventAttributes)
    return close.new_execution_run_id


def _started(shard: Shard, run_id: str) -> WorkflowExecutionStartedEventAttributes:
    started = shard.execution(run_id).history[0].attributes
    assert isinstance(started, WorkflowExecutionStartedEventAttributes)
    return started


def test_a_failed_attempt_starts_the_next_after_the_back_off() -> None:
    shard = Shard()
    first = shard.start(retry_policy=POLICY, search_attributes={})
    second = _fail(shard, first)
    assert second == retry_run_id(first, 2) and shard.state.open_runs[(NAMESPACE, "wf")] == second
    run = shard.execution(second)
    assert (run.attempt, run.retry_policy, run.awaiting_backoff) == (2, POLICY, True)
    assert run.first_execution_run_id == first and run.workflow_task is None
    started = _started(shard, second)
    assert (started.attempt, started.input, started.continued_execution_run_id,
            started.first_workflow_task_backoff_ms, started.retry_policy) == (
        2, b'"in"', first, 1_000, POLICY)
    assert shard.event_types(second) == ["WorkflowExecutionStarted"]
    # Nothing runs before the back-off ends: the first task comes with the timer.
    assert not shard.advance(999).events
    fired = shard.advance(1)
    assert [e.event_type for e in fired.events] == ["WorkflowTaskScheduled"]
    assert any(isinstance(e, DispatchWorkflowTask) and e.run_id == second for e in fired.effects)
    assert not shard.execution(second).awaiting_backoff
    # The back-off doubles; the third attempt is the last one the policy allows.
    third = _fail(shard, second)
    assert _started(shard, third).first_workflow_task_backoff_ms == 2_000
    shard.advance(2_000)
    assert _fail(shard, third) == ""
    assert not shard.state.open_runs and not shard.state.timers


def test_without_a_policy_a_failure_is_final() -> None:
    shard = Shard()
    assert _fail(shard, shard.start()) == ""
    assert not shard.state.open_runs


def test_non_retryable_failures_end_the_chain() -> None:
    for failure in (Failure(message="no", type="Boom", non_retryable=True),
                    Failure(message="no", type="Fatal")):
        shard = Shard()
        assert _fail(shard, shard.start(retry_policy=POLICY), failure) == ""
        assert not shard.state.open_runs


def test_a_run_timeout_retries_and_the_execution_timeout_ends_the_chain() -> None:
    shard = Shard()  # now 1 s: the execution expires at 24 s
    first = shard.start(retry_policy=RetryPolicy(initial_interval_ms=500),
                        run_timeout_ms=10_000, execution_timeout_ms=23_000)
    timed_out = shard.advance(10_000)
    second = _timed_out_into(shard, first, "run")
    assert second and [e.event_type for e in timed_out.events][-2:] == [
        "WorkflowExecutionTimedOut", "WorkflowExecutionStarted"]
    # The run timeout counts from the end of the back-off (11 s + 0.5 s + 10 s).
    assert shard.state.timers[(second, TimerKind.RUN_TIMEOUT, 0)] == 21_500
    shard.advance(10_500)
    third = _timed_out_into(shard, second, "run")  # 21.5 s + 1 s back-off: before 24 s
    assert third
    shard.advance(1_000)
    assert shard.execution(third).workflow_task is not None
    shard.advance(1_500)  # 24 s: the execution timeout, which is final
    assert _timed_out_into(shard, third, "execution") == ""
    assert not shard.state.open_runs and not shard.state.timers


def test_a_back_off_that_would_pass_the_execution_timeout_ends_the_chain() -> None:
    shard = Shard()  # now 1 s: the execution expires at 11.5 s
    first = shard.start(retry_policy=RetryPolicy(initial_interval_ms=1_000),
                        run_timeout_ms=10_000, execution_timeout_ms=10_500)
    shard.advance(10_000)  # 11 s: the next attempt could not start before 12 s
    assert _timed_out_into(shard, first, "run") == ""
    assert not shard.state.open_runs and not shard.state.timers


def _timed_out_into(shard: Shard, run_id: str, timeout_type: str) -> str:
    closed = shard.execution(run_id)
    assert closed.status is WorkflowStatus.TIMED_OUT
    close = closed.history[-1].attributes
    assert isinstance(close, WorkflowExecutionTimedOutEventAttributes)
    assert close.timeout_type == timeout_type
    return close.new_execution_run_id


def test_no_attempt_is_started_past_the_execution_timeout() -> None:
    shard = Shard()
    first = shard.start(retry_policy=RetryPolicy(initial_interval_ms=5_000),
                        execution_timeout_ms=4_000)
    assert _fail(shard, first) == ""


def test_signals_and_updates_during_the_back_off_wait_for_its_task() -> None:
    shard = Shard()
    second = _fail(shard, shard.start(retry_policy=POLICY))
    signalled = shard.wake(second)
    assert [e.event_type for e in signalled.events] == ["WorkflowExecutionSignaled"]
    update = shard.run(RequestWorkflowUpdate(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf", run_id=None,
        update_id="u1", name="set", input=b"1"))
    assert not update.events and shard.execution(second).workflow_task is None
    fired = shard.advance(1_000)
    assert [e.event_type for e in fired.events] == ["WorkflowTaskScheduled"]
    task = shard.poll_workflow_task(second)
    assert [e.event_type for e in task.history][:2] == ["WorkflowExecutionStarted",
                                                        "WorkflowExecutionSignaled"]


def test_terminate_during_the_back_off_closes_the_attempt_and_its_timer() -> None:
    shard = Shard()
    second = _fail(shard, shard.start(retry_policy=POLICY))
    shard.run(TerminateWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                reason="ops", request_id="t1"))
    assert shard.execution(second).status is WorkflowStatus.TERMINATED
    assert not shard.state.timers and not shard.state.open_runs
    assert not shard.advance(5_000).events


def test_cancel_is_never_retried_and_continue_as_new_keeps_the_policy_at_attempt_one() -> None:
    shard = Shard()
    first = shard.start(retry_policy=POLICY)
    second = _fail(shard, first)
    shard.advance(1_000)
    shard.decide(second, ContinueAsNewWorkflowExecution(input=b'"again"'))
    third = shard.state.open_runs[(NAMESPACE, "wf")]
    run = shard.execution(third)
    assert (run.attempt, run.retry_policy, run.awaiting_backoff) == (1, POLICY, False)
    shard.decide(third, CancelWorkflowExecution())
    assert shard.execution(third).status is WorkflowStatus.CANCELED
    assert not shard.state.open_runs


def test_an_invalid_policy_is_refused_and_changes_nothing() -> None:
    shard = Shard()
    refused = shard.run_unchanged(start_command(
        now_ms=shard.now_ms, retry_policy=RetryPolicy(initial_interval_ms=10,
                                                      maximum_interval_ms=5)))
    assert refused.code is ErrorCode.INVALID_ARGUMENT
    assert refused.field == "retry_policy.maximum_interval_ms"


def test_the_workflow_id_stays_taken_during_the_back_off() -> None:
    """The next attempt opens in the same commit as the failure, so a start between the two
    attempts finds a run open and is refused, changing nothing."""
    shard = Shard()
    second = _fail(shard, shard.start(retry_policy=POLICY))
    assert shard.execution(second).awaiting_backoff
    refused = shard.run_unchanged(start_command(now_ms=shard.now_ms, run_id="intruder",
                                                request_id="other"))
    assert refused.code is ErrorCode.WORKFLOW_ALREADY_STARTED
    assert shard.state.open_runs[(NAMESPACE, "wf")] == second
