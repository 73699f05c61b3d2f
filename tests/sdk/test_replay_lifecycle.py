"""Goal: the run's life cycle is right on first execution and on replay: deterministic time,
randomness and ids; continue-as-new; patched() on new and replayed runs; cancellation;
which exceptions fail the workflow and which fail only the task; recovery when a task we
answered is recorded as failed; and a workflow that never waits is stopped.

Method: a `Driver` plays the server with hand-made histories in the server's shape; answers
are compared whole, and each history is replayed on a fresh runner to check it adds nothing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from raftflow.sdk import ApplicationError, errors, workflow
from raftflow.sdk._replay import limits
from tests.sdk.history_builder import START, Driver, activate, runner_for
from tests.sdk.sample_workflows import FAST, PatchedOrder, ship


@workflow.defn
class Clock:
    @workflow.run
    async def run(self) -> Any:
        first = (workflow.now().isoformat(), str(workflow.uuid4()), workflow.random().random(),
                 workflow.is_replaying(), workflow.info().history_length)
        await workflow.sleep(5)
        second = (workflow.now().isoformat(), workflow.info().history_length)
        return [first, second, workflow.info().workflow_id, workflow.info().attempt]


def test_time_randomness_and_ids_are_deterministic() -> None:
    driver = Driver(Clock)
    ids = driver.commit(driver.task())
    driver.history.timer_fired("1", ids["timer 1"])
    [close] = driver.task()
    first, second, workflow_id, attempt = close["result"]
    events = driver.history.events
    assert datetime.fromisoformat(first[0]) == datetime.fromisoformat(events[2]["timestamp"])
    assert datetime.fromisoformat(first[0]) > START
    assert first[3] is False and first[4] == 3
    assert datetime.fromisoformat(second[0]) == datetime.fromisoformat(events[-1]["timestamp"])
    assert second[1] == len(events)
    assert (workflow_id, attempt) == ("wf-1", 1)
    [replayed] = activate(runner_for(Clock), driver.history.events)
    again: dict[str, Any] = replayed
    assert again["result"][0][3] is True, "the first task is replayed this time"
    again["result"][0][3] = False
    assert again == close, "same history, same uuid/random/now"
    [other] = activate(runner_for(Clock, run_id="run-2"), driver.history.events)
    other_run: dict[str, Any] = other
    assert other_run["result"][0][1] != first[1], "seeded from the run id"


@workflow.defn
class Looper:
    @workflow.run
    async def run(self, n: int) -> None:
        await workflow.sleep(1)
        workflow.continue_as_new(n + 1, task_queue="next")


def test_continue_as_new_becomes_a_command() -> None:
    driver = Driver(Looper, [4])
    ids = driver.commit(driver.task())
    driver.history.timer_fired("1", ids["timer 1"])
    assert driver.task() == [{"type": "ContinueAsNewWorkflowExecution", "input": [5],
                              "task_queue": "next"}]
    assert driver.runner.is_done


def test_patched_on_a_new_execution_records_a_marker_first() -> None:
    driver = Driver(PatchedOrder, ["o"])
    commands = driver.task()
    assert commands == [
        {"type": "RecordMarker", "marker_name": limits.PATCH_MARKER_NAME,
         "details": {"id": "ship-first"}},
        {"type": "ScheduleActivityTask", "activity_id": "1", "activity_type": "ship",
         "input": ["o"], "start_to_close_timeout_ms": 5000}]
    ids = driver.commit(commands)
    driver.history.activity_completed(ids["activity 1"], "shipped")
    last = driver.task()
    assert last == [{"type": "CompleteWorkflowExecution", "result": "v2 shipped"}]
    driver.commit(last)
    assert activate(runner_for(PatchedOrder), driver.history.events) == []


@workflow.defn
class Stubborn:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(ship, "x", start_to_close_timeout=FAST)
        except asyncio.CancelledError:
            return "cleaned up"
        return "finished"


@workflow.defn
class Obedient:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(60)
        return "finished"


def test_cancel_request_before_the_first_task_cancels_the_run() -> None:
    driver = Driver(Obedient)
    driver.history.cancel_request()
    assert driver.task() == [{"type": "CancelWorkflowExecution"}]


def test_cancel_request_cancels_the_timer_then_the_run() -> None:
    driver = Driver(Obedient)
    driver.commit(driver.task())
    driver.history.cancel_request()
    assert driver.task() == [{"type": "CancelTimer", "timer_id": "1"},
                             {"type": "CancelWorkflowExecution"}]


def test_workflow_may_catch_cancellation_and_complete() -> None:
    driver = Driver(Stubborn)
    ids = driver.commit(driver.task())
    driver.history.cancel_request()
    assert driver.task() == [
        {"type": "RequestCancelActivityTask", "scheduled_event_id": ids["activity 1"]},
        {"type": "CompleteWorkflowExecution", "result": "cleaned up"}]


@workflow.defn
class Broken:
    @workflow.run
    async def run(self, kind: str) -> None:
        if kind == "app":
            raise ApplicationError("bad input", {"field": "x"}, type="Invalid",
                                   non_retryable=True)
        raise KeyError(kind)


@workflow.defn
class Strict:
    @workflow.run
    async def run(self) -> None:
        raise KeyError("bug")


@workflow.defn(failure_exception_types=(Exception,))
class FailFast:
    @workflow.run
    async def run(self) -> None:
        raise KeyError("other")


def test_application_error_fails_the_workflow_with_its_failure() -> None:
    assert Driver(Broken, ["app"]).task() == [{"type": "FailWorkflowExecution", "failure": {
        "message": "bad input", "type": "Invalid", "non_retryable": True,
        "details": [{"field": "x"}]}}]


def test_with_failure_types_any_exception_fails_the_workflow() -> None:
    assert Driver(FailFast).task() == [{"type": "FailWorkflowExecution", "failure": {
        "message": "'other'", "type": "KeyError", "non_retryable": False}}]


def test_by_default_a_bug_fails_only_the_task_as_in_temporal() -> None:
    driver = Driver(Strict)
    with pytest.raises(errors.WorkflowTaskError) as caught:
        driver.task()
    assert isinstance(caught.value.__cause__, KeyError)


@workflow.defn
class Greedy:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.sleep(1)
        return self.signals

    @workflow.signal
    def note(self, text: str) -> None:
        self.signals.append(text)


def test_refused_answer_is_followed_by_a_full_replay() -> None:
    """The server refused our close (a signal arrived meanwhile: WorkflowTaskFailed
    UnhandledCommand); the next task must see the signal as if replayed from scratch."""
    driver = Driver(Greedy)
    ids = driver.commit(driver.task())
    driver.history.timer_fired("1", ids["timer 1"])
    assert driver.task() == [{"type": "CompleteWorkflowExecution", "result": []}]
    driver.history.fail_task()
    driver.history.signal("note", "late")
    assert driver.task() == [{"type": "CompleteWorkflowExecution", "result": ["late"]}]


@workflow.defn
class Spinner:
    @workflow.run
    async def run(self) -> None:
        while True:
            await asyncio.sleep(0)


def test_a_workflow_that_never_waits_fails_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "CALLBACKS_PER_ACTIVATION_MAX", 1_000)
    with pytest.raises(RuntimeError, match="CALLBACKS_PER_ACTIVATION_MAX"):
        Driver(Spinner).task()


@workflow.defn
class Deadline:
    @workflow.run
    async def run(self) -> str:
        try:
            await asyncio.wait_for(
                workflow.execute_activity(ship, "x", start_to_close_timeout=FAST), 3)
        except TimeoutError:
            return "too slow"
        return "in time"


def test_asyncio_wait_for_uses_a_durable_timer() -> None:
    driver = Driver(Deadline)
    commands = driver.task()
    assert [c["type"] for c in commands] == ["StartTimer", "ScheduleActivityTask"]
    ids = driver.commit(commands)
    driver.history.timer_fired("1", ids["timer 1"])
    assert driver.task() == [
        {"type": "RequestCancelActivityTask", "scheduled_event_id": ids["activity 1"]},
        {"type": "CompleteWorkflowExecution", "result": "too slow"}]


def test_server_side_close_ends_the_run() -> None:
    driver = Driver(Obedient)
    driver.commit(driver.task())
    driver.history.add("WorkflowExecutionTerminated", reason="ops", request_id="t")
    assert driver.feed() == []
    assert driver.runner.is_done


def test_history_must_continue_where_it_stopped() -> None:
    driver = Driver(Obedient)
    driver.task()
    with pytest.raises(ValueError, match="continue at event 4"):
        activate(driver.runner, driver.history.events[1:])


@workflow.defn
class DeprecatedPatch:
    """Step two of removing the ship-first patch: only the new path is left."""

    @workflow.run
    async def run(self, order: str) -> str:
        workflow.deprecate_patch("ship-first")
        shipped = await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)
        return f"v2 {shipped}"


def test_deprecate_patch_replays_histories_with_the_marker() -> None:
    driver = Driver(PatchedOrder, ["o"])
    ids = driver.commit(driver.task())  # recorded by the patched code: marker + ship
    driver.history.activity_completed(ids["activity 1"], "shipped")
    driver.commit(driver.task())
    assert activate(runner_for(DeprecatedPatch), driver.history.events) == []


def test_deprecate_patch_on_a_new_run_still_records_the_marker() -> None:
    commands = Driver(DeprecatedPatch, ["o"]).task()
    assert [c["type"] for c in commands] == ["RecordMarker", "ScheduleActivityTask"]
