"""The matcher's started tasks and poll ids: what keeps a claimed task from being lost.

Goal: a started task given back goes to a waiting poll at once, else before any ready task to
the next poll; it outlives a leadership change, is bounded per queue and dropped once older
than STARTED_TASK_AGE_S. Ending a poll id answers its wait with None at once, a wait begun
after the end takes nothing, a task handed over before the end stays with that wait, and the
remembered ends are bounded.
Method: drive `Matcher` as the gateway's polls would, in one asyncio loop.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from raftflow.matching import limits
from raftflow.matching.items import Item, ReadyTask, StartedTask
from raftflow.matching.matcher import Matcher
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.effects import DispatchWorkflowTask

NS, QUEUE = "default", "q"


def _ready(run: str) -> DispatchWorkflowTask:
    return DispatchWorkflowTask(namespace=NS, task_queue=QUEUE, workflow_id=f"wf-{run}",
                                run_id=run, scheduled_event_id=2)


def _started(name: str, age_s: float = 0.0) -> StartedTask:
    return StartedTask(namespace=NS, task_queue=QUEUE, kind=TaskKind.WORKFLOW,
                       payload={"workflow_id": name}, served_by="http://n1",
                       offered_at=time.monotonic() - age_s)


def _name(item: Item | None) -> str:
    if isinstance(item, StartedTask):
        return str(item.payload["workflow_id"])
    assert isinstance(item, ReadyTask), item
    return item.dispatch.run_id


async def _take(m: Matcher, timeout_s: float = 0.0, poll_id: str | None = None) -> Item | None:
    return await m.take(NS, QUEUE, TaskKind.WORKFLOW, timeout_s, poll_id)


def test_a_started_task_goes_to_a_waiting_poll_at_once_else_first_in_line() -> None:
    async def main() -> None:
        m = Matcher()
        waiting = asyncio.ensure_future(_take(m, timeout_s=5))
        await asyncio.sleep(0)
        m.offer_started(_started("s1"))
        assert _name(await waiting) == "s1"
        m.on_effects(1, [_ready("r1")])
        m.offer_started(_started("s2"))  # its timeout already runs: it goes first
        assert [_name(await _take(m)) for _ in range(2)] == ["s2", "r1"]
        assert m.stats.started_offered == 2

    asyncio.run(main())


def test_started_tasks_outlive_leadership_loss_and_expire_by_age() -> None:
    async def main() -> None:
        m = Matcher()
        m.offer_started(_started("old", age_s=limits.STARTED_TASK_AGE_S + 1))
        m.offer_started(_started("fresh"))
        m.on_leadership(1, False)  # not the shard's any more: claimed already
        assert _name(await _take(m)) == "fresh"
        assert m.stats.started_expired == 1 and await _take(m) is None

    asyncio.run(main())


def test_started_tasks_are_bounded_per_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        monkeypatch.setattr(limits, "STARTED_TASKS_PER_QUEUE_MAX", 2)
        m = Matcher()
        for name in ("s1", "s2", "s3"):
            m.offer_started(_started(name))
        assert m.depth() == 2 and m.stats.dropped == 1

    asyncio.run(main())


def test_ending_a_poll_answers_its_wait_with_none_and_a_later_wait_takes_nothing() -> None:
    async def main() -> None:
        m = Matcher()
        waiting = asyncio.ensure_future(_take(m, timeout_s=30, poll_id="p1"))
        await asyncio.sleep(0)
        m.end_poll("p1")
        assert await asyncio.wait_for(waiting, 1) is None
        m.on_effects(1, [_ready("r1")])
        assert await _take(m, timeout_s=30, poll_id="p1") is None  # the end overtook this leg
        assert _name(await _take(m, poll_id="p2")) == "r1"  # the task stayed for a live poll

    asyncio.run(main())


def test_a_task_handed_over_before_the_end_stays_with_that_wait() -> None:
    async def main() -> None:
        m = Matcher()
        waiting = asyncio.ensure_future(_take(m, timeout_s=30, poll_id="p1"))
        await asyncio.sleep(0)
        m.on_effects(1, [_ready("r1")])  # handed to the waiter ...
        m.end_poll("p1")  # ... before it resumes: it claims it, its gateway gives it back
        assert _name(await waiting) == "r1"
        assert m.depth() == 0

    asyncio.run(main())


def test_one_wait_per_poll_id_and_the_ended_ids_are_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        monkeypatch.setattr(limits, "ENDED_POLLS_MAX", 2)
        m = Matcher()
        first = asyncio.ensure_future(_take(m, timeout_s=30, poll_id="p1"))
        await asyncio.sleep(0)
        assert await _take(m, timeout_s=30, poll_id="p1") is None  # a second leg: refused
        for poll_id in ("p1", "p2", "p3"):
            m.end_poll(poll_id)
        assert await first is None
        m.on_effects(1, [_ready("r1")])
        # p1's end was forgotten (bound 2): a wait under it is served again.
        assert _name(await _take(m, poll_id="p1")) == "r1"

    asyncio.run(main())
