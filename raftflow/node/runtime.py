"""One raftflow node: its Raft host, the shard actors it replicates, the matcher and the gateway.

Start-up order matters for I1 and I4: the data directory is bound to the cluster first (a node
refuses another cluster's data), then the WAL is recovered and every replica group rebuilt
before the HTTP gateway accepts a single call. The incarnation number, bumped durably at every
start, keeps a restarted node from taking an entry proposed by its previous life for its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiohttp import web

from raftflow.api.app import make_app
from raftflow.api.metrics import Metrics
from raftflow.api.polling import TaskPoller
from raftflow.api.routing import Gateway
from raftflow.cluster.config import ClusterConfig, NodeSpec, check_or_persist
from raftflow.cluster.ring import place_replicas, preferred_leader
from raftflow.matching.matcher import Matcher
from raftflow.node.wall_clock import SkewableWallClock
from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import LogStatus, NodeId, ShardId
from raftflow.raftlog.wal import fsync_directory
from raftflow.shards.actor import ShardActor, new_shard_actor
from raftflow.shards.core.digest import state_digest

log = logging.getLogger(__name__)

REPLICATION_FACTOR = 3
# For shards this node does not replicate (clusters of more than 3 nodes), the leader is learnt
# from the replicas' status this often.
LEADER_REFRESH_S = 0.5
# Leaders move back to the ring's preferred replica so load spreads evenly (Raft itself elects
# whoever times out first). Checked this often; one attempt per shard per back-off at most, so
# a preferred node that cannot keep leadership does not make the shard flap.
LEADER_BALANCE_S = 2.0
LEADER_BALANCE_BACKOFF_S = 30.0


def bump_incarnation(data_dir: Path) -> int:
    """Read, increment and durably store this node's incarnation number."""
    path = data_dir / "incarnation"
    previous = int(path.read_text()) if path.exists() else 0
    tmp = data_dir / "incarnation.tmp"
    with open(tmp, "w") as f:
        f.write(str(previous + 1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(str(data_dir))
    return previous + 1


class NodeRuntime:
    """Implements the gateway's `ShardDirectory` for this node."""

    def __init__(self, config: ClusterConfig, node_id: str, data_dir: Path, *,
                 dial: Mapping[str, NodeSpec] | None = None,
                 clock: SkewableWallClock | None = None) -> None:
        self.config = check_or_persist(data_dir, config, node_id)
        # The `now_ms` of every command this node proposes, shared by its actors and gateway;
        # each node has its own, so in-process nodes of one test can be skewed apart.
        self.clock = clock or SkewableWallClock()
        # Where to reach each peer, when it is not its own address: the chaos harness puts a
        # fault-injecting proxy on every directed link. Routing only, so it is not persisted.
        self._dial = dict(dial or {})
        self._node_id = node_id
        self._data_dir = data_dir
        self.spec = self.config.node(node_id)
        node_ids = [n.id for n in self.config.nodes]
        self.placement = place_replicas(node_ids, self.config.shard_count, REPLICATION_FACTOR)
        self.metrics = Metrics()
        self.matcher = Matcher()
        self.actors: dict[int, ShardActor] = {}
        self.host: RaftHost | None = None
        self._leader_cache: dict[int, str] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._poller: TaskPoller | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._balancer: asyncio.Task[None] | None = None

    # -- ShardDirectory ------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def shard_count(self) -> int:
        return self.config.shard_count

    def actor(self, shard: int) -> ShardActor | None:
        return self.actors.get(shard)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def leader_of(self, shard: int) -> str | None:
        assert self.host is not None
        group = self.host.groups.get(shard)
        if group is not None:
            return group.leader()
        return self._leader_cache.get(shard)

    def http_address(self, node_id: str) -> str | None:
        via = self._dial.get(node_id)
        if via is not None and node_id != self._node_id:
            return via.http_address
        return self.public_address(node_id)

    def public_address(self, node_id: str) -> str | None:
        for spec in self.config.nodes:
            if spec.id == node_id:
                return spec.http_address
        return None

    def replica_digests(self) -> list[tuple[int, int, str]]:
        """(shard, applied index, state digest) of every local replica, read in one go on the
        event loop, so each digest is the state as of exactly that index."""
        assert self.host is not None
        return [(shard, self.host.groups[shard].status().applied_index,
                 state_digest(actor.state)) for shard, actor in sorted(self.actors.items())]

    def node_ids(self) -> list[str]:
        return [n.id for n in self.config.nodes]

    def mailbox_depths(self) -> dict[int, int]:
        return {shard: actor.mailbox_depth for shard, actor in self.actors.items()}

    def local_status(self) -> list[LogStatus]:
        assert self.host is not None
        return [g.status() for _, g in sorted(self.host.groups.items())]

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        incarnation = bump_incarnation(self._data_dir)
        peers = {n.id: (self._dial.get(n.id, n).host, self._dial.get(n.id, n).raft_port)
                 for n in self.config.nodes if n.id != self._node_id}
        self.host = RaftHost(node_id=self._node_id, data_dir=str(self._data_dir),
                             listen=(self.spec.host, self.spec.raft_port), peers=peers,
                             secret=self.config.secret.encode(), on_fatal=self._fatal)
        for shard, replicas in sorted(self.placement.items()):
            if self._node_id not in replicas:
                continue
            actor = new_shard_actor(shard=shard, node_id=self._node_id, incarnation=incarnation,
                                    sink=self.matcher, clock=self.clock, observer=self.metrics)
            actor.bind(self.host.add_group(ShardId(shard), list(replicas), actor))
            self.actors[shard] = actor
        await self.host.start()
        self._session = aiohttp.ClientSession()
        self._poller = TaskPoller(self, self.matcher, self._session, self.metrics)
        app = make_app(gateway=Gateway(self, self._session), poller=self._poller, node=self)
        # Cancelling a handler when its client leaves lets a cancelled long poll hand its
        # task to the next poller instead of starting it for nobody (polling.py).
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.spec.host, self.spec.http_port).start()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_leaders())
        self._balancer = asyncio.get_running_loop().create_task(self._balance_leaders())
        log.info("node %s serving %s (%d shard replicas, incarnation %d)", self._node_id,
                 self.spec.http_address, len(self.actors), incarnation)

    def _fatal(self, error: BaseException) -> None:
        # A broken invariant in a shard: stop serving at once rather than answer from a state
        # that may have diverged; a restart rebuilds every shard from snapshot + log.
        log.critical("node %s stops after a fatal error: %r", self._node_id, error)
        os._exit(70)

    async def stop(self) -> None:
        for task in (self._refresher, self._balancer):
            if task is not None:
                task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._poller is not None:
            await self._poller.close()
        if self._session is not None:
            await self._session.close()
        if self.host is not None:
            await self.host.stop()

    def all_local_shards_have_leaders(self) -> bool:
        return all(self.leader_of(s) is not None for s in self.actors)

    async def _balance_leaders(self) -> None:
        """Hand leadership of each shard this node leads to the shard's preferred replica."""
        assert self.host is not None
        attempted: dict[int, float] = {}
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(LEADER_BALANCE_S)
            for shard, actor in self.actors.items():
                preferred = preferred_leader(self.placement, shard)
                if (preferred == self._node_id or not actor.is_ready_leader()
                        or not self.host.peer_is_up(preferred)
                        or loop.time() - attempted.get(shard, -LEADER_BALANCE_BACKOFF_S)
                        < LEADER_BALANCE_BACKOFF_S):
                    continue
                attempted[shard] = loop.time()
                log.info("shard %d: handing leadership to preferred replica %s", shard, preferred)
                self.host.groups[shard].transfer_leadership(NodeId(preferred), lambda _: None)

    async def _refresh_leaders(self) -> None:
        """Learn leaders of shards replicated elsewhere (only in clusters above 3 nodes)."""
        remote = [s for s in self.placement if s not in self.actors]
        if not remote:
            return
        assert self._session is not None
        while True:
            for node in self.config.nodes:
                if node.id == self._node_id:
                    continue
                try:
                    async with self._session.get(
                        f"{self.http_address(node.id)}/api/v1/node/status",
                        timeout=aiohttp.ClientTimeout(total=1.0),
                    ) as answer:
                        payload = await answer.json()
                except (TimeoutError, aiohttp.ClientError, ValueError):
                    continue
                for shard in payload.get("shards", []):
                    if shard.get("is_leader") and shard["shard"] not in self.actors:
                        self._leader_cache[int(shard["shard"])] = node.id
            await asyncio.sleep(LEADER_REFRESH_S)
