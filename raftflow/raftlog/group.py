"""One shard's Raft group on pysyncobj 0.3.17: the only module (with journal/transport glue in
this package) that knows pysyncobj exists.

Theory of operation. `RaftGroup` wraps a `SyncObj` subclass built with:
- no auto-tick thread and a null poller: the node's `RaftHost` ticks every group from the asyncio
  loop, and the peer network delivers messages into the group synchronously on that loop;
- a `GroupTransport` (pysyncobj's Transport extension point) that queues outgoing messages on the
  host, so they leave only after the WAL round that covers them is fsynced, and that normalises
  incoming AppendEntries (normalize.py) before pysyncobj's handler sees them;
- a `GroupJournal` swapped in right after construction (pysyncobj has no journal injection
  point: it calls `createJournal(conf.journalFile)`; we let it build a throwaway in-memory one and
  replace it, restoring term, vote and commit index from ours exactly as its __init__ does);
- a msgpack snapshot file written by our serializer with fsync (never pickle for our state).

Learners (replica moves): a replica added with `learner=True` runs the group with the voters as
its members and never campaigns; voters replicate to learners as pysyncobj read-only nodes
(group_transport.py holds how, and the invariant that keeps their indexes apart from voters').

Name-mangled members of SyncObj are used in exactly these places below, and nowhere else:
`_SyncObj__raftLog` and the term/vote/commit restore (`_SyncObj__raftCurrentTerm`,
`_SyncObj__votedForNodeId`, `_SyncObj__raftCommitIndex`) in install_journal;
`_SyncObj__raftLastApplied` in apply_data; `_SyncObj__sendAppendEntries` in tick;
`_SyncObj__raftElectionDeadline` in tick and set_campaigning (a learner never campaigns);
`_SyncObj__readonlyNodes` in _discard_readonly (a promoted learner keeps its indexes);
`_SyncObj__raftMatchIndex` (read only) in replication_lag; `_SyncObj__serializer` replaced once
in __init__ (snapshot_transfer.py). The version pin in pyproject.toml
is what keeps them valid.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgpack
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.monotonic import monotonic as pysyncobj_monotonic_s
from pysyncobj.node import Node

from raftflow.raftlog import limits
from raftflow.raftlog.group_host import GroupHost
from raftflow.raftlog.group_transport import GroupTransport
from raftflow.raftlog.interface import LogConsumer, LogStatus, NodeId, ShardId
from raftflow.raftlog.journal import GroupJournal
from raftflow.raftlog.snapshot_transfer import (
    TransferSerializer,
    snapshot_body,
    snapshot_supersedes_log,
)
from raftflow.raftlog.wal import fsync_directory

log = logging.getLogger(__name__)

_RAFT_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER

FAIL_REASON_NAMES = {
    FAIL_REASON.QUEUE_FULL: "queue_full",
    FAIL_REASON.MISSING_LEADER: "missing_leader",
    FAIL_REASON.DISCARDED: "discarded",
    FAIL_REASON.NOT_LEADER: "not_leader",
    FAIL_REASON.LEADER_CHANGED: "leader_changed",
    FAIL_REASON.REQUEST_DENIED: "request_denied",
    FAIL_REASON.UNKNOWN_OUTCOME: "unknown_outcome",
}


class _NullPoller:
    """The host drives IO; pysyncobj's per-group poller must never block or own a socket."""

    def subscribe(self, descr: object, callback: object, event_mask: object) -> None:
        raise AssertionError("pysyncobj tried to register a socket with a group poller")

    def unsubscribe(self, descr: object) -> None:
        pass

    def poll(self, timeout: float) -> None:
        pass


class _SyncGroup(SyncObj):  # type: ignore[misc]
    def __init__(self, owner: RaftGroup, self_node: Node, others: list[Node],
                 conf: SyncObjConf, transport: GroupTransport) -> None:
        self._owner = owner
        super().__init__(self_node, others, conf, nodeClass=Node, transport=transport)

    @replicated  # type: ignore[untyped-decorator]
    def apply_data(self, data: bytes) -> None:
        # pysyncobj increments raftLastApplied after this returns: this entry's index is +1.
        self._owner.on_apply(self._SyncObj__raftLastApplied + 1, data)

    def install_journal(self, journal: GroupJournal) -> None:
        """Replace the in-memory journal __init__ made by ours (see the module docstring)."""
        self._SyncObj__raftLog = journal
        self._SyncObj__raftCurrentTerm = max(journal.getCurrentTerm(), journal[-1][2])
        self._SyncObj__votedForNodeId = journal.getVotedForNodeId()
        self._SyncObj__raftCommitIndex = journal.getRaftCommitIndex()
        self._poller = _NullPoller()


class RaftGroup:
    """`ReplicatedLog` for one shard on pysyncobj."""

    def __init__(self, *, host: GroupHost, shard: ShardId, node_id: str, members: list[str],
                 directory: str, consumer: LogConsumer, learner: bool = False) -> None:
        # A learner runs the group with the voters as its members: it is not one of them.
        assert (node_id in members) != learner, (node_id, members, learner)
        os.makedirs(directory, exist_ok=True)
        self._shard = shard
        self._host = host
        self._consumer = consumer
        self._snapshot_path = snapshot_path(directory, shard)
        self._campaigning = not learner
        self._learner = learner  # not a voter: until set_campaigning(True) says it is one now
        self._listed_as_learner = learner  # this node is in the set given to set_learners
        self._was_leader = False
        self._pushed_index = 0
        self._restore_error: Exception | None = None
        others = [Node(m) for m in members if m != node_id]
        self.transport = GroupTransport(host, shard, others)
        conf = SyncObjConf(
            autoTick=False,
            appendEntriesUseBatch=True,
            appendEntriesPeriod=limits.APPEND_ENTRIES_PERIOD_S,
            raftMinTimeout=limits.ELECTION_TIMEOUT_MIN_S,
            raftMaxTimeout=limits.ELECTION_TIMEOUT_MAX_S,
            leaderFallbackTimeout=limits.LEADER_FALLBACK_TIMEOUT_S,
            connectionTimeout=limits.ELECTION_TIMEOUT_MAX_S,
            appendEntriesBatchSizeBytes=limits.APPEND_ENTRIES_BATCH_BYTES,
            logCompactionBatchSize=limits.SNAPSHOT_CHUNK_BYTES,
            logCompactionMinEntries=limits.SNAPSHOT_AFTER_ENTRIES,
            logCompactionMinTime=limits.SNAPSHOT_AFTER_S,
            commandsQueueSize=limits.COMMANDS_QUEUE_MAX,
            dynamicMembershipChange=True,
            journalFile=None,  # ours is installed below; see install_journal
            fullDumpFile=self._snapshot_path,  # always with the journal (DESIGN §8)
            serializer=self._write_snapshot,
            deserializer=self._read_snapshot,
            onStateChanged=self._on_state_changed,
        )
        self._sync = _SyncGroup(self, Node(node_id), others, conf, self.transport)
        # Before the first tick (which may load the snapshot file): ours sends a consumer's
        # transfer snapshot instead of the file when it has one (snapshot_transfer.py).
        self._serializer = TransferSerializer(
            file_name=self._snapshot_path, chunk_bytes=limits.SNAPSHOT_CHUNK_BYTES,
            write=self._write_snapshot, read=self._read_snapshot,
            transfer_body=self._transfer_body,
            accept=lambda path: snapshot_supersedes_log(path, self.journal))
        self._sync._SyncObj__serializer = self._serializer
        self.journal = GroupJournal(host.wal, shard, self._snapshot_path)
        self._sync.install_journal(self.journal)
        self.transport.journal = self.journal
        self.transport.current_term = lambda: int(self._sync.raftCurrentTerm)
        self.transport.discard_readonly = self._discard_readonly
        self.transport.sync_connections()

    # -- ReplicatedLog -------------------------------------------------------------------------

    @property
    def shard(self) -> ShardId:
        return self._shard

    def propose(self, data: bytes, on_failed: Callable[[str], None]) -> None:
        assert len(data) <= limits.PROPOSAL_BYTES_MAX, len(data)
        if not self.is_leader():
            on_failed("not_leader")
            return

        def callback(result: object, error: int) -> None:
            if error != FAIL_REASON.SUCCESS:
                on_failed(FAIL_REASON_NAMES.get(error, f"error_{error}"))

        self._sync.apply_data(data, callback=callback)
        self._host.request_tick(self._shard)

    def after_durable(self, callback: Callable[[], None]) -> None:
        if self._sync.otherNodes:
            # Committed with followers means durable here already: the leader's WAL round
            # synced the entry before the AppendEntries that carried it left this node, and a
            # follower acknowledges only after its own sync (sync-before-send, host.py).
            callback()
            return
        # A single-replica group commits in the tick that appends: wait for the WAL round.
        self._host.after_durable(callback)

    def add_member(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        self._leader_request(self._sync.addNodeToCluster, node_id, on_done)

    def remove_member(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        if node_id == self._host.node_id:
            on_done("request_denied")  # a leader cannot remove itself (DESIGN §8)
            return
        self._leader_request(self._sync.removeNodeFromCluster, node_id, on_done)

    def transfer_leadership(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        self._leader_request(self._sync.transferLeadership, node_id, on_done)

    def _leader_request(self, change: Callable[..., None], node_id: str,
                           on_done: Callable[[str | None], None]) -> None:
        if not self.is_leader():
            on_done("not_leader")
            return

        def callback(result: object, error: int) -> None:
            on_done(None if error == FAIL_REASON.SUCCESS else FAIL_REASON_NAMES.get(error, str(error)))

        change(Node(node_id), callback=callback)
        self._host.request_tick(self._shard)

    def is_leader(self) -> bool:
        return bool(self._sync._isLeader())

    def leader(self) -> NodeId | None:
        node = self._sync._getLeader()
        return None if node is None else NodeId(node.id)

    def status(self) -> LogStatus:
        sync = self._sync
        voters = [n.id for n in sync.otherNodes]
        if not self._learner:
            voters.append(sync.selfNode.id)
        learners = list(self.transport.learner_ids)
        lags = [(NodeId(n), lag) for n in learners
                if (lag := self.replication_lag(NodeId(n))) is not None]
        if self._listed_as_learner:
            learners.append(sync.selfNode.id)
        return LogStatus(
            shard=self._shard, is_leader=self.is_leader(), leader=self.leader(),
            term=int(sync.raftCurrentTerm), commit_index=int(sync.raftCommitIndex),
            applied_index=int(sync.raftLastApplied), last_index=self.journal.last_index,
            members=tuple(NodeId(m) for m in sorted(voters)),
            learners=tuple(NodeId(m) for m in sorted(learners)),
            learner_lags=tuple(lags),
        )

    def set_learners(self, node_ids: Iterable[NodeId]) -> None:
        ids = list(node_ids)
        self._listed_as_learner = self._host.node_id in ids
        self.transport.set_learners(ids)
        self._host.request_tick(self._shard)

    def set_campaigning(self, allowed: bool) -> None:
        if allowed and not self._campaigning:
            # tick() parked the deadline at infinity: give the replica a fresh election timeout.
            self._sync._SyncObj__raftElectionDeadline = (
                pysyncobj_monotonic_s() + limits.ELECTION_TIMEOUT_MAX_S)
            self._learner = False
        self._campaigning = allowed

    def replication_lag(self, node_id: NodeId) -> int | None:
        if not self.is_leader():
            return None
        match_index = self._sync._SyncObj__raftMatchIndex.get(Node(node_id))
        if match_index is None:
            return None  # not a voter, or a learner whose link is down
        if int(match_index) == 0:
            # Nothing acknowledged yet: the node may hold nothing at all. A short log would
            # otherwise make an empty learner look caught up.
            return None
        return max(0, self.journal.last_index - int(match_index))

    # -- driven by the host --------------------------------------------------------------------

    def tick(self) -> None:
        if not self._campaigning:
            # pysyncobj checks the election deadline only in its tick, and every AppendEntries
            # moves it forward: parked at infinity here, it never expires on this replica.
            self._sync._SyncObj__raftElectionDeadline = math.inf
        self._sync.doTick(0.0)
        if self._restore_error is not None:
            raise RuntimeError(f"group {self._shard}: its snapshot could not be restored"
                               ) from self._restore_error
        if self._sync._isLeader() and self.journal.last_index > self._pushed_index:
            # pysyncobj ships new entries only every appendEntriesPeriod; push them now, so a
            # commit costs one round trip rather than a period (heartbeats keep the period).
            self._pushed_index = self.journal.last_index
            self._sync._SyncObj__sendAppendEntries()

    def flush_commit_index(self) -> None:
        self.journal.flush_commit_index()

    def on_apply(self, index: int, data: bytes) -> None:
        self._consumer.apply_entry(index, data)

    def destroy(self) -> None:
        self._sync.destroy()

    def discard_consumer_files(self) -> None:
        self._consumer.discard()

    @property
    def snapshot_files(self) -> tuple[str, ...]:
        """Every file of this group's snapshot: pysyncobj writes `.tmp` and receives `.1.tmp`."""
        return snapshot_files(self._snapshot_path)

    def _discard_readonly(self, node: Node) -> None:
        # A learner became a voter: pysyncobj's own disconnect callback would pop the indexes
        # __doChangeCluster has just set for the voter (group_transport.py).
        self._sync._SyncObj__readonlyNodes.discard(node)

    # -- pysyncobj callbacks -------------------------------------------------------------------

    def _on_state_changed(self, old: int, new: int) -> None:
        is_leader = new == _RAFT_LEADER
        if is_leader != self._was_leader:
            self._was_leader = is_leader
            self._host.note_leader_change(self._shard)
            self._consumer.on_leadership(is_leader, int(self._sync.raftCurrentTerm))

    def _write_snapshot(self, path: str, raft_data: tuple[Any, Any, Any]) -> None:
        started_s = time.perf_counter()
        last_entry, previous_entry, cluster = raft_data
        body = snapshot_body(last_entry, previous_entry, sorted(n.id for n in cluster),
                              self._consumer.take_snapshot())
        with open(path, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())  # pysyncobj renames it into place; the journal fsyncs the dir
        self._host.note_snapshot(self._shard, time.perf_counter() - started_s)

    def _read_snapshot(self, path: str) -> tuple[Any, Any, list[Node]]:
        with open(path, "rb") as f:
            body = msgpack.unpackb(f.read(), raw=False)
        assert body["v"] == 1
        last_entry, previous_entry = tuple(body["last"]), tuple(body["previous"])
        # An entry is (command, index, term): the snapshot covers the log up to `last`.
        try:
            self._consumer.restore_snapshot(body["state"], int(last_entry[1]))
        except Exception as error:
            # pysyncobj logs and swallows any error of a snapshot load, then goes on applying
            # the log to whatever state is left: a replica whose store is missing or behind
            # would silently diverge. Kept here and raised from tick(): the node stops.
            self._restore_error = error
            raise
        if self._serializer.received:
            # A peer's transfer snapshot was just installed: keep the local form from now on,
            # so a restart restores from this replica's own state rather than the copy.
            self._serializer.received = False
            self._rewrite_snapshot(path, body)
        self._align_journal_with_snapshot(previous_entry)
        return last_entry, previous_entry, [Node(i) for i in body["cluster"]]

    def _rewrite_snapshot(self, path: str, received: dict[str, Any]) -> None:
        body = snapshot_body(received["last"], received["previous"], received["cluster"],
                              self._consumer.take_snapshot())
        tmp = path + ".local"
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(os.path.dirname(path) or ".")

    def _transfer_body(self) -> bytes | None:
        """The snapshot file with the consumer's transfer snapshot as its state, or None to
        send the file as it is (the consumer has none, or there is no snapshot yet)."""
        state = self._consumer.transfer_snapshot()
        if state is None or not os.path.exists(self._snapshot_path):
            return None
        with open(self._snapshot_path, "rb") as f:
            local = msgpack.unpackb(f.read(), raw=False)
        return snapshot_body(local["last"], local["previous"], local["cluster"], state)

    def _align_journal_with_snapshot(self, previous_entry: tuple[Any, ...]) -> None:
        # pysyncobj clears the whole journal on load unless it starts exactly at the snapshot's
        # two entries; a crash between the snapshot rename and the compaction record would then
        # throw away committed entries after the snapshot. Compact up to them first.
        # Only called from pysyncobj's first tick or a snapshot install: after __init__ set it.
        journal = self.journal
        if len(journal) < 2:
            return
        index = previous_entry[1]
        position = index - journal.first_index
        if 0 < position < len(journal) - 1 and journal[position][2] == previous_entry[2]:
            journal.deleteEntriesTo(position)


def snapshot_path(directory: str, shard: int) -> str:
    return os.path.join(directory, f"shard-{shard}.snapshot")


def snapshot_files(path: str) -> tuple[str, ...]:
    return (path, path + ".tmp", path + ".1.tmp")
