"""One raftflow node: its Raft host, its replicas, the matcher, the gateway and the cluster map.

Start-up order matters for I1 and I4: the data directory is bound to the cluster first (a node
refuses another cluster's data), then the WAL is recovered and every replica group the map
gives this node is rebuilt before the HTTP gateway accepts a single call. The incarnation
number, bumped durably at every start, keeps a restarted node from taking an entry proposed by
its previous life for its own.

The cluster map decides everything else (DESIGN §10, elastic cluster): which groups this node
replicates and how (node/replicas.py), whom it talks Raft to, where it forwards a call. The map
comes from this node's meta replica when it has one, else from whichever live node follows a
newer one (cluster_view.py); it only ever moves forward (epochs) and is stored in the data
directory, so a restarted node starts from the last map it saw.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiohttp import web

from raftflow.api.access import Authenticator
from raftflow.api.app import make_app
from raftflow.api.batch_runner import BatchRunner
from raftflow.api.message_courier import MessageCourier
from raftflow.api.metrics import Metrics
from raftflow.api.polling import TaskPoller
from raftflow.api.rate_limits import UNLIMITED, RateDefaults
from raftflow.api.routing import Gateway
from raftflow.api.schedule_ticker import ScheduleTicker
from raftflow.api.task_tokens import TaskTokens
from raftflow.cluster.cluster_map import META_GROUP_ID, ClusterMap, Member
from raftflow.cluster.config import ClusterConfig, NodeSpec, check_or_persist, served_address
from raftflow.cluster.map_replica import MapReplica
from raftflow.cluster.map_store import genesis_of, load_join_map, load_map, store_map
from raftflow.cluster.node_credential import node_headers
from raftflow.matching.items import QueueSample
from raftflow.matching.matcher import Matcher
from raftflow.node.cluster_view import REFRESH_S, ClusterView
from raftflow.node.effect_sink import NodeEffects
from raftflow.node.map_duties import MapDuties
from raftflow.node.replicas import ReplicaSet
from raftflow.node.tls_setup import NodeTls
from raftflow.node.wall_clock import SkewableWallClock
from raftflow.observability.config import DEFAULT_OBSERVABILITY, ObservabilityConfig
from raftflow.observability.tracing import NodeTracer
from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import LogStatus
from raftflow.raftlog.wal import fsync_directory
from raftflow.shards.actor import ShardActor, new_shard_actor
from raftflow.shards.core.digest import state_digest
from raftflow.shards.store.shard_store import ShardStore

log = logging.getLogger(__name__)

# At stop, calls still running after this are cancelled: long polls and result waits would
# hold a stop for up to a minute (aiohttp's default), and their clients retry elsewhere.
HTTP_SHUTDOWN_S = 3.0


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
    """Implements the gateway's `ShardDirectory` for this node.

    A node admitted by `raftflow node --join` has the map it was admitted with in its data
    directory (map_store.JOIN_FILE_NAME, written before the node starts).
    """

    def __init__(self, config: ClusterConfig, node_id: str, data_dir: Path, *,
                 dial: Mapping[str, NodeSpec] | None = None,
                 clock: SkewableWallClock | None = None,
                 auth: Authenticator | None = None, tls: NodeTls | None = None,
                 rate_defaults: RateDefaults = UNLIMITED,
                 observability: ObservabilityConfig = DEFAULT_OBSERVABILITY) -> None:
        self.config = check_or_persist(data_dir, config, node_id)
        self.observability = observability  # log format and trace exporter (its HTTP part)
        # Only with --otel-exporter: NodeTracer imports OpenTelemetry, nothing else does.
        self.tracer = (NodeTracer(observability.otel_exporter, node_id)
                       if observability.otel_exporter is not None else None)
        self.auth = auth  # None: every HTTP route is open (access.py)
        self.rate_defaults = rate_defaults  # namespaces without limits of their own use these
        # None: plain HTTP. Else the API is HTTPS, and so is every node's (tls_setup.py):
        # the map keeps `http://` addresses, which this node calls and hands out as https.
        self.tls = tls
        # The `now_ms` of every command this node proposes, shared by its actors and gateway;
        # each node has its own, so in-process nodes of one test can be skewed apart.
        self.clock = clock or SkewableWallClock()
        # Where to reach each peer, when it is not its own address: the chaos harness puts a
        # fault-injecting proxy on every directed link. Routing only, so it is not persisted.
        self._dial = dict(dial or {})
        self._node_id = node_id
        self._data_dir = data_dir
        self.spec = self.config.node(node_id)
        join_map = load_join_map(data_dir)
        # Only founding nodes offer a genesis; a joined node learns it from the meta group.
        self._genesis = None if join_map is not None else genesis_of(self.config)
        candidates = [m for m in (load_map(data_dir), join_map, self._genesis) if m is not None]
        assert candidates, "a joined node always has the map it was admitted with"
        self.cluster_map = max(candidates, key=lambda m: m.epoch)
        self.metrics = Metrics()
        self.matcher = Matcher()
        self.host: RaftHost | None = None
        self.replicas: ReplicaSet | None = None
        self.view: ClusterView | None = None
        self.duties: MapDuties | None = None
        self.removed = asyncio.Event()  # set once the map says this node left the cluster
        self._incarnation = 0
        self._runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None
        self.courier: MessageCourier | None = None
        self.batches: BatchRunner | None = None
        self._poller: TaskPoller | None = None
        self._loops: list[asyncio.Task[None]] = []

    # -- ShardDirectory ------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def shard_count(self) -> int:
        return self.config.shard_count

    @property
    def actors(self) -> dict[int, ShardActor]:
        return {} if self.replicas is None else self.replicas.actors

    @property
    def placement(self) -> dict[int, tuple[str, ...]]:
        """Each shard's voters, as the map this node follows says (first: preferred leader)."""
        return {shard: group.voters for shard, group in enumerate(self.cluster_map.shards)}

    def actor(self, shard: int) -> ShardActor | None:
        return self.actors.get(shard)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def leader_of(self, shard: int) -> str | None:
        assert self.host is not None
        group = self.host.groups.get(shard)
        if group is not None:
            return group.leader()
        if self.view is None:
            return None
        status = self.view.group_leader_status(shard)
        return None if status is None else status.leader

    def member(self, node_id: str) -> Member | None:
        for member in self.cluster_map.members:
            if member.id == node_id:
                return member
        return None

    def http_address(self, node_id: str) -> str | None:
        via = self._dial.get(node_id)
        if via is not None and node_id != self._node_id:
            return self._scheme(via.http_address)
        return self.public_address(node_id)

    def public_address(self, node_id: str) -> str | None:
        member = self.member(node_id)
        if member is not None:
            return self._scheme(member.http_address)
        return self._scheme(self.spec.http_address) if node_id == self._node_id else None

    def _scheme(self, address: str) -> str:
        return served_address(address, tls=self.tls is not None)

    def replica_digests(self) -> list[tuple[int, int, str, int]]:
        """(shard, applied index, state digest, outbox messages) of every local replica, read
        in one go on the event loop, so each is the state as of exactly that index."""
        assert self.host is not None
        return [(shard, self.host.groups[shard].status().applied_index,
                 state_digest(actor.state), len(actor.state.outbox))
                for shard, actor in sorted(self.actors.items())]

    def node_ids(self) -> list[str]:
        return [m.id for m in self.cluster_map.members]

    def mailbox_depths(self) -> dict[int, int]:
        return {shard: actor.mailbox_depth for shard, actor in self.actors.items()}

    def local_status(self) -> list[LogStatus]:
        assert self.host is not None
        return [g.status() for _, g in sorted(self.host.groups.items())]

    def replica_lags(self) -> list[tuple[int, str, int]]:
        """(group, peer, entries behind) for every group this node leads (metrics)."""
        assert self.host is not None
        lags = []
        for shard, group in sorted(self.host.groups.items()):
            if not group.is_leader():
                continue
            status = group.status()
            for peer in (*status.members, *status.learners):
                if peer != self._node_id and (lag := group.replication_lag(peer)) is not None:
                    lags.append((shard, str(peer), lag))
        return lags

    def queue_samples(self) -> list[QueueSample]:
        return self.matcher.queue_samples()

    @property
    def cluster_secret(self) -> str:
        return self.config.secret

    @property
    def map_replica(self) -> MapReplica | None:
        return None if self.replicas is None else self.replicas.map_replica

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._incarnation = incarnation = bump_incarnation(self._data_dir)
        self.host = RaftHost(node_id=self._node_id, data_dir=str(self._data_dir),
                             listen=(self.spec.host, self.spec.raft_port),
                             peers=self._raft_peers(self.cluster_map),
                             secret=self.config.secret.encode(), on_fatal=self._fatal,
                             tls=None if self.tls is None else self.tls.peers,
                             observer=self.metrics.log)
        # Every call this node makes to another carries the node credential, so the internal
        # routes answer it with auth on (a node without auth ignores the header).
        client_ssl = True if self.tls is None else self.tls.client
        self.session = aiohttp.ClientSession(headers=node_headers(self.config.secret),
                                             connector=aiohttp.TCPConnector(ssl=client_ssl))
        # The courier exists before any replica can lead: a ready leader hands it its outbox.
        self.courier = MessageCourier(self, self.session)
        self.batches = BatchRunner(self, self.session)
        effects = NodeEffects(self.matcher, self.courier, self.batches)
        self.replicas = ReplicaSet(
            node_id=self._node_id, host=self.host,
            make_shard_actor=lambda shard: new_shard_actor(
                shard=shard, node_id=self._node_id, incarnation=incarnation, sink=effects,
                clock=self.clock, observer=self.metrics, store=self._open_store(shard)),
            make_map_replica=lambda: MapReplica(genesis=self._genesis, on_change=self.follow),
            on_dropped=lambda shard: effects.on_leadership(shard, False))
        # Before the host runs: every replica the map gives this node, rebuilt from its files.
        self.replicas.converge(self.cluster_map, lambda group: None)
        await self.host.start()
        self.view = ClusterView(self._node_id, self.session, self.http_address)
        self.duties = MapDuties(self)
        # Signs the task tokens this node hands out; any node of the cluster checks them.
        self.tokens = TaskTokens(self.config.secret, self.now_ms)
        self._poller = TaskPoller(self, self.matcher, self.session, self.tokens, self.metrics,
                                  ssl=client_ssl)
        app = make_app(gateway=Gateway(self, self.session, self.tokens, ssl=client_ssl,
                                       on_forward=self.metrics.forwarded_calls.inc),
                       poller=self._poller, node=self, auth=self.auth,
                       rate_defaults=self.rate_defaults, observability=self.observability,
                       tracer=self.tracer)
        # Cancelling a handler when its client leaves lets a cancelled long poll hand its
        # task to the next poller instead of starting it for nobody (polling.py).
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=HTTP_SHUTDOWN_S)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.spec.host, self.spec.http_port,
                          ssl_context=None if self.tls is None else self.tls.server).start()
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._refresh_forever()),
                       loop.create_task(self.duties.run_forever()),
                       loop.create_task(ScheduleTicker(self).run_forever())]
        for task in self._loops:
            task.add_done_callback(self._loop_ended)
        log.info("node %s serving %s (%d shard replicas, map epoch %d, incarnation %d)",
                 self._node_id, self.spec.http_address, len(self.actors),
                 self.cluster_map.epoch, incarnation)

    def _open_store(self, shard: int) -> ShardStore:
        """This node's store of `shard`. A replica the WAL does not know starts from nothing,
        so a file an earlier replica of the shard left behind (removed just before a crash)
        is never mistaken for its state."""
        directory = self._data_dir / "stores"
        directory.mkdir(exist_ok=True)
        assert self.host is not None
        fresh = shard not in self.host.wal.recovered
        return ShardStore(str(directory / f"shard-{shard}.db"), shard, fresh=fresh)

    def _raft_peers(self, cluster_map: ClusterMap) -> dict[str, tuple[str, int]]:
        peers = {}
        for member in cluster_map.members:
            if member.id == self._node_id:
                continue
            via = self._dial.get(member.id)
            peers[member.id] = ((via.host, via.raft_port) if via is not None
                                else (member.raft_host, member.raft_port))
        return peers

    def follow(self, cluster_map: ClusterMap) -> None:
        """Adopt `cluster_map` if it is newer than the one this node follows."""
        if cluster_map.epoch <= self.cluster_map.epoch:
            return
        old_peers = self._raft_peers(self.cluster_map)
        self._count_moves(self.cluster_map, cluster_map)
        self.cluster_map = cluster_map
        store_map(self._data_dir, cluster_map)
        if self.host is not None:
            new_peers = self._raft_peers(cluster_map)
            for peer, (host, port) in new_peers.items():
                if old_peers.get(peer) != (host, port):
                    self.host.add_peer(peer, host, port)
            for peer in set(old_peers) - set(new_peers):
                self.host.remove_peer(peer)
        if self._node_id in cluster_map.removed:
            log.warning("node %s was removed from the cluster (map epoch %d)", self._node_id,
                        cluster_map.epoch)
            self.removed.set()
        if self.duties is not None:
            self.duties.converge_soon()

    def _count_moves(self, old: ClusterMap, new: ClusterMap) -> None:
        """Moves started and ended between two maps, counted on the map group's leader only
        (every node follows the same maps: counting everywhere would count each move N times).
        Maps can skip epochs, so a move started and ended between two followed maps is missed."""
        meta = None if self.host is None else self.host.groups.get(META_GROUP_ID)
        if meta is None or not meta.is_leader():
            return
        was = {g for g, replicas in old.groups().items() if replicas.moving}
        now = {g for g, replicas in new.groups().items() if replicas.moving}
        self.metrics.log.record_moves(started=len(now - was), ended=len(was - now))

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """The refresh and duty loops run for the node's whole life and catch their own
        errors; one that ends anyway would leave a node that serves but no longer follows the
        map: fail-stop, so that a restart rebuilds it."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.critical("node %s: a cluster loop failed", self._node_id, exc_info=error)
            self._fatal(error)

    def _fatal(self, error: BaseException) -> None:
        # A broken invariant in a shard: stop serving at once rather than answer from a state
        # that may have diverged; a restart rebuilds every shard from snapshot + log.
        log.critical("node %s stops after a fatal error: %r", self._node_id, error)
        os._exit(70)

    async def stop(self, *, graceful: bool = False) -> None:
        """Stop serving. `graceful` (SIGTERM) first hands every leadership to another replica,
        so a rolling restart costs clients no failed call."""
        if graceful and self.duties is not None:
            await self.duties.hand_off_everything()
        for task in self._loops:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._poller is not None:
            await self._poller.close()
        if self.courier is not None:
            self.courier.close()
        if self.batches is not None:
            self.batches.close()
        if self.session is not None:
            await self.session.close()
        if self.host is not None:
            await self.host.stop()
            for actor in self.actors.values():
                actor.close()
        if self.tracer is not None:
            self.tracer.shutdown()  # the spans still buffered are exported now

    def all_local_shards_have_leaders(self) -> bool:
        return all(self.leader_of(s) is not None for s in self.actors)

    async def _refresh_forever(self) -> None:
        assert self.view is not None
        while True:
            await self.view.refresh(self.node_ids())
            await asyncio.sleep(REFRESH_S)

    def meta_leader(self) -> str | None:
        return self.leader_of(META_GROUP_ID)
