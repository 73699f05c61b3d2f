"""Gauges read at scrape time: Raft replicas, task queues, membership; and the log's timings.

Gauges are sampled when `GET /metrics` is served rather than updated on every change, so the
hot path pays nothing for them. Every sample replaces the previous one whole (`clear` first):
a replica that left the node, or a task queue that emptied, leaves no stale series behind.

Replication. Each node exports, per replica it holds, its commit, applied and last log index
and whether it leads or knows a leader; on a leader, each other replica's distance behind its
log (`raftflow_replica_lag_entries`). Cluster-wide questions are then PromQL over all nodes:
"a shard without a leader" is `max by (shard) (raftflow_shard_leader_known) == 0`.

Task queues. A gateway poll waits on every node at once (one leg per node, polling.py), so
each node sees every waiting worker poll: the poller gauge of a queue is about the same on all
nodes (take `max` across nodes, not `sum`). A queue's backlog lives on the leaders of the
shards whose tasks it holds (take `sum`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from raftflow.cluster.cluster_map import ClusterMap
from raftflow.matching.items import QueueSample
from raftflow.raftlog.interface import LogStatus

# A round's write + fdatasync: tens of microseconds on a fast SSD to seconds on a sick disk.
_FSYNC_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5)
# Snapshots and WAL checkpoints write whole states: milliseconds to tens of seconds.
_WRITE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0)


class ClusterSource(Protocol):
    """What the node offers the scrape (NodeRuntime)."""

    @property
    def cluster_map(self) -> ClusterMap: ...

    def local_status(self) -> list[LogStatus]: ...

    def mailbox_depths(self) -> dict[int, int]: ...

    def replica_lags(self) -> list[tuple[int, str, int]]:
        """(shard, peer, entries behind) of every replica this node replicates to as leader."""

    def queue_samples(self) -> Iterable[QueueSample]: ...


class ClusterGauges:
    """Scrape-time gauges of one node."""

    def __init__(self, registry: CollectorRegistry, namespaces: Callable[[str], str],
                 queues: Callable[[str], str]) -> None:
        self._namespaces = namespaces
        self._queues = queues
        shard = ("shard",)
        self.is_leader = Gauge("raftflow_shard_is_leader", "1 if this node leads the shard's "
                               "group (shard -1: the cluster map's group), else 0.", shard,
                               registry=registry)
        self.leader_known = Gauge("raftflow_shard_leader_known", "1 if this node's replica "
                                  "knows a leader of the group, else 0.", shard,
                                  registry=registry)
        self.term = Gauge("raftflow_shard_term", "Raft term of this node's replica.", shard,
                          registry=registry)
        self.commit_index = Gauge("raftflow_replica_commit_index", "Highest log index this "
                                  "replica knows committed.", shard, registry=registry)
        self.applied_index = Gauge("raftflow_replica_applied_index", "Highest log index this "
                                   "replica applied.", shard, registry=registry)
        self.last_index = Gauge("raftflow_replica_last_index", "Last log index in this "
                                "replica's journal.", shard, registry=registry)
        self.lag = Gauge("raftflow_replica_lag_entries", "On the group's leader: entries each "
                         "other replica is behind the leader's log.", ("shard", "peer"),
                         registry=registry)
        queue = ("namespace", "task_queue", "kind")
        self.backlog = Gauge("raftflow_task_queue_backlog", "Tasks waiting in this node's "
                             "matcher for a poll.", queue, registry=registry)
        self.pollers = Gauge("raftflow_task_queue_pollers", "Worker polls waiting on this "
                             "node (every node sees each gateway poll).", queue,
                             registry=registry)
        self.moves = Gauge("raftflow_membership_moves_in_progress", "Replica moves started "
                           "and not yet finished, in the map this node follows.",
                           registry=registry)
        self.epoch = Gauge("raftflow_cluster_map_epoch", "Epoch of the cluster map this node "
                           "follows.", registry=registry)
        self.members = Gauge("raftflow_cluster_members", "Members of the cluster map this "
                             "node follows, by state.", ("state",), registry=registry)

    def sample(self, source: ClusterSource) -> None:
        statuses = source.local_status()
        for gauge in (self.is_leader, self.leader_known, self.term, self.commit_index,
                      self.applied_index, self.last_index, self.lag, self.backlog,
                      self.pollers, self.members):
            gauge.clear()
        for status in statuses:
            shard = str(status.shard)
            self.is_leader.labels(shard).set(1 if status.is_leader else 0)
            self.leader_known.labels(shard).set(0 if status.leader is None else 1)
            self.term.labels(shard).set(status.term)
            self.commit_index.labels(shard).set(status.commit_index)
            self.applied_index.labels(shard).set(status.applied_index)
            self.last_index.labels(shard).set(status.last_index)
        for shard_id, peer, behind in source.replica_lags():
            self.lag.labels(str(shard_id), peer).set(behind)
        # Queues beyond the label limits are summed into their overflow series.
        totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for sample in source.queue_samples():
            key = (self._namespaces(sample.namespace), self._queues(sample.task_queue),
                   sample.kind)
            totals[key][0] += sample.backlog
            totals[key][1] += sample.pollers
        for key, (backlog, pollers) in totals.items():
            self.backlog.labels(*key).set(backlog)
            self.pollers.labels(*key).set(pollers)
        cluster_map = source.cluster_map
        self.moves.set(cluster_map.moves_in_progress())
        self.epoch.set(cluster_map.epoch)
        states: dict[str, int] = defaultdict(int)
        for member in cluster_map.members:
            states[member.state.value] += 1
        for state, count in states.items():
            self.members.labels(state).set(count)


class LogMetrics:
    """Timings of the node's Raft host (raftlog's `LogObserver`) and membership moves."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.fsync = Histogram("raftflow_wal_fsync_duration_seconds", "Write + fdatasync of "
                               "one WAL round (every Raft message and answer waits for it).",
                               buckets=_FSYNC_BUCKETS_S, registry=registry)
        self.wal_bytes = Counter("raftflow_wal_written_bytes", "Bytes written to the WAL by "
                                 "its rounds.", registry=registry)
        self.checkpoint = Histogram("raftflow_wal_checkpoint_duration_seconds", "Rewriting "
                                    "the WAL from the in-memory journals (compaction).",
                                    buckets=_WRITE_BUCKETS_S, registry=registry)
        self.snapshot = Histogram("raftflow_snapshot_duration_seconds", "Taking and writing "
                                  "one group's snapshot (store commit included).",
                                  buckets=_WRITE_BUCKETS_S, registry=registry)
        self.moves = Counter("raftflow_membership_moves", "Replica moves started and ended, "
                             "counted by the cluster map group's leader.", ("phase",),
                             registry=registry)
        for phase in ("started", "ended"):  # both series exist from the start, at 0
            self.moves.labels(phase)
        self._fsync_observe = self.fsync.observe
        self._wal_bytes_inc = self.wal_bytes.inc

    def observe_wal_sync(self, duration_s: float, size_bytes: int) -> None:
        assert duration_s >= 0 and size_bytes > 0
        self._fsync_observe(duration_s)
        self._wal_bytes_inc(size_bytes)

    def observe_wal_checkpoint(self, duration_s: float) -> None:
        assert duration_s >= 0
        self.checkpoint.observe(duration_s)

    def observe_snapshot(self, shard: int, duration_s: float) -> None:
        assert duration_s >= 0
        self.snapshot.observe(duration_s)

    def record_moves(self, started: int, ended: int) -> None:
        assert started >= 0 and ended >= 0
        if started:
            self.moves.labels("started").inc(started)
        if ended:
            self.moves.labels("ended").inc(ended)
