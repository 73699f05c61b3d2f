"""Goal: the rebalancer's plan reaches the bounded-load target from any map, one safe move at a
time: nodes end with their fair share, no group ever drops below its replication factor, gone
and draining voters are replaced first, and the plan is the same on every node.

Method: scenario tests run the plan to completion the way the rebalancer will (StartMove for
each planned move, then PromoteLearner and FinishMove), applying every command through the map
machine and checking `check_map_invariants` and the replication-factor rule after each one;
hypothesis checks the bounded ring placement (bound, distinctness, order-independence).
"""

from __future__ import annotations

from collections import Counter
from itertools import count

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.cluster.cluster_map import (
    META_GROUP_ID,
    AbortMove,
    ActivateMember,
    AdmitMember,
    ClusterMap,
    DrainMember,
    FinishMove,
    MapApplied,
    MapCommand,
    PromoteLearner,
    RemoveMember,
    genesis_map,
)
from raftflow.cluster.map_machine import apply_map_command, check_map_invariants
from raftflow.cluster.placement_plan import (
    MOVES_CONCURRENT_MAX,
    PlannedMove,
    drain_refusal,
    group_size_target,
    meta_target,
    moves_to_abort,
    next_moves,
    preferred_leaders,
    target_placement,
)
from raftflow.cluster.ring import place_replicas_bounded

_request_ids = count()
ROUNDS_MAX = 500


def voters_floor(before: ClusterMap, after: ClusterMap, group: int) -> int:
    """The fewest voters `group` may have after one command: a finished move returns to its
    size before the move; otherwise no group drops below its replication factor (a group
    already below it may not shrink further)."""
    replicas = before.group(group)
    if replicas.promoted is not None:
        return len(replicas.voters) - 1
    return min(len(replicas.voters), group_size_target(after, group))


def apply_checked(cluster_map: ClusterMap, command: MapCommand) -> ClusterMap:
    """Apply a command that must succeed; check the invariants and the voters' floor."""
    after, result = apply_map_command(cluster_map, command)
    assert isinstance(result, MapApplied), (command, result)
    check_map_invariants(after)
    for group, replicas in after.groups().items():
        assert len(replicas.voters) >= voters_floor(cluster_map, after, group), (
            command, group, cluster_map.group(group), replicas)
    return after


def node(index: int) -> tuple[str, str, str, int]:
    return (f"node-{index}", f"http://127.0.0.1:{8000 + index}", "127.0.0.1", 9000 + index)


def join(cluster_map: ClusterMap, index: int) -> ClusterMap:
    node_id, http_address, raft_host, raft_port = node(index)
    admitted = apply_checked(cluster_map, AdmitMember(
        request_id=f"j{next(_request_ids)}", node_id=node_id, http_address=http_address,
        raft_host=raft_host, raft_port=raft_port))
    return apply_checked(admitted, ActivateMember(request_id=f"a{next(_request_ids)}",
                                                  node_id=node_id))


def drain(cluster_map: ClusterMap, node_id: str) -> ClusterMap:
    return apply_checked(cluster_map, DrainMember(request_id=f"d{next(_request_ids)}",
                                                  node_id=node_id))


def force_remove(cluster_map: ClusterMap, node_id: str) -> ClusterMap:
    return apply_checked(cluster_map, RemoveMember(request_id=f"f{next(_request_ids)}",
                                                   node_id=node_id, force=True))


def rebalance(cluster_map: ClusterMap, started: list[PlannedMove] | None = None) -> ClusterMap:
    """Run the plan to its end as the rebalancer does; `started` collects every move."""
    for _ in range(ROUNDS_MAX):
        for group in moves_to_abort(cluster_map):
            cluster_map = apply_checked(cluster_map, AbortMove(
                request_id=f"x{next(_request_ids)}", group=group))
        moves = next_moves(cluster_map)
        if not moves and not cluster_map.moves_in_progress():
            return cluster_map
        for move in moves:
            cluster_map = apply_checked(cluster_map, move.start_move(f"s{next(_request_ids)}"))
            if started is not None:
                started.append(move)
        for group, replicas in cluster_map.groups().items():
            if replicas.learner is not None:
                cluster_map = apply_checked(cluster_map, PromoteLearner(
                    request_id=f"p{next(_request_ids)}", group=group))
            if cluster_map.group(group).moving:
                cluster_map = apply_checked(cluster_map, FinishMove(
                    request_id=f"e{next(_request_ids)}", group=group))
    raise AssertionError(f"the plan did not converge in {ROUNDS_MAX} rounds")


def shard_replicas(cluster_map: ClusterMap) -> Counter[str]:
    return Counter(node_id for replicas in cluster_map.shards for node_id in replicas.voters)


def assert_converged(cluster_map: ClusterMap) -> None:
    target = target_placement(cluster_map)
    assert next_moves(cluster_map) == [] and cluster_map.moves_in_progress() == 0
    for group, replicas in cluster_map.groups().items():
        assert set(replicas.voters) == set(target[group]), group
        assert len(replicas.voters) == group_size_target(cluster_map, group)


def three_nodes() -> ClusterMap:
    return genesis_map("c1", 16, [node(1), node(2), node(3)])


def four_nodes_balanced() -> ClusterMap:
    return rebalance(join(three_nodes(), 4))


def test_a_fresh_three_node_cluster_needs_no_move() -> None:
    assert next_moves(three_nodes()) == []
    assert_converged(three_nodes())


def test_joining_node_4_gives_every_node_12_replicas() -> None:
    started: list[PlannedMove] = []
    balanced = rebalance(join(three_nodes(), 4), started)
    assert shard_replicas(balanced) == {f"node-{i}": 12 for i in range(1, 5)}
    assert all(len(set(g.voters)) == len(g.voters) == 3 for g in balanced.shards)
    assert balanced.meta.voters == ("node-1", "node-2", "node-3", "node-4")
    assert len(started) == 12 + 1  # the minimum: 12 shard replicas and one meta voter
    assert_converged(balanced)
    leaders = Counter(preferred_leaders(balanced).values())
    assert len(leaders) == 4 and max(leaders.values()) - min(leaders.values()) <= 2, leaders


def test_draining_node_1_of_4_moves_all_its_replicas_away() -> None:
    balanced = four_nodes_balanced()
    assert drain_refusal(balanced, "node-1") is None
    drained = rebalance(drain(balanced, "node-1"))
    assert shard_replicas(drained) == {"node-2": 16, "node-3": 16, "node-4": 16}
    assert drained.groups_holding("node-1") == ()
    assert drained.meta.voters == ("node-2", "node-3", "node-4")
    assert_converged(drained)
    removed = apply_checked(drained, RemoveMember(request_id="rm", node_id="node-1"))
    assert removed.member("node-1") is None and next_moves(removed) == []


def test_leaders_leave_a_draining_node_before_its_replicas() -> None:
    draining = drain(four_nodes_balanced(), "node-1")
    leaders = preferred_leaders(draining)
    assert "node-1" not in leaders.values()
    assert all(leaders[s] in draining.shards[s].voters for s in leaders)


def test_drain_of_a_three_node_cluster_is_refused_with_a_clear_message() -> None:
    message = drain_refusal(three_nodes(), "node-1")
    assert message == (
        "cannot drain node node-1: every shard needs 3 replicas on active members "
        "(replication factor 3), but only 2 other active member(s) would remain "
        "(node-2, node-3); join another node first")
    assert drain_refusal(three_nodes(), "node-9") == "node node-9 is not a member of cluster c1"


def test_force_removing_a_dead_node_replaces_its_voters_first() -> None:
    five = rebalance(join(join(three_nodes(), 4), 5))
    assert max(shard_replicas(five).values()) <= 10  # ceil(16 * 3 / 5)
    changed = force_remove(join(five, 6), "node-2")
    started: list[PlannedMove] = []
    healed = rebalance(changed, started)
    replacing = [move.remove == "node-2" for move in started]
    assert replacing.index(False) == replacing.count(True), started  # all of them come first
    assert healed.groups_holding("node-2") == ()
    assert all(len(g.voters) == 3 for g in healed.shards)
    assert set(shard_replicas(healed)) == {"node-1", "node-3", "node-4", "node-5", "node-6"}
    assert healed.meta.voters == ("node-1", "node-3", "node-4", "node-5", "node-6")
    assert_converged(healed)


def test_force_removing_one_of_three_shrinks_to_the_two_left() -> None:
    healed = rebalance(force_remove(three_nodes(), "node-2"))
    assert all(set(g.voters) == {"node-1", "node-3"} for g in healed.shards)
    assert_converged(healed)


def test_the_plan_does_not_depend_on_the_order_members_are_listed_in() -> None:
    changed = drain(join(join(four_nodes_balanced(), 5), 6), "node-3")
    shuffled = msgspec.structs.replace(changed, members=tuple(reversed(changed.members)))
    assert target_placement(shuffled) == target_placement(changed)
    assert next_moves(shuffled) == next_moves(changed)
    assert next_moves(changed) == next_moves(changed)
    assert len(next_moves(changed)) == MOVES_CONCURRENT_MAX


def test_next_moves_respects_the_moves_already_in_progress() -> None:
    joined = join(three_nodes(), 4)
    first = next_moves(joined)[0]
    started = apply_checked(joined, first.start_move("one"))
    moves = next_moves(started)
    assert len(moves) == MOVES_CONCURRENT_MAX - 1 and moves[0].group != first.group


def test_meta_target_is_the_oldest_five_active_members() -> None:
    cluster_map = genesis_map("c1", 4, [node(i) for i in (7, 3, 5)])
    for index in (1, 2, 4, 6):
        cluster_map = join(cluster_map, index)
    assert meta_target(cluster_map) == ("node-3", "node-5", "node-7", "node-1", "node-2")
    balanced = rebalance(cluster_map)
    assert set(balanced.meta.voters) == {"node-3", "node-5", "node-7", "node-1", "node-2"}
    draining = drain(balanced, "node-5")
    assert meta_target(draining) == ("node-3", "node-7", "node-1", "node-2", "node-4")
    meta_move = next(m for m in next_moves(draining) if m.group == META_GROUP_ID)
    assert meta_move == PlannedMove(group=META_GROUP_ID, add="node-4", remove="node-5")
    drained = rebalance(draining)
    assert set(drained.meta.voters) == {"node-3", "node-7", "node-1", "node-2", "node-4"}
    assert drained.groups_holding("node-5") == ()


node_sets = st.lists(st.text(alphabet="abcxyz019-", min_size=1, max_size=6), min_size=1,
                     max_size=10, unique=True)


@settings(deadline=None, max_examples=150, derandomize=True)
@given(nodes=node_sets, shard_count=st.integers(1, 300), rf=st.integers(1, 5), data=st.data())
def test_bounded_placement_holds_its_bound_and_is_order_free(
    nodes: list[str], shard_count: int, rf: int, data: st.DataObject
) -> None:
    placement = place_replicas_bounded(nodes, shard_count, rf)
    assert placement == place_replicas_bounded(data.draw(st.permutations(nodes)), shard_count, rf)
    replica_count = min(rf, len(nodes))
    load_max = -(-shard_count * replica_count // len(nodes))
    loads = Counter(n for replicas in placement.values() for n in replicas)
    assert max(loads.values()) <= load_max and set(loads) <= set(nodes)
    assert sorted(placement) == list(range(shard_count))
    assert all(len(set(r)) == len(r) == replica_count for r in placement.values())


def test_bounded_placement_equals_the_ring_when_every_node_holds_every_shard() -> None:
    from raftflow.cluster.ring import place_replicas

    nodes = ["node-1", "node-2", "node-3"]
    assert place_replicas_bounded(nodes, 16, 3) == place_replicas(nodes, 16, 3)


def test_no_shrink_is_planned_while_a_member_joins() -> None:
    """A forced removal while a new node is still joining: the groups keep the dead voter
    rather than shrink to the momentary replication factor and grow back one round later."""
    cluster_map = three_nodes()
    cluster_map, result = apply_map_command(cluster_map, AdmitMember(
        request_id="admit-4", node_id="node-4", http_address="http://127.0.0.1:8004",
        raft_host="127.0.0.1", raft_port=9004))
    assert isinstance(result, MapApplied)
    cluster_map, result = apply_map_command(cluster_map, RemoveMember(
        request_id="rm-3", node_id="node-3", force=True))
    assert isinstance(result, MapApplied)
    assert [m for m in next_moves(cluster_map) if m.add is None] == []
    cluster_map, result = apply_map_command(cluster_map, ActivateMember(
        request_id="act-4", node_id="node-4"))
    assert isinstance(result, MapApplied)
    moves = next_moves(cluster_map)
    assert moves and all(m.add == "node-4" and m.remove == "node-3" for m in moves)
