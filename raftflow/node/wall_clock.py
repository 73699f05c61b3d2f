"""This node's wall clock: the `now_ms` its proposals carry (DESIGN §2.8), with an optional skew.

The skew exists for the chaos harness's clock-skew fault. It shifts only the wall clock that
goes into commands (event timestamps, timer deadlines, task timeouts) and never the monotonic
clock that drives Raft elections, heartbeats and asyncio: stepping CLOCK_MONOTONIC, as
libfaketime does, would make sleeps and timeouts misbehave in ways no real clock step causes.
A skewed leader is what a real cluster sees when one machine's NTP is off; the engine must stay
correct (timers may fire early or late, nothing may be lost or duplicated).

One `SkewableWallClock` per node, made by the composition root and handed to every actor and
to the gateway (they see only the `WallClock` Protocol). The skew is read from a file (an
integer of milliseconds, may be negative) that `watch_skew_file` polls, so the harness can step
it at run time without restarting the node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

SKEW_MS_MAX = 24 * 3600 * 1000  # a skew beyond a day is a typo, not a drill
SKEW_POLL_S = 0.25


class SkewableWallClock:
    """The system's wall clock plus a skew in milliseconds (0 unless a drill sets one)."""

    __slots__ = ("_skew_ms",)

    def __init__(self) -> None:
        self._skew_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._skew_ms

    @property
    def skew_ms(self) -> int:
        return self._skew_ms

    def set_skew_ms(self, value: int) -> None:
        if not -SKEW_MS_MAX <= value <= SKEW_MS_MAX:
            raise ValueError(f"clock skew must be within ±{SKEW_MS_MAX} ms, got {value}")
        self._skew_ms = value


def read_skew_file(path: Path) -> int:
    """The skew the file asks for: 0 when it is missing or empty."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text else 0


async def watch_skew_file(clock: SkewableWallClock, path: Path) -> None:
    """Apply the file's skew to `clock` now and whenever it changes, until cancelled."""
    while True:
        try:
            wanted = read_skew_file(path)
            if wanted != clock.skew_ms:
                clock.set_skew_ms(wanted)
                log.warning("wall clock skew is now %+d ms", wanted)
        except (OSError, ValueError) as error:
            log.error("ignoring clock skew file %s: %s", path, error)
        await asyncio.sleep(SKEW_POLL_S)
