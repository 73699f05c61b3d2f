"""Membership faults: their schedule, the steps they take, and the checks that judge them.

Goal: `join`, `drain`, `remove` and `replace` mix with the other kinds in a schedule that is
still a pure function of the seed; what each does is decided from the cluster's state by a
pure rule that never leaves fewer than 3 active nodes nor more than one drained node, and
never needs more spare slots than the harness pre-planned; the checker reports a shard short
of its replication factor, a move left in progress, a removed node still listed or a failed
step, and keeps "one leader per term" across moves without a false alarm.
Method: table-driven calls of the pure functions (faults.py, placement_checks.py, checker.py)
with hand-built cluster states and evidence; no process, no clock.
"""

from __future__ import annotations

import dataclasses

import pytest

from raftflow.chaos import checker
from raftflow.chaos.faults import (
    ACTIVE_MIN,
    FAULT_KINDS,
    MEMBERS_MAX,
    MEMBERSHIP_KINDS,
    SPARE_SLOTS_MAX,
    Membership,
    after_steps,
    membership_steps,
    parse_kinds,
    plan_faults,
    spare_slots_needed,
)
from raftflow.chaos.observations import LeaderSample, PlacementReading
from raftflow.chaos.placement_checks import placement_problems
from tests.chaos.checker_evidence import _world


def test_all_kinds_include_the_membership_kinds_and_they_parse_alone() -> None:
    assert set(MEMBERSHIP_KINDS) <= set(parse_kinds("all"))
    assert parse_kinds("join,drain,remove,replace") == MEMBERSHIP_KINDS
    plan = plan_faults(seed=3, duration_s=600, kinds=FAULT_KINDS, node_count=3)
    assert {f.kind for f in plan} == set(FAULT_KINDS)
    assert all(len(f.nodes) == 1 and 0 <= f.nodes[0] < 3
               for f in plan if f.kind in MEMBERSHIP_KINDS)


@pytest.mark.parametrize(("kind", "active", "drained", "spares", "steps"), [
    ("join", 3, 0, 2, ("join",)),
    ("join", 3, 0, 0, ()),  # no spare slot left
    ("join", 4, 1, 5, ()),  # MEMBERS_MAX processes already
    ("drain", 4, 0, 0, ("drain",)),
    ("drain", 3, 0, 1, ("join", "drain")),  # a drain must leave 3 active nodes
    ("drain", 3, 0, 0, ()),
    ("drain", 4, 1, 0, ("remove", "drain")),  # at most one drained node
    ("drain", 3, 1, 0, ("remove",)),  # the earlier drain is finished; no spare to join
    ("remove", 3, 1, 0, ("remove",)),
    ("remove", 4, 0, 0, ("drain", "remove")),
    ("remove", 3, 0, 1, ("join", "drain", "remove")),
    ("remove", 3, 0, 0, ()),
    ("replace", 3, 0, 1, ("kill-for-good", "join", "force-remove")),
    ("replace", 4, 0, 0, ("kill-for-good", "force-remove")),
    ("replace", 3, 0, 0, ()),  # the others would be only 2
])
def test_membership_steps_keep_a_working_cluster(kind: str, active: int, drained: int,
                                                 spares: int, steps: tuple[str, ...]) -> None:
    cluster = Membership(active=active, drained=drained, spares_left=spares)
    assert membership_steps(kind, cluster) == steps
    after = after_steps(cluster, steps)
    assert after.active >= ACTIVE_MIN and after.drained <= 1
    assert after.active + after.drained <= MEMBERS_MAX


@pytest.mark.parametrize("seed", range(25))
def test_spare_slots_cover_the_schedule_replayed_step_by_step(seed: int) -> None:
    kinds = FAULT_KINDS if seed % 2 else MEMBERSHIP_KINDS
    plan = plan_faults(seed=seed, duration_s=400, kinds=kinds, node_count=3)
    assert plan == plan_faults(seed=seed, duration_s=400, kinds=kinds, node_count=3)
    spares = spare_slots_needed(plan, node_count=3)
    assert 0 <= spares <= SPARE_SLOTS_MAX
    cluster = Membership(active=3, drained=0, spares_left=spares)
    joins = 0
    for fault in plan:
        if fault.kind in MEMBERSHIP_KINDS:
            steps = membership_steps(fault.kind, cluster)
            joins += steps.count("join")
            cluster = after_steps(cluster, steps)
            assert cluster.active >= ACTIVE_MIN and cluster.drained <= 1
            assert cluster.active + cluster.drained <= MEMBERS_MAX
    assert joins == spares  # the harness starts with exactly the slots the run uses


def _reading(**changes: object) -> PlacementReading:
    settled = PlacementReading(
        members=(("node-2", "active", True), ("node-3", "active", True),
                 ("node-4", "active", True), ("node-5", "draining", True)),
        shards=((0, ("node-2", "node-3", "node-4")), (1, ("node-4", "node-2", "node-3"))),
        moves=0, expected_members=("node-2", "node-3", "node-4", "node-5"), waited_s=3.0)
    return dataclasses.replace(settled, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "subject", "words"), [
    ({"moves": 2}, "cluster", "2 moves still in progress"),
    ({"shards": ((0, ("node-2", "node-3")), (1, ("node-4", "node-2", "node-3")))},
     "shard 0", "expected 3 distinct"),
    ({"shards": ((0, ("node-2", "node-3", "node-5")), (1, ("node-4", "node-2", "node-3")))},
     "shard 0", "not live active members"),  # left on the drained node
    ({"members": (("node-2", "active", True), ("node-3", "active", False),
                  ("node-4", "active", True), ("node-5", "draining", True))},
     "shard 1", "not live active members"),
    ({"expected_members": ("node-2", "node-3", "node-4")}, "cluster", "the harness holds"),
    ({"shards": ()}, "cluster", "no shard"),
])
def test_placement_problems_name_what_is_not_restored(changes: dict[str, object], subject: str,
                                                      words: str) -> None:
    assert placement_problems(_reading()) == []
    problems = placement_problems(_reading(**changes))
    assert any(s == subject and words in d for s, d in problems), problems


def test_replication_factor_is_min_3_active() -> None:
    two = _reading(members=(("node-2", "active", True), ("node-3", "active", True)),
                   shards=((0, ("node-2", "node-3")),), expected_members=("node-2", "node-3"))
    assert placement_problems(two) == []


def test_the_checker_reports_replication_and_membership_failures() -> None:
    clean = dataclasses.replace(_world(), placement=_reading())
    assert checker.check(clean) == ()
    broken = dataclasses.replace(clean, placement=_reading(moves=1), membership_failures=(
        "drain at 40.0 s: not within 150 s: node-2 drained",))
    found = {(v.invariant, v.subject) for v in checker.check(broken)}
    assert found == {("replication_restored", "cluster"), ("membership_completes", "cluster")}
    names = [name for name, _ in checker.INVARIANTS]
    assert {"replication_restored", "membership_completes"} <= set(names)


def test_one_leader_per_term_holds_across_moves_and_catches_a_removed_nodes_claim() -> None:
    # Shard 0 moves from node-1 (drained, removed) to node-4: new terms, new leaders; fine.
    moved = (LeaderSample(at_s=1.0, node="node-1", shard=0, term=3),
             LeaderSample(at_s=9.0, node="node-2", shard=0, term=4),
             LeaderSample(at_s=20.0, node="node-4", shard=0, term=5))
    world = _world()
    assert checker.check(dataclasses.replace(world, leader_samples=moved)) == ()
    # A node that left still claiming a term someone else leads is a violation.
    stale = (*moved, LeaderSample(at_s=21.0, node="node-1", shard=0, term=5))
    violations = checker.check(dataclasses.replace(world, leader_samples=stale))
    assert [(v.invariant, v.subject) for v in violations] == [("one_leader_per_term", "shard 0")]
    assert "node-1" in violations[0].detail and "node-4" in violations[0].detail
