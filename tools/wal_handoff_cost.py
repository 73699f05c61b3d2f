"""Measure what one WAL round's thread hand-off costs: executor against the WAL thread (#17).

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, ~15 s:

    PYTHONPATH=. .venv/bin/python tools/wal_handoff_cost.py [--rounds N] [--repeat R]

On a uvloop loop, a `NodeWal` writes a 1,500-byte round N times, each awaited the way the Raft
host's round loop awaits it: through `loop.run_in_executor` on a one-thread
`ThreadPoolExecutor` (the host before issue #17) and through `SyncThread` (raftlog/
sync_thread.py, after). Each way runs with fdatasync (what a round does) and without (the
hand-off alone). It prints the median of R runs of `time.process_time()` (all threads) and
`time.thread_time()` (the loop thread) microseconds per round, and the wall time per round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import uvloop

from raftflow.raftlog.sync_thread import SyncThread
from raftflow.raftlog.wal import NodeWal

ROUND_BYTES = 1_500

Cost = tuple[float, float, float]  # process CPU, loop-thread CPU, wall: microseconds per round


async def _rounds(run: Callable[[Callable[[], None]], Awaitable[None]], job: Callable[[], None],
                  rounds: int) -> Cost:
    await run(job)  # warm: the thread exists
    cpu_s, loop_s, wall_s = time.process_time(), time.thread_time(), time.perf_counter()
    for _ in range(rounds):
        await run(job)
    return ((time.process_time() - cpu_s) * 1e6 / rounds,
            (time.thread_time() - loop_s) * 1e6 / rounds,
            (time.perf_counter() - wall_s) * 1e6 / rounds)


async def _with_executor(job: Callable[[], None], rounds: int) -> Cost:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-sync")

    async def run(job: Callable[[], None]) -> None:
        await loop.run_in_executor(executor, job)

    try:
        return await _rounds(run, job, rounds)
    finally:
        executor.shutdown(wait=True)


async def _with_sync_thread(job: Callable[[], None], rounds: int) -> Cost:
    thread = SyncThread(name="wal-sync")
    thread.start(asyncio.get_running_loop())
    try:
        return await _rounds(thread.run, job, rounds)
    finally:
        thread.stop()


def _job(wal: NodeWal, sync: bool) -> Callable[[], None]:
    if sync:
        return partial(wal.write_and_sync, b"r" * ROUND_BYTES)
    fd = wal._fd  # noqa: SLF001 (the hand-off alone: the same write, no fdatasync)
    return partial(os.write, fd, b"r" * ROUND_BYTES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ways = {"executor": _with_executor, "sync thread": _with_sync_thread}
    for sync in (False, True):
        costs: dict[str, list[Cost]] = {name: [] for name in ways}
        for _ in range(args.repeat):
            for name, way in ways.items():  # alternated, so both see the same machine
                with tempfile.TemporaryDirectory() as directory, \
                        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    wal = NodeWal(directory)
                    costs[name].append(runner.run(way(_job(wal, sync), args.rounds)))
                    wal.close()
        for name, runs in costs.items():
            cpu, loop_cpu, wall = (statistics.median(run[i] for run in runs) for i in range(3))
            print(f"{'write+fdatasync' if sync else 'write only':15} {name:11}: "
                  f"{cpu:6.1f} us CPU/round ({loop_cpu:5.1f} on the loop thread), "
                  f"{wall:6.1f} us wall/round, median of {args.repeat}")


if __name__ == "__main__":
    main()
