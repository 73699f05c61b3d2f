"""What the worker needs to run one activity attempt: its info, its context, its heartbeats."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec

from raftflow.protocol.http_answers import ActivityTask, HeartbeatAnswer
from raftflow.protocol.http_bodies import HeartbeatRequest
from raftflow.sdk import _http, errors
from raftflow.sdk._activity_context import ActivityContext, ActivityInfo, bind
from raftflow.sdk._replay.commands import payload
from raftflow.sdk._wire_answers import decode_answer
from raftflow.sdk._wire_payloads import NO_CODEC, PayloadShape, WirePayloads

if TYPE_CHECKING:
    from raftflow.sdk.activity import ActivityDefinition

log = logging.getLogger(__name__)

HEARTBEAT_THROTTLE_S_MAX = 1.0  # send heartbeats at most this often (sooner learns cancel)
HEARTBEAT_TIMEOUT_SHARE = 0.8  # ... and at 80 % of the heartbeat timeout if that is shorter
HEARTBEAT_PATH = "/api/v1/tasks/activity/heartbeat"

Post = Callable[[str, msgspec.Struct], Awaitable[_http.Answer]]  # (path, body) to any node


class Heartbeater:
    """Sends an activity's latest heartbeat details, throttled, from a background task.

    `record` may be called from the activity's thread; it never blocks.
    """

    def __init__(self, post: Post, task: ActivityTask, on_cancel: Callable[[], None], *,
                 payloads: WirePayloads = NO_CODEC) -> None:
        self._post = post
        self._payloads = payloads
        self._token = task.task_token
        timeout_ms = task.heartbeat_timeout_ms
        self._throttle_s = HEARTBEAT_THROTTLE_S_MAX
        if timeout_ms is not None and timeout_ms > 0:
            self._throttle_s = min(self._throttle_s, timeout_ms / 1000 * HEARTBEAT_TIMEOUT_SHARE)
        self._loop = asyncio.get_running_loop()
        self._pending: list[object] | None = None
        self._wake = asyncio.Event()
        self._on_cancel = on_cancel
        self.context: ActivityContext | None = None
        self.active = True  # False once the activity returned: nothing left to cancel

    def record(self, details: list[object]) -> None:
        self._loop.call_soon_threadsafe(self._set, details)

    def _set(self, details: list[object]) -> None:
        self._pending = details
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self.flush()
            await asyncio.sleep(self._throttle_s)

    async def flush(self) -> None:
        self._wake.clear()
        details, self._pending = self._pending, None
        if details is None:
            return
        what = "heartbeat details"
        try:
            body = HeartbeatRequest(task_token=self._token, details=await self._payloads.encode(
                payload(details, what), PayloadShape.ARGS, what))
        except (TypeError, errors.PayloadCodecError) as error:
            # The activity's bug, or the codec's: it must not stop the attempt's answer.
            log.warning("heartbeat not sent: %s", error)
            return
        try:
            answer = await self._post(HEARTBEAT_PATH, body)
            heard = decode_answer(answer, HeartbeatAnswer, f"POST {HEARTBEAT_PATH}")
        except errors.RPCError as error:  # a MalformedAnswerError too: logged, attempt goes on
            # The attempt is over on the server, or its token is no longer good there (the
            # cluster secret changed): no answer of this worker can count, stop the work.
            if error.code in ("stale_task", "not_found", "workflow_not_running",
                              "invalid_task_token"):
                self._cancel()
                return
            log.warning("heartbeat refused: %s", error)
            return
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("heartbeat not delivered: %r", error)
            return
        if heard.cancel_requested:
            self._cancel()

    def _cancel(self) -> None:
        if self.context is not None:
            self.context.cancel_requested = True
        if self.active:
            self._on_cancel()


def call_bound(fn: Callable[..., Any], context: ActivityContext, args: list[Any]) -> Any:
    with bind(context):
        return fn(*args)


def _millis(value: int | None) -> timedelta | None:
    return timedelta(milliseconds=value) if value is not None and value > 0 else None


def activity_info(task: ActivityTask, namespace: str, task_queue: str) -> ActivityInfo:
    """The info an attempt's code sees (`activity.info()`); `task` was decoded at the edge,
    times checked there (`_wire_tasks.decode_activity_task`)."""
    details = task.heartbeat_details
    return ActivityInfo(
        activity_id=task.activity_id, activity_type=task.activity_type,
        attempt=task.attempt, namespace=namespace,
        workflow_id=task.workflow_id, run_id=task.run_id,
        workflow_type=task.workflow_type, task_queue=task.task_queue or task_queue,
        task_token=task.task_token,
        heartbeat_details=details if isinstance(details, list) else
        ([] if details is None else [details]),
        scheduled_time=datetime.fromisoformat(task.scheduled_time),
        started_time=datetime.fromisoformat(task.started_time),
        start_to_close_timeout=_millis(task.start_to_close_timeout_ms),
        heartbeat_timeout=_millis(task.heartbeat_timeout_ms))


async def invoke(definition: ActivityDefinition, context: ActivityContext, args: list[Any],
                 pool: Executor) -> Any:
    """Run one attempt in its activity context: `async def` on the loop, `def` in the pool."""
    if definition.is_async:
        with bind(context):
            return await definition.fn(*args)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, contextvars.copy_context().run,
                                      call_bound, definition.fn, context, args)
