"""Goal: signals reach their handlers in history order exactly once, whether they arrive
before the first task, several in one task or one per task, and whether the runner is sticky
or replays from scratch; wait_condition wakes on them or times out on a durable timer; queries
read the state and cannot change it.

Method: a `Driver` plays the server with hand-made histories; handler calls are recorded in
the workflow instance and read back with a query after every step and after a full replay.
"""

from __future__ import annotations

from typing import Any

import pytest

from raftflow.sdk import errors, workflow
from tests.sdk.history_builder import Driver, activate, runner_for
from tests.sdk.sample_workflows import FAST, ship


@workflow.defn
class Collector:
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: self.done)
        return self.seen

    @workflow.signal
    def add(self, *items: Any) -> None:
        self.seen.append(list(items))

    @workflow.signal(name="async-add")
    async def add_later(self, item: Any) -> None:
        await workflow.execute_activity(ship, item, start_to_close_timeout=FAST)
        self.seen.append(f"async {item}")

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def items(self) -> list[Any]:
        return self.seen

    @workflow.query
    def meddle(self) -> None:
        workflow.patched("nope")


def test_signals_in_history_order_exactly_once() -> None:
    driver = Driver(Collector)
    driver.history.signal("add", 1)  # arrives before the first task starts
    assert driver.task() == []
    driver.commit([])
    driver.history.signal("add", 2, "x")
    driver.history.signal("unknown", 0)  # no handler: dropped
    driver.history.signal("add", 3)
    assert driver.task() == []
    assert driver.runner.query("items", []) == [[1], [2, "x"], [3]]
    driver.commit([])
    driver.history.signal("add", 4)
    driver.history.signal("finish")
    last = driver.task()
    assert last == [{"type": "CompleteWorkflowExecution", "result": [[1], [2, "x"], [3], [4]]}]
    driver.commit(last)
    fresh = runner_for(Collector)
    assert activate(fresh, driver.history.events) == []
    assert fresh.query("items", []) == [[1], [2, "x"], [3], [4]]


def test_async_signal_handler_runs_activities() -> None:
    driver = Driver(Collector)
    driver.history.signal("async-add", "p")
    commands = driver.task()
    assert [c["input"] for c in commands] == [["p"]]
    ids = driver.commit(commands)
    driver.history.activity_completed(ids["activity 1"], "ok")
    driver.history.signal("finish")
    assert driver.task() == [{"type": "CompleteWorkflowExecution", "result": ["async p"]}]


def test_queries_cannot_issue_commands_and_unknown_queries_fail() -> None:
    driver = Driver(Collector)
    with pytest.raises(errors.QueryFailedError, match="not started"):
        driver.runner.query("items", [])
    driver.task()
    with pytest.raises(errors.QueryFailedError, match="may not issue RecordMarker"):
        driver.runner.query("meddle", [])
    with pytest.raises(errors.QueryFailedError, match="no query 'nope'"):
        driver.runner.query("nope", [])
    with pytest.raises(errors.QueryFailedError, match="TypeError"):
        driver.runner.query("items", [1])
    assert driver.runner.query("items", []) == []


@workflow.defn
class Patient:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.go, timeout=2)
        except TimeoutError:
            return "timeout"
        return "released"

    @workflow.signal
    def release(self) -> None:
        self.go = True


def test_wait_condition_times_out_on_a_durable_timer() -> None:
    driver = Driver(Patient)
    assert driver.task() == [{"type": "StartTimer", "timer_id": "1",
                              "start_to_fire_timeout_ms": 2000}]
    ids = driver.commit([{"type": "StartTimer", "timer_id": "1",
                          "start_to_fire_timeout_ms": 2000}])
    driver.history.timer_fired("1", ids["timer 1"])
    assert driver.task() == [{"type": "CompleteWorkflowExecution", "result": "timeout"}]


def test_wait_condition_released_by_a_signal_cancels_its_timer() -> None:
    driver = Driver(Patient)
    driver.commit(driver.task())
    driver.history.signal("release")
    assert driver.task() == [{"type": "CancelTimer", "timer_id": "1"},
                             {"type": "CompleteWorkflowExecution", "result": "released"}]


def test_wait_condition_already_true_does_not_wait() -> None:
    driver = Driver(Patient)
    driver.history.signal("release")
    assert driver.task() == [{"type": "CompleteWorkflowExecution", "result": "released"}]
