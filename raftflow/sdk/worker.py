"""The worker: polls a task queue on every node, runs workflow tasks and activities.

    async with Worker(client, task_queue="orders", workflows=[Order], activities=[charge]):
        await client.execute_workflow(Order.run, "o-1", id="order-1", task_queue="orders")

Theory of operation. A task is ready only on its shard's leader, so the worker long-polls
every node (the client's addresses and the nodes `/api/v1/cluster/status` lists at start-up)
with `?local=1` (one hop per task; `_worker_policy.poll_plan`). Slots bound the work: a
poller takes a slot before it polls, so a task is never taken that cannot start at once.

Eager tasks: a workflow task completion asks the server to start, in the same commit, the
activities it schedules that this worker can run (slots reserved first), and an activity
completion asks for the workflow task it schedules; both arrive in the answer, skipping a poll
and a commit each. Answers go to the node the task came from (it leads the shard).

Workflow tasks: replayed runs stay in a bounded cache (`_runner_cache`); the server sends this
worker (its `sticky_queue`) only new events for runs it completed last. Any error while running
the code (a bug, `NondeterminismError`) fails the workflow task (the server retries it) and
drops the runner. Runners run on the worker's event loop, never in a thread, so a runner is
never used by a workflow task and a query at the same time.

Query tasks arrive on the workflow-task poll (they carry `query_id`): answered from the cached
runner when it has seen exactly the query's history, else from a fresh replay.

Activities: `async def` ones run on the loop, `def` ones in a thread pool, inside the activity
context (`activity.info()`, `activity.heartbeat()`). Heartbeats are throttled and sent in the
background; an answer `cancel_requested` cancels an async activity (reported as canceled).

Shutdown: stop polling (polls in flight are dropped; a task the server handed to a dropped
poll is kept for the next poll on that node or retried after its timeout), let tasks in
flight finish within the grace period, then cancel what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import aiohttp

from raftflow.sdk import _http, errors
from raftflow.sdk import activity as _activity
from raftflow.sdk._activity_context import ActivityContext
from raftflow.sdk._activity_support import Heartbeater, activity_info, invoke
from raftflow.sdk._replay.definition import definition_of
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._worker_policy import (
    GRACEFUL_SHUTDOWN_S_DEFAULT,
    POLL_BACKOFF_S_MAX,
    POLL_BACKOFF_S_MIN,
    POLL_WAIT_MS,
    eager_activities_wanted,
    fail_backoff_s,
    poll_plan,
)
from raftflow.sdk.client import Client

__all__ = ["Worker"]

log = logging.getLogger(__name__)

Task = dict[str, Any]


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
                 identity: str | None = None) -> None:
        if not workflows and not activities:
            raise ValueError("a worker needs at least one workflow or activity")
        if min(max_concurrent_activities, max_concurrent_workflow_tasks) < 1:
            raise ValueError("concurrency limits must be at least 1")
        if max_cached_workflows < 0:
            raise ValueError("max_cached_workflows must be >= 0")
        self.client = client
        self.task_queue = task_queue
        self._workflows = {definition_of(w).name: w for w in workflows}
        self._activities = {d.name: d for d in map(_activity.definition_of, activities)}
        self._activity_slots = asyncio.Semaphore(max_concurrent_activities)
        self._workflow_slots = asyncio.Semaphore(max_concurrent_workflow_tasks)
        self._max_concurrent_activities = max_concurrent_activities
        self._workflow_slots_max = max_concurrent_workflow_tasks
        self._cache = RunnerCache(self._workflows, namespace=client.namespace,
                                  task_queue=task_queue, size_max=max_cached_workflows,
                                  fetch_history=self._fetch_history)
        self._grace_s = graceful_shutdown_timeout.total_seconds()
        self.identity = identity or f"{os.getpid()}@{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        # Names this worker process's cache to the server: a run whose last task this worker
        # completed gets its next task with only the new events. Unique per Worker object, so
        # a restarted worker (empty cache) is never mistaken for the one that held the run.
        self.sticky_queue = f"sticky-{uuid.uuid4().hex}"
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._run_task: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._started = False
        self._finished = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll and run tasks until `shutdown()`; then finish in-flight tasks (grace period)."""
        if self._started:
            raise RuntimeError("a Worker runs once; create a new one")
        self._started = True
        base = f"/api/v1/namespaces/{self.client.namespace}/task-queues/{self.task_queue}"
        self._pool = ThreadPoolExecutor(max_workers=self._max_concurrent_activities,
                                        thread_name_prefix="raftflow-activity")
        self.client._register_worker(self)  # eager starts of this client come here
        try:
            addresses = await self._poll_targets()
            async with asyncio.TaskGroup() as pollers:
                if self._workflows:
                    for address, local in poll_plan(addresses, self._workflow_slots_max):
                        pollers.create_task(self._poll_loop(
                            address, base + "/workflow-tasks/poll", local,
                            self._workflow_slots, self._handle_workflow_task))
                if self._activities:
                    for address, local in poll_plan(addresses, self._max_concurrent_activities):
                        pollers.create_task(self._poll_loop(
                            address, base + "/activity-tasks/poll", local,
                            self._activity_slots, self._handle_activity_task))
                pollers.create_task(self._stop_on_shutdown())
        except* _Stop:
            pass
        finally:
            self.client._unregister_worker(self)
            await self._drain()
            # Threads of sync activities cut off by the grace period are not waited for.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._finished.set()

    async def _poll_targets(self) -> tuple[str, ...]:
        """The client's addresses plus every node the cluster reports (a worker given one
        address must still reach the leaders of every shard, each on its own node)."""
        addresses = list(self.client.addresses)
        try:
            status = (await self.client.transport.call("GET", "/api/v1/cluster/status")).body
        except (errors.RPCError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("cluster status unavailable, polling only the given nodes: %r", error)
            return tuple(addresses)
        for node in status.get("nodes", []) if isinstance(status, dict) else []:
            address = node.get("address") if isinstance(node, dict) else None
            if isinstance(address, str) and address:
                addresses.append(_http.normalize_address(address))
        return tuple(dict.fromkeys(addresses))

    async def _stop_on_shutdown(self) -> None:
        await self._stopping.wait()
        raise _Stop()  # ends the task group: every poll loop is cancelled

    async def shutdown(self) -> None:
        """Stop polling and wait for `run()` to finish the tasks in flight."""
        self._stopping.set()
        if self._run_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
        elif self._started:
            await self._finished.wait()

    async def __aenter__(self) -> Worker:
        # Registered at once, not when the run task first runs: a start right after
        # `async with worker:` may already ask for an eager first task.
        self.client._register_worker(self)
        self._run_task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def _drain(self) -> None:
        # A task answered during the grace period may bring an eager task with it (spawned
        # into _in_flight): wait for those too, within the same grace period.
        deadline = asyncio.get_running_loop().time() + self._grace_s
        while self._in_flight:
            remaining_s = deadline - asyncio.get_running_loop().time()
            if remaining_s <= 0:
                break
            await asyncio.wait(set(self._in_flight), timeout=remaining_s)
        late = set(self._in_flight)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    # -- polling -----------------------------------------------------------------------------

    async def _poll_loop(self, address: str, path: str, local: bool, slots: asyncio.Semaphore,
                         handle: Callable[[str, Task], Awaitable[None]]) -> None:
        backoff_s = POLL_BACKOFF_S_MIN
        body = {"identity": self.identity, "sticky_queue": self.sticky_queue,
                "wait_ms": POLL_WAIT_MS}
        while not self._stopping.is_set():
            await slots.acquire()
            try:
                answer = await self.client.transport.call_node(
                    address, "POST", path, params={"local": "1"} if local else None, body=body,
                    timeout_s=POLL_WAIT_MS / 1000 + _http.REQUEST_TIMEOUT_S)
            except (errors.RPCError, aiohttp.ClientError, TimeoutError) as error:
                slots.release()
                log.debug("poll %s%s failed: %r", address, path, error)
                await asyncio.sleep(backoff_s)
                backoff_s = min(POLL_BACKOFF_S_MAX, backoff_s * 2)
                continue
            except BaseException:
                slots.release()
                raise
            backoff_s = POLL_BACKOFF_S_MIN
            if answer.status != 200 or not isinstance(answer.body, dict):
                slots.release()
                continue
            self._spawn(slots, handle, address, answer.body)

    def _spawn(self, slots: asyncio.Semaphore, handle: Callable[[str, Task], Awaitable[None]],
               address: str, task: Task) -> None:
        """Run a task in a slot the caller already holds (released when the task ends)."""
        job = asyncio.create_task(self._run_task_in_slot(slots, handle, address, task))
        self._in_flight.add(job)
        job.add_done_callback(self._in_flight.discard)

    async def _run_task_in_slot(self, slots: asyncio.Semaphore,
                                handle: Callable[[str, Task], Awaitable[None]],
                                address: str, task: Task) -> None:
        try:
            await handle(address, task)
        except (errors.RPCError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("task of %s/%s not answered: %r", task.get("workflow_id"),
                        task.get("run_id"), error)
        except Exception:  # the one catch boundary of a task: log it, keep the worker alive
            log.exception("task of %s/%s crashed the worker's handler",
                          task.get("workflow_id"), task.get("run_id"))
        finally:
            slots.release()

    async def _post(self, path: str, body: dict[str, object]) -> _http.Answer:
        return await self.client.transport.call("POST", path, body=body)

    async def _post_to(self, address: str, path: str, body: dict[str, object]) -> _http.Answer:
        """Answer a task on the node it came from: that node led the task's shard a moment
        ago, so the answer usually needs no forwarding hop. Any other node will do if it is
        down or no longer leads (the same body: a completion that did commit is then refused
        as stale, never applied twice)."""
        try:
            return await self.client.transport.call_node(address, "POST", path, body=body)
        except errors.RPCError as error:
            if error.status not in _http.RETRYABLE_STATUSES:
                raise
        except (aiohttp.ClientError, TimeoutError):
            pass
        return await self._post(path, body)

    # -- eager starts (client.EagerWorker) ---------------------------------------------------

    async def reserve_workflow_slot(self) -> bool:
        return not self._stopping.is_set() and await self._reserve(self._workflow_slots, 1) == 1

    def release_workflow_slot(self) -> None:
        self._workflow_slots.release()

    def accept_workflow_task(self, address: str, task: object) -> None:
        if isinstance(task, dict):
            self._spawn(self._workflow_slots, self._handle_workflow_task, address, task)
        else:
            self._workflow_slots.release()

    async def _reserve(self, slots: asyncio.Semaphore, wanted: int) -> int:
        """Take up to `wanted` free slots without waiting; returns how many were taken."""
        taken = 0
        while taken < wanted and not slots.locked():
            await slots.acquire()  # returns at once: a slot is free and nobody queues for it
            taken += 1
        return taken

    # -- workflow tasks ----------------------------------------------------------------------

    async def _fetch_history(self, workflow_id: str, run_id: str) -> list[Task]:
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        return list((await handle.history()).events)

    async def _handle_workflow_task(self, address: str, task: Task) -> None:
        if "query_id" in task:
            await self._answer_query(address, task)
            return
        run_id = str(task["run_id"])
        try:
            runner, events = await self._cache.take(task)
            commands = runner.activate(events)
        except Exception as error:  # fail the task: the server retries it (I4)
            cause = ("NonDeterministicError" if isinstance(error, errors.NondeterminismError)
                     else "WorkflowWorkerUnhandledFailure")
            log.warning("workflow task of %s/%s failed: %r", task["workflow_id"], run_id, error)
            await asyncio.sleep(fail_backoff_s(int(task.get("attempt") or 1)))
            await self._post("/api/v1/tasks/workflow/fail", {
                "task_token": task["task_token"], "cause": cause,
                "failure": errors.to_failure(error), "identity": self.identity})
            return
        wanted = 0 if self._stopping.is_set() else eager_activities_wanted(
            commands, self.task_queue, self._activities)
        eager = await self._reserve(self._activity_slots, wanted)
        try:
            answer = await self._post_to(address, "/api/v1/tasks/workflow/complete", {
                "task_token": task["task_token"], "commands": commands,
                "identity": self.identity, "sticky_queue": self.sticky_queue,
                "eager_task_queue": self.task_queue if eager else "",
                "eager_activities_max": eager})
        except BaseException as error:
            for _ in range(eager):
                self._activity_slots.release()
            if not isinstance(error, errors.RPCError):
                raise
            # Refused (stale, or new events arrived): the runner may be ahead of history.
            log.info("completion of %s/%s refused: %s", task["workflow_id"], run_id, error)
            return
        self._cache.keep(run_id, runner)
        body = answer.body if isinstance(answer.body, dict) else {}
        started = body.get("activity_tasks") or []
        assert len(started) <= eager, (len(started), eager)
        for activity_task in started:  # answered where they were started (the shard leader)
            self._spawn(self._activity_slots, self._handle_activity_task,
                        answer.address or address, activity_task)
        for _ in range(eager - len(started)):
            self._activity_slots.release()


    async def _answer_query(self, address: str, task: Task) -> None:
        reply: dict[str, object] = {"query_id": task["query_id"]}
        try:
            reply["result"] = self._cache.query(task)
        except Exception as error:
            reply["error"] = {"message": str(error), "type": type(error).__name__}
        # Any node relays the answer to the node where the caller waits.
        await self._post("/api/v1/tasks/query/respond", reply)

    # -- activities --------------------------------------------------------------------------

    async def _handle_activity_task(self, address: str, task: Task) -> None:
        token = str(task["task_token"])
        definition = self._activities.get(str(task["activity_type"]))
        if definition is None:
            await self._post("/api/v1/tasks/activity/fail", {"task_token": token, "failure": {
                "message": f"activity type {task['activity_type']!r} is not registered with "
                           f"this worker (known: {sorted(self._activities)})",
                "type": "NotFoundError", "non_retryable": False}, "identity": self.identity})
            return
        attempt = asyncio.current_task()
        assert attempt is not None
        heartbeater = Heartbeater(self.client, task, on_cancel=lambda: self._cancel_attempt(
            attempt, definition.is_async))
        context = ActivityContext(info=activity_info(task, self.client.namespace, self.task_queue), heartbeat=heartbeater.record)
        heartbeater.context = context
        sender = asyncio.create_task(heartbeater.run())
        outcome: tuple[str, dict[str, object]]
        try:
            assert self._pool is not None, "activities run only while the worker runs"
            result = await invoke(definition, context, list(task.get("input") or []), self._pool)
            json.dumps(result)  # a result JSON cannot carry fails the attempt, not the worker
            outcome = ("complete", {"result": result})
        except asyncio.CancelledError:
            if not context.cancel_requested:
                outcome = ("fail", {"failure": {"message": "worker shut down",
                                                "type": "WorkerShutdown",
                                                "non_retryable": False}})
            else:
                outcome = ("canceled", {"details": None})
            attempt.uncancel()
        except Exception as error:
            outcome = ("fail", {"failure": errors.to_failure(error)})
        finally:
            heartbeater.active = False
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        await heartbeater.flush()  # the last details reach the next attempt (I4)
        kind, body = outcome
        eager = False
        if kind == "complete" and self._workflows and not self._stopping.is_set():
            eager = await self._reserve(self._workflow_slots, 1) == 1
        if eager:  # the workflow task this completion schedules may run here at once
            body = {**body, "eager_task_queue": self.task_queue,
                    "sticky_queue": self.sticky_queue}
        try:
            answer = await self._post_to(address, f"/api/v1/tasks/activity/{kind}",
                                         {"task_token": token, "identity": self.identity, **body})
        except BaseException:
            if eager:
                self._workflow_slots.release()
            raise
        workflow_task = answer.body.get("workflow_task") if isinstance(answer.body, dict) else None
        if eager and isinstance(workflow_task, dict):
            self._spawn(self._workflow_slots, self._handle_workflow_task,
                        answer.address or address, workflow_task)
        elif eager:
            self._workflow_slots.release()

    def _cancel_attempt(self, attempt: asyncio.Task[None], is_async: bool) -> None:
        if is_async:
            attempt.cancel()
        # A sync activity cannot be interrupted: it sees `activity.is_cancelled()`.


class _Stop(Exception):
    """Ends the poller task group on shutdown."""
