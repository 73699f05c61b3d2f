"""The checker's answer is sorted, deduplicated, counted and bounded, even on strange input.

Goal: violations come sorted and unique with short details and counts that add up, and evidence
of the wrong types is reported rather than crashing the checker.

Method: `checker_evidence._world` builds clean evidence by hand in the engine's
history shape; each test doctors one piece and compares the exact set of
(invariant, subject) pairs reported, then quotes the detail.
"""

from __future__ import annotations

import dataclasses

from raftflow.chaos import checker
from tests.chaos.checker_evidence import (
    Event,
    _details,
    _edit_history,
    _first,
    _world,
)


def test_violations_are_sorted_deduplicated_counted_and_bounded() -> None:
    obs = _world()
    huge = {"activities": ["x" * 10_000] * 50, "signals": []}
    told = dataclasses.replace(obs.client_results[0], result=huge)
    obs = dataclasses.replace(obs, runs=(), client_results=(told, told))
    violations = checker.check(obs)
    assert list(violations) == sorted(violations)
    assert len(violations) == len(set(violations))
    lost = [v for v in violations if v.detail.startswith("the client was told")]
    assert len(lost) == 1  # two identical receipts, one violation
    assert all(len(v.detail) < 600 for v in violations)
    counts = checker.invariant_counts(violations)
    assert counts["no_lost_ack"] == 2 + 3 + 1  # 2 starts, 3 signals, 1 told result
    assert counts["acked_start_completes"] == 2
    assert sum(counts.values()) == len(violations)


def test_strange_evidence_is_reported_not_crashed_on() -> None:
    def garble(history: list[Event]) -> None:
        history[1]["event_id"] = [2]
        history[1]["attributes"] = None
        _first(history, "WorkflowExecutionSignaled")["attributes"]["input"] = [["alpha"], {}]
        _first(history, "ActivityTaskScheduled")["attributes"]["activity_id"] = "07"
    violations = checker.check(_edit_history(_world(), garble))
    assert {"history_well_formed", "activity_result_produced", "signals_exactly_once"} <= {
        v.invariant for v in violations}
    assert "position 2 holds event id [2], expected 2" in _details(
        violations, "history_well_formed")
    assert "activity '07' completed" in _details(violations, "activity_result_produced")
