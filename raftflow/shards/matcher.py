"""The node's task matcher: ready tasks of the shards this node leads, and the pollers waiting.

Theory of operation. Shard actors that lead hand their dispatch effects here (EffectSink). A
dispatch is a hint, never the truth: handing a task to a worker is the `Record*TaskStarted`
command, which the core rejects when the dispatch went stale. So the matcher may lose, repeat
or reorder dispatches without harm to correctness; a new leader re-derives them from state.
Queues are per (namespace, task queue, kind) and bounded; a dispatch beyond the bound is
dropped and counted (the task stays scheduled in state and is re-derived on the next leader
change; its schedule-to-start timeout, if set, still fires).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from raftflow.protocol.commands import TaskKind
from raftflow.protocol.effects import (
    DispatchActivityTask,
    DispatchWorkflowTask,
    Effect,
    WorkflowClosed,
)

# Ready tasks held per (namespace, task queue, kind). Beyond it dispatches are dropped (see above).
QUEUE_TASKS_MAX = 100_000
# Pollers parked per (namespace, task queue, kind); more get an immediate empty answer.
POLLERS_PER_QUEUE_MAX = 1_000
# Callers waiting for one workflow's close, and workflows waited on per node.
CLOSE_WAITERS_MAX = 10_000

QueueKey = tuple[str, str, TaskKind]
Dispatch = DispatchWorkflowTask | DispatchActivityTask


@dataclass(frozen=True, slots=True)
class ReadyTask:
    shard: int
    dispatch: Dispatch

    @property
    def kind(self) -> TaskKind:
        return TaskKind.WORKFLOW if isinstance(self.dispatch, DispatchWorkflowTask) else TaskKind.ACTIVITY

    @property
    def identity(self) -> tuple[int, str, int, int]:
        d = self.dispatch
        attempt = d.attempt if isinstance(d, DispatchActivityTask) else 0
        return (self.shard, d.run_id, d.scheduled_event_id, attempt)


class MatcherStats:
    __slots__ = ("dispatched", "dropped")

    def __init__(self) -> None:
        self.dispatched = 0
        self.dropped = 0


class Matcher:
    def __init__(self) -> None:
        self._queues: dict[QueueKey, deque[ReadyTask]] = {}
        self._queued: set[tuple[int, str, int, int]] = set()
        self._pollers: dict[QueueKey, deque[asyncio.Future[ReadyTask]]] = {}
        self._close_waiters: dict[tuple[str, str], list[asyncio.Future[None]]] = {}
        self.stats = MatcherStats()

    # -- EffectSink ----------------------------------------------------------------------------

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, DispatchWorkflowTask | DispatchActivityTask):
                self._offer(ReadyTask(shard, effect))
            elif isinstance(effect, WorkflowClosed):
                for waiter in self._close_waiters.pop((effect.namespace, effect.workflow_id), []):
                    if not waiter.done():
                        waiter.set_result(None)

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        if is_leader:
            return
        for key, queue in self._queues.items():
            kept = deque(t for t in queue if t.shard != shard)
            for task in queue:
                if task.shard == shard:
                    self._queued.discard(task.identity)
            self._queues[key] = kept

    # -- pollers -------------------------------------------------------------------------------

    async def take(self, namespace: str, task_queue: str, kind: TaskKind,
                   timeout_s: float) -> ReadyTask | None:
        """The next ready task of that queue, waiting up to `timeout_s`; None on timeout."""
        key = (namespace, task_queue, kind)
        queue = self._queues.get(key)
        if queue:
            task = queue.popleft()
            self._queued.discard(task.identity)
            return task
        pollers = self._pollers.setdefault(key, deque())
        if len(pollers) >= POLLERS_PER_QUEUE_MAX or timeout_s <= 0:
            return None
        waiter: asyncio.Future[ReadyTask] = asyncio.get_running_loop().create_future()
        pollers.append(waiter)
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows the caller's
        # cancellation when the waiter was handed a task in the same instant, so the task
        # would be started for a caller that is gone instead of being offered again.
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(waiter)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return waiter.result()  # handed over in the same instant: do not lose it
            return None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._offer(waiter.result())  # our caller left: give the task to someone else
            raise
        finally:
            waiter.cancel()
            # A poller that left frees its slot at once (else POLLERS_PER_QUEUE_MAX polls that
            # timed out on an idle queue would refuse every later poller until a task arrives).
            with contextlib.suppress(ValueError):
                pollers.remove(waiter)

    async def wait_closed(self, namespace: str, workflow_id: str, timeout_s: float) -> bool:
        """Wait until the shard leader on this node reports the workflow closed."""
        waiters = self._close_waiters.setdefault((namespace, workflow_id), [])
        if len(waiters) >= CLOSE_WAITERS_MAX:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._close_waiters.pop((namespace, workflow_id), None)

    def depth(self) -> int:
        return sum(len(q) for q in self._queues.values())

    # -- internals -----------------------------------------------------------------------------

    def _offer(self, task: ReadyTask) -> None:
        key = (task.dispatch.namespace, task.dispatch.task_queue, task.kind)
        pollers = self._pollers.get(key)
        while pollers:
            waiter = pollers.popleft()
            if not waiter.done():
                waiter.set_result(task)
                self.stats.dispatched += 1
                return
        if task.identity in self._queued:
            return  # a re-derived duplicate of a dispatch still queued
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= QUEUE_TASKS_MAX:
            self.stats.dropped += 1
            return
        queue.append(task)
        self._queued.add(task.identity)
        self.stats.dispatched += 1
