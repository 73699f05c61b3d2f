"""The worker: polls a task queue on every node, runs workflow tasks and activities.

    async with Worker(client, task_queue="orders", workflows=[Order], activities=[charge]):
        await client.execute_workflow(Order.run, "o-1", id="order-1", task_queue="orders")

Theory of operation. The worker is the lifecycle around three parts: `_task_exchange` (polls
pinned to nodes, slots, answers to the node a task came from, drain), `_workflow_task_runner`
(replay from the sticky cache, queries, eager activities) and `_activity_task_runner`
(attempts, heartbeats, eager workflow tasks). Slots bound the work: a poller takes a slot
before it polls, so a task is never taken that cannot start at once.

Payloads: the worker uses its client's payload codec (`Client.connect(payload_codec=...)`),
as it uses its client's token: it decodes what its tasks carry before any workflow or activity
code sees it, and encodes what it answers (`_wire_payloads`, `_history_payloads`).

Eager starts: a worker registers with its client's `ClusterConnection`; `start_workflow(...,
request_eager_start=True)` of that client reserves a workflow slot here and the first workflow
task arrives in the start's answer (`EagerWorker` methods below).

Shutdown: stop polling (polls in flight are dropped; a task the server handed to a dropped
poll is kept for the next poll on that node or retried after its timeout), let tasks in
flight finish within the grace period, then cancel what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Literal

from raftflow.protocol.commands import TaskKind
from raftflow.protocol.events import HistoryEvent
from raftflow.sdk import activity as _activity
from raftflow.sdk._activity_task_runner import ActivityTaskRunner
from raftflow.sdk._folded_task import TaskFolding
from raftflow.sdk._history_payloads import decode_events
from raftflow.sdk._replay.definition import definition_of
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import KindPlan, TaskExchange, reserve_slots
from raftflow.sdk._worker_policy import GRACEFUL_SHUTDOWN_S_DEFAULT, poll_plan
from raftflow.sdk._workflow_task_runner import WorkflowTaskRunner
from raftflow.sdk.client import Client

__all__ = ["Worker"]

# How the worker takes tasks and answers them: a task stream per node (the default), or the
# HTTP long polls and calls any worker in any language uses (docs/api.md).
TaskProtocol = Literal["stream", "http"]


class Worker:
    """Runs workflows and activities of one task queue for a client's cluster.

    Guarantees: at most `max_concurrent_workflow_tasks` workflow tasks (and queries) and
    `max_concurrent_activities` activities run at once; each task is answered at most once;
    a task this worker cannot finish is retried by the server after its timeout.
    """

    def __init__(self, client: Client, *, task_queue: str, workflows: Sequence[type] = (),
                 activities: Sequence[Callable[..., Any]] = (),
                 max_concurrent_activities: int = 100,
                 max_concurrent_workflow_tasks: int = 100,
                 max_cached_workflows: int = 1000,
                 graceful_shutdown_timeout: timedelta = timedelta(
                     seconds=GRACEFUL_SHUTDOWN_S_DEFAULT),
                 identity: str | None = None,
                 task_protocol: TaskProtocol = "stream") -> None:
        if not workflows and not activities:
            raise ValueError("a worker needs at least one workflow or activity")
        if min(max_concurrent_activities, max_concurrent_workflow_tasks) < 1:
            raise ValueError("concurrency limits must be at least 1")
        if max_cached_workflows < 0:
            raise ValueError("max_cached_workflows must be >= 0")
        if task_protocol not in ("stream", "http"):
            raise ValueError("task_protocol is 'stream' (default) or 'http'")
        self._task_protocol = task_protocol
        self.client = client
        self._connection = client.connection
        self.task_queue = task_queue
        self.identity = identity or f"{os.getpid()}@{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        # Names this worker process's cache to the server: a run whose last task this worker
        # completed gets its next task with only the new events. Unique per Worker object, so
        # a restarted worker (empty cache) is never mistaken for the one that held the run.
        self.sticky_queue = f"sticky-{uuid.uuid4().hex}"
        self._workflow_types = {definition_of(w).name: w for w in workflows}
        activity_types = {d.name: d for d in map(_activity.definition_of, activities)}
        self._activity_slots = asyncio.Semaphore(max_concurrent_activities)
        self._workflow_slots = asyncio.Semaphore(max_concurrent_workflow_tasks)
        self._activity_slots_max = max_concurrent_activities if activities else 0
        self._workflow_slots_max = max_concurrent_workflow_tasks if workflows else 0
        self._grace_s = graceful_shutdown_timeout.total_seconds()
        self._exchange = TaskExchange(self._connection.transport, identity=self.identity,
                                      sticky_queue=self.sticky_queue)
        self._cache = RunnerCache(self._workflow_types, namespace=client.namespace,
                                  task_queue=task_queue, size_max=max_cached_workflows,
                                  fetch_history=self._fetch_history)
        self._workflow_tasks = WorkflowTaskRunner(
            self._exchange, self._cache, task_queue=task_queue,
            activity_types=activity_types.keys(), activity_slots=self._activity_slots,
            start_activity=self._start_activity, payloads=self._connection.payloads,
            interceptors=self._connection.interceptors)
        self.folding = TaskFolding(
            self._cache, task_queue=task_queue, identity=self.identity,
            activity_types=activity_types.keys(), activity_slots=self._activity_slots,
            start_activity=self._start_activity, payloads=self._connection.payloads,
            interceptors=self._connection.interceptors)
        self._activity_tasks = ActivityTaskRunner(
            self._exchange, activity_types, namespace=client.namespace, task_queue=task_queue,
            threads_max=max_concurrent_activities,
            workflow_slots=self._workflow_slots if workflows else None,
            start_workflow_task=self._start_workflow_task, payloads=self._connection.payloads,
            interceptors=self._connection.interceptors,
            folding=self.folding if workflows else None)
        self._run_task: asyncio.Task[None] | None = None
        self._started = False
        self._finished = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll and run tasks until `shutdown()`; then finish in-flight tasks (grace period)."""
        if self._started:
            raise RuntimeError("a Worker runs once; create a new one")
        self._started = True
        self._connection.local_workers.register(self)  # eager starts of this client come here
        try:
            addresses = await self._exchange.poll_targets()
            async with asyncio.TaskGroup() as pollers:
                self._start_pollers(pollers, addresses)
                pollers.create_task(self._stop_on_shutdown())
        except* _Stop:
            pass
        finally:
            self._connection.local_workers.unregister(self)
            await self._exchange.drain(self._grace_s)
            self._activity_tasks.close()
            self._finished.set()

    def _start_pollers(self, pollers: asyncio.TaskGroup, addresses: Sequence[str]) -> None:
        path = self._connection.task_queue_path
        if self._task_protocol == "stream":
            self._exchange.open_streams(addresses, self._stream_plans(addresses),
                                        path(self.task_queue, "/stream"))
            return
        if self._workflow_slots_max:
            for address in poll_plan(addresses, self._workflow_slots_max):
                pollers.create_task(self._exchange.poll_loop(
                    address, path(self.task_queue, "/workflow-tasks/poll"),
                    self._workflow_slots, self._workflow_tasks.handle))
        if self._activity_slots_max:
            for address in poll_plan(addresses, self._activity_slots_max):
                pollers.create_task(self._exchange.poll_loop(
                    address, path(self.task_queue, "/activity-tasks/poll"),
                    self._activity_slots, self._activity_tasks.handle))

    def _stream_plans(self, addresses: Sequence[str]) -> dict[str, list[KindPlan]]:
        """What each node's stream serves: as many grants per node and kind as the poll plan
        would send polls there (each holds a slot)."""
        path = self._connection.task_queue_path
        plans: dict[str, list[KindPlan]] = {address: [] for address in addresses}
        for kind, slots_max, slots, handle, poll in (
                (TaskKind.WORKFLOW, self._workflow_slots_max, self._workflow_slots,
                 self._workflow_tasks.handle, "/workflow-tasks/poll"),
                (TaskKind.ACTIVITY, self._activity_slots_max, self._activity_slots,
                 self._activity_tasks.handle, "/activity-tasks/poll")):
            if not slots_max:
                continue
            wanted = Counter(poll_plan(addresses, slots_max))
            # Fewer slots than nodes: some node gets no grant, so every grant takes tasks of
            # any shard (the node waits on all of them, as for an HTTP poll).
            anywhere = len(wanted) < len(addresses)
            for address in addresses:
                if wanted[address]:
                    plans[address].append(KindPlan(kind=kind, wanted=wanted[address],
                                                   slots=slots, handle=handle,
                                                   poll_path=path(self.task_queue, poll),
                                                   anywhere=anywhere))
        return plans

    async def _stop_on_shutdown(self) -> None:
        await self._exchange.stopping.wait()
        raise _Stop()  # ends the task group: every poll loop is cancelled

    async def shutdown(self) -> None:
        """Stop polling and wait for `run()` to finish the tasks in flight."""
        self._exchange.stopping.set()
        if self._run_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
        elif self._started:
            await self._finished.wait()

    async def __aenter__(self) -> Worker:
        # Registered at once, not when the run task first runs: a start right after
        # `async with worker:` may already ask for an eager first task.
        self._connection.local_workers.register(self)
        self._run_task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    # -- eager tasks -------------------------------------------------------------------------

    # An eager task is spawned as its JSON: the runner's `handle` decodes it, as a polled one.
    def _start_workflow_task(self, address: str, task: object) -> None:
        self._exchange.spawn(self._workflow_slots, self._workflow_tasks.handle, address, task)

    def _start_activity(self, address: str, task: object) -> None:
        self._exchange.spawn(self._activity_slots, self._activity_tasks.handle, address, task)

    async def reserve_workflow_slot(self) -> bool:
        """For the client (`EagerWorker`): take a free workflow slot for an eager start."""
        if self._exchange.stopping.is_set():
            return False
        return await reserve_slots(self._workflow_slots, 1) == 1

    def release_workflow_slot(self) -> None:
        """For the client (`EagerWorker`): the eager start failed, give the slot back."""
        self._workflow_slots.release()

    def accept_workflow_task(self, address: str, task: object | None) -> None:
        """For the client (`EagerWorker`): run the started task in the reserved slot (None:
        none was started, give the slot back)."""
        if task is not None:
            self._start_workflow_task(address, task)
        else:
            self._workflow_slots.release()

    async def _fetch_history(self, workflow_id: str, run_id: str) -> list[HistoryEvent]:
        """A run's whole history for a replay, its payloads decoded like a task's."""
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        return await decode_events(self._connection.payloads, (await handle.history()).events,
                                   f"history of run {run_id}")


class _Stop(Exception):
    """Ends the poller task group on shutdown."""
