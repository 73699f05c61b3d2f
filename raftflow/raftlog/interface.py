"""The replicated-log seam: what every shard actor sees of Raft, whatever engine is behind it.

Theory of operation. A `ReplicatedLog` is one Raft group (one shard). The owner proposes opaque
byte strings; every replica calls its `LogConsumer.apply_entry` with the committed entries in log
order, synchronously on the node's event loop thread, exactly once per entry per incarnation
(after a restart, entries covered by the last snapshot are not re-applied: `restore` is called
with that snapshot first, then later entries are applied).

Durability (DESIGN §4 I1): an entry reaches `apply_entry` only once it is committed, i.e. written
and fsynced on a majority. One exception is folded into `after_durable`: on a single-replica
group the leader's own write is synced at the end of the driver iteration, so answers to clients
must go through `after_durable`, which runs the callback only after the node's write-ahead log has
been fsynced past everything written so far.

Failure: `propose` never blocks. If the entry cannot be accepted (not leader, queue full, leader
changed, discarded) `on_failed` is called with a reason; a command whose proposal failed may
still have been applied (the reasons are ambiguous by nature of Raft), so commands carry
idempotency keys and callers carry deadlines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NewType, Protocol

ShardId = NewType("ShardId", int)
NodeId = NewType("NodeId", str)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogStatus:
    """A point-in-time view of one replica of one group, for status and metrics."""

    shard: ShardId
    is_leader: bool
    leader: NodeId | None
    term: int
    commit_index: int
    applied_index: int
    last_index: int
    # Voters as this replica's log says (sorted); a replica created as a learner counts
    # itself only once `set_campaigning(True)` said it was promoted.
    members: tuple[NodeId, ...]
    # The learners last given to `set_learners` (sorted), less those that are voters by now;
    # this node itself is listed if it was given (a learner replica starts listing itself).
    learners: tuple[NodeId, ...] = ()
    # On the leader: `replication_lag` of each of those learners it replicates to (link up),
    # sorted by id; empty elsewhere. What "caught up, promote it" is judged by.
    learner_lags: tuple[tuple[NodeId, int], ...] = ()


class LogConsumer(Protocol):
    """The state machine side of a replicated log (implemented by the shard actor)."""

    def apply_entry(self, index: int, data: bytes) -> None:
        """Apply one committed entry. Runs to completion, no IO, no await."""

    def take_snapshot(self) -> bytes:
        """Serialise the state as of the last applied entry (msgpack, never pickle)."""

    def transfer_snapshot(self) -> bytes | None:
        """What a replica that needs a snapshot receives (a consumer that keeps its state in
        its own store sends a copy of it); None: send the local snapshot file as it is."""

    def restore_snapshot(self, data: bytes, index: int) -> None:
        """Replace the state with a snapshot taken by `take_snapshot` on some replica.

        `index` is the last log index the snapshot covers: every entry applied after it has a
        greater index (the consumer may assert so)."""

    def on_leadership(self, is_leader: bool, term: int) -> None:
        """Called when this replica gains or loses leadership (or the term changes)."""

    def discard(self) -> None:
        """The replica was removed for good (its journal and snapshot are gone durably):
        delete whatever else the consumer keeps on disk."""


class ReplicatedLog(Protocol):
    """One Raft group as seen by its owner. All methods run on the node's event loop thread."""

    @property
    def shard(self) -> ShardId: ...

    def propose(self, data: bytes, on_failed: Callable[[str], None]) -> None:
        """Append `data` if this replica leads; on any failure call `on_failed(reason)`."""

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run `callback` once everything written to this node's log so far is fsynced."""

    def add_member(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        """Propose adding a replica; `on_done(None)` once committed, else `on_done(reason)`.

        One change at a time: "request_denied" means a previous change (or the new leader's
        first entry) is not applied yet; retry. The new replica must already run the group,
        either with the target membership or (the usual way) as a caught-up learner; it
        catches up from a snapshot and the log."""

    def remove_member(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        """Propose removing a replica (not the leader itself: transfer leadership first)."""

    def transfer_leadership(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        """Ask a caught-up follower to take over (best effort: `on_done(None)` means the
        request was sent; the new leader shows in `status()` once elected)."""

    def set_learners(self, node_ids: Iterable[NodeId]) -> None:
        """Replace the set of learners (non-voting replicas) this replica knows of.

        Called on every replica of the group, so that whichever leads sends them the log
        (a snapshot first if they are behind its compaction) once their peer link is up. A
        learner never counts for commit, quorum or leader fallback, and nothing it sends but
        replication acknowledgements reaches the group (it cannot raise anyone's term). Adding
        a learner as a voter (`add_member`) keeps it replicating; ids that are voters are
        ignored for replication, and this node's own id only shows in `status().learners`.
        Idempotent."""

    def set_campaigning(self, allowed: bool) -> None:
        """Allow or forbid this replica to start elections (a learner replica forbids it).

        A replica created as a learner starts forbidden; allow it once the group's leader lists
        it among its members. Until then it never raises its own term; it still follows the
        leader's term like any follower."""

    def replication_lag(self, node_id: NodeId) -> int | None:
        """On the leader: its last log index minus `node_id`'s acknowledged (match) index, for a
        voter or a learner whose link is up. None when this replica does not lead or does not
        track the node. Zero means caught up to the leader's last entry."""

    def is_leader(self) -> bool: ...

    def leader(self) -> NodeId | None: ...

    def status(self) -> LogStatus: ...
