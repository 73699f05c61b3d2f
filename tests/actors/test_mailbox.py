"""Mailbox: the bounded queue between callers and a shard's proposals (DESIGN §4 I7).

Goal: show the mailbox never grows past its bound, cuts batches of at most `batch_max`, parks at
most `in_flight_max` batches, answers each batch's futures in submission order, fails parked
batches on error or deadline, and skips callers who gave up before their batch was cut.
Method: drive `Mailbox` directly inside one asyncio loop; no log, no clock but `expired(now)`.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from raftflow.actors.errors import MailboxFullError, NotLeaderError
from raftflow.actors.mailbox import Mailbox


def _mailbox(*, commands_max: int = 8, batch_max: int = 3, in_flight_max: int = 2,
             timeout_s: float = 10.0) -> Mailbox[str, str]:
    return Mailbox(shard=7, commands_max=commands_max, batch_max=batch_max,
                   in_flight_max=in_flight_max, timeout_s=timeout_s)


def test_put_at_the_bound_raises_and_queues_nothing() -> None:
    async def main() -> None:
        box = _mailbox(commands_max=4, batch_max=4)
        futures = [box.put(f"c{i}") for i in range(4)]
        with pytest.raises(MailboxFullError) as raised:
            box.put("one-too-many")
        assert raised.value.code == "overloaded"
        assert len(box) == 4
        seq, batch = box.take_batch() or (0, [])
        assert batch == ["c0", "c1", "c2", "c3"]  # the refused command is nowhere
        assert all(not f.done() for f in futures)
        box.put("fits-again")  # room again once the batch left the queue
        assert len(box) == 1

    asyncio.run(main())


def test_batches_are_bounded_and_in_flight_is_capped() -> None:
    async def main() -> None:
        box = _mailbox(commands_max=16, batch_max=3, in_flight_max=2)
        for i in range(8):
            box.put(f"c{i}")
        first = box.take_batch()
        second = box.take_batch()
        assert first == (1, ["c0", "c1", "c2"])
        assert second == (2, ["c3", "c4", "c5"])
        assert box.in_flight == 2
        assert box.take_batch() is None  # cap reached although commands wait
        assert len(box) == 2
        box.resolve(1, ["r0", "r1", "r2"])
        assert box.take_batch() == (3, ["c6", "c7"])

    asyncio.run(main())


def test_resolve_returns_futures_in_submission_order() -> None:
    async def main() -> None:
        box = _mailbox()
        futures = [box.put(f"c{i}") for i in range(3)]
        seq, _ = box.take_batch() or (0, [])
        resolved = box.resolve(seq, ["r0", "r1", "r2"])
        assert resolved == futures
        assert not box.is_parked(seq)
        assert all(not f.done() for f in futures)  # answering is the caller's job (after sync)

    asyncio.run(main())


def test_fail_and_fail_everything_answer_with_the_error() -> None:
    async def main() -> None:
        box = _mailbox(batch_max=2)
        parked = [box.put("a"), box.put("b")]
        queued = box.put("c")
        seq, _ = box.take_batch() or (0, [])
        box.fail(seq, NotLeaderError(7, "lost"))
        assert all(isinstance(f.exception(), NotLeaderError) for f in parked)
        box.fail(seq, NotLeaderError(7))  # failing twice is harmless
        assert not queued.done()
        again = box.put("d")
        box.take_batch()
        box.fail_everything(NotLeaderError(7, "leadership lost"))
        assert isinstance(queued.exception(), NotLeaderError)
        assert isinstance(again.exception(), NotLeaderError)
        assert len(box) == 0 and box.in_flight == 0

    asyncio.run(main())


def test_expired_names_only_batches_past_their_deadline() -> None:
    async def main() -> None:
        box = _mailbox(timeout_s=5.0)
        box.put("a")
        seq, _ = box.take_batch() or (0, [])
        now = time.monotonic()
        assert box.expired(now) == []
        assert box.expired(now + 6.0) == [seq]

    asyncio.run(main())


def test_cancelled_callers_are_skipped_when_the_batch_is_cut() -> None:
    async def main() -> None:
        box = _mailbox(batch_max=2)
        gone = box.put("gone")
        kept = [box.put("a"), box.put("b")]
        gone.cancel()
        seq, batch = box.take_batch() or (0, [])
        assert batch == ["a", "b"]  # the cancelled one does not use a batch slot either
        assert box.resolve(seq, ["ra", "rb"]) == kept
        only_gone = box.put("x")
        only_gone.cancel()
        assert box.take_batch() is None and len(box) == 0

    asyncio.run(main())


def test_batches_are_cut_by_bytes_when_a_size_bound_is_given() -> None:
    async def main() -> None:
        box: Mailbox[str, str] = Mailbox(shard=7, commands_max=16, batch_max=8, in_flight_max=8,
                                         timeout_s=10.0, batch_bytes_max=10, size_of=len)
        gone = box.put("zzzzzzzzzzzz")
        gone.cancel()  # a cancelled head neither counts nor blocks
        for command in ("aaaa", "bbbb", "cccc", "d" * 30, "e"):
            box.put(command)
        assert box.take_batch() == (1, ["aaaa", "bbbb"])
        assert box.take_batch() == (2, ["cccc"])
        assert box.take_batch() == (3, ["d" * 30])  # alone above the bound: it still goes
        assert box.take_batch() == (4, ["e"])

    asyncio.run(main())
