"""What the Raft host reports to whoever watches it (the node's metrics), as a seam.

raftlog sits below every other engine package and may import none of them: the node passes
an object with these methods down instead (its `LogMetrics`). All calls run on the node's
event loop thread, after the timed work finished.
"""

from __future__ import annotations

from typing import Protocol


class LogObserver(Protocol):
    def observe_wal_sync(self, duration_s: float, size_bytes: int) -> None:
        """One WAL round of `size_bytes` was written and fdatasynced in `duration_s`."""

    def observe_wal_checkpoint(self, duration_s: float) -> None:
        """The WAL was rewritten from the journals (compaction) in `duration_s`."""

    def observe_snapshot(self, shard: int, duration_s: float) -> None:
        """Group `shard` took and wrote a snapshot in `duration_s`."""


class NoLogObserver:
    """For hosts nobody watches (tests, tools)."""

    def observe_wal_sync(self, duration_s: float, size_bytes: int) -> None:
        pass

    def observe_wal_checkpoint(self, duration_s: float) -> None:
        pass

    def observe_snapshot(self, shard: int, duration_s: float) -> None:
        pass
