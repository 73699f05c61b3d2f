"""Goal: the WAL thread keeps the promises the round loop relies on (raftlog/sync_thread.py).

Method: run jobs through a real `SyncThread` on a real loop: each `run` returns only after its
job ran, in order, off the loop thread; a job's exception is raised to the waiter (the round
loop then fails the node); a waiter cancelled mid-job (the host stopping) does not cut the job
short: `stop` returns only after it finished.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from raftflow.raftlog.sync_thread import SyncThread


def test_jobs_run_in_order_off_the_loop_and_run_returns_after_each() -> None:
    async def main() -> None:
        thread = SyncThread(name="wal-test")
        thread.start(asyncio.get_running_loop())
        ran: list[tuple[int, bool]] = []
        for i in range(50):
            await thread.run(lambda i=i: ran.append(  # type: ignore[misc]
                (i, threading.current_thread() is threading.main_thread())))
            assert len(ran) == i + 1  # finished before run returned
        thread.stop()
        thread.stop()  # idempotent
        assert ran == [(i, False) for i in range(50)]

    asyncio.run(main())


def test_a_job_error_is_raised_to_its_waiter_and_the_thread_goes_on() -> None:
    async def main() -> None:
        thread = SyncThread(name="wal-test")
        thread.start(asyncio.get_running_loop())

        def fail() -> None:
            raise OSError(5, "fdatasync failed")

        with pytest.raises(OSError, match="fdatasync failed"):
            await thread.run(fail)
        ran: list[int] = []
        await thread.run(lambda: ran.append(1))
        assert ran == [1]
        thread.stop()

    asyncio.run(main())


def test_stop_waits_for_a_job_whose_waiter_was_cancelled() -> None:
    async def main() -> None:
        thread = SyncThread(name="wal-test")
        thread.start(asyncio.get_running_loop())
        started, release = threading.Event(), threading.Event()
        finished: list[bool] = []

        def slow() -> None:
            started.set()
            release.wait(5)
            finished.append(True)

        waiter = asyncio.get_running_loop().create_task(thread.run(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        threading.Timer(0.05, release.set).start()
        thread.stop()  # blocks until `slow` is done
        assert finished == [True]

    asyncio.run(main())


def test_a_thread_never_started_holds_nothing_and_stops_quietly() -> None:
    thread = SyncThread(name="wal-test")  # a host built and discarded before start
    thread.stop()
    thread.stop()
