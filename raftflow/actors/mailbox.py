"""A shard actor's mailbox: bounded queue in, batches out, futures resolved by sequence number.

Theory of operation. Callers `put` a command and get a future. The actor takes everything that
waits (up to a batch bound) as one batch, names it with the next sequence number, proposes it as
one log entry (group commit), and parks the futures under that number. When the entry applies,
`resolve(seq, results)` answers them in order; when the proposal fails or times out, `fail`
does. At most `in_flight_max` batches are parked at once: while they commit, new commands gather
and the next batch is bigger, which is what makes group commit pay under load.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from raftflow.actors.errors import MailboxFullError

C = TypeVar("C")
R = TypeVar("R")


@dataclass(slots=True)
class _Parked(Generic[R]):
    futures: list[asyncio.Future[R]]
    deadline: float


class Mailbox(Generic[C, R]):
    def __init__(self, *, shard: int, commands_max: int, batch_max: int, in_flight_max: int,
                 timeout_s: float, batch_bytes_max: int | None = None,
                 size_of: Callable[[C], int] | None = None) -> None:
        assert 0 < batch_max <= commands_max and in_flight_max > 0
        assert (batch_bytes_max is None) == (size_of is None)
        self._batch_bytes_max = batch_bytes_max
        self._size_of = size_of
        self._shard = shard
        self._commands_max = commands_max
        self._batch_max = batch_max
        self._in_flight_max = in_flight_max
        self._timeout_s = timeout_s
        self._queue: deque[tuple[C, asyncio.Future[R]]] = deque()
        self._parked: dict[int, _Parked[R]] = {}
        self._next_seq = 1

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return len(self._parked)

    def put(self, command: C) -> asyncio.Future[R]:
        """Queue a command; raises MailboxFullError instead of waiting (I7)."""
        if len(self._queue) >= self._commands_max:
            raise MailboxFullError(self._shard)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        return future

    def take_batch(self) -> tuple[int, list[C]] | None:
        """The next batch to propose, or None if nothing waits or too much is in flight."""
        if not self._queue or len(self._parked) >= self._in_flight_max:
            return None
        commands: list[C] = []
        futures: list[asyncio.Future[R]] = []
        batch_bytes = 0
        while self._queue and len(commands) < self._batch_max:
            command, future = self._queue[0]
            if not future.cancelled() and self._size_of is not None:
                assert self._batch_bytes_max is not None
                size = self._size_of(command)
                if commands and batch_bytes + size > self._batch_bytes_max:
                    break  # the log refuses larger entries: the rest goes in the next batch
                batch_bytes += size
            self._queue.popleft()
            if future.cancelled():
                continue  # the caller gave up before it was proposed: nothing to undo
            commands.append(command)
            futures.append(future)
        if not commands:
            return None
        seq = self._next_seq
        self._next_seq += 1
        self._parked[seq] = _Parked(futures, time.monotonic() + self._timeout_s)
        return seq, commands

    def is_parked(self, seq: int) -> bool:
        return seq in self._parked

    def resolve(self, seq: int, results: Sequence[R]) -> list[asyncio.Future[R]]:
        """Pop batch `seq`; returns its futures (same order as `results`) for the caller to
        answer once the answers may leave the node (after the WAL sync)."""
        parked = self._parked.pop(seq)
        assert len(parked.futures) == len(results), (len(parked.futures), len(results))
        return parked.futures

    def fail(self, seq: int, error: Exception) -> None:
        parked = self._parked.pop(seq, None)
        if parked is not None:
            _fail_all(parked.futures, error)

    def fail_everything(self, error: Exception) -> None:
        """Leadership lost: nothing queued or parked will be answered by this replica."""
        for parked in self._parked.values():
            _fail_all(parked.futures, error)
        self._parked.clear()
        _fail_all([f for _, f in self._queue], error)
        self._queue.clear()

    def expired(self, now: float) -> list[int]:
        return [seq for seq, parked in self._parked.items() if parked.deadline <= now]


def _fail_all(futures: Sequence[asyncio.Future[R]], error: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
