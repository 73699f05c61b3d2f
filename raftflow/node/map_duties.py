"""What a node does, round after round, because of the cluster map.

Every round (`ROUND_S`, and at once after a newer map arrives):
- follow: fetch the map from a live node that follows a newer one (a node outside the meta
  group learns every change this way; a meta voter also learns it from its own replica);
- converge: bring this node's replicas to the map (node/replicas.py);
- balance: hand the leadership of a shard this node leads to its preferred replica
  (placement_plan.preferred_leaders: spread over the settled, active voters) when that node is
  reachable, so load spreads evenly (Raft itself elects whoever times out first); one attempt per shard per back-off at most, so a preferred
  node that cannot keep leadership does not make the shard flap;
- rebalance, on the meta group's leader only: propose the map commands that move the cluster
  one step on (cluster/move_progress.py, cluster/placement_plan.py).
A graceful stop first stops campaigning everywhere and hands every leadership away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Protocol

import aiohttp
import msgspec

from raftflow.cluster.cluster_map import ClusterMap, MapRefused, MemberState
from raftflow.cluster.map_replica import MapReplica
from raftflow.cluster.move_progress import GroupReport, progress_commands
from raftflow.cluster.placement_plan import next_moves, preferred_leaders
from raftflow.node.cluster_view import ClusterView
from raftflow.node.namespace_sync import NamespaceSync
from raftflow.node.replicas import ReplicaSet
from raftflow.observability.json_logs import shard_fields
from raftflow.protocol.errors import RaftflowError
from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import NodeId
from raftflow.shards.actor import ShardActor

log = logging.getLogger(__name__)

ROUND_S = 0.5
LEADER_BALANCE_BACKOFF_S = 30.0
# A graceful stop waits at most this long for its leaderships to move.
HAND_OFF_TIMEOUT_S = 5.0
# A replica asked to take over is elected within an election round (~1 s, raftlog/limits.py).
HAND_OFF_ATTEMPT_S = 1.0
_HAND_OFF_POLL_S = 0.1
MAP_FETCH_TIMEOUT_S = 2.0
# How often the rebalancer says what each waiting move waits for.
WAIT_LOG_S = 5.0
_map_decoder = msgspec.json.Decoder(ClusterMap)


class DutiesNode(Protocol):
    """What the duties need of the node runtime (node/runtime.py), once it has started."""

    @property
    def node_id(self) -> str: ...

    @property
    def cluster_map(self) -> ClusterMap: ...

    @property
    def host(self) -> RaftHost | None: ...

    @property
    def replicas(self) -> ReplicaSet | None: ...

    @property
    def view(self) -> ClusterView | None: ...

    @property
    def session(self) -> aiohttp.ClientSession | None: ...

    @property
    def actors(self) -> dict[int, ShardActor]: ...

    @property
    def map_replica(self) -> MapReplica | None: ...

    def http_address(self, node_id: str) -> str | None: ...

    def follow(self, cluster_map: ClusterMap) -> None: ...

    def now_ms(self) -> int: ...


class MapDuties:
    def __init__(self, node: DutiesNode) -> None:
        self._node = node
        self._wake = asyncio.Event()
        self._balance_attempts: dict[int, float] = {}
        self._preferred: tuple[int, dict[int, str]] = (-1, {})  # (map epoch, shard -> node)
        self._waits_logged_at = -WAIT_LOG_S
        self._stopping = False
        self._namespaces = NamespaceSync(node.node_id, node.now_ms)

    def converge_soon(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), ROUND_S)
            self._wake.clear()
            if self._stopping:
                continue
            try:
                await self._round()
            except Exception:
                # The catch boundary of this loop. Every round decides again from the map and
                # what the groups report, so the next one retries whatever failed; a loop that
                # died instead would leave a node that serves but never converges again (a
                # chaos run showed moves stuck until the node restarted).
                log.exception("node %s: a map-duty round failed (map epoch %d); the next "
                              "round retries", self._node.node_id, self._node.cluster_map.epoch)

    async def _round(self) -> None:
        await self._follow_newer_map()
        self._converge()
        self._balance_leaders()
        self._namespaces.round(self._node.cluster_map, self._node.actors)
        await self._rebalance()

    # -- follow --------------------------------------------------------------------------------

    async def _follow_newer_map(self) -> None:
        node = self._node
        assert node.view is not None and node.session is not None
        newest = node.view.newest_map()
        if newest is None or newest[1] <= node.cluster_map.epoch:
            return
        address = node.http_address(newest[0])
        if address is None:
            return
        try:
            async with node.session.get(
                f"{address}/api/v1/cluster/map",
                timeout=aiohttp.ClientTimeout(total=MAP_FETCH_TIMEOUT_S)) as answer:
                if answer.status == 200:
                    node.follow(_map_decoder.decode(await answer.read()))
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as error:
            log.info("node %s: cannot fetch the map from %s (%r)", node.node_id, newest[0], error)

    # -- converge and balance ------------------------------------------------------------------

    def _converge(self) -> None:
        node = self._node
        assert node.replicas is not None and node.view is not None
        view = node.view

        def leader_counts_me(group: int) -> bool | None:
            status = view.group_leader_status(group)
            return None if status is None else node.node_id in status.members

        node.replicas.converge(node.cluster_map, leader_counts_me, self.preferred_leaders())

    def preferred_leaders(self) -> dict[int, str]:
        """placement_plan.preferred_leaders of the map this node follows (cached per epoch)."""
        node = self._node
        if self._preferred[0] != node.cluster_map.epoch:
            self._preferred = (node.cluster_map.epoch, preferred_leaders(node.cluster_map))
        return self._preferred[1]

    def _balance_leaders(self) -> None:
        """Hand a shard this node leads to its preferred replica when it is reachable.

        While replica moves are in progress, only when this node should not lead it: it leads
        more than its share of the shards, or is not a settled voter of an active member (a
        draining node's leaders go through the replica plan). The preferred leaders are
        recomputed at every map change: chasing each step's preference would hand leaders
        all over the cluster at every step of a move, and each hand-off fails the commands in
        flight on that shard. Once no move is in progress, every shard goes to its preferred
        replica, so leaders end spread as the ring's preferred replicas are."""
        node = self._node
        assert node.host is not None
        cluster_map = node.cluster_map
        me = cluster_map.member(node.node_id)
        if me is None or me.state != MemberState.ACTIVE:
            return
        led = [shard for shard, actor in node.actors.items() if actor.is_ready_leader()]
        moving = cluster_map.moves_in_progress() > 0
        share = -(-cluster_map.shard_count // max(1, len(cluster_map.active_ids())))
        preferred = self.preferred_leaders()
        now = asyncio.get_running_loop().time()
        for shard in list(led):  # `led` shrinks as hand-offs are asked
            target = preferred.get(shard)
            group = node.host.groups.get(shard)
            replicas = cluster_map.shards[shard]
            settled = node.node_id in replicas.voters and node.node_id not in (
                replicas.leaving, replicas.promoted)
            if (target is None or target == node.node_id or group is None
                    or (moving and settled and len(led) <= share)
                    or not node.host.peer_is_up(target)
                    or target not in group.status().members
                    or now - self._balance_attempts.get(shard, -LEADER_BALANCE_BACKOFF_S)
                    < LEADER_BALANCE_BACKOFF_S):
                continue
            self._balance_attempts[shard] = now
            led.remove(shard)
            log.info("shard %d: handing leadership to preferred replica %s", shard, target,
                     extra=shard_fields(shard))
            group.transfer_leadership(NodeId(target), lambda _: None)

    # -- rebalance (meta leader only) ----------------------------------------------------------

    def group_reports(self) -> dict[int, GroupReport]:
        """Every group's leader's own report: this node's for groups it leads, else the latest
        status of the leader's node."""
        node = self._node
        assert node.host is not None and node.view is not None
        reports = {}
        for group in node.cluster_map.groups():
            local = node.host.groups.get(group)
            status = local.status() if local is not None and local.is_leader() else \
                node.view.group_leader_status(group)
            if status is not None and status.leader is not None:
                reports[group] = GroupReport(
                    leader=status.leader, members=tuple(status.members),
                    learner_lags=dict(status.learner_lags))
        return reports

    async def _rebalance(self) -> None:
        node = self._node
        replica = node.map_replica
        if replica is None or not replica.is_leader() or replica.map is None:
            return
        assert node.view is not None
        view = node.view
        current = replica.map
        reports = self.group_reports()
        self._say_why_waiting(current, reports)
        commands = progress_commands(
            current, reports,
            alive=lambda n: n == node.node_id or view.alive(n),
            new_request_id=lambda: uuid.uuid4().hex)
        commands += [m.start_move(uuid.uuid4().hex) for m in next_moves(current)]
        for command in commands:
            try:
                result = await replica.execute(command)
            except RaftflowError as error:
                log.info("rebalance: %s not applied (%s)", type(command).__name__, error)
                return
            if isinstance(result, MapRefused):
                log.info("rebalance: %s refused: %s", type(command).__name__, result.message)
            else:
                log.info("rebalance: %s applied (epoch %d)", command, result.epoch)

    def _say_why_waiting(self, current: ClusterMap, reports: dict[int, GroupReport]) -> None:
        """Every WAIT_LOG_S, for each move still waiting for its learner: what the group's
        leader reports of it (an operator reads this when a move does not end)."""
        now = asyncio.get_running_loop().time()
        if now - self._waits_logged_at < WAIT_LOG_S:
            return
        self._waits_logged_at = now
        for group, replicas in current.groups().items():
            if replicas.learner is None and replicas.promoted is None:
                continue
            report = reports.get(group)
            seen = ("no leader reports it" if report is None else
                    f"leader {report.leader}: members {list(report.members)}, learner lags "
                    f"{dict(report.learner_lags)}")
            log.info("rebalance: group %d waits (learner %s, promoted %s, leaving %s): %s",
                     group, replicas.learner, replicas.promoted, replicas.leaving, seen)

    # -- graceful stop -------------------------------------------------------------------------

    async def hand_off_everything(self) -> None:
        """Stop campaigning on every group, then move each leadership this node holds to
        another reachable voter, trying each in turn (one per `HAND_OFF_ATTEMPT_S`). Returns
        once none is held, once every group still led has tried every candidate (the others
        are stopping too: a whole-cluster stop), or after HAND_OFF_TIMEOUT_S."""
        node = self._node
        assert node.host is not None
        self._stopping = True
        host = node.host
        for group in host.groups.values():
            group.set_campaigning(False)
        log.info("node %s: graceful stop: handing %d leaderships over", node.node_id,
                 sum(1 for g in host.groups.values() if g.is_leader()))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HAND_OFF_TIMEOUT_S
        tried: dict[int, list[str]] = {}
        last_ask: dict[int, float] = {}
        while loop.time() < deadline:
            led = [(g, group) for g, group in host.groups.items() if group.is_leader()]
            if not led:
                log.info("node %s: graceful stop: leads no group any more", node.node_id)
                return
            exhausted = 0
            for g, group in led:
                if loop.time() - last_ask.get(g, -HAND_OFF_ATTEMPT_S) < HAND_OFF_ATTEMPT_S:
                    continue
                candidates = [m for m in group.status().members if m != node.node_id
                              and host.peer_is_up(m) and m not in tried.get(g, [])]
                if not candidates:
                    exhausted += 1
                    continue
                tried.setdefault(g, []).append(candidates[0])
                last_ask[g] = loop.time()
                group.transfer_leadership(NodeId(candidates[0]), lambda _: None)
            if exhausted == len(led):
                break
            await asyncio.sleep(_HAND_OFF_POLL_S)
        log.warning("node %s: stopping while still leading %d groups (no other replica took "
                    "them)", node.node_id, sum(1 for g in host.groups.values() if g.is_leader()))
