"""Consistent-hash ring: which shard owns a workflow, and which nodes hold each shard.

Theory of operation. Two stable hashes, both blake2b truncated to 64 bits (never Python's
`hash()`, which is salted per process and would route the same workflow differently on every
node):

1. `shard_for(namespace, workflow_id, shard_count)` hashes the pair to a shard. The shard count
   is fixed for the life of a cluster (`ClusterConfig` refuses a change), so this never moves.
   It lives in protocol/shard_keys.py (clients compute it too) and is re-exported here.
2. `place_replicas(node_ids, shard_count, replication_factor)` places shards on nodes. Every node
   owns `vnodes_per_node` points ("virtual nodes") on a 64-bit ring; every shard has one point.
   A shard's replicas are the first `replication_factor` *distinct* nodes met walking clockwise
   from the shard's point. The first of them is the shard's preferred leader.

Why a ring and not `shard % N`: adding or removing a node must move few replicas, because every
moved replica is a Raft membership change plus a snapshot transfer. On the ring, adding node X
changes a shard's replica set only where one of X's points falls inside the shard's walk, and
then by exactly one member (X in, the walk's last node out); removing X is the exact inverse.
So about `replication_factor / N` of each shard's slots move, the minimum possible on average.
Virtual nodes smooth out the arc lengths so that each node's share stays near the mean.

Everything here is pure: no IO, no clock, no randomness; the same inputs give the same placement
on every node and in every process (tests/cluster/test_ring.py checks all of the above).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence

# shard_for lives with the protocol (the SDK computes it too); re-exported for the nodes.
from raftflow.protocol.shard_keys import SHARD_COUNT_MAX as SHARD_COUNT_MAX
from raftflow.protocol.shard_keys import shard_for as shard_for
from raftflow.protocol.shard_keys import stable_hash64 as _hash64

VNODES_PER_NODE_DEFAULT = 64
# Upper bounds keep placement cheap to compute on every membership change (O(N·V log(N·V))).
VNODES_PER_NODE_MAX = 1024

Placement = dict[int, tuple[str, ...]]


def _ring_points(node_ids: Sequence[str], vnodes_per_node: int) -> list[tuple[int, str]]:
    """Every node's virtual points, sorted; ties (astronomically rare) break by node id."""
    points = [
        (_hash64("vnode", node_id, str(index)), node_id)
        for node_id in node_ids
        for index in range(vnodes_per_node)
    ]
    points.sort()
    assert len(points) == len(node_ids) * vnodes_per_node
    return points


def _walk(points: Sequence[tuple[int, str]], start: int, count: int) -> tuple[str, ...]:
    """The first `count` distinct nodes clockwise from ring position `start`."""
    chosen: list[str] = []
    first = bisect_right(points, (start, "\U0010ffff"))
    for step in range(len(points)):  # one full turn at most
        node_id = points[(first + step) % len(points)][1]
        if node_id not in chosen:
            chosen.append(node_id)
            if len(chosen) == count:
                break
    assert len(chosen) == count, "the caller asked for more distinct nodes than exist"
    return tuple(chosen)


def place_replicas(
    node_ids: Sequence[str],
    shard_count: int,
    replication_factor: int,
    vnodes_per_node: int = VNODES_PER_NODE_DEFAULT,
) -> Placement:
    """Place every shard on `min(replication_factor, len(node_ids))` distinct nodes.

    Guarantees: deterministic and independent of the order of `node_ids`; each tuple holds
    distinct node ids, its first element being the shard's preferred leader; adding or removing
    one node changes each shard's replica set by at most one member (see module docstring).

    Raises:
        ValueError: no nodes, duplicate node ids, or a count outside its bounds.
    """
    _check_placement_arguments(node_ids, shard_count, replication_factor, vnodes_per_node)
    points = _ring_points(node_ids, vnodes_per_node)
    replica_count = min(replication_factor, len(node_ids))
    walks = [
        _walk(points, _hash64("shard", str(shard)), replica_count) for shard in range(shard_count)
    ]
    placement = _spread_leaders(walks)
    assert len(placement) == shard_count
    assert all(len(set(replicas)) == replica_count for replicas in placement.values())
    return placement


def _check_placement_arguments(
    node_ids: Sequence[str], shard_count: int, replication_factor: int, vnodes_per_node: int
) -> None:
    if not node_ids:
        raise ValueError("cannot place shards on an empty cluster: node_ids is empty")
    if len(set(node_ids)) != len(node_ids):
        raise ValueError(f"node ids must be distinct, got {sorted(node_ids)}")
    if not 1 <= shard_count <= SHARD_COUNT_MAX:
        raise ValueError(f"shard_count must be in [1, {SHARD_COUNT_MAX}], got {shard_count}")
    if replication_factor < 1:
        raise ValueError(f"replication_factor must be at least 1, got {replication_factor}")
    if not 1 <= vnodes_per_node <= VNODES_PER_NODE_MAX:
        raise ValueError(
            f"vnodes_per_node must be in [1, {VNODES_PER_NODE_MAX}], got {vnodes_per_node}"
        )


def place_replicas_bounded(
    node_ids: Sequence[str],
    shard_count: int,
    replication_factor: int,
    vnodes_per_node: int = VNODES_PER_NODE_DEFAULT,
) -> Placement:
    """Like `place_replicas`, but no node holds more than its fair share, rounded up.

    Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, 2018): each shard
    still prefers the nodes met clockwise from its point, but a node that already holds
    `ceil(shard_count * r / n)` replicas (r = min(replication_factor, n)) is passed over. So 16
    shards of 3 replicas on 4 nodes give exactly 12 each, where the plain ring gives 9 to 15.
    Shards are filled in id order with a look-ahead (`_bounded_choice`) that never strands the
    last shards with fewer than r nodes that still have room.

    Guarantees: deterministic and independent of the order of `node_ids`; each tuple holds r
    distinct ids, the first being the preferred leader (spread as in `place_replicas`); no node
    holds more than the bound. Unlike `place_replicas`, a membership change may move more than
    one member of a shard: the bound can push a shard further along its walk.

    Raises:
        ValueError: as `place_replicas`.
    """
    _check_placement_arguments(node_ids, shard_count, replication_factor, vnodes_per_node)
    points = _ring_points(node_ids, vnodes_per_node)
    replica_count = min(replication_factor, len(node_ids))
    load_max = -(-shard_count * replica_count // len(node_ids))  # ceil without floats
    room = dict.fromkeys(node_ids, load_max)
    walks: list[tuple[str, ...]] = []
    for shard in range(shard_count):
        walk = _bounded_choice(points, _hash64("shard", str(shard)), room, replica_count,
                               shards_left=shard_count - shard)
        for node_id in walk:
            room[node_id] -= 1
        walks.append(walk)
    placement = _spread_leaders(walks)
    assert all(left >= 0 for left in room.values()), room
    assert all(len(set(replicas)) == replica_count for replicas in placement.values())
    return placement


def _bounded_choice(points: Sequence[tuple[int, str]], start: int, room: Mapping[str, int],
                    count: int, *, shards_left: int) -> tuple[str, ...]:
    """The first `count` distinct nodes clockwise from `start` that have room, with look-ahead.

    The remaining shards (this one included, R = shards_left) can still be placed iff
    `slack = sum(min(room, R)) - count * R >= 0` (Gale-Ryser for equal row sums). A node with
    room >= R is "full-time": skipping it costs one unit of slack, taking any other node costs
    nothing; so at least `full_time - slack` full-time nodes must be taken here, and a node
    that is not full-time is taken only while enough slots remain for them.
    """
    slack = sum(min(left, shards_left) for left in room.values()) - count * shards_left
    assert slack >= 0, "the load bound left too little room: a bug in the look-ahead"
    full_time = {node_id for node_id, left in room.items() if left >= shards_left}
    full_time_needed = max(0, len(full_time) - slack)
    chosen: list[str] = []
    first = bisect_right(points, (start, "\U0010ffff"))
    for step in range(len(points)):  # one full turn at most
        node_id = points[(first + step) % len(points)][1]
        if node_id in chosen or room[node_id] == 0:
            continue
        if node_id in full_time:
            chosen.append(node_id)
            full_time_needed -= 1
        elif count - len(chosen) - 1 >= full_time_needed:
            chosen.append(node_id)
        if len(chosen) == count:
            break
    assert len(chosen) == count and full_time_needed <= 0, (chosen, room)
    return tuple(chosen)


def _spread_leaders(walks: Sequence[tuple[str, ...]]) -> Placement:
    """Reorder each replica tuple so that preferred leaders spread evenly over the nodes.

    The ring alone makes a poor leader spread at small shard counts (16 shards on 3 nodes gave
    9/6/1), and the leader does most of a shard's work. Which replica leads does not change the
    replica *sets*, so the minimal-movement property is untouched: shard by shard, the replica
    leading the fewest shards so far goes first (ties: ring order); the rest keep ring order.
    """
    led: dict[str, int] = {}
    placement: Placement = {}
    for shard, walk in enumerate(walks):
        leader = min(walk, key=lambda node_id: led.get(node_id, 0))  # min keeps the first tie
        led[leader] = led.get(leader, 0) + 1
        placement[shard] = (leader, *(node_id for node_id in walk if node_id != leader))
        assert sorted(placement[shard]) == sorted(walk)
    return placement


def preferred_leader(placement: Mapping[int, tuple[str, ...]], shard: int) -> str:
    """The node that should lead `shard` when it is healthy: its first replica."""
    replicas = placement[shard]
    assert replicas, f"shard {shard} has no replicas"
    return replicas[0]


def replicas_by_node(placement: Mapping[int, tuple[str, ...]]) -> dict[str, tuple[int, ...]]:
    """Invert a placement: for each node, the shards it holds a replica of, ascending."""
    owned: dict[str, list[int]] = {}
    for shard in sorted(placement):
        for node_id in placement[shard]:
            owned.setdefault(node_id, []).append(shard)
    return {node_id: tuple(shards) for node_id, shards in sorted(owned.items())}
