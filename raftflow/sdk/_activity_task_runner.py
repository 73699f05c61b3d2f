"""The worker's activity tasks: run one attempt, then answer it.

Theory of operation. `async def` activities run on the loop, `def` ones in a thread pool,
inside the activity context (`activity.info()`, `activity.heartbeat()`). Heartbeats are
throttled and sent in the background; an answer `cancel_requested` cancels an async activity
(reported as canceled). The last heartbeat details are flushed before the answer, so the next
attempt sees them (I4). A task is decoded where it enters, in `handle` (`_wire_tasks`: polled
and eager tasks alike); a malformed one is failed (or dropped, without a readable token)
before any activity code runs.

Eager workflow tasks: a completion of a worker that also runs workflows asks the server for
the workflow task it schedules (a workflow slot reserved first); it arrives in the answer and
runs here at once, skipping a poll and a commit; when this worker holds the run, that task
runs before the completion is sent and rides on it, one commit for both (`_folded_task`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import assert_never

import msgspec

from raftflow.protocol.commands import Failure
from raftflow.protocol.http_answers import ActivityTask
from raftflow.protocol.http_bodies import (
    ActivityTaskCanceledRequest,
    CompleteActivityTaskRequest,
    FailActivityTaskRequest,
)
from raftflow.protocol.payload import EMPTY
from raftflow.sdk import errors
from raftflow.sdk._activity_context import ActivityContext
from raftflow.sdk._activity_support import Heartbeater, activity_info, invoke
from raftflow.sdk._folded_task import TaskFolding
from raftflow.sdk._interceptors import NO_INTERCEPTORS, Interceptors, trace_headers
from raftflow.sdk._payload_limits import too_large
from raftflow.sdk._replay.commands import payload
from raftflow.sdk._task_exchange import TaskExchange, reserve_slots
from raftflow.sdk._wire_payloads import NO_CODEC, PayloadShape, WirePayloads
from raftflow.sdk._wire_tasks import decode_activity_task, eager_workflow_task
from raftflow.sdk.activity import ActivityDefinition
from raftflow.sdk.interceptor import ActivityInput

log = logging.getLogger(__name__)

# An attempt's answer, and where it goes.
Outcome = CompleteActivityTaskRequest | FailActivityTaskRequest | ActivityTaskCanceledRequest
_PATHS: dict[type[Outcome], str] = {
    CompleteActivityTaskRequest: "/api/v1/tasks/activity/complete",
    FailActivityTaskRequest: "/api/v1/tasks/activity/fail",
    ActivityTaskCanceledRequest: "/api/v1/tasks/activity/canceled",
}


class ActivityTaskRunner:
    """Runs one worker's activity attempts; `close()` once the worker has drained.

    `workflow_slots` is None for a worker without workflows (it asks for no eager workflow
    task); else `start_workflow_task(address, task)` runs the eagerly started workflow task
    in the workflow slot reserved for it.
    """

    def __init__(self, exchange: TaskExchange, activities: Mapping[str, ActivityDefinition],
                 *, namespace: str, task_queue: str, threads_max: int,
                 workflow_slots: asyncio.Semaphore | None,
                 start_workflow_task: Callable[[str, object], None],
                 payloads: WirePayloads = NO_CODEC,
                 interceptors: Interceptors = NO_INTERCEPTORS,
                 folding: TaskFolding | None = None) -> None:
        self._exchange = exchange
        self._folding = folding
        self._interceptors = interceptors
        self._payloads = payloads
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

    async def handle(self, address: str, body: object) -> None:
        """Run one activity attempt, given as its task's JSON (polled or eager)."""
        try:
            task = decode_activity_task(body)
        except errors.MalformedTaskError as error:
            # No activity code runs. With a token the attempt fails now (the server retries
            # it by its policy); without one it is dropped and times out on the server.
            log.warning("malformed activity task: %s", error)
            if error.task_token is not None:
                await self._post_failure(error.task_token, errors.failure_of(error))
            return
        try:
            task = await self._decoded(task)
        except errors.PayloadCodecError as error:  # e.g. no codec, or the wrong key
            log.warning("activity task of %s/%s refused: %s", task.workflow_id, task.run_id,
                        error, extra={"namespace": task.namespace,
                                      "workflow_id": task.workflow_id, "run_id": task.run_id})
            await self._post_failure(task.task_token, errors.failure_of(error))
            return
        definition = self._activities.get(task.activity_type)
        if definition is None:
            await self._post_failure(task.task_token, Failure(
                message=f"activity type {task.activity_type!r} is not registered "
                        f"with this worker (known: {sorted(self._activities)})",
                type="NotFoundError"))
            return
        traceparent = ""
        if self._interceptors:
            with self._interceptors.run_activity(ActivityInput(
                    namespace=task.namespace, workflow_id=task.workflow_id, run_id=task.run_id,
                    activity_id=task.activity_id, activity_type=task.activity_type,
                    attempt=task.attempt, traceparent=task.traceparent)) as traceparent:
                outcome = await self._attempt(definition, task)
        else:
            outcome = await self._attempt(definition, task)
        await self._answer(address, task, await self._encoded(outcome), traceparent)

    async def _decoded(self, task: ActivityTask) -> ActivityTask:
        """The task with its input and last heartbeat details decoded by the client's codec
        (`PayloadCodecError` if they cannot be: the attempt fails before any code runs)."""
        what = f"activity {task.activity_type} ({task.activity_id})"
        return msgspec.structs.replace(
            task, input=await self._payloads.decode_json(task.input, f"input of {what}"),
            heartbeat_details=await self._payloads.decode_json(
                task.heartbeat_details, f"heartbeat details of {what}"))

    async def _encoded(self, outcome: Outcome) -> Outcome:
        """An attempt's answer as the wire carries it: its result or failure details through
        the client's codec. A result the codec refuses fails the attempt instead (the server
        retries it); failure details it refuses are left out, as `errors.failure_of` leaves
        out details JSON cannot carry: the attempt must still be answered."""
        match outcome:
            case CompleteActivityTaskRequest():
                try:
                    result = await self._payloads.encode(outcome.result, PayloadShape.VALUE,
                                                         "activity result")
                except errors.PayloadCodecError as error:
                    return await self._encoded(self._failed(outcome.task_token,
                                                            errors.failure_of(error)))
                # The server would refuse it, and every retry would return the same (413 is no
                # answer): the attempt fails, non-retryably, naming the limit.
                oversized = too_large(result, "the activity's result")
                if oversized is not None:
                    return self._failed(outcome.task_token, oversized)
                return msgspec.structs.replace(outcome, result=result)
            case FailActivityTaskRequest():
                failure = outcome.failure
                try:
                    failure = await self._payloads.encode_failure(failure, "failure details")
                except errors.PayloadCodecError as error:
                    failure = msgspec.structs.replace(
                        failure, details=EMPTY, message=f"{failure.message} (details left "
                                                        f"out: {error})")
                return msgspec.structs.replace(outcome, failure=failure)
            case ActivityTaskCanceledRequest():
                return outcome  # no details: the SDK sends none with a cancellation
            case _:
                assert_never(outcome)

    async def _attempt(self, definition: ActivityDefinition, task: ActivityTask) -> Outcome:
        attempt = asyncio.current_task()
        assert attempt is not None
        heartbeater = Heartbeater(self._exchange.post, task, on_cancel=lambda: _interrupt(
            attempt, definition.is_async), payloads=self._payloads)
        context = ActivityContext(info=activity_info(task, self._namespace, self._task_queue),
                                  heartbeat=heartbeater.record)
        heartbeater.context = context
        sender = asyncio.create_task(heartbeater.run())
        token, identity = task.task_token, self._exchange.identity
        outcome: Outcome
        try:
            result = await invoke(definition, context, list(task.input or []), self._pool)
            # A result JSON cannot carry fails the attempt (TypeError), not the worker.
            outcome = CompleteActivityTaskRequest(
                task_token=token, result=payload(result, "activity result"), identity=identity)
        except asyncio.CancelledError:
            if not context.cancel_requested:
                outcome = self._failed(token, Failure(message="worker shut down",
                                                      type="WorkerShutdown"))
            else:
                outcome = ActivityTaskCanceledRequest(task_token=token, identity=identity)
            attempt.uncancel()
        except Exception as error:
            outcome = self._failed(token, errors.failure_of(error))
        finally:
            heartbeater.active = False
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        await heartbeater.flush()  # the last details reach the next attempt (I4)
        return outcome

    async def _post_failure(self, token: str, failure: Failure) -> None:
        """Fail an attempt no activity code ran for, on any node."""
        await self._exchange.post(_PATHS[FailActivityTaskRequest],
                                  await self._encoded(self._failed(token, failure)))

    def _failed(self, token: str, failure: Failure) -> FailActivityTaskRequest:
        return FailActivityTaskRequest(task_token=token, failure=failure,
                                       identity=self._exchange.identity)

    async def _answer(self, address: str, task: ActivityTask, outcome: Outcome,
                      traceparent: str) -> None:
        slots = self._workflow_slots
        eager = False
        if (isinstance(outcome, CompleteActivityTaskRequest) and slots is not None
                and not self._exchange.stopping.is_set()):
            eager = await reserve_slots(slots, 1) == 1
        fold = None
        if eager:  # the workflow task this completion schedules may run here at once
            assert isinstance(outcome, CompleteActivityTaskRequest)
            outcome = msgspec.structs.replace(outcome, eager_task_queue=self._task_queue,
                                              sticky_queue=self._exchange.sticky_queue)
            # ... or even now, riding on this completion (_folded_task.py).
            fold = None if self._folding is None else await self._folding.fold(task, outcome)
            if fold is not None:
                outcome = msgspec.structs.replace(outcome, workflow_task_completion=fold.body)
        try:
            answer = await self._exchange.post_to(address, _PATHS[type(outcome)], outcome,
                                                  trace_headers(traceparent))
        except BaseException:
            if eager:
                assert slots is not None
                slots.release()
            if fold is not None:
                assert self._folding is not None
                self._folding.abandon(fold)
            raise
        if fold is not None:
            assert self._folding is not None and slots is not None
            if await self._folding.settle(fold, answer.address or address, answer.body):
                slots.release()  # the task ran here already: no workflow task to start
                return
        workflow_task = eager_workflow_task(answer.body)
        if eager and workflow_task is not None:
            self._start_workflow_task(answer.address or address, workflow_task)
        elif eager:
            assert slots is not None
            slots.release()


def _interrupt(attempt: asyncio.Task[None], is_async: bool) -> None:
    if is_async:
        attempt.cancel()
    # A sync activity cannot be interrupted: it sees `activity.is_cancelled()` instead.
