"""This node's replicas (every shard it holds, and the meta group), converged to the cluster map.

The decisions are pure (`cluster.replica_plan.replica_actions`); this shell runs them on the
node's Raft host. A membership change or a leadership hand-off is asynchronous: at most one runs
per group at a time, and the next convergence round (every map change, and every
`CONVERGE_PERIOD_S`) looks again at what the group then reports, so a failed change is simply
retried and a crash in the middle resumes from whatever the Raft group and the map say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from raftflow.cluster.cluster_map import META_GROUP_ID, ClusterMap
from raftflow.cluster.map_replica import MapReplica
from raftflow.cluster.replica_plan import (
    AddVoter,
    CreateReplica,
    DropReplica,
    HandOffLeadership,
    LocalReplica,
    RemoveVoter,
    ReplicaAction,
    SetCampaigning,
    SetLearners,
    replica_actions,
)
from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import LogConsumer, NodeId, ShardId
from raftflow.shards.actor import ShardActor

log = logging.getLogger(__name__)

# The map is converged on every change; this period retries what a change could not finish
# (a membership change refused while another was in flight, a leader not elected yet).
CONVERGE_PERIOD_S = 0.5


class ReplicaSet:
    """Creates, changes and drops this node's Raft groups as the map says (one loop, no locks).

    Args:
        make_shard_actor: a fresh actor for this node's replica of a shard (empty state: it is
            filled from the group's snapshot and log).
        make_map_replica: a fresh consumer for this node's replica of the meta group.
        on_dropped: called with a shard id once its replica is gone from this node.
    """

    def __init__(self, *, node_id: str, host: RaftHost,
                 make_shard_actor: Callable[[int], ShardActor],
                 make_map_replica: Callable[[], MapReplica],
                 on_dropped: Callable[[int], None]) -> None:
        self._node_id = node_id
        self._host = host
        self._make_shard_actor = make_shard_actor
        self._make_map_replica = make_map_replica
        self._on_dropped = on_dropped
        self.actors: dict[int, ShardActor] = {}
        self.map_replica: MapReplica | None = None
        self._campaigning: dict[int, bool] = {}
        self._busy: set[int] = set()  # groups with a membership change or hand-off in flight

    def start_group(self, group: int, voters: tuple[str, ...], *, learner: bool) -> None:
        """Run this node's replica of `group` (also used at start-up, before the host runs)."""
        assert group not in self._host.groups, group
        consumer: LogConsumer
        if group == META_GROUP_ID:
            replica = self._make_map_replica()
            consumer = replica
        else:
            actor = self._make_shard_actor(group)
            consumer = actor
        members = [v for v in voters if v != self._node_id] if learner else list(voters)
        raft_group = self._host.add_group(ShardId(group), members, consumer, learner=learner)
        if group == META_GROUP_ID:
            replica.bind(raft_group)
            self.map_replica = replica
        else:
            actor.bind(raft_group)
            self.actors[group] = actor
        self._campaigning[group] = not learner
        if learner:
            raft_group.set_campaigning(False)
        log.info("node %s: replica of group %d started (%s)", self._node_id, group,
                 "learner" if learner else "voter")

    def local(self) -> dict[int, LocalReplica]:
        view = {}
        for group, raft_group in self._host.groups.items():
            status = raft_group.status()
            view[group] = LocalReplica(
                is_leader=status.is_leader, members=tuple(status.members),
                learners=tuple(status.learners), campaigning=self._campaigning.get(group, True))
        return view

    def converge(self, cluster_map: ClusterMap, leader_counts_me: Callable[[int], bool | None],
                 preferred: Mapping[int, str] | None = None) -> None:
        actions = replica_actions(
            node_id=self._node_id, cluster_map=cluster_map, local=self.local(),
            leader_counts_me=leader_counts_me, peer_is_up=self._host.peer_is_up,
            preferred=preferred)
        for action in actions:
            if action.group in self._busy:
                continue
            self._run(action)

    def _run(self, action: ReplicaAction) -> None:
        match action:
            case CreateReplica(group=group, voters=voters, learner=learner):
                self.start_group(group, voters, learner=learner)
            case DropReplica(group=group):
                self._drop(group)
            case SetLearners(group=group, learners=learners):
                log.info("node %s: group %d: learners %s", self._node_id, group,
                         list(learners) or "none")
                self._host.groups[group].set_learners([NodeId(n) for n in learners])
            case SetCampaigning(group=group, allowed=allowed):
                log.info("node %s: group %d: %s", self._node_id, group,
                         "campaigns (a settled voter)" if allowed else "does not campaign")
                self._host.groups[group].set_campaigning(allowed)
                self._campaigning[group] = allowed
            case AddVoter(group=group, node_id=node_id):
                self._change(group, "adding", node_id,
                             lambda done: self._host.groups[group].add_member(NodeId(node_id), done))
            case RemoveVoter(group=group, node_id=node_id):
                self._change(group, "removing", node_id, lambda done:
                             self._host.groups[group].remove_member(NodeId(node_id), done))
            case HandOffLeadership(group=group, to=to):
                self._change(group, "handing leadership to", to, lambda done:
                             self._host.groups[group].transfer_leadership(NodeId(to), done))

    def _change(self, group: int, what: str, node_id: str,
                start: Callable[[Callable[[str | None], None]], None]) -> None:
        self._busy.add(group)
        log.info("node %s: group %d: %s %s", self._node_id, group, what, node_id)

        def done(error: str | None) -> None:
            self._busy.discard(group)
            if error is not None:
                log.info("node %s: group %d: %s %s failed (%s); retrying later",
                         self._node_id, group, what, node_id, error)

        start(done)

    def _drop(self, group: int) -> None:
        # The group is gone from the host at once; its files once the WAL says so. Until then
        # the group counts as busy: starting it again before would reuse the files.
        removal = self._host.remove_group(ShardId(group))
        self._busy.add(group)
        removal.add_done_callback(lambda _: self._busy.discard(group))
        self._campaigning.pop(group, None)
        if group == META_GROUP_ID:
            self.map_replica = None
        else:
            self.actors.pop(group, None)
            self._on_dropped(group)
        log.info("node %s: replica of group %d dropped", self._node_id, group)
