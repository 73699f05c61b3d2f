"""What one node must do to its Raft groups so that they match the cluster map (pure).

Theory of operation. The cluster map says, for every group (each shard and the meta group),
which nodes are its voters, which node is catching up as a learner and which voter is leaving
(cluster_map.py). Each node converges its own replicas towards that, on every map change and
periodically, by the actions `replica_actions` returns; the node's shell (node/replicas.py)
runs them. Deciding here and acting there keeps every rule testable without Raft:

- a node the map names for a group runs a replica of it: as a learner (never campaigns) while
  it is the group's learner, as a voter otherwise;
- every replica knows the group's learner, so whichever replica leads sends it the log;
- a voter campaigns only once its promotion is confirmed (the move finished): until then the
  group's leader may not have added it yet, and a vote request from a node outside the
  configuration would only disturb the term;
- the leader converges the Raft configuration to the map's voters, one change at a time, adding
  before removing (so a group never drops below its replication factor); a leader that must
  leave, or whose node drains, hands leadership to another voter first (a leader cannot remove
  itself);
- a node the map no longer names for a group drops its replica once the group's leader no
  longer counts it (or the group has no live leader that does), never while it leads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from raftflow.cluster.cluster_map import ClusterMap, GroupReplicas, MemberState


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalReplica:
    """This node's replica of one group, as its Raft group reports it."""

    is_leader: bool
    members: tuple[str, ...]  # the configuration as this replica knows it (leader: the truth)
    learners: tuple[str, ...]
    campaigning: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateReplica:
    group: int
    voters: tuple[str, ...]
    learner: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DropReplica:
    group: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLearners:
    group: int
    learners: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCampaigning:
    group: int
    allowed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AddVoter:
    group: int
    node_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveVoter:
    group: int
    node_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HandOffLeadership:
    group: int
    to: str


ReplicaAction = (CreateReplica | DropReplica | SetLearners | SetCampaigning | AddVoter
                 | RemoveVoter | HandOffLeadership)


def replica_actions(
    *, node_id: str, cluster_map: ClusterMap, local: Mapping[int, LocalReplica], leader_counts_me: Callable[[int], bool | None],
    peer_is_up: Callable[[str], bool], preferred: Mapping[int, str] | None = None,
) -> list[ReplicaAction]:
    """The actions that bring this node's replicas towards the map, at most one per group.

    Args:
        local: this node's replicas by group id.
        leader_counts_me: for a group this node holds but the map no longer names it in, whether
            the group's current leader (elsewhere) still counts this node as a member; None when
            no leader is known.
        peer_is_up: whether this node's Raft link to a peer is up (a leadership target must be).
        preferred: each shard's preferred leader (placement_plan.preferred_leaders): the first
            choice of a hand-off, so that the balancer does not move the shard once more.
    """
    draining = any(m.id == node_id and m.state == MemberState.DRAINING
                   for m in cluster_map.members)
    actions: list[ReplicaAction] = []
    groups = cluster_map.groups()
    for group, replicas in sorted(groups.items()):
        first_choice = (preferred or {}).get(group)
        action = _group_action(node_id, group, replicas, local.get(group), draining,
                               leader_counts_me, _Targets(peer_is_up, first_choice))
        if action is not None:
            actions.append(action)
    actions.extend(DropReplica(group=g) for g in sorted(local) if g not in groups)
    return actions


@dataclass(frozen=True, slots=True)
class _Targets:
    """Who may take a group's leadership: reachable, with the preferred leader first."""

    peer_is_up: Callable[[str], bool]
    first_choice: str | None


def _group_action(
    node_id: str, group: int, replicas: GroupReplicas, here: LocalReplica | None,
    draining: bool, leader_counts_me: Callable[[int], bool | None], targets: _Targets,
) -> ReplicaAction | None:
    voters = replicas.voters
    is_learner = replicas.learner == node_id
    named = node_id in voters or is_learner
    if here is None:
        if not named:
            return None
        if is_learner:
            return CreateReplica(group=group, voters=voters, learner=True)
        return CreateReplica(group=group, voters=voters, learner=False)
    if not named:
        if here.is_leader:
            target = _handoff_target(node_id, voters, here, targets)
            return None if target is None else HandOffLeadership(group=group, to=target)
        return None if leader_counts_me(group) else DropReplica(group=group)
    learners = () if replicas.learner is None else (replicas.learner,)
    # A learner the configuration already counts as a voter (a move that raced a removal) is
    # no learner to Raft: comparing it would ask for the same change forever.
    if _non_voters(here.learners, here) != _non_voters(learners, here):
        return SetLearners(group=group, learners=learners)
    campaign = node_id in voters and replicas.promoted != node_id
    if here.campaigning != campaign:
        return SetCampaigning(group=group, allowed=campaign)
    if not here.is_leader:
        return None
    return _leader_action(node_id, group, replicas, here, draining, targets)


def _non_voters(node_ids: Sequence[str], here: LocalReplica) -> tuple[str, ...]:
    return tuple(sorted(n for n in node_ids if n not in here.members))


def _leader_action(node_id: str, group: int, replicas: GroupReplicas, here: LocalReplica,
                   draining: bool, targets: _Targets) -> ReplicaAction | None:
    voters = replicas.voters
    actual = set(here.members)
    missing = [n for n in voters if n not in actual]
    if missing:  # add before remove: the group never drops below the map's voters
        return AddVoter(group=group, node_id=missing[0])
    # The map's learner may already be a voter here (a move that raced a removal): it is
    # about to be promoted in the map, so it is kept rather than removed and added again.
    extra = sorted(actual - set(voters) - {replicas.learner})
    if node_id in extra or (draining and len(voters) > 1):
        target = _handoff_target(node_id, voters, here, targets)
        return None if target is None else HandOffLeadership(group=group, to=target)
    if extra:
        return RemoveVoter(group=group, node_id=extra[0])
    return None


def _handoff_target(node_id: str, voters: Sequence[str], here: LocalReplica,
                    targets: _Targets) -> str | None:
    """A voter of the map, in the current configuration, reachable: the preferred leader
    first, then the map's order."""
    order = [targets.first_choice, *voters] if targets.first_choice in voters else voters
    for candidate in order:
        if (candidate is not None and candidate != node_id and candidate in here.members
                and targets.peer_is_up(candidate)):
            return candidate
    return None
