"""Goal: activity outcomes reach workflow code as Temporal users expect, on first execution
and on replay: results, ActivityError(cause=ApplicationError) after a failure, a
TimeoutError cause after a timeout, gather of several activities, and cancellation.

Method: a `Driver` plays the server with hand-made histories in the server's exact shape;
each test checks the commands the runner answers, then replays the whole history on a fresh
runner and checks it adds nothing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from raftflow.sdk import ActivityError, ApplicationError, RetryPolicy, errors, workflow
from tests.sdk.history_builder import Driver, activate, runner_for
from tests.sdk.sample_workflows import FAST, charge, ship, square


def replays_cleanly(driver: Driver, cls: type, last: list[dict[str, Any]]) -> None:
    """Record the last answer, then replay everything on a fresh runner."""
    driver.commit(last)
    fresh = runner_for(cls)
    assert activate(fresh, driver.history.events) == []


@workflow.defn
class Reporting:
    @workflow.run
    async def run(self) -> Any:
        try:
            return await workflow.execute_activity(
                charge, "o", start_to_close_timeout=FAST, heartbeat_timeout=timedelta(seconds=2),
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=("Bad",)),
                task_queue="payments")
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError):
                return {"message": cause.message, "type": cause.type, "details": cause.details,
                        "non_retryable": cause.non_retryable, "id": error.activity_id}
            assert isinstance(cause, errors.TimeoutError)
            return {"timeout": cause.timeout_type}


def test_schedule_command_carries_every_option() -> None:
    driver = Driver(Reporting)
    assert driver.task() == [{
        "type": "ScheduleActivityTask", "activity_id": "1", "activity_type": "charge",
        "task_queue": "payments", "input": ["o"], "start_to_close_timeout_ms": 5000,
        "heartbeat_timeout_ms": 2000,
        "retry_policy": {"initial_interval_ms": 1000, "backoff_coefficient": 2.0,
                         "maximum_interval_ms": None, "maximum_attempts": 3,
                         "non_retryable_error_types": ["Bad"]}}]


def test_failure_reaches_the_workflow_as_activity_error_with_application_cause() -> None:
    driver = Driver(Reporting)
    ids = driver.commit(driver.task())
    driver.history.activity_failed(ids["activity 1"], {"message": "declined", "type": "Card",
                                              "non_retryable": True, "details": [{"code": 7}]})
    last = driver.task()
    assert last == [{"type": "CompleteWorkflowExecution", "result": {
        "message": "declined", "type": "Card", "details": [{"code": 7}],
        "non_retryable": True, "id": "1"}}]
    replays_cleanly(driver, Reporting, last)


def test_timeout_reaches_the_workflow_with_a_timeout_cause() -> None:
    driver = Driver(Reporting)
    ids = driver.commit(driver.task())
    driver.history.activity_timed_out(ids["activity 1"], "StartToClose")
    assert driver.task() == [{"type": "CompleteWorkflowExecution",
                              "result": {"timeout": "StartToClose"}}]


@workflow.defn
class Uncaught:
    @workflow.run
    async def run(self) -> Any:
        return await workflow.execute_activity("charge", "o", start_to_close_timeout=FAST)


def test_uncaught_activity_error_fails_the_workflow() -> None:
    driver = Driver(Uncaught)
    ids = driver.commit(driver.task())
    driver.history.activity_failed(ids["activity 1"], {"message": "declined", "type": "Card",
                                              "non_retryable": False})
    [command] = driver.task()
    assert command == {"type": "FailWorkflowExecution", "failure": {
        "message": "activity charge (1) failed: declined", "type": "ActivityError",
        "non_retryable": False}}


@workflow.defn
class Gather:
    @workflow.run
    async def run(self) -> Any:
        return list(await asyncio.gather(*(
            workflow.execute_activity(square, n, start_to_close_timeout=FAST)
            for n in (1, 2, 3))))


def test_gather_of_three_activities_resolves_in_any_completion_order() -> None:
    driver = Driver(Gather)
    commands = driver.task()
    assert [c["activity_id"] for c in commands] == ["1", "2", "3"]
    assert [c["input"] for c in commands] == [[1], [2], [3]]
    ids = driver.commit(commands)
    driver.history.activity_completed(ids["activity 3"], 9)
    assert driver.task() == []
    driver.commit([])
    driver.history.activity_completed(ids["activity 1"], 1)
    driver.history.activity_completed(ids["activity 2"], 4)
    last = driver.task()
    assert last == [{"type": "CompleteWorkflowExecution", "result": [1, 4, 9]}]
    replays_cleanly(driver, Gather, last)


@workflow.defn
class Racing:
    @workflow.run
    async def run(self) -> Any:
        first = asyncio.ensure_future(
            workflow.execute_activity(ship, "a", start_to_close_timeout=FAST))
        second = asyncio.ensure_future(
            workflow.execute_activity(ship, "b", start_to_close_timeout=FAST))
        await asyncio.sleep(0)
        second.cancel()  # never sent: withdrawn without a trace in history
        result = await first
        late = asyncio.ensure_future(
            workflow.execute_activity(ship, "c", start_to_close_timeout=FAST))
        await asyncio.sleep(0)
        return result, late


@workflow.defn
class CancelSent:
    @workflow.run
    async def run(self) -> Any:
        job = asyncio.ensure_future(
            workflow.execute_activity(ship, "a", start_to_close_timeout=FAST))
        await workflow.sleep(1)
        job.cancel()
        try:
            await job
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"


def test_cancelling_an_unsent_activity_withdraws_its_command() -> None:
    driver = Driver(Racing)
    assert [c["input"] for c in driver.task()] == [["a"]]


def test_cancelling_a_scheduled_activity_requests_cancel_and_raises_at_once() -> None:
    driver = Driver(CancelSent)
    ids = driver.commit(driver.task())
    driver.history.timer_fired("1", ids["timer 1"])
    last = driver.task()
    assert last == [
        {"type": "RequestCancelActivityTask", "scheduled_event_id": ids["activity 1"]},
        {"type": "CompleteWorkflowExecution", "result": "cancelled"}]
    replays_cleanly(driver, CancelSent, last)


def test_execute_activity_needs_a_timeout() -> None:
    @workflow.defn
    class NoTimeout:
        @workflow.run
        async def run(self) -> Any:
            return await workflow.execute_activity(ship, "a")

    # Misuse is a bug in workflow code: it fails the workflow task (retried), not the workflow.
    with pytest.raises(errors.WorkflowTaskError) as caught:
        Driver(NoTimeout).task()
    assert "start_to_close_timeout" in str(caught.value.__cause__)


def test_undecorated_activity_is_refused() -> None:
    async def plain(x: int) -> int:
        return x

    @workflow.defn
    class Plain:
        @workflow.run
        async def run(self) -> Any:
            return await workflow.execute_activity(plain, 1, start_to_close_timeout=FAST)

    with pytest.raises(errors.WorkflowTaskError) as caught:
        Driver(Plain).task()
    assert "@activity.defn" in str(caught.value.__cause__)


def test_workflow_api_outside_a_workflow_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="not in workflow code"):
        workflow.now()
