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

Name-mangled members of SyncObj are used in exactly four places below (`_SyncObj__raftLog`,
the term/vote/commit restore, `_SyncObj__raftLastApplied`, `_SyncObj__sendAppendEntries`); the version pin
in pyproject.toml is what keeps them valid.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import msgpack
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.node import Node
from pysyncobj.transport import Transport

from raftflow.raftlog import limits
from raftflow.raftlog.group_host import GroupHost
from raftflow.raftlog.interface import LogConsumer, LogStatus, NodeId, ShardId
from raftflow.raftlog.journal import GroupJournal
from raftflow.raftlog.normalize import normalize_append_entries

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


class GroupTransport(Transport):  # type: ignore[misc]
    """pysyncobj Transport for one group over the node's shared peer network."""

    def __init__(self, host: GroupHost, group: int, other_nodes: list[Node]) -> None:
        super().__init__(None, None, other_nodes)
        self._host = host
        self._group = group
        self._nodes: dict[str, Node] = {n.id: n for n in other_nodes}
        self.journal: GroupJournal | None = None  # set once the group's journal exists
        self.current_term: Callable[[], int] = lambda: 0
        self.normalize = True  # tests turn it off to show the bug it closes

    def tryGetReady(self) -> None:  # noqa: N802
        pass

    @property
    def ready(self) -> bool:
        return True

    def waitReady(self) -> None:  # noqa: N802
        pass

    def addNode(self, node: Node) -> None:  # noqa: N802
        self._nodes[node.id] = node
        if self._host.peer_is_up(node.id):
            self._onNodeConnected(node)

    def dropNode(self, node: Node) -> None:  # noqa: N802
        self._nodes.pop(node.id, None)

    def send(self, node: Node, message: dict[str, Any]) -> bool:
        self._host.enqueue(node.id, self._group, message)
        return True

    def destroy(self) -> None:
        pass

    def sync_connections(self) -> None:
        for node_id, node in self._nodes.items():
            if self._host.peer_is_up(node_id):
                self._onNodeConnected(node)

    def peer_changed(self, node_id: str, up: bool) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            (self._onNodeConnected if up else self._onNodeDisconnected)(node)

    def deliver(self, node_id: str, message: dict[str, Any]) -> None:
        node = self._nodes.get(node_id)
        if node is None:
            return  # not a member of this group (yet, or any more)
        journal = self.journal
        if self.normalize and journal is not None:
            normalized = normalize_append_entries(
                message,
                current_term=self.current_term(),
                first_index=journal.first_index,
                last_index=journal.last_index,
                term_at=journal.term_at,
            )
            message = normalized.message
            self._onMessageReceived(node, message)
            if normalized.reply is not None:
                self.send(node, normalized.reply)
            return
        self._onMessageReceived(node, message)


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
                 directory: str, consumer: LogConsumer) -> None:
        assert node_id in members
        os.makedirs(directory, exist_ok=True)
        self._shard = shard
        self._host = host
        self._consumer = consumer
        self._snapshot_path = os.path.join(directory, f"shard-{shard}.snapshot")
        self._was_leader = False
        self._pushed_index = 0
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
        self.journal = GroupJournal(host.wal, shard, self._snapshot_path)
        self._sync.install_journal(self.journal)
        self.transport.journal = self.journal
        self.transport.current_term = lambda: int(self._sync.raftCurrentTerm)
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
        members = sorted([sync.selfNode.id, *(n.id for n in sync.otherNodes)])
        return LogStatus(
            shard=self._shard, is_leader=self.is_leader(), leader=self.leader(),
            term=int(sync.raftCurrentTerm), commit_index=int(sync.raftCommitIndex),
            applied_index=int(sync.raftLastApplied), last_index=self.journal.last_index,
            members=tuple(NodeId(m) for m in members),
        )

    # -- driven by the host --------------------------------------------------------------------

    def tick(self) -> None:
        self._sync.doTick(0.0)
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

    # -- pysyncobj callbacks -------------------------------------------------------------------

    def _on_state_changed(self, old: int, new: int) -> None:
        is_leader = new == _RAFT_LEADER
        if is_leader != self._was_leader:
            self._was_leader = is_leader
            self._host.note_leader_change(self._shard)
            self._consumer.on_leadership(is_leader, int(self._sync.raftCurrentTerm))

    def _write_snapshot(self, path: str, raft_data: tuple[Any, Any, Any]) -> None:
        last_entry, previous_entry, cluster = raft_data
        body = msgpack.packb({
            "v": 1,
            "last": list(last_entry),
            "previous": list(previous_entry),
            "cluster": sorted(n.id for n in cluster),
            "state": self._consumer.take_snapshot(),
        }, use_bin_type=True)
        with open(path, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())  # pysyncobj renames it into place; the journal fsyncs the dir

    def _read_snapshot(self, path: str) -> tuple[Any, Any, list[Node]]:
        with open(path, "rb") as f:
            body = msgpack.unpackb(f.read(), raw=False)
        assert body["v"] == 1
        last_entry, previous_entry = tuple(body["last"]), tuple(body["previous"])
        # An entry is (command, index, term): the snapshot covers the log up to `last`.
        self._consumer.restore_snapshot(body["state"], int(last_entry[1]))
        self._align_journal_with_snapshot(previous_entry)
        return last_entry, previous_entry, [Node(i) for i in body["cluster"]]

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
