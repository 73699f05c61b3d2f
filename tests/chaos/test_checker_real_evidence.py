"""The checker stays quiet on clean and real evidence, and sees any one broken event.

Goal: no false alarm on evidence the engine and workload really produce, every invariant of
`checker.INVARIANTS` counted, and a single dropped or repeated event always caught.

Method: clean evidence from `checker_evidence._world`; a real chaos run
(tests/data/chaos_observations.json: seed 1, a retried activity, parallel activities, a timer,
signals from two senders); the golden histories recorded from a dev cluster
(tests/data/histories/). Hypothesis draws plans and single-event corruptions.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.chaos import checker
from raftflow.chaos.history_checks import (
    CLOSE_EVENT_OF_STATUS,
    decode_history,
    history_problems,
)
from raftflow.chaos.observations import (
    ActivityExecution,
    ClientResult,
    LeaderSample,
    Observations,
    ReplicaDigest,
    RunRecord,
    SignalAck,
    StartAck,
    WorkflowPlan,
)
from tests.chaos.checker_evidence import (
    RUN,
    Event,
    _edit_history,
    _found,
    _run,
    _world,
)

DATA = Path(__file__).parent.parent / "data"
REAL_RUN = DATA / "chaos_observations.json"
GOLDEN = sorted((DATA / "histories").glob("*.json"))
STATUS_OF_CLOSE = {event: status for status, event in CLOSE_EVENT_OF_STATUS.items()}


def _real_observations() -> Observations:
    raw = json.loads(REAL_RUN.read_text())
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


def test_clean_evidence_has_no_violation_and_every_invariant_is_counted() -> None:
    obs = _world()
    assert len(_run(obs).history) == 37 and len(obs.signals) == 3
    assert checker.check(obs) == ()
    counts = checker.invariant_counts(())
    assert list(counts) == [name for name, _ in checker.INVARIANTS]
    assert list(counts) == ["acked_start_completes", "no_lost_ack", "history_well_formed",
                            "activity_result_produced", "signals_exactly_once", "one_open_run",
                            "no_stuck_workflow", "replicas_agree", "one_leader_per_term",
                            "replication_restored", "membership_completes",
                            "messages_exactly_once"]
    assert set(counts.values()) == {0}


def test_a_real_chaos_run_has_no_violation() -> None:
    obs = _real_observations()
    # What makes it worth checking: an activity retried on the server (attempt 2 in its
    # ActivityTaskStarted, no event for attempt 1) and signals interleaved by two senders.
    assert any(e["event_type"] == "ActivityTaskStarted" and e["attributes"]["attempt"] == 2
               for run in obs.runs for e in run.history)
    assert {s.sender for s in obs.signals} == {"alpha", "beta"}
    assert checker.check(obs) == ()


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_a_recorded_golden_history_is_well_formed(path: Path) -> None:
    events = decode_history(json.loads(path.read_text())["events"])
    status = STATUS_OF_CLOSE.get(events[-1].event_type, "RUNNING")
    assert history_problems(events, status=status) == []
    assert history_problems(events[:-1], status=status) != []  # and the check can fail


@settings(max_examples=60, deadline=None)
@given(st.lists(st.builds(WorkflowPlan, workflow_id=st.just(""),
                          sequential=st.integers(0, 3), parallel=st.integers(0, 3),
                          timer_ms=st.sampled_from([0, 10]), signals=st.integers(0, 4)),
                min_size=1, max_size=3))
def test_any_clean_workload_has_no_violation(plans: list[WorkflowPlan]) -> None:
    named = [dataclasses.replace(p, workflow_id=f"wf-{i}") for i, p in enumerate(plans)]
    assert checker.check(_world(named)) == ()


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_dropping_or_repeating_any_one_event_breaks_well_formedness(data: st.DataObject) -> None:
    obs = _world()
    position = data.draw(st.integers(0, len(_run(obs).history) - 1), label="position")
    repeat = data.draw(st.booleans(), label="repeat")

    def edit(history: list[Event]) -> None:
        if repeat:
            history.insert(position, copy.deepcopy(history[position]))
        else:
            del history[position]
    violations = checker.check(_edit_history(obs, edit))
    assert ("history_well_formed", RUN) in _found(violations)


_GARBLED = {"null event": lambda e: None,
            "id in a list": lambda e: {**e, "event_id": [e["event_id"]]},
            "unknown type": lambda e: {**e, "event_type": "Nonsense"},
            "attributes a string": lambda e: {**e, "attributes": "x"},
            "no ISO timestamp": lambda e: {**e, "timestamp": "yesterday"}}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_garbling_any_one_event_is_reported_not_crashed_on(data: st.DataObject) -> None:
    obs = _world()
    position = data.draw(st.integers(0, len(_run(obs).history) - 1), label="position")
    garble = data.draw(st.sampled_from(sorted(_GARBLED)), label="garble")

    def edit(history: list[Event]) -> None:
        history[position] = _GARBLED[garble](history[position])
    violations = checker.check(_edit_history(obs, edit))
    assert ("history_well_formed", RUN) in _found(violations)
