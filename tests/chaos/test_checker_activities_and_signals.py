"""The checker reports activity results nobody produced and signals not delivered exactly once.

Goal: a token that no activity execution produced, or of the wrong index, fires
`activity_result_produced`; a signal delivered twice, out of order per sender, or with other
input fires `signals_exactly_once`; an unacknowledged signal is legal once.

Method: `checker_evidence._world` builds clean evidence by hand in the engine's
history shape; each test doctors one piece and compares the exact set of
(invariant, subject) pairs reported, then quotes the detail.
"""

from __future__ import annotations

import copy
import dataclasses

from raftflow.chaos import checker
from tests.chaos.checker_evidence import (
    Event,
    _details,
    _edit_history,
    _first,
    _found,
    _insert_copy_before_close,
    _renumber,
    _run,
    _set_result,
    _token,
    _world,
)

# -- activity results -----------------------------------------------------------------------------


def test_an_activity_result_no_execution_produced_is_reported() -> None:
    obs = _world()
    token = _token("wf-1", 3)
    obs = dataclasses.replace(obs, executions=tuple(
        e for e in obs.executions if e.token != token))
    violations = checker.check(obs)
    assert _found(violations) == {("activity_result_produced", "wf-1"),
                                  ("acked_start_completes", "wf-1")}
    detail = _details(violations, "activity_result_produced")
    assert f"activity '3' completed with '{token}', expected a token" in detail
    assert f"run run-wf-1's result has '{token}' for activity 3" in detail
    assert "activity indexes 3 of 4 have no execution in the log" in detail
    assert "tokens at indexes 3 were not produced" in _details(
        violations, "acked_start_completes")


def test_a_token_of_another_activity_index_is_reported() -> None:
    obs = _world()
    swapped = list(_run(obs).result["activities"])
    swapped[0], swapped[1] = swapped[1], swapped[0]
    violations = checker.check(_set_result(obs, {**_run(obs).result, "activities": swapped}))
    assert _found(violations) == {("activity_result_produced", "wf-1"),
                                  ("acked_start_completes", "wf-1")}
    assert "result has 'wf-1/1/1/t1' for activity 0" in _details(
        violations, "activity_result_produced")
    assert "tokens at indexes 0, 1 were not produced" in _details(
        violations, "acked_start_completes")


def test_a_result_with_too_few_tokens_is_reported() -> None:
    obs = _world()
    short = {**_run(obs).result, "activities": _run(obs).result["activities"][:2]}
    violations = checker.check(_set_result(obs, short))
    assert _found(violations) == {("acked_start_completes", "wf-1")}
    assert "expected a list of 4 tokens" in _details(violations, "acked_start_completes")


# -- signals --------------------------------------------------------------------------------------


def test_a_signal_delivered_twice_is_reported() -> None:
    obs = _edit_history(_world(), _insert_copy_before_close("WorkflowExecutionSignaled"))
    violations = checker.check(obs)
    assert _found(violations) == {("signals_exactly_once", "wf-1")}
    detail = _details(violations, "signals_exactly_once")
    assert "acknowledged signal request signal-wf-1-alpha-0 delivered 2 times" in detail
    assert "history: signal alpha#0 appears 2 times" in detail


def test_signals_out_of_order_per_sender_in_history_are_reported() -> None:
    def swap_alphas(history: list[Event]) -> None:
        alphas = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"
                  and e["attributes"]["input"][0] == "alpha"]
        alphas[0]["attributes"], alphas[1]["attributes"] = (alphas[1]["attributes"],
                                                           alphas[0]["attributes"])
    violations = checker.check(_edit_history(_world(), swap_alphas))
    assert _found(violations) == {("signals_exactly_once", "wf-1")}
    detail = _details(violations, "signals_exactly_once")
    assert "run run-wf-1 history: signal alpha#0 comes after alpha#1" in detail
    assert "are not the first 3 signals of its history" in detail


def test_signals_out_of_order_or_repeated_in_the_result_are_reported() -> None:
    obs = _world()
    reordered = {**_run(obs).result, "signals": [["alpha", 1], ["beta", 0], ["alpha", 0]]}
    violations = checker.check(_set_result(obs, reordered))
    assert _found(violations) == {("signals_exactly_once", "wf-1")}
    assert "result: signal alpha#0 comes after alpha#1" in _details(
        violations, "signals_exactly_once")
    repeated = {**_run(obs).result,
                "signals": [["alpha", 0], ["beta", 0], ["alpha", 1], ["alpha", 1]]}
    detail = _details(checker.check(_set_result(obs, repeated)), "signals_exactly_once")
    assert "result: signal alpha#1 appears 2 times, expected at most once" in detail


def test_an_acked_signal_delivered_with_other_input_is_reported() -> None:
    def corrupt(history: list[Event]) -> None:
        _first(history, "WorkflowExecutionSignaled")["attributes"]["input"] = ["alpha", 7]
    obs = _edit_history(_world(), corrupt)
    violations = checker.check(_set_result(obs, {
        **_run(obs).result, "signals": [["alpha", 7], ["beta", 0], ["alpha", 1]]}))
    assert ("signals_exactly_once", "wf-1") in _found(violations)
    assert "signal request signal-wf-1-alpha-0 has input ['alpha', 7], expected " \
        "['alpha', 0]" in _details(violations, "signals_exactly_once")


def test_an_unacknowledged_signal_is_legal_once_but_not_twice() -> None:
    def extra(history: list[Event]) -> None:
        signal = copy.deepcopy(_first(history, "WorkflowExecutionSignaled"))
        signal["attributes"] = {**signal["attributes"], "input": ["gamma", 0],
                                "request_id": "never-acked"}
        history.insert(-1, signal)
        _renumber(history)
    once = _edit_history(_world(), extra)
    assert checker.check(once) == ()
    twice = _edit_history(once, extra)
    detail = _details(checker.check(twice), "signals_exactly_once")
    assert "unacknowledged signal request never-acked delivered 2 times" in detail
