"""The checker reports each kind of malformed history.

Goal: duplicated or missing event ids, misplaced or repeated close events, activities and
timers closed twice or referring to the wrong event all fire `history_well_formed` on the run,
with a detail naming the event and what was expected; so does an event that does not decode
into the protocol's typed events, without hiding the rest of its run from the checks.

Method: `checker_evidence._world` builds clean evidence by hand in the engine's
history shape; each test doctors one piece and compares the exact set of
(invariant, subject) pairs reported, then quotes the detail.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

from raftflow.chaos import checker
from tests.chaos.checker_evidence import (
    RUN,
    Event,
    _details,
    _edit_history,
    _edit_run,
    _first,
    _found,
    _insert_copy_before_close,
    _renumber,
    _world,
)


def test_a_duplicated_event_is_reported() -> None:
    obs = _edit_history(_world(), lambda h: h.insert(2, copy.deepcopy(h[1])))
    violations = checker.check(obs)
    assert _found(violations) == {("history_well_formed", RUN)}
    detail = _details(violations, "history_well_formed")
    assert "event id 2 appears 2 times, expected once" in detail
    assert "position 3 holds event id 2, expected 3" in detail


def test_a_gap_in_event_ids_is_reported() -> None:
    def gap(history: list[Event]) -> None:
        history[-1]["event_id"] += 1
    violations = checker.check(_edit_history(_world(), gap))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert _details(violations, "history_well_formed") == (
        "event ids are not 1..37: position 37 holds event id 38, expected 37")


def test_a_close_event_that_is_not_last_is_reported() -> None:
    def swap(history: list[Event]) -> None:
        history[-2], history[-1] = history[-1], history[-2]
        _renumber(history)
    violations = checker.check(_edit_history(_world(), swap))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert _details(violations, "history_well_formed") == (
        "close event WorkflowExecutionCompleted is event 36 of 37, expected it last")


def test_two_close_events_or_one_on_an_open_run_are_reported() -> None:
    def close_twice(history: list[Event]) -> None:
        history.append({**copy.deepcopy(history[-1]), "event_id": len(history) + 1})
    violations = checker.check(_edit_history(_world(), close_twice))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "run is COMPLETED with 2 close events (WorkflowExecutionCompleted, " \
        "WorkflowExecutionCompleted), expected exactly one" in _details(
            violations, "history_well_formed")
    reopened = _edit_run(_world(), lambda r: dataclasses.replace(r, status="RUNNING",
                                                                 pending_workflow_task=True))
    detail = _details(checker.check(reopened), "history_well_formed")
    assert detail == "run is RUNNING but event 37 is close event WorkflowExecutionCompleted, " \
        "expected none"


def test_a_close_event_that_contradicts_the_status_is_reported() -> None:
    obs = _edit_run(_world(), lambda r: dataclasses.replace(r, status="FAILED"))
    violations = checker.check(obs)
    assert ("history_well_formed", RUN) in _found(violations)
    assert "run is FAILED but closed by WorkflowExecutionCompleted, expected " \
        "WorkflowExecutionFailed" in _details(violations, "history_well_formed")


def test_a_completed_activity_referring_to_an_unscheduled_event_is_reported() -> None:
    def misdirect(history: list[Event]) -> None:
        _first(history, "ActivityTaskCompleted")["attributes"]["scheduled_event_id"] = 999
    violations = checker.check(_edit_history(_world(), misdirect))
    # The completion names no activity, so its token is no activity index's either.
    assert _found(violations) == {("history_well_formed", RUN),
                                  ("activity_result_produced", "wf-1")}
    detail = _details(violations, "history_well_formed")
    assert "ActivityTaskCompleted (event 7) refers to scheduled event 999, expected an " \
        "earlier ActivityTaskScheduled" in detail
    assert "ActivityTaskStarted (event 6) for the activity scheduled at event 5 has no close " \
        "event" in detail


def test_an_activity_closed_twice_or_started_twice_is_reported() -> None:
    violations = checker.check(_edit_history(
        _world(), _insert_copy_before_close("ActivityTaskCompleted")))
    # The repeat's result is a real token: only the shape is wrong.
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "ActivityTaskCompleted (event 37) for the activity scheduled at event 5, which " \
        "already closed at event 7" in _details(violations, "history_well_formed")

    def start_twice(history: list[Event]) -> None:
        history.insert(6, copy.deepcopy(history[5]))  # a second Started, attempt 1 again
        _renumber(history)
        _first(history, "ActivityTaskCompleted")["attributes"]["started_event_id"] = 7
    violations = checker.check(_edit_history(_world(), start_twice))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "activity scheduled at event 5 started at events 6 and 7, expected at most once" \
        in _details(violations, "history_well_formed")


def test_a_close_naming_the_wrong_started_event_is_reported() -> None:
    def misname(history: list[Event]) -> None:
        _first(history, "ActivityTaskCompleted")["attributes"]["started_event_id"] = 0
    violations = checker.check(_edit_history(_world(), misname))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "ActivityTaskCompleted (event 7) has started_event_id 0, expected 6" in _details(
        violations, "history_well_formed")


def test_a_timer_fired_twice_or_for_no_timer_is_reported() -> None:
    violations = checker.check(_edit_history(_world(), _insert_copy_before_close("TimerFired")))
    assert _found(violations) == {("history_well_formed", RUN)}
    detail = _details(violations, "history_well_formed")
    assert "timer started at event 26 ended at events 27 and 37 (TimerFired), expected once" \
        in detail

    def orphan(history: list[Event]) -> None:
        _first(history, "TimerFired")["attributes"]["started_event_id"] = 3
    detail = _details(checker.check(_edit_history(_world(), orphan)), "history_well_formed")
    assert detail == "TimerFired (event 27) refers to started event 3, expected an earlier " \
        "TimerStarted"


# -- events that do not decode --------------------------------------------------------------------

_GARBLES = {
    "not an object": (lambda e: "not an event", "a JSON str, not an object"),
    "no timestamp": (lambda e: {k: v for k, v in e.items() if k != "timestamp"},
                     "event 3: no 'timestamp'"),
    "timestamp without a zone": (lambda e: {**e, "timestamp": "2026-12-02T20:00:03.000"},
                                 "timestamp '2026-12-02T20:00:03.000' has no zone"),
    "unknown event type": (lambda e: {**e, "event_type": "WorkflowTaskPaused"},
                           "unknown event_type 'WorkflowTaskPaused'"),
    "reference of the wrong type": (
        lambda e: {**e, "attributes": {**e["attributes"], "scheduled_event_id": "2"}},
        "Expected `int`, got `str`"),
    "id that is a bool": (lambda e: {**e, "event_id": True}, "Expected `int`, got `bool`"),
}


@pytest.mark.parametrize("garble", list(_GARBLES), ids=str)
def test_an_event_that_does_not_decode_is_reported_on_its_run(garble: str) -> None:
    change, error = _GARBLES[garble]

    def edit(history: list[Event]) -> None:
        history[2] = change(history[2])  # event 3, the first WorkflowTaskStarted
    violations = checker.check(_edit_history(_world(), edit))
    # Nothing else refers to a workflow task's Started event, so only its run's shape is wrong.
    assert _found(violations) == {("history_well_formed", RUN)}
    detail = _details(violations, "history_well_formed")
    assert "event at position 3 " in detail and f"does not decode: {error}" in detail


def test_an_event_that_does_not_decode_hides_nothing_else_of_its_run() -> None:
    def garble_and_lose_a_signal(history: list[Event]) -> None:
        history[1]["attributes"] = [1]
        signals = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"]
        signals[-1]["attributes"]["request_id"] = "someone-else"
    violations = checker.check(_edit_history(_world(), garble_and_lose_a_signal))
    assert ("history_well_formed", RUN) in _found(violations)
    assert "signal alpha#1 (request signal-wf-1-alpha-1) acknowledged" in _details(
        violations, "no_lost_ack")
