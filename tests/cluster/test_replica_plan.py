"""What a node does to its replicas for a given map (cluster/replica_plan.py), without Raft.

Method: build maps with `genesis_map` and `msgspec.structs.replace`, describe the node's local
replicas as `LocalReplica` values, and check the one action per group the plan returns.
"""

from __future__ import annotations

import msgspec

from raftflow.cluster.cluster_map import (
    META_GROUP_ID,
    ClusterMap,
    GroupReplicas,
    MemberState,
    genesis_map,
)
from raftflow.cluster.replica_plan import (
    AddVoter,
    CreateReplica,
    DropReplica,
    HandOffLeadership,
    LocalReplica,
    RemoveVoter,
    SetCampaigning,
    SetLearners,
    replica_actions,
)

NODES = [(f"node-{i}", f"http://127.0.0.1:{8000 + i}", "127.0.0.1", 9000 + i) for i in (1, 2, 3)]


def _map(shards: int = 2) -> ClusterMap:
    return genesis_map("test", shards, NODES)


def _with_shard(cluster_map: ClusterMap, shard: int, **changes: object) -> ClusterMap:
    shards = list(cluster_map.shards)
    shards[shard] = msgspec.structs.replace(shards[shard], **changes)
    return msgspec.structs.replace(cluster_map, shards=tuple(shards))


def _replica(*, leader: bool = False, members: tuple[str, ...] = ("node-1", "node-2", "node-3"),
             learners: tuple[str, ...] = (), campaigning: bool = True) -> LocalReplica:
    return LocalReplica(is_leader=leader, members=members, learners=learners,
                        campaigning=campaigning)


def _actions(node_id: str, cluster_map: ClusterMap, local: dict[int, LocalReplica], *,
             counted: bool | None = True, up: bool = True) -> list[object]:
    return list(replica_actions(node_id=node_id, cluster_map=cluster_map, local=local,
                                leader_counts_me=lambda group: counted,
                                peer_is_up=lambda peer: up))


def _settled(cluster_map: ClusterMap) -> dict[int, LocalReplica]:
    return {group: _replica(members=tuple(sorted(r.voters)))
            for group, r in cluster_map.groups().items()}


def _with_local(group: int, replica: LocalReplica) -> dict[int, LocalReplica]:
    """Every other group of the 3-node genesis settled; `group` as given."""
    return {**_settled(_map()), group: replica}


def test_a_node_starts_every_group_the_map_gives_it_and_nothing_else() -> None:
    cluster_map = _map()
    actions = _actions("node-1", cluster_map, {})
    assert actions == [CreateReplica(group=g, voters=r.voters, learner=False)
                       for g, r in sorted(cluster_map.groups().items())]
    assert _actions("node-9", cluster_map, {}) == []


def test_a_settled_node_does_nothing() -> None:
    cluster_map = _map()
    assert _actions("node-2", cluster_map, _settled(cluster_map)) == []


def test_a_learner_runs_without_campaigning_and_every_replica_knows_it() -> None:
    cluster_map = _with_shard(_map(), 0, learner="node-4")
    assert _actions("node-4", cluster_map, {}) == [
        CreateReplica(group=0, voters=cluster_map.shards[0].voters, learner=True)]
    assert _actions("node-2", cluster_map, _settled(_map())) == [
        SetLearners(group=0, learners=("node-4",))]


def test_a_promoted_voter_campaigns_only_once_the_move_finished() -> None:
    voters = (*_map().shards[0].voters, "node-4")
    promoted = _with_shard(_map(), 0, voters=voters, promoted="node-4", leaving="node-3")
    local = _with_local(0, _replica(members=voters, learners=(), campaigning=False))
    assert _actions("node-4", promoted, local) == []
    finished = _with_shard(_map(), 0, voters=voters)
    assert _actions("node-4", finished, local) == [SetCampaigning(group=0, allowed=True)]


def test_the_leader_adds_before_it_removes() -> None:
    old = _map().shards[0].voters
    cluster_map = _with_shard(_map(), 0, voters=(*old, "node-4"), promoted="node-4")
    leader = _with_local(0, _replica(leader=True, members=old))
    assert _actions(old[0], cluster_map, leader) == [AddVoter(group=0, node_id="node-4")]
    # Once FinishMove took node-3 out of the map, the leader removes it.
    gone = "node-3" if old[0] != "node-3" else "node-2"
    finished = _with_shard(_map(), 0, voters=(*[v for v in old if v != gone], "node-4"))
    leader = _with_local(0, _replica(leader=True, members=(*old, "node-4")))
    assert _actions(old[0], finished, leader) == [RemoveVoter(group=0, node_id=gone)]


def test_a_leader_that_must_leave_hands_leadership_over_first() -> None:
    old = _map().shards[0].voters
    leaving = old[0]
    cluster_map = _with_shard(_map(), 0, voters=(*old[1:], "node-4"))
    local = _with_local(0, _replica(leader=True, members=(*old, "node-4")))
    assert _actions(leaving, cluster_map, local) == [HandOffLeadership(group=0, to=old[1])]
    assert _actions(leaving, cluster_map, local, up=False) == []  # nobody reachable to take it


def test_a_draining_leader_hands_leadership_over() -> None:
    cluster_map = _map(1)
    leader_id = cluster_map.shards[0].voters[0]
    members = tuple(msgspec.structs.replace(m, state=MemberState.DRAINING)
                    if m.id == leader_id else m for m in cluster_map.members)
    draining = msgspec.structs.replace(cluster_map, members=members)
    local = _settled(draining)
    local[0] = _replica(leader=True, members=tuple(sorted(draining.shards[0].voters)))
    actions = _actions(leader_id, draining, local)
    assert actions == [HandOffLeadership(group=0, to=draining.shards[0].voters[1])]


def test_a_replica_that_left_is_dropped_once_the_leader_no_longer_counts_it() -> None:
    cluster_map = _map(1)
    voters = cluster_map.shards[0].voters
    out = voters[-1]
    moved = _with_shard(cluster_map, 0, voters=(*voters[:-1], "node-4"))
    local = {**_settled(cluster_map), 0: _replica(members=tuple(sorted(voters)))}
    assert _actions(out, moved, local, counted=True) == []
    assert _actions(out, moved, local, counted=False) == [DropReplica(group=0)]
    assert _actions(out, moved, local, counted=None) == [DropReplica(group=0)]


def test_a_group_unknown_to_the_map_is_dropped() -> None:
    cluster_map = _map(1)
    local = _settled(cluster_map)
    local[7] = _replica()
    assert _actions("node-1", cluster_map, local) == [DropReplica(group=7)]


def test_the_meta_group_is_planned_like_a_shard() -> None:
    cluster_map = _map(1)
    meta = msgspec.structs.replace(cluster_map.meta, learner="node-4")
    with_learner = msgspec.structs.replace(cluster_map, meta=meta)
    assert CreateReplica(group=META_GROUP_ID, voters=cluster_map.meta.voters, learner=True) in \
        _actions("node-4", with_learner, {})
    assert isinstance(with_learner.group(META_GROUP_ID), GroupReplicas)


def test_a_learner_that_raft_already_counts_as_a_voter_is_kept_and_not_asked_again() -> None:
    """A move that raced a removal: the map makes node-4 a learner again while the group's
    configuration still counts it as a voter. Found in a drain run: asking for the learner
    forever (Raft ignores voters as learners) stalled every other action of the group."""
    old = _map().shards[0].voters
    cluster_map = _with_shard(_map(), 0, learner="node-4")
    members = tuple(sorted((*old, "node-4")))
    leader = _with_local(0, _replica(leader=True, members=members, learners=()))
    assert _actions(old[0], cluster_map, leader) == []  # neither re-asked nor removed
    follower = _with_local(0, _replica(members=members, learners=()))
    assert _actions(old[1], cluster_map, follower) == []


def test_a_hand_off_goes_to_the_preferred_leader_first() -> None:
    """The replica plan and the leader balancer must agree on the target, or one hand-off is
    followed by another (seen in a drain: two hand-offs of one shard within a millisecond)."""
    old = _map().shards[0].voters
    leaving = old[0]
    cluster_map = _with_shard(_map(), 0, voters=(*old[1:], "node-4"))
    local = _with_local(0, _replica(leader=True, members=(*old, "node-4")))
    actions = replica_actions(node_id=leaving, cluster_map=cluster_map, local=local,
                              leader_counts_me=lambda group: True,
                              peer_is_up=lambda peer: True, preferred={0: "node-4"})
    assert actions == [HandOffLeadership(group=0, to="node-4")]
