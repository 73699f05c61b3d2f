"""Goal: the host's tick timer skips a group that an event ticked during the period (the event
tick ran the same time checks), and still ticks every group at least once every two periods.

Method: a real `RaftHost` (started, no peers) holding stub groups that record when they are
ticked; one group is ticked by an event (`request_tick`) in every period, the other never; the
test reads which ticks came from the timer over a few periods.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from raftflow.raftlog import limits
from raftflow.raftlog.host import RaftHost
from tests import ports


class _StubGroup:
    def __init__(self, shard: int) -> None:
        self.shard = shard
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1

    def flush_commit_index(self) -> None:
        pass

    def destroy(self) -> None:
        pass


def test_the_timer_skips_groups_an_event_ticked_and_never_starves_one(tmp_path: Path) -> None:
    async def main() -> tuple[int, int, int]:
        host = RaftHost(node_id="a", data_dir=str(tmp_path),
                        listen=("127.0.0.1", ports.free_port()), peers={}, secret=b"s")
        busy, idle = _StubGroup(1), _StubGroup(2)
        host.groups = {1: busy, 2: idle}  # type: ignore[dict-item]
        await host.start()
        periods = 10
        event_ticks = 0
        for _ in range(periods * 4):  # events far more often than the timer
            host.request_tick(1)
            event_ticks += 1
            await asyncio.sleep(limits.TICK_PERIOD_S / 4)
        await host.stop()
        return busy.ticks - event_ticks, idle.ticks, periods

    busy_timer_ticks, idle_ticks, periods = asyncio.run(main())
    # The idle group gets every timer tick; the busy one (ticked by an event in every period)
    # almost none: the first period's and the last's, and one where a loaded machine let a
    # whole period pass between two events (before the skip: as many as the idle group).
    assert idle_ticks >= periods // 2, idle_ticks
    assert busy_timer_ticks <= max(2, idle_ticks // 3), (busy_timer_ticks, idle_ticks)
