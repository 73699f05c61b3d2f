"""The worker's activity tasks: run one attempt, then answer it.

Theory of operation. `async def` activities run on the loop, `def` ones in a thread pool,
inside the activity context (`activity.info()`, `activity.heartbeat()`). Heartbeats are
throttled and sent in the background; an answer `cancel_requested` cancels an async activity
(reported as canceled). The last heartbeat details are flushed before the answer, so the next
attempt sees them (I4).

Eager workflow tasks: a completion of a worker that also runs workflows asks the server for
the workflow task it schedules (a workflow slot reserved first); it arrives in the answer and
runs here at once, skipping a poll and a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from raftflow.sdk import errors
from raftflow.sdk._activity_context import ActivityContext
from raftflow.sdk._activity_support import Heartbeater, activity_info, invoke
from raftflow.sdk._task_exchange import Task, TaskExchange, reserve_slots
from raftflow.sdk.activity import ActivityDefinition

Outcome = tuple[str, dict[str, object]]  # (answer kind: complete|fail|canceled, its body)


class ActivityTaskRunner:
    """Runs one worker's activity attempts; `close()` once the worker has drained.

    `workflow_slots` is None for a worker without workflows (it asks for no eager workflow
    task); else `start_workflow_task(address, task)` runs the eagerly started workflow task
    in the workflow slot reserved for it.
    """

    def __init__(self, exchange: TaskExchange, activities: Mapping[str, ActivityDefinition],
                 *, namespace: str, task_queue: str, threads_max: int,
                 workflow_slots: asyncio.Semaphore | None,
                 start_workflow_task: Callable[[str, Task], None]) -> None:
        self._exchange = exchange
        self._activities = activities
        self._namespace = namespace
        self._task_queue = task_queue
        self._workflow_slots = workflow_slots
        self._start_workflow_task = start_workflow_task
        # Threads start on first use; a worker that never runs a sync activity has none.
        self._pool = ThreadPoolExecutor(max_workers=threads_max,
                                        thread_name_prefix="raftflow-activity")

    def close(self) -> None:
        # Threads of sync activities cut off by the grace period are not waited for.
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, address: str, task: Task) -> None:
        token = str(task["task_token"])
        definition = self._activities.get(str(task["activity_type"]))
        if definition is None:
            await self._exchange.post("/api/v1/tasks/activity/fail", {
                "task_token": token, "identity": self._exchange.identity, "failure": {
                    "message": f"activity type {task['activity_type']!r} is not registered "
                               f"with this worker (known: {sorted(self._activities)})",
                    "type": "NotFoundError", "non_retryable": False}})
            return
        outcome = await self._attempt(definition, task)
        await self._answer(address, token, outcome)

    async def _attempt(self, definition: ActivityDefinition, task: Task) -> Outcome:
        attempt = asyncio.current_task()
        assert attempt is not None
        heartbeater = Heartbeater(self._exchange.post, task, on_cancel=lambda: _interrupt(
            attempt, definition.is_async))
        context = ActivityContext(info=activity_info(task, self._namespace, self._task_queue),
                                  heartbeat=heartbeater.record)
        heartbeater.context = context
        sender = asyncio.create_task(heartbeater.run())
        outcome: Outcome
        try:
            result = await invoke(definition, context, list(task.get("input") or []),
                                  self._pool)
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
        return outcome

    async def _answer(self, address: str, token: str, outcome: Outcome) -> None:
        kind, body = outcome
        slots = self._workflow_slots
        eager = False
        if kind == "complete" and slots is not None and not self._exchange.stopping.is_set():
            eager = await reserve_slots(slots, 1) == 1
        if eager:  # the workflow task this completion schedules may run here at once
            body = {**body, "eager_task_queue": self._task_queue,
                    "sticky_queue": self._exchange.sticky_queue}
        try:
            answer = await self._exchange.post_to(
                address, f"/api/v1/tasks/activity/{kind}",
                {"task_token": token, "identity": self._exchange.identity, **body})
        except BaseException:
            if eager:
                assert slots is not None
                slots.release()
            raise
        workflow_task = answer.body.get("workflow_task") if isinstance(answer.body, dict) else None
        if eager and isinstance(workflow_task, dict):
            self._start_workflow_task(answer.address or address, workflow_task)
        elif eager:
            assert slots is not None
            slots.release()


def _interrupt(attempt: asyncio.Task[None], is_async: bool) -> None:
    if is_async:
        attempt.cancel()
    # A sync activity cannot be interrupted: it sees `activity.is_cancelled()` instead.
