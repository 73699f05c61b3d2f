"""The rebalancer's plan: where replicas should be, and which moves get them there (pure).

Theory of operation. `target_placement` derives the wanted voters of every group from the
*active* members alone: shards by the ring with bounded loads (`ring.place_replicas_bounded`,
replication factor min(3, active)), the meta group as the first min(5, active) active members
by (joined_epoch, id), so old members keep the meta group and a join does not reshuffle it.
Joining members hold nothing yet and draining members are planned out, so draining a node and
losing it (force removal) are the same plan: its replicas move to the others.

`next_moves` compares the map with the target and proposes at most one move per group, never
more than `MOVES_CONCURRENT_MAX` in progress at once: every move is a snapshot transfer, and a
bound keeps a rebalance from starving client traffic. A group below its target size first gets
an add, one above it a remove, otherwise an add paired with a remove, so the group grows before
it shrinks (the learner is promoted before the leaving voter goes) and never drops below its
replication factor. Groups with a voter that is gone or draining go first, then groups below
their replication factor, then the rest; ties by group id. The plan depends only on the map's
values, never on the order members are listed in, so any meta leader computes the same plan.
"""

from __future__ import annotations

import msgspec

from raftflow.cluster.cluster_map import (
    META_GROUP_ID,
    META_VOTERS_MAX,
    REPLICATION_FACTOR_MAX,
    ClusterMap,
    GroupReplicas,
    MemberState,
    StartMove,
)
from raftflow.cluster.ring import _spread_leaders, place_replicas_bounded

# Replica moves in flight across the whole cluster. Each one streams a snapshot and a log tail
# to its learner; two keep a rebalance moving while leaving most bandwidth to clients.
MOVES_CONCURRENT_MAX = 2


class PlannedMove(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One move to start: `add` becomes the group's learner, `remove` its leaving voter."""

    group: int
    add: str | None
    remove: str | None

    def start_move(self, request_id: str) -> StartMove:
        return StartMove(request_id=request_id, group=self.group, add=self.add,
                         remove=self.remove)


def replication_factor(cluster_map: ClusterMap) -> int:
    """Replicas per shard: min(3, active members)."""
    return min(REPLICATION_FACTOR_MAX, len(cluster_map.active_ids()))


def meta_target(cluster_map: ClusterMap) -> tuple[str, ...]:
    """The meta group's wanted voters: the first min(5, active) active members by
    (joined_epoch, id)."""
    active = sorted((m.joined_epoch, m.id) for m in cluster_map.members
                    if m.state == MemberState.ACTIVE)
    return tuple(node_id for _, node_id in active[:META_VOTERS_MAX])


def group_size_target(cluster_map: ClusterMap, group: int) -> int:
    """How many voters `group` should have: the meta target's size or the replication factor."""
    if group == META_GROUP_ID:
        return min(META_VOTERS_MAX, len(cluster_map.active_ids()))
    return replication_factor(cluster_map)


def target_placement(cluster_map: ClusterMap) -> dict[int, tuple[str, ...]]:
    """The wanted voters of every group: each shard id, and META_GROUP_ID for the meta group.

    Guarantees: deterministic, independent of the order of `members`; every tuple holds
    distinct active member ids, the first being the preferred leader; no node holds more than
    ceil(shard_count * rf / active) shard replicas.
    """
    active = sorted(cluster_map.active_ids())
    assert active, "a cluster map always has an active member (check_map_invariants)"
    target = dict(place_replicas_bounded(active, cluster_map.shard_count,
                                         REPLICATION_FACTOR_MAX))
    target[META_GROUP_ID] = meta_target(cluster_map)
    assert len(target) == cluster_map.shard_count + 1
    return target


def next_moves(cluster_map: ClusterMap) -> list[PlannedMove]:
    """The moves to start now, most urgent first; empty when the placement is the target.

    Every move returned is accepted by StartMove when applied, in order, to `cluster_map`.
    """
    budget = MOVES_CONCURRENT_MAX - cluster_map.moves_in_progress()
    if budget <= 0:
        return []
    target = target_placement(cluster_map)
    candidates: list[tuple[int, int, PlannedMove]] = []
    for group, replicas in cluster_map.groups().items():
        if replicas.moving:
            continue
        move = _group_move(cluster_map, group, replicas, target[group])
        if move is not None:
            candidates.append((_urgency(cluster_map, replicas, len(target[group])), group, move))
    candidates.sort(key=lambda candidate: candidate[:2])
    moves = [move for _, _, move in candidates[:budget]]
    assert len({move.group for move in moves}) == len(moves) <= MOVES_CONCURRENT_MAX
    return moves


def _group_move(cluster_map: ClusterMap, group: int, replicas: GroupReplicas,
                wanted: tuple[str, ...]) -> PlannedMove | None:
    voters = replicas.voters
    adds = [node_id for node_id in wanted if node_id not in voters]
    removes = sorted((node_id for node_id in voters if node_id not in wanted),
                     key=lambda node_id: (_stay_rank(cluster_map, node_id), node_id))
    if not adds and not removes:
        return None
    if len(voters) < len(wanted):  # grow first: the group is below its replication factor
        return PlannedMove(group=group, add=adds[0], remove=None)
    if len(voters) > len(wanted):  # shrink: it stays at or above its replication factor
        if any(m.state == MemberState.JOINING for m in cluster_map.members):
            # The replication factor is about to grow back (a node that joins is activated
            # within a round): shrinking now would only cost a snapshot copy to regrow.
            return None
        return PlannedMove(group=group, add=None, remove=removes[0])
    assert adds and removes, (voters, wanted)
    return PlannedMove(group=group, add=adds[0], remove=removes[0])


def _stay_rank(cluster_map: ClusterMap, node_id: str) -> int:
    """Which voter leaves first: gone (force-removed) before draining or joining before active."""
    member = cluster_map.member(node_id)
    if member is None:
        return 0
    return 2 if member.state == MemberState.ACTIVE else 1


def _urgency(cluster_map: ClusterMap, replicas: GroupReplicas, size_target: int) -> int:
    if any(_stay_rank(cluster_map, node_id) < 2 for node_id in replicas.voters):
        return 0  # a voter is gone or leaving: the group has less redundancy than it shows
    if len(replicas.voters) < size_target:
        return 1
    return 2


def moves_to_abort(cluster_map: ClusterMap) -> tuple[int, ...]:
    """Moves that can no longer finish, to abort: a learner that is no longer an active member
    (it cannot be promoted), or a shrink that members joined since make unsafe (FinishMove
    refuses it)."""
    return tuple(
        group for group, replicas in cluster_map.groups().items()
        if (replicas.learner is not None and _stay_rank(cluster_map, replicas.learner) < 2)
        or (replicas.leaving is not None and replicas.learner is None
            and replicas.promoted is None
            and len(replicas.voters) - 1 < group_size_target(cluster_map, group))
    )


def drain_refusal(cluster_map: ClusterMap, node_id: str) -> str | None:
    """Why draining `node_id` must be refused, for the operator; None when it may drain.

    Draining an active member is refused when the other active members are fewer than the
    replication factor min(3, active members): its replicas would have nowhere to go.
    Draining a joining or draining member is always allowed (it counts for nothing).
    """
    member = cluster_map.member(node_id)
    if member is None:
        gone = " (it was removed)" if node_id in cluster_map.removed else ""
        return f"node {node_id} is not a member of cluster {cluster_map.cluster_id}{gone}"
    if member.state != MemberState.ACTIVE:
        return None
    rf = replication_factor(cluster_map)
    others = [other for other in cluster_map.active_ids() if other != node_id]
    if len(others) >= rf:
        return None
    return (f"cannot drain node {node_id}: every shard needs {rf} replicas on active members "
            f"(replication factor {rf}), but only {len(others)} other active member(s) would "
            f"remain ({', '.join(others) or 'none'}); join another node first")


def preferred_leaders(cluster_map: ClusterMap) -> dict[int, str]:
    """The shard leaders to aim for now, spread over nodes as `ring._spread_leaders` does.

    Only settled voters of active members qualify (not a leaving, promoted, draining or
    removed one) while the shard has any; so draining a node hands its leaderships away before
    its replicas move.
    """
    candidates: list[tuple[str, ...]] = []
    for replicas in cluster_map.shards:
        unsettled = (replicas.leaving, replicas.promoted)
        settled = tuple(node_id for node_id in replicas.voters
                        if node_id not in unsettled and _stay_rank(cluster_map, node_id) == 2)
        candidates.append(settled or replicas.voters)
    spread = _spread_leaders(candidates)
    leaders = {shard: replicas[0] for shard, replicas in spread.items()}
    assert all(leaders[s] in cluster_map.shards[s].voters for s in leaders)
    return leaders
