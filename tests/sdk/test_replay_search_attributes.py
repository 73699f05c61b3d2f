"""Goal: `workflow.upsert_search_attributes` is deterministic under replay: it produces an
`UpsertWorkflowSearchAttributes` command in code order (datetimes sent as RFC 3339, UTC), a
history holding the server's events for it replays without new commands, and code that now
upserts other names than history recorded is a nondeterminism error naming the event.

Method: a driver plays server for one runner, writing the events the shard core writes for
each command (the upsert event carries the typed attributes, as the core records them); the
finished history is then replayed on a fresh runner, and on a runner of changed code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from raftflow.protocol.rfc3339 import parse_rfc3339_ms
from raftflow.sdk import errors, workflow
from raftflow.sdk._replay.commands import upsert_search_attributes
from tests.sdk.history_builder import Driver, HistoryBuilder, activate, runner_for

DUE = datetime(2026, 12, 6, 11, 0, 0, 250_999, tzinfo=timezone(timedelta(hours=1)))
DUE_TEXT = "2026-12-06T10:00:00.250Z"  # UTC, sub-millisecond digits dropped


@workflow.defn(name="Tagger")
class Tagger:
    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes({"CustomerId": "c1", "DueAt": DUE})
        await workflow.sleep(1)
        workflow.upsert_search_attributes({"Amount": 9, "Score": 1.5, "Vip": True})
        return "done"


@workflow.defn(name="Tagger")
class TaggerRenamed:
    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes({"Customer": "c1", "DueAt": DUE})
        await workflow.sleep(1)
        return "done"


_TYPES = {"CustomerId": "keyword", "DueAt": "datetime", "Amount": "int", "Score": "double",
          "Vip": "bool"}


def _commit(history: HistoryBuilder, commands: list[dict[str, Any]]) -> dict[str, int]:
    """The events the shard core writes for these commands (upserts typed, sorted by name)."""
    completed = history.add("WorkflowTaskCompleted", scheduled_event_id=history.scheduled_task,
                            started_event_id=history.started_task)
    ids: dict[str, int] = {}
    for command in commands:
        if command["type"] == "UpsertWorkflowSearchAttributes":
            values = command["search_attributes"]
            typed = [{"name": name, "type": _TYPES[name],
                      "value": parse_rfc3339_ms(values[name]) if _TYPES[name] == "datetime"
                      else values[name]} for name in sorted(values)]
            history.add("UpsertWorkflowSearchAttributes", search_attributes=typed,
                        workflow_task_completed_event_id=completed)
        elif command["type"] == "StartTimer":
            ids[command["timer_id"]] = history.add(
                "TimerStarted", timer_id=command["timer_id"],
                start_to_fire_timeout_ms=command["start_to_fire_timeout_ms"],
                workflow_task_completed_event_id=completed)
        else:
            assert command["type"] == "CompleteWorkflowExecution", command
            history.add("WorkflowExecutionCompleted", result=command["result"],
                        workflow_task_completed_event_id=completed)
    return ids


def _play() -> Driver:
    driver = Driver(Tagger)
    first = driver.task()
    assert first == [
        {"type": "UpsertWorkflowSearchAttributes",
         "search_attributes": {"CustomerId": "c1", "DueAt": DUE_TEXT}},
        {"type": "StartTimer", "timer_id": "1", "start_to_fire_timeout_ms": 1000}]
    timers = _commit(driver.history, first)
    driver.history.timer_fired("1", timers["1"])
    second = driver.task()
    assert second == [
        {"type": "UpsertWorkflowSearchAttributes",
         "search_attributes": {"Amount": 9, "Score": 1.5, "Vip": True}},
        {"type": "CompleteWorkflowExecution", "result": "done"}]
    _commit(driver.history, second)
    assert driver.runner.is_done
    return driver


def test_upserts_become_commands_in_code_order() -> None:
    _play()


def test_a_recorded_history_with_upserts_replays_without_new_commands() -> None:
    history = _play().history.events
    assert activate(runner_for(Tagger), history) == []


def test_upserting_other_names_than_history_recorded_is_nondeterminism() -> None:
    history = _play().history.events
    with pytest.raises(errors.NondeterminismError) as caught:
        activate(runner_for(TaggerRenamed), history)
    assert caught.value.event_id == 5  # started, scheduled, started, completed, the upsert
    assert "UpsertWorkflowSearchAttributes" in str(caught.value)
    assert "Customer" in str(caught.value)


def test_values_of_no_attribute_type_are_refused_in_the_workflow() -> None:
    with pytest.raises(TypeError, match="search attribute When"):
        upsert_search_attributes({"When": datetime(2026, 1, 1)})  # no timezone
    with pytest.raises(TypeError, match="search attribute Tags"):
        upsert_search_attributes({"Tags": ["a", "b"]})
    with pytest.raises(ValueError, match="at least one"):
        upsert_search_attributes({})
    assert upsert_search_attributes({"DueAt": DUE.astimezone(UTC)}).search_attributes == {
        "DueAt": DUE_TEXT}
