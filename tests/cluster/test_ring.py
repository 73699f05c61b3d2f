"""Goal: the consistent-hash ring routes workflows and places replicas stably, evenly and with
minimal movement when membership changes.

Method: pinned golden values guard the hash (changing it would re-route every stored workflow);
hypothesis draws node sets, shard counts and replication factors and checks determinism,
distinctness, balance bounds and the exact one-member-per-shard movement rule on add/remove; a
RuleBasedStateMachine grows and shrinks a cluster and checks the movement rule after each step.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raftflow.cluster.ring import (
    Placement,
    place_replicas,
    preferred_leader,
    replicas_by_node,
    shard_for,
)

node_ids = st.lists(
    st.text(alphabet="abcdefghnz0123456789-", min_size=1, max_size=10),
    min_size=1,
    max_size=9,
    unique=True,
)


def _counts(placement: Placement) -> Counter[str]:
    return Counter(node_id for replicas in placement.values() for node_id in replicas)


def _check_step(before: Placement, after: Placement, added: str | None, removed: str | None) -> int:
    """Each shard's replica set changes by at most one member, in the only legal direction.

    Returns how many replica slots moved (new members summed over shards).
    """
    moved = 0
    for shard, old in before.items():
        old_set, new_set = set(old), set(after[shard])
        gained, lost = new_set - old_set, old_set - new_set
        assert len(gained) <= 1 and len(lost) <= 1, (shard, old, after[shard])
        if added is not None:
            assert gained <= {added}
            assert not (lost and not gained), "adding a node never shrinks a replica set"
        if removed is not None:
            assert lost <= {removed}
            assert removed not in new_set
        moved += len(gained)
    return moved


def test_shard_for_is_pinned() -> None:
    # These values are part of the on-disk format: a change re-routes existing workflows.
    assert shard_for("default", "order-1", 16) == 8
    assert shard_for("default", "order-2", 16) == 10
    assert shard_for("payments", "invoice/42", 16) == 14
    assert shard_for("", "", 7) == 4
    assert shard_for("ns", "wf", 1024) == 823


def test_placement_is_pinned() -> None:
    placement = place_replicas(["n1", "n2", "n3", "n4", "n5"], 4, 3)
    assert placement == {
        0: ("n1", "n4", "n2"),
        1: ("n2", "n1", "n5"),
        2: ("n4", "n2", "n1"),
        3: ("n5", "n2", "n1"),
    }
    assert preferred_leader(placement, 2) == "n4"


@given(namespace=st.text(max_size=20), workflow_id=st.text(max_size=40),
       shard_count=st.integers(1, 4096))
def test_shard_for_is_in_range_and_deterministic(
    namespace: str, workflow_id: str, shard_count: int
) -> None:
    shard = shard_for(namespace, workflow_id, shard_count)
    assert 0 <= shard < shard_count
    assert shard == shard_for(namespace, workflow_id, shard_count)


def test_shard_for_separates_namespace_from_workflow_id() -> None:
    pairs = [("a", "bc"), ("ab", "c"), ("abc", ""), ("", "abc")]
    assert len({shard_for(ns, wf, 2**12) for ns, wf in pairs}) == len(pairs)


@given(nodes=node_ids, shard_count=st.integers(1, 64), rf=st.integers(1, 5), data=st.data())
def test_placement_is_deterministic_and_order_free(
    nodes: list[str], shard_count: int, rf: int, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(nodes))
    placement = place_replicas(nodes, shard_count, rf)
    assert placement == place_replicas(shuffled, shard_count, rf)
    assert sorted(placement) == list(range(shard_count))


@given(nodes=node_ids, shard_count=st.integers(1, 64), rf=st.integers(1, 5))
def test_each_shard_has_min_rf_n_distinct_known_replicas(
    nodes: list[str], shard_count: int, rf: int
) -> None:
    placement = place_replicas(nodes, shard_count, rf)
    for shard, replicas in placement.items():
        assert len(replicas) == min(rf, len(nodes))
        assert len(set(replicas)) == len(replicas)
        assert set(replicas) <= set(nodes)
        assert preferred_leader(placement, shard) == replicas[0]


@settings(deadline=None, max_examples=40)
@given(nodes=node_ids.filter(lambda ids: len(ids) >= 2),
       shard_count=st.sampled_from([256, 512, 1024]), rf=st.integers(1, 5))
def test_replicas_are_balanced(nodes: list[str], shard_count: int, rf: int) -> None:
    placement = place_replicas(nodes, shard_count, rf)
    counts = _counts(placement)
    mean = shard_count * min(rf, len(nodes)) / len(nodes)
    # 64 virtual nodes give each node an arc share within roughly ±1/sqrt(64) of the mean;
    # the bound leaves room for shard sampling noise (measured worst: 0.46 .. 1.64).
    assert all(0.4 * mean <= counts[node_id] <= 1.8 * mean for node_id in nodes), counts


@settings(deadline=None, max_examples=40)
@given(nodes=node_ids.filter(lambda ids: len(ids) >= 2),
       shard_count=st.integers(16, 1024), rf=st.integers(2, 5))
def test_preferred_leaders_are_spread(nodes: list[str], shard_count: int, rf: int) -> None:
    placement = place_replicas(nodes, shard_count, rf)
    leaders = Counter(preferred_leader(placement, shard) for shard in placement)
    assert max(leaders.values()) - min(leaders[node_id] for node_id in nodes) <= 10, leaders


def test_default_dev_cluster_spreads_leaders_evenly() -> None:
    placement = place_replicas(["node-1", "node-2", "node-3"], 16, 3)
    leaders = Counter(replicas[0] for replicas in placement.values())
    assert sorted(leaders.values()) == [5, 5, 6]


@settings(deadline=None)
@given(nodes=node_ids, shard_count=st.integers(1, 128), rf=st.integers(1, 5))
def test_adding_a_node_moves_at_most_one_member_per_shard(
    nodes: list[str], shard_count: int, rf: int
) -> None:
    new_node = "new-node!"  # outside the drawn alphabet: never a duplicate
    before = place_replicas(nodes, shard_count, rf)
    after = place_replicas([*nodes, new_node], shard_count, rf)
    _check_step(before, after, added=new_node, removed=None)


@settings(deadline=None)
@given(nodes=node_ids.filter(lambda ids: len(ids) >= 2), shard_count=st.integers(1, 128),
       rf=st.integers(1, 5), data=st.data())
def test_removing_a_node_touches_only_its_shards(
    nodes: list[str], shard_count: int, rf: int, data: st.DataObject
) -> None:
    gone = data.draw(st.sampled_from(nodes))
    before = place_replicas(nodes, shard_count, rf)
    after = place_replicas([n for n in nodes if n != gone], shard_count, rf)
    _check_step(before, after, added=None, removed=gone)
    for shard, replicas in before.items():
        if gone not in replicas:
            assert set(after[shard]) == set(replicas)


@settings(deadline=None, max_examples=40)
@given(nodes=node_ids.filter(lambda ids: len(ids) >= 2),
       shard_count=st.sampled_from([256, 512, 1024]), rf=st.integers(1, 5))
def test_adding_a_node_moves_about_one_nth(nodes: list[str], shard_count: int, rf: int) -> None:
    before = place_replicas(nodes, shard_count, rf)
    after = place_replicas([*nodes, "new-node!"], shard_count, rf)
    moved = _check_step(before, after, added="new-node!", removed=None)
    ideal = shard_count * min(rf, len(nodes) + 1) / (len(nodes) + 1)  # the new node's fair share
    assert moved <= 1.7 * ideal, (moved, ideal)


def test_replicas_by_node_inverts_placement() -> None:
    placement = place_replicas(["a", "b", "c", "d"], 32, 2)
    owned = replicas_by_node(placement)
    assert sum(len(shards) for shards in owned.values()) == 64
    for node_id, shards in owned.items():
        assert all(node_id in placement[shard] for shard in shards)


@pytest.mark.parametrize(
    ("nodes", "shard_count", "rf"),
    [([], 16, 3), (["a", "a"], 16, 3), (["a"], 0, 1), (["a"], 16, 0), (["a"], 5000, 1)],
)
def test_bad_arguments_are_refused(nodes: list[str], shard_count: int, rf: int) -> None:
    with pytest.raises(ValueError):
        place_replicas(nodes, shard_count, rf)


class Membership(RuleBasedStateMachine):
    """Grow and shrink a cluster one node at a time; every step obeys the movement rule."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = ["seed"]
        self.next_id = 0
        self.shard_count = 48
        self.rf = 3
        self.placement = place_replicas(self.nodes, self.shard_count, self.rf)

    def _move_to(self, nodes: list[str], added: str | None, removed: str | None) -> None:
        after = place_replicas(nodes, self.shard_count, self.rf)
        _check_step(self.placement, after, added=added, removed=removed)
        self.nodes, self.placement = nodes, after

    @precondition(lambda self: len(self.nodes) < 12)
    @rule()
    def add_node(self) -> None:
        self.next_id += 1
        node_id = f"n{self.next_id}"
        self._move_to([*self.nodes, node_id], added=node_id, removed=None)

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(data=st.data())
    def remove_node(self, data: st.DataObject) -> None:
        gone = data.draw(st.sampled_from(self.nodes))
        self._move_to([n for n in self.nodes if n != gone], added=None, removed=gone)

    @invariant()
    def placement_matches_a_fresh_computation(self) -> None:
        assert self.placement == place_replicas(sorted(self.nodes), self.shard_count, self.rf)
        assert set(_counts(self.placement)) <= set(self.nodes)


TestMembership = Membership.TestCase
TestMembership.settings = settings(deadline=None, max_examples=30, stateful_step_count=20)
