"""The wall clock an actor reads for the `now_ms` its proposals carry (DESIGN §2.8).

A seam, not a clock: the node's composition root passes one in (`raftflow.node.wall_clock`,
which the chaos harness can skew), tests pass a fake. Nothing reads a process-global clock, so
two in-process nodes can run on different clocks.
"""

from __future__ import annotations

from typing import Protocol


class WallClock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, as this node believes it (may be skewed)."""
