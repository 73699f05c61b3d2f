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

from collections.abc import Callable
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
    members: tuple[NodeId, ...]


class LogConsumer(Protocol):
    """The state machine side of a replicated log (implemented by the shard actor)."""

    def apply_entry(self, index: int, data: bytes) -> None:
        """Apply one committed entry. Runs to completion, no IO, no await."""

    def take_snapshot(self) -> bytes:
        """Serialise the state as of the last applied entry (msgpack, never pickle)."""

    def restore_snapshot(self, data: bytes, index: int) -> None:
        """Replace the state with a snapshot taken by `take_snapshot` on some replica.

        `index` is the last log index the snapshot covers: every entry applied after it has a
        greater index (the consumer may assert so)."""

    def on_leadership(self, is_leader: bool, term: int) -> None:
        """Called when this replica gains or loses leadership (or the term changes)."""


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
        first entry) is not applied yet; retry. The new replica must already run the group with
        the target membership; it catches up from a snapshot and the log."""

    def remove_member(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        """Propose removing a replica (not the leader itself: transfer leadership first)."""

    def transfer_leadership(self, node_id: NodeId, on_done: Callable[[str | None], None]) -> None:
        """Ask a caught-up follower to take over (best effort: `on_done(None)` means the
        request was sent; the new leader shows in `status()` once elected)."""

    def is_leader(self) -> bool: ...

    def leader(self) -> NodeId | None: ...

    def status(self) -> LogStatus: ...
