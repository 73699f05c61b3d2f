"""The thread that writes and fdatasyncs the node's WAL, one round at a time, off the event loop.

Why not `loop.run_in_executor`: a WAL round runs hundreds of times a second under load, and
each executor hand-off costs a `concurrent.futures.Future`, a work item, two locks, a
`SimpleQueue` wake-up, the asyncio wrapper future with its chained callbacks and a
`call_soon_threadsafe`, plus more Python run in the worker that contends for the GIL with the
loop. Measured on a 2-core machine (`tools/wal_handoff_cost.py`, issue #17), CPU per round of
all threads: 40-55 us through the executor against 12-16 us through two pipes for the hand-off
alone, 179-199 us against 128-137 us with the write and fdatasync. Here one long-lived thread
blocks in `os.read` on a pipe (GIL released) until the loop hands it a job by writing a byte;
when the job is done it writes a byte to a second pipe that the loop watches with `add_reader`.

Guarantees: jobs run one at a time, in the order given, and `run` returns (or raises the job's
exception) only after the job has finished; `stop` lets a running job finish before the
thread ends, so nothing the loop handed over is cut short.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable

_WAKE = b"\x00"
# A wake-up pipe holds at most one unread byte per direction (one job at a time): far below
# the pipe buffer, so the writes never block.
_DRAIN_BYTES = 64


class SyncThread:
    """Runs one blocking job at a time (write + fdatasync, checkpoint) in a dedicated thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._job: Callable[[], None] | None = None
        self._error: BaseException | None = None
        self._done: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        # Made in `start`: a host built and never started holds no descriptors.
        self._to_thread_r = self._to_thread_w = self._to_loop_r = self._to_loop_w = -1

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._thread is None and not self._stopping, "started twice, or after stop"
        self._to_thread_r, self._to_thread_w = os.pipe()
        self._to_loop_r, self._to_loop_w = os.pipe()
        os.set_blocking(self._to_loop_r, False)
        self._loop = loop
        loop.add_reader(self._to_loop_r, self._on_done)
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()

    async def run(self, job: Callable[[], None]) -> None:
        """Run `job` in the thread and wait for it; its exception is raised here."""
        assert self._loop is not None and not self._stopping, "not running"
        assert self._done is None, "one job at a time (WAL rounds never overlap)"
        done = self._done = self._loop.create_future()
        self._job = job
        os.write(self._to_thread_w, _WAKE)
        # A cancelled waiter does not stop the job: `_on_done` still clears it, and `stop`
        # waits for it.
        await done

    def stop(self) -> None:
        """Let a running job finish, end the thread and release the pipes. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        if self._thread is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._to_loop_r)
            if self._done is not None:  # the round's waiter was cancelled: wait out its job
                self._wait_for_job()
            self._job = None
            os.write(self._to_thread_w, _WAKE)  # no job: the thread ends
            self._thread.join()
            for fd in (self._to_thread_r, self._to_thread_w, self._to_loop_r, self._to_loop_w):
                os.close(fd)

    def _wait_for_job(self) -> None:
        os.set_blocking(self._to_loop_r, True)
        os.read(self._to_loop_r, 1)
        self._done = None

    def _serve(self) -> None:
        while True:
            os.read(self._to_thread_r, 1)
            job = self._job
            if job is None:
                return
            try:
                job()
            except BaseException as error:  # handed to the waiting round, which fails the node
                self._error = error
            os.write(self._to_loop_w, _WAKE)

    def _on_done(self) -> None:
        os.read(self._to_loop_r, _DRAIN_BYTES)
        done, self._done = self._done, None
        self._job = None
        error, self._error = self._error, None
        assert done is not None, "a job finished that nobody started"
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(None)
