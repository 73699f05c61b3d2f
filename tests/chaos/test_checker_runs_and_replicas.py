"""The checker reports stuck or doubled runs, diverging replicas and doubled leaders.

Goal: a run left RUNNING with nothing pending is stuck, two open runs of one id are reported,
replicas must agree on digest and applied index, and a term has at most one leader.

Method: `checker_evidence._world` builds clean evidence by hand in the engine's
history shape; each test doctors one piece and compares the exact set of
(invariant, subject) pairs reported, then quotes the detail.
"""

from __future__ import annotations

import dataclasses

from raftflow.chaos import checker
from raftflow.chaos.observations import (
    LeaderSample,
)
from tests.chaos.checker_evidence import (
    RUN,
    _details,
    _edit_run,
    _found,
    _run,
    _world,
)

# -- open runs ------------------------------------------------------------------------------------


def test_an_acked_run_left_running_with_nothing_pending_is_stuck() -> None:
    obs = _edit_run(_world(), lambda r: dataclasses.replace(
        r, status="RUNNING", result=None, history=r.history[:-1]))
    obs = dataclasses.replace(obs, client_results=obs.client_results[1:])
    violations = checker.check(obs)
    assert _found(violations) == {("no_stuck_workflow", RUN), ("acked_start_completes", "wf-1")}
    assert "RUNNING at quiescence with 36 events and no pending workflow task, activity or " \
        "timer" in _details(violations, "no_stuck_workflow")


def test_two_open_runs_of_one_id_are_reported() -> None:
    obs = _world()
    fresh = dataclasses.replace(_run(obs), status="RUNNING", result=None,
                                history=_run(obs).history[:2], pending_workflow_task=True)
    extra = (dataclasses.replace(fresh, run_id="run-b"), dataclasses.replace(fresh, run_id="run-c"))
    violations = checker.check(dataclasses.replace(obs, runs=obs.runs + extra))
    assert _found(violations) == {("one_open_run", "wf-1")}
    assert _details(violations, "one_open_run") == (
        "2 RUNNING runs ('run-b', 'run-c'), expected at most one")


# -- replicas and leaders -------------------------------------------------------------------------


def test_diverging_replica_digests_are_reported() -> None:
    obs = _world()
    bad = dataclasses.replace(obs.digests[4], digest="ff" * 32)  # shard 1, node-2
    violations = checker.check(dataclasses.replace(
        obs, digests=(*obs.digests[:4], bad, *obs.digests[5:])))
    assert _found(violations) == {("replicas_agree", "shard 1")}
    assert _details(violations, "replicas_agree") == (
        "different digests at applied index 41 (node-1=010101010101, node-2=ffffffffffff, "
        "node-3=010101010101), expected one")


def test_replicas_at_different_applied_indexes_are_reported() -> None:
    obs = _world()
    behind = dataclasses.replace(obs.digests[0], applied_index=38, digest="ab" * 32)
    violations = checker.check(dataclasses.replace(obs, digests=(behind, *obs.digests[1:])))
    assert _found(violations) == {("replicas_agree", "shard 0")}
    assert _details(violations, "replicas_agree") == (
        "replicas at different applied indexes after convergence (node-1=38, node-2=40, "
        "node-3=40), expected one index")


def test_two_leaders_in_one_term_are_reported() -> None:
    obs = _world()
    usurper = LeaderSample(at_s=0.3, node="node-2", shard=0, term=1)
    violations = checker.check(dataclasses.replace(
        obs, leader_samples=(*obs.leader_samples, usurper)))
    assert _found(violations) == {("one_leader_per_term", "shard 0")}
    assert _details(violations, "one_leader_per_term") == (
        "term 1 has 2 leaders (node-1 from 0.1 s, node-2 from 0.3 s), expected at most one")
