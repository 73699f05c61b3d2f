"""The checker reports acknowledgements the cluster did not keep.

Goal: a start, a signal or a result the client was told about and the cluster lost is a
`no_lost_ack` (and the run then fails `acked_start_completes`), with a detail that quotes what
was acknowledged and what the cluster has; a run continued as new is followed to its end.

Method: `checker_evidence._world` builds clean evidence by hand in the engine's
history shape; each test doctors one piece and compares the exact set of
(invariant, subject) pairs reported, then quotes the detail.
"""

from __future__ import annotations

import copy
import dataclasses

from raftflow.chaos import checker
from tests.chaos.checker_evidence import (
    PLAN,
    Event,
    _details,
    _edit_history,
    _edit_run,
    _found,
    _renumber,
    _run,
    _set_result,
    _world,
)


def test_an_acked_start_with_no_run_is_a_lost_ack_and_never_completes() -> None:
    obs = _world()
    obs = dataclasses.replace(obs, runs=tuple(r for r in obs.runs if r is not _run(obs)))
    violations = checker.check(obs)
    assert _found(violations) == {("no_lost_ack", "wf-1"), ("acked_start_completes", "wf-1")}
    lost = _details(violations, "no_lost_ack")
    assert "start acknowledged with run run-wf-1 at 0.5 s" in lost
    assert "run run-wf-1 completed with" in lost and "the cluster has no such run" in lost
    assert "request signal-wf-1-beta-0" in lost  # the acked signals are gone with it
    assert "expected run run-wf-1 to be COMPLETED; the cluster has no such run" in _details(
        violations, "acked_start_completes")


def test_a_completion_the_cluster_forgot_after_telling_the_client_is_reported() -> None:
    obs = _edit_run(_world(), lambda r: dataclasses.replace(
        r, status="RUNNING", result=None, history=r.history[:-1], pending_workflow_task=True))
    violations = checker.check(obs)
    assert _found(violations) == {("no_lost_ack", "wf-1"), ("acked_start_completes", "wf-1")}
    assert "the cluster has RUNNING with None" in _details(violations, "no_lost_ack")
    assert "run run-wf-1 is RUNNING at quiescence, expected COMPLETED" in _details(
        violations, "acked_start_completes")


def test_a_client_told_a_result_the_cluster_does_not_have_is_reported() -> None:
    obs = _world()
    told = dataclasses.replace(obs.client_results[0], result={"activities": [], "signals": []})
    violations = checker.check(dataclasses.replace(
        obs, client_results=(told, *obs.client_results[1:])))
    assert _found(violations) == {("no_lost_ack", "wf-1")}
    assert "completed with {'activities': [], 'signals': []}; the cluster has COMPLETED with" \
        in _details(violations, "no_lost_ack")


def test_an_acked_signal_missing_from_the_history_is_reported() -> None:
    def drop_last_signal(history: list[Event]) -> None:
        last = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"][-1]
        history.remove(last)
        _renumber(history)
    obs = _edit_history(_world(), drop_last_signal)
    obs = _set_result(obs, {**_run(obs).result, "signals": [["alpha", 0], ["beta", 0]]})
    violations = checker.check(obs)
    assert _found(violations) == {("no_lost_ack", "wf-1"), ("acked_start_completes", "wf-1")}
    assert "signal alpha#1 (request signal-wf-1-alpha-1) acknowledged at 5.0 s" in _details(
        violations, "no_lost_ack")
    started = _details(violations, "acked_start_completes")
    assert "acknowledged signals ('alpha', 1) are not in its result" in started
    assert "expected at least 3" in started


def test_a_run_continued_as_new_is_followed_to_its_completion() -> None:
    obs = _world([PLAN])
    first = _run(obs)
    head = [copy.deepcopy(e) for e in first.history[:4]]
    head.append({"event_id": 5, "event_type": "WorkflowExecutionContinuedAsNew",
                 "timestamp": "2026-12-02T20:00:05.000+00:00",
                 "attributes": {"new_execution_run_id": "run-2"}})
    continued = dataclasses.replace(first, status="CONTINUED_AS_NEW", result=None,
                                    history=tuple(head))
    second = dataclasses.replace(first, run_id="run-2")
    obs = dataclasses.replace(obs, runs=(continued, second), client_results=tuple(
        dataclasses.replace(c, run_id="run-2") for c in obs.client_results))
    assert checker.check(obs) == ()
    broken = dataclasses.replace(obs, runs=(continued,), client_results=())
    violations = checker.check(broken)
    assert _found(violations) == {("acked_start_completes", "wf-1"), ("no_lost_ack", "wf-1")}
    assert "expected run run-2, continued from acked run run-wf-1, to be COMPLETED; the " \
        "cluster has no such run" in _details(violations, "acked_start_completes")
