"""The node's task matcher: ready tasks of led shards meet long-polling workers.

Goal: show FIFO hand-out per (namespace, task queue, kind), direct hand-off to a waiting poller,
timeouts answered with None, a task handed to a poller that left being offered again, queued
tasks of a shard dropped when its leadership is lost, re-derived duplicate dispatches queued
once, and the queue and poller bounds (DESIGN §4 I4, I7).
Method: drive `Matcher` as the shard actors and the pollers would, in one asyncio loop.
"""

from __future__ import annotations

import asyncio

import pytest

from raftflow.matching import limits
from raftflow.matching.items import Item
from raftflow.matching.matcher import Matcher
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.effects import DispatchActivityTask, DispatchWorkflowTask, WorkflowClosed

NS = "default"


def _wf(run: str, event: int = 2, queue: str = "q") -> DispatchWorkflowTask:
    return DispatchWorkflowTask(namespace=NS, task_queue=queue, workflow_id=f"wf-{run}",
                                run_id=run, scheduled_event_id=event)


def _act(run: str, event: int = 5, attempt: int = 1) -> DispatchActivityTask:
    return DispatchActivityTask(namespace=NS, task_queue="q", workflow_id=f"wf-{run}",
                                run_id=run, scheduled_event_id=event, attempt=attempt)


async def _take(m: Matcher, kind: TaskKind = TaskKind.WORKFLOW, timeout_s: float = 0.0,
                queue: str = "q") -> Item | None:
    return await m.take(NS, queue, kind, timeout_s)


def test_queued_tasks_come_out_in_offer_order_per_kind_and_queue() -> None:
    async def main() -> None:
        m = Matcher()
        m.on_effects(1, [_wf("r1"), _act("r1"), _wf("r2"), _wf("r3", queue="other")])
        m.on_effects(2, [_wf("r4")])
        assert m.depth() == 5
        taken = [await _take(m) for _ in range(3)]
        assert [(t.shard, t.dispatch.run_id) for t in taken if t] == [(1, "r1"), (1, "r2"), (2, "r4")]
        assert await _take(m) is None
        activity = await _take(m, TaskKind.ACTIVITY)
        assert activity is not None and activity.kind is TaskKind.ACTIVITY
        other = await _take(m, queue="other")
        assert other is not None and other.dispatch.run_id == "r3"
        assert m.depth() == 0

    asyncio.run(main())


def test_a_waiting_poller_gets_the_task_directly() -> None:
    async def main() -> None:
        m = Matcher()
        first = asyncio.ensure_future(_take(m, timeout_s=5))
        second = asyncio.ensure_future(_take(m, timeout_s=5))
        await asyncio.sleep(0)
        m.on_effects(1, [_wf("r1"), _wf("r2")])
        assert (await first).dispatch.run_id == "r1"  # type: ignore[union-attr]
        assert (await second).dispatch.run_id == "r2"  # type: ignore[union-attr]
        assert m.depth() == 0 and m.stats.dispatched == 2

    asyncio.run(main())


def test_a_poll_times_out_with_none_and_the_next_task_is_queued() -> None:
    async def main() -> None:
        m = Matcher()
        assert await _take(m, timeout_s=0.02) is None
        m.on_effects(1, [_wf("r1")])
        assert m.depth() == 1  # not handed to the poller that already left
        task = await _take(m)
        assert task is not None and task.dispatch.run_id == "r1"

    asyncio.run(main())


def test_a_cancelled_pollers_task_is_offered_again() -> None:
    async def main() -> None:
        m = Matcher()
        leaving = asyncio.ensure_future(_take(m, timeout_s=5))
        await asyncio.sleep(0)
        m.on_effects(1, [_wf("r1")])  # handed to the waiter ...
        leaving.cancel()  # ... whose caller leaves before it resumes
        with pytest.raises(asyncio.CancelledError):
            await leaving
        task = await _take(m)
        assert task is not None and task.dispatch.run_id == "r1"

    asyncio.run(main())


def test_leadership_loss_drops_only_that_shards_queued_tasks() -> None:
    async def main() -> None:
        m = Matcher()
        m.on_effects(1, [_wf("r1"), _act("r1")])
        m.on_effects(2, [_wf("r2")])
        m.on_leadership(1, True)
        assert m.depth() == 3
        m.on_leadership(1, False)
        assert m.depth() == 1
        task = await _take(m)
        assert task is not None and task.shard == 2
        m.on_effects(1, [_wf("r1")])  # a later leader term may dispatch it again
        again = await _take(m)
        assert again is not None and again.dispatch.run_id == "r1"

    asyncio.run(main())


def test_re_derived_dispatches_are_queued_once() -> None:
    async def main() -> None:
        m = Matcher()
        m.on_effects(1, [_wf("r1"), _act("r1", attempt=1)])
        m.on_effects(1, [_wf("r1"), _act("r1", attempt=1), _act("r1", attempt=2)])
        assert m.depth() == 3  # the second attempt is a different task
        assert await _take(m) is not None
        assert await _take(m) is None
        m.on_effects(1, [_wf("r1")])  # after hand-out, a re-derivation is a new hint
        assert m.depth() == 3

    asyncio.run(main())


def test_the_queue_bound_drops_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        monkeypatch.setattr(limits, "QUEUE_TASKS_MAX", 2)
        m = Matcher()
        m.on_effects(1, [_wf("r1"), _wf("r2"), _wf("r3")])
        assert m.depth() == 2 and m.stats.dropped == 1
        m.on_effects(1, [_act("r1")])  # another kind has its own queue
        assert m.depth() == 3

    asyncio.run(main())


def test_the_poller_bound_answers_extra_pollers_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        monkeypatch.setattr(limits, "POLLERS_PER_QUEUE_MAX", 2)
        m = Matcher()
        parked = [asyncio.ensure_future(_take(m, timeout_s=5)) for _ in range(2)]
        await asyncio.sleep(0)
        assert await _take(m, timeout_s=5) is None  # third poller: empty answer, no wait
        m.on_effects(1, [_wf("r1"), _wf("r2")])
        assert {(await p).dispatch.run_id for p in parked} == {"r1", "r2"}  # type: ignore[union-attr]

    asyncio.run(main())


def test_pollers_that_left_do_not_count_against_the_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Timed-out and cancelled pollers must free their slot, or an idle queue that saw
    POLLERS_PER_QUEUE_MAX short polls refuses every later poller until a task arrives."""

    async def main() -> None:
        monkeypatch.setattr(limits, "POLLERS_PER_QUEUE_MAX", 2)
        m = Matcher()
        for _ in range(2):
            assert await _take(m, timeout_s=0.01) is None
        cancelled = asyncio.ensure_future(_take(m, timeout_s=5))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        waiting = asyncio.ensure_future(_take(m, timeout_s=5))
        await asyncio.sleep(0.01)
        assert not waiting.done(), "a live poller was refused because of pollers that left"
        m.on_effects(1, [_wf("r1")])
        assert (await waiting).dispatch.run_id == "r1"  # type: ignore[union-attr]

    asyncio.run(main())


def test_close_waiters_are_woken_by_workflow_closed() -> None:
    async def main() -> None:
        m = Matcher()
        waiter = asyncio.ensure_future(m.wait_closed(NS, "wf-r1", timeout_s=5))
        await asyncio.sleep(0)
        m.on_effects(1, [WorkflowClosed(namespace=NS, workflow_id="wf-r1", run_id="r1")])
        assert await waiter is True
        assert await m.wait_closed(NS, "wf-r2", timeout_s=0.01) is False

    asyncio.run(main())


def test_losing_leadership_wakes_close_waiters_so_they_re_route() -> None:
    # A result long poll waits on the node that led the shard; once another node leads, the
    # close would be reported there, so waiters here must wake, re-read and get routed.
    async def main() -> None:
        m = Matcher()
        with m.watch_close(NS, "wf-moved") as closed:
            m.on_leadership(3, True)
            await asyncio.sleep(0)
            assert not closed.done()
            m.on_leadership(3, False)
            assert closed.done()

    asyncio.run(main())
