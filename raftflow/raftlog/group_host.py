"""What one Raft group needs from the node that drives it (implemented by `RaftHost`).

A group queues its outgoing messages, asks for ticks and defers answers through its host; the
host owns the groups. Naming that need as a Protocol here, rather than importing the host
class, keeps the imports one way: host.py imports group.py, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from raftflow.raftlog.interface import ShardId
from raftflow.raftlog.wal import NodeWal


class GroupHost(Protocol):
    """The node-level services a group calls. All run on the node's event loop thread."""

    @property
    def node_id(self) -> str: ...

    @property
    def wal(self) -> NodeWal:
        """The node's write-ahead log, shared by every group (one fsync per round)."""

    def peer_is_up(self, peer: str) -> bool: ...

    def enqueue(self, peer: str, group: int, message: dict[str, Any]) -> None:
        """Send `message` to `peer` after the WAL round that covers it (sync-before-send)."""

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run `callback` once everything written to the WAL so far is fsynced."""

    def request_tick(self, shard: ShardId) -> None:
        """Tick group `shard` on the next loop iteration, so a commit need not wait a period."""

    def note_leader_change(self, shard: ShardId) -> None:
        """Count a leadership change of group `shard` (metrics)."""

    def note_snapshot(self, shard: ShardId, duration_s: float) -> None:
        """Group `shard` took and wrote a snapshot in `duration_s` (metrics)."""
