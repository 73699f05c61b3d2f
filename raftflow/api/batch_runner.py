"""The batch runner: works through the batch jobs of the shards this node leads.

Theory of operation (protocol/batches.py tells the whole story). A ready leader's effects name
its running jobs (`BatchActive`; all of them again when it becomes ready), so the runner holds
only hints and at most one task per job. A task loops: read the job from the replica's state
(its query, operation, rate and cursor), read the next visibility page of the query through this
node's own gateway (which asks every shard), apply the operation to each listed run through the
gateway as any client would, with the job's request id for that run, at most `rps` per second,
then propose `RecordBatchProgress` from the cursor it read. Every step may be repeated: the
operations are idempotent by request id, and a progress naming an old cursor is refused as
stale. So a job survives a crash or a leader change at any point: the next leader resumes at
the last committed page and redoes at most that page, with no operation applied twice.
Losing the shard's leadership stops the job's task; a job stopped or completed in state ends it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from urllib.parse import quote, urlencode

import aiohttp
import msgspec

from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.api.routing import ShardDirectory
from raftflow.protocol.batches import (
    BATCH_PAGE_SIZE,
    BatchOperation,
    BatchOperationType,
    BatchState,
    RecordBatchProgress,
    operation_request_id,
)
from raftflow.protocol.effects import BatchActive, Effect
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.http_answers import WorkflowList
from raftflow.protocol.http_bodies import (
    CancelWorkflowRequest,
    ResetWorkflowRequest,
    SignalWorkflowRequest,
    TerminateWorkflowRequest,
)
from raftflow.protocol.payload import json_enc_hook
from raftflow.protocol.reset_commands import ResetType
from raftflow.protocol.results import Rejected
from raftflow.shards.core.batch_jobs import BatchJob

log = logging.getLogger(__name__)

# Pause before retrying a page or an operation that failed in doubt (no leader, 503, 429...),
# doubling up to the cap.
RETRY_PAUSE_S = 0.2
RETRY_PAUSE_MAX_S = 5.0
CALL_TIMEOUT_S = 10.0
# A workflow's operation is tried this many times on answers that may change (503, 504, 429,
# connection errors) before the job counts it failed and moves on.
OPERATION_ATTEMPTS_MAX = 20
_RETRYABLE = frozenset({429, 503, 504})


class BatchRunner:
    """Per node; every method runs on the node's event loop."""

    def __init__(self, directory: ShardDirectory, session: aiohttp.ClientSession) -> None:
        self._directory = directory
        self._session = session
        self._tasks: dict[tuple[int, str, str], asyncio.Task[None]] = {}

    # -- EffectSink ------------------------------------------------------------------------------

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, BatchActive):
                key = (shard, effect.namespace, effect.job_id)
                if key not in self._tasks:
                    task = asyncio.get_running_loop().create_task(self._run(key))
                    self._tasks[key] = task
                    task.add_done_callback(self._ended)

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        if is_leader:
            return
        for key in [k for k in self._tasks if k[0] == shard]:
            self._tasks.pop(key).cancel()

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("batch job task stopped", exc_info=task.exception())

    # -- running a job ---------------------------------------------------------------------------

    async def _run(self, key: tuple[int, str, str]) -> None:
        try:
            await self._run_job(*key)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    def _job(self, shard: int, namespace: str, job_id: str) -> BatchJob | None:
        actor = self._directory.actor(shard)
        if actor is None or not actor.is_ready_leader():
            return None
        job = actor.state.batches.get((namespace, job_id))
        return job if job is not None and job.state is BatchState.RUNNING else None

    async def _run_job(self, shard: int, namespace: str, job_id: str) -> None:
        pause_s = RETRY_PAUSE_S
        while (job := self._job(shard, namespace, job_id)) is not None:
            cursor = job.cursor
            try:
                page = await self._page(namespace, job.query, cursor)
            except _Refused as refused:
                await self._commit(shard, RecordBatchProgress(
                    now_ms=self._directory.now_ms(), namespace=namespace, job_id=job_id,
                    cursor=cursor, next_cursor=cursor, done=True, succeeded=0, failed=0,
                    errors=(str(refused),)))
                return
            except _InDoubt as doubt:
                log.debug("batch %s: page in doubt (%s)", job_id, doubt)
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, RETRY_PAUSE_MAX_S)
                continue
            pause_s = RETRY_PAUSE_S
            succeeded, failed, errors = 0, 0, []
            interval_s = 1.0 / job.rps
            for workflow in page.workflows:
                if self._job(shard, namespace, job_id) is None:
                    return  # stopped meanwhile, or no longer ours
                started = time.monotonic()
                error = await self._apply(namespace, job_id, job.operation,
                                          workflow.workflow_id, workflow.run_id)
                if error is None:
                    succeeded += 1
                else:
                    failed += 1
                    errors.append(f"{workflow.workflow_id}: {error}")
                await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
            next_cursor = page.next_page_token or ""
            if not await self._commit(shard, RecordBatchProgress(
                    now_ms=self._directory.now_ms(), namespace=namespace, job_id=job_id,
                    cursor=cursor, next_cursor=next_cursor, done=not page.next_page_token,
                    succeeded=succeeded, failed=failed, errors=tuple(errors[-5:]))):
                return

    async def _commit(self, shard: int, progress: RecordBatchProgress) -> bool:
        """Propose the page's progress; False when this node should stop running the job."""
        actor = self._directory.actor(shard)
        if actor is None:
            return False
        try:
            result = await asyncio.wait_for(actor.execute(progress), CALL_TIMEOUT_S)
        except (NotLeaderError, ProposalTimeoutError, TimeoutError):
            return False  # the next leader (maybe this node again) resumes from state
        except RaftflowError as error:  # overloaded: redo the page (idempotent) after a pause
            log.debug("batch %s: progress refused: %s", progress.job_id, error)
            await asyncio.sleep(RETRY_PAUSE_S)
            return True
        return not isinstance(result, Rejected)  # stale: another runner moved it

    async def _call(self, method: str, path: str, body: msgspec.Struct | None = None,
                    ) -> tuple[int, bytes, float]:
        address = self._directory.http_address(self._directory.node_id)
        if address is None:
            raise _InDoubt("no address of this node")
        data = None if body is None else msgspec.json.encode(body, enc_hook=json_enc_hook)
        try:
            async with self._session.request(
                method, address + path, data=data,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
            ) as answer:
                retry_after = float(answer.headers.get("Retry-After", "0") or 0)
                return answer.status, await answer.read(), retry_after
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _InDoubt(repr(error)) from error

    async def _page(self, namespace: str, query: str, cursor: str) -> WorkflowList:
        params = {"query": query, "page_size": str(BATCH_PAGE_SIZE)}
        if cursor:
            params["next_page_token"] = cursor
        status, body, _ = await self._call(
            "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/workflows?"
                   + urlencode(params))
        if status in _RETRYABLE or status >= 500:
            raise _InDoubt(f"list answered {status}: {body[:200]!r}")
        if status != 200:  # the query no longer parses (an attribute removed...): give up
            raise _Refused(f"the query is refused: {status} {body[:200].decode(errors='replace')}")
        return msgspec.json.decode(body, type=WorkflowList)

    async def _apply(self, namespace: str, job_id: str, operation: BatchOperation,
                     workflow_id: str, run_id: str) -> str | None:
        """Apply the operation to one run; None when done, else why it failed for good."""
        action, body = _request(operation, operation_request_id(job_id, workflow_id, run_id),
                                run_id)
        path = (f"/api/v1/namespaces/{quote(namespace, safe='')}/workflows/"
                f"{quote(workflow_id, safe='')}/{action}")
        pause_s = RETRY_PAUSE_S
        for _ in range(OPERATION_ATTEMPTS_MAX):
            try:
                status, answer, retry_after = await self._call("POST", path, body)
            except _InDoubt:
                status, answer, retry_after = 503, b"", 0.0
            if status < 300:
                return None
            if status not in _RETRYABLE:
                return f"{status} {answer[:200].decode(errors='replace')}"
            await asyncio.sleep(max(pause_s, retry_after))
            pause_s = min(pause_s * 2, RETRY_PAUSE_MAX_S)
        return f"no answer after {OPERATION_ATTEMPTS_MAX} attempts"


class _InDoubt(Exception):
    """This attempt settled nothing (no answer, a 503...): try again."""


class _Refused(Exception):
    """The job cannot go on: it ends, with the reason among its errors."""


def _request(operation: BatchOperation, request_id: str, run_id: str,
             ) -> tuple[str, msgspec.Struct]:
    """(route action, the body a client would send) of the operation on one run."""
    match operation.type:
        case BatchOperationType.TERMINATE:
            return "terminate", TerminateWorkflowRequest(
                reason=operation.reason or "batch", request_id=request_id, run_id=run_id)
        case BatchOperationType.CANCEL:
            return "cancel", CancelWorkflowRequest(reason=operation.reason,
                                                   request_id=request_id, run_id=run_id)
        case BatchOperationType.SIGNAL:
            return "signal", SignalWorkflowRequest(
                signal_name=operation.signal_name, input=operation.input,
                request_id=request_id, run_id=run_id)
        case BatchOperationType.RESET:
            return "reset", ResetWorkflowRequest(
                reset_type=ResetType(operation.reset_type), reason=operation.reason,
                request_id=request_id, run_id=run_id)
