"""Goal: activities run with Temporal's semantics: server-side retries with back-off, the four
timeouts, heartbeats, cancellation, and stale answers that change nothing.

Method: a driver shard plays workflow worker and activity worker with a manual clock; histories
are compared event by event; refusals are checked with state digests; back-off arithmetic is
table-driven against hand-computed values.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    Command,
    CompleteWorkflowExecution,
    Failure,
    RecordActivityTaskHeartbeat,
    RecordActivityTaskStarted,
    RequestCancelActivityTask,
    RespondActivityTaskCanceled,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    RetryPolicy,
    StartTimer,
    TaskToken,
)
from raftflow.protocol.effects import ArmTimer, DispatchActivityTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import ActivityTaskStartedResult, HeartbeatResult
from raftflow.shards.core import retry
from tests.core.core_driver import NAMESPACE, Shard, activity


def _types(output_events: tuple[object, ...]) -> list[str]:
    return [e.event_type for e in output_events]  # type: ignore[attr-defined]


def test_happy_path_with_server_retry_after_backoff() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a1", retry_policy=RetryPolicy(initial_interval_ms=2_000)),
                 activity("a2"), StartTimer(timer_id="t", start_to_fire_timeout_ms=60_000))
    a1, a2 = shard.poll_activity(run_id, "a1"), shard.poll_activity(run_id, "a2")
    failed = shard.fail_activity(a1.token)
    assert failed.events == () and failed.effects == (ArmTimer(fire_at_ms=shard.now_ms + 2_000),)
    assert shard.advance(1_999).effects == (ArmTimer(fire_at_ms=shard.now_ms + 1),)
    retried = shard.advance(1)
    assert DispatchActivityTask(namespace=NAMESPACE, task_queue="q", workflow_id="wf",
                                run_id=run_id, scheduled_event_id=5, attempt=2) in retried.effects
    a1_again = shard.poll_activity(run_id, "a1")
    assert a1_again.attempt == 2 and a1_again.token.attempt == 2
    assert shard.complete_activity(a1_again.token).events[0].attributes.attempt == 2
    shard.complete_activity(a2.token)
    shard.decide(run_id)
    shard.advance(60_000)
    shard.decide(run_id, CompleteWorkflowExecution(result=b'"done"'))
    assert shard.event_types(run_id) == [
        "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted",
        "WorkflowTaskCompleted", "ActivityTaskScheduled", "ActivityTaskScheduled",
        "TimerStarted", "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled",
        "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskStarted",
        "WorkflowTaskCompleted", "TimerFired", "WorkflowTaskScheduled", "WorkflowTaskStarted",
        "WorkflowTaskCompleted", "WorkflowExecutionCompleted"]
    history = shard.execution(run_id).history
    assert history[8].attributes.started_event_id == 8  # Completed names its Started
    assert not shard.state.timers and not shard.state.open_runs


BACKOFF_CASES = [
    (RetryPolicy(), 1, 1_000), (RetryPolicy(), 2, 2_000), (RetryPolicy(), 5, 16_000),
    (RetryPolicy(), 8, 100_000), (RetryPolicy(), 60, 100_000),  # default cap: 100x initial
    (RetryPolicy(initial_interval_ms=100, backoff_coefficient=3.0, maximum_interval_ms=1_000),
     3, 900),
    (RetryPolicy(initial_interval_ms=100, backoff_coefficient=3.0, maximum_interval_ms=1_000),
     4, 1_000),
    (RetryPolicy(initial_interval_ms=7, backoff_coefficient=1.0), 1_000, 7),
]


@pytest.mark.parametrize(("policy", "attempt", "expected_ms"), BACKOFF_CASES)
def test_backoff(policy: RetryPolicy, attempt: int, expected_ms: int) -> None:
    assert retry.backoff_ms(policy, attempt) == expected_ms


FINAL_FAILURES = [
    ("non_retryable_flag", RetryPolicy(), Failure(message="x", non_retryable=True), 1,
     "NonRetryableFailure"),
    ("non_retryable_type", RetryPolicy(non_retryable_error_types=("Fatal",)),
     Failure(message="x", type="Fatal"), 1, "NonRetryableFailure"),
    ("maximum_attempts", RetryPolicy(maximum_attempts=2), Failure(message="x"), 2,
     "MaximumAttemptsReached"),
]


@pytest.mark.parametrize(("name", "policy", "failure", "attempts", "retry_state"),
                         FINAL_FAILURES, ids=[case[0] for case in FINAL_FAILURES])
def test_final_failure_closes_the_activity(name: str, policy: RetryPolicy, failure: Failure,
                                           attempts: int, retry_state: str) -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a", retry_policy=policy))
    for _ in range(attempts - 1):
        shard.fail_activity(shard.poll_activity(run_id, "a").token)
        shard.advance(60_000)
    output = shard.fail_activity(shard.poll_activity(run_id, "a").token, failure)
    assert _types(output.events) == ["ActivityTaskStarted", "ActivityTaskFailed",
                                     "WorkflowTaskScheduled"]
    assert output.events[0].attributes.attempt == attempts
    assert output.events[1].attributes.retry_state == retry_state
    assert not shard.execution(run_id).activities


def test_no_retry_past_schedule_to_close() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a", schedule_to_close_timeout_ms=1_500,
                                  start_to_close_timeout_ms=None))
    shard.advance(600)
    output = shard.fail_activity(shard.poll_activity(run_id, "a").token)  # retry at 1_600
    assert _types(output.events)[:2] == ["ActivityTaskStarted", "ActivityTaskFailed"]


def test_schedule_to_start_timeout_is_final() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a", schedule_to_start_timeout_ms=500))
    output = shard.advance(500)
    assert _types(output.events) == ["ActivityTaskTimedOut", "WorkflowTaskScheduled"]
    assert output.events[0].attributes.timeout_type == "ScheduleToStart"
    assert output.events[0].attributes.started_event_id == 0


def test_start_to_close_timeout_is_retried_then_final() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a", start_to_close_timeout_ms=1_000,
                                  retry_policy=RetryPolicy(maximum_attempts=2)))
    first = shard.poll_activity(run_id, "a")
    assert shard.advance(1_000).events == ()
    assert shard.execution(run_id).activities[5].attempt == 2
    shard.advance(1_000)  # back-off elapsed: attempt 2 dispatched
    shard.poll_activity(run_id, "a")
    output = shard.advance(1_000)
    assert _types(output.events) == ["ActivityTaskStarted", "ActivityTaskTimedOut",
                                     "WorkflowTaskScheduled"]
    assert output.events[1].attributes.timeout_type == "StartToClose"
    last_failure = output.events[1].attributes.last_failure
    assert isinstance(last_failure, Failure) and last_failure.type == "TimeoutError"
    late = RespondActivityTaskCompleted(now_ms=shard.now_ms, token=first.token)
    assert shard.run_unchanged(late).code is ErrorCode.STALE_TASK


def test_heartbeat_keeps_an_activity_alive_and_its_absence_times_out() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a", heartbeat_timeout_ms=1_000,
                                  retry_policy=RetryPolicy(maximum_attempts=1)))
    token = shard.poll_activity(run_id, "a").token
    for _ in range(3):
        shard.advance(900)
        beat = shard.run(RecordActivityTaskHeartbeat(now_ms=shard.now_ms, token=token,
                                                     details=b'"p"'))
        assert beat.result == HeartbeatResult(cancel_requested=False)
    output = shard.advance(1_000)
    assert output.events[1].attributes.timeout_type == "Heartbeat"


def test_heartbeat_details_reach_the_next_attempt() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    token = shard.poll_activity(run_id, "a").token
    shard.run(RecordActivityTaskHeartbeat(now_ms=shard.now_ms, token=token, details=b"42"))
    shard.fail_activity(token)
    shard.advance(1_000)
    assert shard.poll_activity(run_id, "a").heartbeat_details == b"42"


def test_schedule_to_close_timeout_of_a_running_activity() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a", schedule_to_close_timeout_ms=5_000,
                                  start_to_close_timeout_ms=None))
    shard.poll_activity(run_id, "a")
    output = shard.advance(5_000)
    assert _types(output.events) == ["ActivityTaskStarted", "ActivityTaskTimedOut",
                                     "WorkflowTaskScheduled"]
    assert output.events[1].attributes.started_event_id == output.events[0].event_id


def test_cancel_of_a_running_activity_goes_through_heartbeat() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    token = shard.poll_activity(run_id, "a").token
    shard.wake(run_id)
    shard.decide(run_id, RequestCancelActivityTask(scheduled_event_id=5))
    beat = shard.run(RecordActivityTaskHeartbeat(now_ms=shard.now_ms, token=token))
    assert beat.result == HeartbeatResult(cancel_requested=True)
    output = shard.run(RespondActivityTaskCanceled(now_ms=shard.now_ms, token=token,
                                                   details=b"d"))
    assert _types(output.events) == ["ActivityTaskStarted", "ActivityTaskCanceled",
                                     "WorkflowTaskScheduled"]
    assert output.events[1].attributes.latest_cancel_requested_event_id == 10


def test_cancel_of_a_waiting_activity_is_immediate() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a", schedule_to_start_timeout_ms=100))
    shard.wake(run_id)
    output = shard.decide(run_id, RequestCancelActivityTask(scheduled_event_id=5))
    assert _types(output.events) == ["WorkflowTaskCompleted", "ActivityTaskCancelRequested",
                                     "ActivityTaskCanceled"]
    assert not shard.state.timers and not shard.execution(run_id).activities


def test_record_activity_started_dedupe_and_stale() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    command = RecordActivityTaskStarted(now_ms=shard.now_ms, namespace=NAMESPACE,
                                        workflow_id="wf", run_id=run_id, scheduled_event_id=5,
                                        attempt=1, identity="w", request_id="p1")
    first = shard.run(command)
    assert isinstance(first.result, ActivityTaskStartedResult)
    again = shard.run(command)
    assert again.result == first.result and not again.effects
    assert shard.run_unchanged(replace(command, request_id="p2")).code is ErrorCode.STALE_TASK
    assert shard.run_unchanged(replace(command, attempt=2)).code is ErrorCode.STALE_TASK
    assert shard.run_unchanged(replace(command, scheduled_event_id=6)).code is ErrorCode.STALE_TASK
    assert shard.run_unchanged(replace(command, run_id="x")).code is ErrorCode.NOT_FOUND


def _old_attempt(shard: Shard, run_id: str, token: TaskToken) -> TaskToken:
    shard.fail_activity(token)
    shard.advance(1_000)
    shard.poll_activity(run_id, "a")
    return token


def _in_backoff(shard: Shard, run_id: str, token: TaskToken) -> TaskToken:
    shard.fail_activity(token)
    return replace(token, attempt=2)


def _completed(shard: Shard, run_id: str, token: TaskToken) -> TaskToken:
    shard.complete_activity(token)
    return token


def _closed_run(shard: Shard, run_id: str, token: TaskToken) -> TaskToken:
    shard.wake(run_id)
    shard.decide(run_id, CompleteWorkflowExecution())
    return token


def _unknown(shard: Shard, run_id: str, token: TaskToken) -> TaskToken:
    return replace(token, scheduled_event_id=77)


STALE = [_old_attempt, _in_backoff, _completed, _closed_run, _unknown]


@pytest.mark.parametrize("make_stale", STALE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("answer", ["completed", "failed", "canceled", "heartbeat"])
def test_stale_activity_answers_change_nothing(
        make_stale: Callable[[Shard, str, TaskToken], TaskToken], answer: str) -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    token = make_stale(shard, run_id, shard.poll_activity(run_id, "a").token)
    commands: dict[str, Command] = {
        "failed": RespondActivityTaskFailed(now_ms=shard.now_ms, token=token,
                                            failure=Failure(message="late")),
        "completed": RespondActivityTaskCompleted(now_ms=shard.now_ms, token=token),
        "canceled": RespondActivityTaskCanceled(now_ms=shard.now_ms, token=token),
        "heartbeat": RecordActivityTaskHeartbeat(now_ms=shard.now_ms, token=token),
    }
    assert shard.run_unchanged(commands[answer]).code is ErrorCode.STALE_TASK


def test_activity_completion_during_started_task_is_buffered() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"), StartTimer(timer_id="t", start_to_fire_timeout_ms=10))
    token = shard.poll_activity(run_id, "a").token
    shard.advance(10)
    task = shard.poll_workflow_task(run_id)
    assert shard.complete_activity(token).events == ()
    output = shard.complete_task(task.token)
    assert _types(output.events) == ["WorkflowTaskCompleted", "ActivityTaskStarted",
                                     "ActivityTaskCompleted", "WorkflowTaskScheduled"]
    started, completed = output.events[1], output.events[2]
    assert completed.attributes.started_event_id == started.event_id
