"""The checker accepts real evidence and reports each kind of doctored violation.

Goal: every invariant of `checker.INVARIANTS` fires on the violation it names, with the right
subject, and stays quiet on a real run.
Method: tests/data/chaos_observations.json holds three workflows of a real chaos run (seed 1,
180 s, every fault kind; a retried activity, parallel activities, a timer, signals from two
senders) with that run's digests and leader claims. Each test doctors one piece of it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from raftflow.chaos import checker
from raftflow.chaos.observations import (
    ActivityExecution,
    ClientResult,
    LeaderSample,
    Observations,
    ReplicaDigest,
    RunRecord,
    SignalAck,
    StartAck,
    Violation,
    WorkflowPlan,
)

DATA = Path(__file__).parent.parent / "data" / "chaos_observations.json"
SIGNALLED = "chaos-1-3"  # 3 sequential + 2 parallel activities, a timer, 3 signals
RETRIED = "chaos-1-0"  # its first activity failed once and ran again (and one signal)


def _load() -> dict[str, Any]:
    return dict(json.loads(DATA.read_text()))


def _observations(raw: dict[str, Any]) -> Observations:
    return Observations(
        starts=tuple(StartAck(plan=WorkflowPlan(**s["plan"]), run_id=s["run_id"],
                              request_id=s["request_id"], acked_at_s=s["acked_at_s"])
                     for s in raw["starts"]),
        signals=tuple(SignalAck(**s) for s in raw["signals"]),
        executions=tuple(ActivityExecution(**e) for e in raw["executions"]),
        client_results=tuple(ClientResult(**c) for c in raw["client_results"]),
        runs=tuple(RunRecord(**{**r, "history": tuple(r["history"])}) for r in raw["runs"]),
        digests=tuple(ReplicaDigest(**d) for d in raw["digests"]),
        leader_samples=tuple(LeaderSample(**s) for s in raw["leader_samples"]))


def _run(raw: dict[str, Any], workflow_id: str) -> dict[str, Any]:
    return next(r for r in raw["runs"] if r["workflow_id"] == workflow_id)


def _insert_copy_before_close(history: list[dict[str, Any]], event_type: str) -> None:
    """Repeat the first `event_type` event just before the close event, ids renumbered 1..n
    (so only the repeat itself is wrong)."""
    original = next(e for e in history if e["event_type"] == event_type)
    history.insert(-1, copy.deepcopy(original))
    _renumber(history)


def _renumber(history: list[dict[str, Any]]) -> None:
    for position, event in enumerate(history, start=1):
        event["event_id"] = position


def _only(violations: tuple[Violation, ...], invariant: str, subject: str) -> Violation:
    """The `invariant` violations, all about `subject`, as one (details joined by newlines)."""
    matching = [v for v in violations if v.invariant == invariant]
    assert matching, f"no {invariant} violation in {violations}"
    assert all(v.subject.startswith(subject) for v in matching), matching
    return Violation(invariant=invariant, subject=matching[0].subject,
                     detail="\n".join(v.detail for v in matching))


def test_a_real_run_has_no_violation_and_covers_what_the_doctored_tests_need() -> None:
    raw = _load()
    assert checker.check(_observations(raw)) == ()
    assert len(_run(raw, SIGNALLED)["result"]["signals"]) == 3
    assert any(e["event_type"] == "ActivityTaskStarted" and e["attributes"]["attempt"] == 2
               for e in _run(raw, RETRIED)["history"])
    counts = checker.invariant_counts(())
    assert list(counts) == [name for name, _ in checker.INVARIANTS]
    assert set(counts.values()) == {0}


def test_a_lost_completion_is_reported() -> None:
    raw = _load()
    raw["runs"] = [r for r in raw["runs"] if r["workflow_id"] != RETRIED]
    violations = checker.check(_observations(raw))
    detail = _only(violations, "no_lost_ack", RETRIED).detail
    assert "no such run" in detail
    assert {v.invariant for v in violations} == {"no_lost_ack"}


def test_a_completion_the_cluster_forgot_after_telling_the_client_is_reported() -> None:
    raw = _load()
    run = _run(raw, RETRIED)
    run["status"] = "RUNNING"
    run["result"] = None
    run["history"] = run["history"][:-1]
    run["pending_activity_count"] = 1  # not stuck: only the lost completion is at fault
    violations = checker.check(_observations(raw))
    assert "completed with" in _only(violations, "no_lost_ack", RETRIED).detail
    assert "RUNNING" in _only(violations, "acked_start_completes", RETRIED).detail


def test_a_duplicated_event_is_reported() -> None:
    raw = _load()
    history = _run(raw, SIGNALLED)["history"]
    history.insert(5, copy.deepcopy(history[4]))
    violation = _only(checker.check(_observations(raw)), "history_well_formed", SIGNALLED)
    assert "appears 2 times" in violation.detail or "not 1.." in violation.detail


def test_a_gap_in_event_ids_is_reported() -> None:
    raw = _load()
    history = _run(raw, SIGNALLED)["history"]
    for event in history[6:]:
        event["event_id"] += 1
    violation = _only(checker.check(_observations(raw)), "history_well_formed", SIGNALLED)
    assert "position 7 holds 8" in violation.detail


def test_a_close_event_that_is_not_last_or_twice_is_reported() -> None:
    raw = _load()
    history = _run(raw, RETRIED)["history"]
    history[-2], history[-1] = history[-1], history[-2]
    _renumber(history)
    violation = _only(checker.check(_observations(raw)), "history_well_formed", RETRIED)
    assert "not the last" in violation.detail
    raw = _load()
    history = _run(raw, RETRIED)["history"]
    history.append({**copy.deepcopy(history[-1]), "event_id": len(history) + 1})
    assert any("2 close events" in v.detail for v in checker.check(_observations(raw)))


def test_an_activity_completed_twice_or_for_nothing_scheduled_is_reported() -> None:
    raw = _load()
    history = _run(raw, RETRIED)["history"]
    _insert_copy_before_close(history, "ActivityTaskCompleted")
    violations = checker.check(_observations(raw))
    assert "closed 2 times" in _only(violations, "history_well_formed", RETRIED).detail
    raw = _load()
    history = _run(raw, RETRIED)["history"]
    completed = next(e for e in history if e["event_type"] == "ActivityTaskCompleted")
    completed["attributes"]["scheduled_event_id"] = 999
    violations = checker.check(_observations(raw))
    assert "not an earlier ActivityTaskScheduled" in _only(
        violations, "history_well_formed", RETRIED).detail


def test_an_activity_result_no_execution_produced_is_reported() -> None:
    raw = _load()
    token = _run(raw, SIGNALLED)["result"]["activities"][3]
    raw["executions"] = [e for e in raw["executions"] if e["token"] != token]
    violations = checker.check(_observations(raw))
    details = [v.detail for v in violations if v.invariant == "activity_result_produced"]
    assert any("no execution produced" in d and token in d for d in details)
    assert any("have no execution in the log" in d and "[3]" in d for d in details)


def test_a_signal_delivered_twice_is_reported() -> None:
    raw = _load()
    history = _run(raw, SIGNALLED)["history"]
    _insert_copy_before_close(history, "WorkflowExecutionSignaled")
    violations = checker.check(_observations(raw))
    detail = _only(violations, "signals_exactly_once", SIGNALLED).detail
    assert "more than once" in detail or "duplicate" in detail


def test_signals_out_of_order_per_sender_are_reported() -> None:
    raw = _load()
    run = _run(raw, SIGNALLED)
    alpha = [s for s in run["result"]["signals"] if s[0] == "alpha"]
    assert len(alpha) == 2
    first, second = (run["result"]["signals"].index(s) for s in alpha)
    signals = run["result"]["signals"]
    signals[first], signals[second] = signals[second], signals[first]
    raw["client_results"] = [c for c in raw["client_results"] if c["workflow_id"] != SIGNALLED]
    violation = _only(checker.check(_observations(raw)), "signals_exactly_once", SIGNALLED)
    assert "result: signal alpha#0 after alpha#1" in violation.detail


def test_an_acknowledged_signal_missing_from_the_history_is_reported() -> None:
    raw = _load()
    history = _run(raw, SIGNALLED)["history"]
    signaled = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"]
    signaled[-1]["attributes"]["request_id"] = "someone-else"
    violation = _only(checker.check(_observations(raw)), "no_lost_ack", SIGNALLED)
    assert "in no history" in violation.detail


def test_a_stuck_open_run_and_two_open_runs_are_reported() -> None:
    raw = _load()
    run = _run(raw, RETRIED)
    open_run = {**copy.deepcopy(run), "run_id": "other-run", "status": "RUNNING",
                "result": None, "history": run["history"][:4], "pending_activity_count": 0,
                "pending_timer_count": 0, "pending_workflow_task": False}
    second = {**copy.deepcopy(open_run), "run_id": "third-run", "pending_workflow_task": True}
    raw["runs"] += [open_run, second]
    violations = checker.check(_observations(raw))
    assert _only(violations, "no_stuck_workflow", f"{RETRIED}/other-run").subject == (
        f"{RETRIED}/other-run")
    assert "2 open runs" in _only(violations, "one_open_run", RETRIED).detail


@pytest.mark.parametrize("field", ["digest", "applied_index"])
def test_diverging_replicas_are_reported(field: str) -> None:
    raw = _load()
    digest = raw["digests"][4]
    digest[field] = "0" * 64 if field == "digest" else digest[field] - 1
    violation = _only(checker.check(_observations(raw)), "replicas_agree",
                      f"shard {digest['shard']}")
    assert ("different state" if field == "digest" else "never converged") in violation.detail


def test_two_leaders_in_one_term_are_reported() -> None:
    raw = _load()
    sample = raw["leader_samples"][0]
    other = next(n for n in ("node-1", "node-2", "node-3") if n != sample["node"])
    raw["leader_samples"].append({**sample, "node": other, "at_s": sample["at_s"] + 1})
    violation = _only(checker.check(_observations(raw)), "one_leader_per_term",
                      f"shard {sample['shard']}")
    assert f"term {sample['term']}" in violation.detail and other in violation.detail


def test_a_wrong_result_for_an_acknowledged_start_is_reported() -> None:
    raw = _load()
    run = _run(raw, SIGNALLED)
    run["result"] = {**run["result"], "activities": run["result"]["activities"][:2]}
    violations = checker.check(_observations(raw))
    assert "expected 5 tokens" in _only(violations, "acked_start_completes", SIGNALLED).detail


def test_violations_are_sorted_and_serialisable() -> None:
    raw = _load()
    raw["runs"] = []
    violations = checker.check(_observations(raw))
    assert list(violations) == sorted(violations) and len(violations) >= 3
    assert all(set(v.to_json()) == {"invariant", "subject", "detail"} for v in violations)
    assert dataclasses.replace(violations[0], detail="other") != violations[0]


def test_a_timer_fired_twice_is_reported() -> None:
    raw = _load()
    history = _run(raw, SIGNALLED)["history"]
    _insert_copy_before_close(history, "TimerFired")
    violation = _only(checker.check(_observations(raw)), "history_well_formed", SIGNALLED)
    assert "fired 2 times" in violation.detail
