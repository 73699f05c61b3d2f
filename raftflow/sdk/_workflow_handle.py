"""A handle on one workflow: wait for its result, signal, query, describe, cancel, terminate,
reset.

Public as `raftflow.sdk.WorkflowHandle` / `raftflow.sdk.client.WorkflowHandle`; users get one
from `Client.start_workflow` or `Client.get_workflow_handle`. A handle holds only the client's
`ClusterConnection` and ids, so it is cheap and any number may exist.

Writes (signal, cancel, terminate, reset) carry a request id chosen once per call: the transport's
retries on another node resend the same body, so a write whose answer was lost is applied
once (DESIGN §4 I5).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import msgspec

from raftflow.protocol.events import (
    HistoryEvent,
    WorkflowExecutionContinuedAsNewEventAttributes,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
)
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.http_answers import HistoryPage, QueryWorkflowAnswer, WorkflowDescription
from raftflow.protocol.http_bodies import (
    CancelWorkflowRequest,
    QueryWorkflowRequest,
    ResetWorkflowRequest,
    SignalWorkflowRequest,
    TerminateWorkflowRequest,
)
from raftflow.protocol.reset_commands import ResetType
from raftflow.sdk import _http, _updates, errors
from raftflow.sdk._cluster_connection import ClusterConnection
from raftflow.sdk._replay.commands import arguments, payload
from raftflow.sdk._replay.definition import query_name_of, signal_name_of
from raftflow.sdk._updates import WorkflowUpdateHandle, WorkflowUpdateStage
from raftflow.sdk._wire_answers import (
    decode_answer,
    decode_execution,
    decode_start,
    page_events,
)
from raftflow.sdk._wire_payloads import PayloadShape
from raftflow.sdk._workflow_execution import (
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHistory,
)
from raftflow.sdk.retry import duration_ms

RESULT_WAIT_MS = 30_000  # one result long poll; the server allows up to 60 s
HISTORY_PAGE_SIZE = 1_000  # events per history page (the server's default page)
CONTINUE_AS_NEW_FOLLOW_MAX = 10_000  # runs one result() follows before it gives up
# Closes that may name the next attempt of a workflow retry policy.
_RETRIED_STATUSES = (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TIMED_OUT)
QUERY_WAIT_MS_DEFAULT = 10_000  # the server's query time-out when the caller gives none
_ARG_UNSET: Any = object()  # `execute_update(update)` passes no argument; None is one


class WorkflowHandle:
    """A workflow id (and optionally one run) to act on.

    `run_id` is the run that signal/query/cancel/terminate/describe target (None: the latest
    run); `result_run_id` is where `result()` starts following the chain of runs.
    """

    def __init__(self, connection: ClusterConnection, workflow_id: str, *, run_id: str | None,
                 result_run_id: str | None, first_execution_run_id: str | None) -> None:
        self._connection = connection
        self._transport = connection.transport
        self._payloads = connection.payloads
        self.id = workflow_id
        self.run_id = run_id
        self.result_run_id = result_run_id
        self.first_execution_run_id = first_execution_run_id
        # Names the workflow to the transport: its calls go to its shard's leader first.
        self._key = (connection.namespace, workflow_id)

    def __repr__(self) -> str:
        return f"WorkflowHandle(id={self.id!r}, run_id={self.run_id!r})"

    def _path(self, suffix: str = "") -> str:
        return self._connection.workflow_path(self.id, suffix)

    def _run_params(self, run_id: str | None) -> dict[str, str]:
        return {} if run_id is None else {"run_id": run_id}

    async def result(self, *, follow_runs: bool = True) -> Any:
        """Wait for the run to close and return its result (a JSON value).

        Waits on the server (long poll, no busy polling) and follows continue-as-new and
        retries (a failed or timed-out run that names its next attempt) to the last run. Raises `WorkflowFailureError` if it failed, timed out, was terminated or
        canceled; its `cause` is the decoded failure. With a payload codec the result and the
        failure's details are decoded (`PayloadCodecError` if they cannot be).
        """
        run_id = self.result_run_id
        for _ in range(CONTINUE_AS_NEW_FOLLOW_MAX):
            closed = await self._wait_closed(run_id)
            status = closed.status
            if status is WorkflowExecutionStatus.COMPLETED:
                if closed.result is msgspec.UNSET:
                    return None
                return payload_json(await self._payloads.decode(
                    closed.result, f"result of workflow {self.id!r}"))
            if status is WorkflowExecutionStatus.CONTINUED_AS_NEW and follow_runs:
                close = (await self._last_event(closed)).attributes
                if not isinstance(close, WorkflowExecutionContinuedAsNewEventAttributes):
                    raise errors.MalformedHistoryError(
                        f"run {closed.run_id} continued as new but its last event is "
                        f"{close.event_type.value}")
                run_id = close.new_execution_run_id
                continue
            if status in _RETRIED_STATUSES and follow_runs:
                close = (await self._last_event(closed)).attributes
                if (isinstance(close, (WorkflowExecutionFailedEventAttributes,
                                       WorkflowExecutionTimedOutEventAttributes))
                        and close.new_execution_run_id):
                    run_id = close.new_execution_run_id  # the retry policy's next attempt
                    continue
            raise await self._failure(closed)
        raise RuntimeError(f"workflow {self.id!r} continued as new more than "
                           f"{CONTINUE_AS_NEW_FOLLOW_MAX} times")

    async def _wait_closed(self, run_id: str | None) -> WorkflowDescription:
        params = {**self._run_params(run_id), "wait_ms": str(RESULT_WAIT_MS)}
        path = self._path("/result")
        while True:
            answer = await self._transport.call(
                "GET", path, params=params,
                timeout_s=RESULT_WAIT_MS / 1000 + _http.REQUEST_TIMEOUT_S, workflow=self._key)
            if answer.status == 200:
                return decode_answer(answer, WorkflowDescription, f"GET {path}")
            if answer.status != 204:  # 204: still running, wait again
                raise errors.MalformedAnswerError(
                    f"GET {path}", f"status {answer.status}, expected 200 or 204",
                    answer.status)

    async def _last_event(self, described: WorkflowDescription) -> HistoryEvent:
        length, run_id = described.history_length, described.run_id
        events, _ = await self._history_page(run_id, str(length), page_size=1)
        if not events or events[-1].event_id != length:
            raise errors.MalformedHistoryError(
                f"history of run {run_id}: asked for event {length}, got "
                f"{[e.event_id for e in events]}")
        return events[-1]

    async def _failure(self, closed: WorkflowDescription) -> errors.WorkflowFailureError:
        status = closed.status
        cause: BaseException
        if status is WorkflowExecutionStatus.FAILED:
            cause = errors.from_failure(None if closed.failure is msgspec.UNSET else (
                await self._payloads.decode_failure(
                    closed.failure, f"failure details of workflow {self.id!r}")))
        elif status is WorkflowExecutionStatus.TIMED_OUT:
            attributes = (await self._last_event(closed)).attributes
            timeout_type = (attributes.timeout_type.value if isinstance(
                attributes, WorkflowExecutionTimedOutEventAttributes) else "")
            cause = errors.TimeoutError("workflow execution timed out",
                                        timeout_type=timeout_type)
        elif status is WorkflowExecutionStatus.CANCELED:
            cause = asyncio.CancelledError("workflow execution canceled")
        else:
            reason = "" if closed.reason is msgspec.UNSET else closed.reason
            cause = errors.ApplicationError(reason or status.value.lower(),
                                            type=status.value.capitalize(), non_retryable=True)
        return errors.WorkflowFailureError(
            f"workflow {self.id!r} {status.value.lower()}", cause=cause, status=status.value,
            workflow_id=self.id, run_id=closed.run_id)

    async def signal(self, signal: Callable[..., Any] | str, *positional: Any,
                     args: Sequence[Any] = (), request_id: str | None = None) -> None:
        """Send a signal; delivered exactly once, in the order the server accepted signals.

        Retries (connection loss, 503/504) reuse this call's request id, so a signal that was
        accepted but whose answer was lost is not delivered twice. A caller that retries after
        this call raised passes the same `request_id` (one is chosen if not given).
        """
        name = signal_name_of(signal)
        what = f"input of signal {name}"
        body = SignalWorkflowRequest(
            signal_name=name, input=await self._payloads.encode(
                payload(arguments(positional, args), what), PayloadShape.ARGS, what),
            request_id=request_id or uuid.uuid4().hex, run_id=self.run_id)
        await self._transport.call("POST", self._path("/signal"), body=body, workflow=self._key)

    async def query(self, query: Callable[..., Any] | str, *positional: Any,
                    args: Sequence[Any] = (), timeout: timedelta | float | None = None) -> Any:
        """Ask a worker to run a query handler on the workflow's current state.

        Raises `QueryFailedError` if the handler raised, the name is unknown, or no worker of
        the workflow's task queue answered in time.
        """
        timeout_ms = None if timeout is None else duration_ms(timeout)
        name = query_name_of(query)
        body = QueryWorkflowRequest(
            query_type=name, args=await self._payloads.encode_args(
                arguments(positional, args), f"args of query {name}"),
            run_id=self.run_id, timeout_ms=timeout_ms)
        wait_s = (timeout_ms or QUERY_WAIT_MS_DEFAULT) / 1000 + _http.REQUEST_TIMEOUT_S
        path = self._path("/query")
        try:
            answer = await self._transport.call(
                "POST", path, body=body, timeout_s=wait_s,
                retry_statuses=_http.UNAVAILABLE_STATUSES, workflow=self._key)
        except errors.RPCError as error:
            if error.code in ("query_failed", "timeout"):
                raise errors.QueryFailedError(error.message) from error
            raise
        result = decode_answer(answer, QueryWorkflowAnswer, f"POST {path}").result
        return await self._payloads.decode_json(result, f"result of query {name}")

    async def execute_update(self, update: Callable[..., Any] | str, arg: Any = _ARG_UNSET, *,
                             args: Sequence[Any] = (), id: str | None = None) -> Any:  # noqa: A002
        """Run a `@workflow.update` handler in the workflow and return its result (Temporal's
        call). Raises `WorkflowUpdateFailedError` if the validator rejected it or the handler
        failed. `id` (the update id, one chosen if not given) deduplicates: a second call
        with the same id gets the first one's outcome."""
        handle = await self.start_update(update, arg, args=args, id=id,
                                         wait_for_stage=WorkflowUpdateStage.COMPLETED)
        return await handle.result()

    async def start_update(self, update: Callable[..., Any] | str, arg: Any = _ARG_UNSET, *,
                           args: Sequence[Any] = (),
                           wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
                           id: str | None = None) -> WorkflowUpdateHandle:  # noqa: A002
        """Send an update and return once it reached `wait_for_stage` (ACCEPTED: the
        validator passed and the handler runs; COMPLETED) with its handle; `result()` waits for
        the outcome. A rejected update is COMPLETED at once: `result()` raises."""
        values = list(args) if arg is _ARG_UNSET else [arg, *args]
        return await _updates.start_update(self._connection, self.id, self.run_id, update,
                                           values, wait_for_stage=wait_for_stage, update_id=id)

    def get_update_handle(self, id: str, *,  # noqa: A002 - Temporal's argument name
                          workflow_run_id: str | None = None) -> WorkflowUpdateHandle:
        """A handle on an update already sent (by its update id)."""
        return WorkflowUpdateHandle(self._connection, self.id, id,
                                    workflow_run_id=workflow_run_id or self.run_id)

    async def describe(self) -> WorkflowExecution:
        """The run's description. Raises `MalformedAnswerError` if the answer is not one.
        Its payloads (a closed run's result, failure details) are as the server stores them,
        envelopes when a payload codec encoded them: `result()` decodes."""
        path = self._path()
        answer = await self._transport.call("GET", path, params=self._run_params(self.run_id),
                                            workflow=self._key)
        return decode_execution(answer, f"GET {path}")

    async def cancel(self, reason: str = "", *, request_id: str | None = None) -> None:
        """Ask the workflow to cancel; its code decides how (CancelledError in the workflow).

        Idempotent like `signal`: retries reuse this call's request id, and a caller that
        retries after this call raised passes the same `request_id` (one is chosen if not
        given). A repeated id gets the first answer, even once the run has closed, and records
        no second cancel request.
        """
        await self._transport.call("POST", self._path("/cancel"), body=CancelWorkflowRequest(
            reason=reason, request_id=request_id or uuid.uuid4().hex, run_id=self.run_id),
            workflow=self._key)

    async def terminate(self, reason: str = "", *, request_id: str | None = None) -> None:
        """End the run at once; no workflow code runs.

        Idempotent like `signal`: a repeated `request_id` gets the first answer (success)
        although the run is closed by then; one is chosen per call if not given.
        """
        await self._transport.call("POST", self._path("/terminate"), body=TerminateWorkflowRequest(
            reason=reason, request_id=request_id or uuid.uuid4().hex, run_id=self.run_id),
            workflow=self._key)

    async def reset(self, *, event_id: int | None = None,
                    reset_type: ResetType | str | None = None, reason: str = "",
                    request_id: str | None = None) -> str:
        """Reset the workflow to one of this run's workflow tasks (the latest run's when the
        handle names none) and return the new run's id (Temporal's reset).

        Give exactly one of `event_id` (a WorkflowTaskCompleted event's id, or the task's
        Started, Failed or TimedOut event) and `reset_type` (`"FirstWorkflowTask"` or
        `"LastWorkflowTask"`: the first or last completed task). The new run holds the history
        up to that task and re-executes the workflow from there; signals received after it are
        delivered again; the open run, if any, is terminated. Follow the new run with
        `client.get_workflow_handle(handle.id, run_id=new_run_id)`. Idempotent like `signal`:
        a repeated `request_id` gets the first answer, the same new run.
        """
        if (event_id is None) == (reset_type is None):
            raise ValueError("give exactly one of event_id and reset_type")
        path = self._path("/reset")
        answer = await self._transport.call("POST", path, body=ResetWorkflowRequest(
            event_id=event_id, reset_type=None if reset_type is None else ResetType(reset_type),
            reason=reason, request_id=request_id or uuid.uuid4().hex, run_id=self.run_id),
            workflow=self._key)
        return decode_start(answer, f"POST {path}").run_id

    async def history(self) -> WorkflowHistory:
        """Every event of the run, all pages, as typed protocol events. Raises
        `MalformedAnswerError` if a page is not a history page (an unknown event type
        included), `MalformedHistoryError` if an event's attributes are not its type's.
        Payloads are as the server stores them (Temporal's `fetch_history` too): to replay a
        history a codec encoded, `replayer.decode_workflow_history(history, codec)` first."""
        # Pin the run first: pages of "the latest run" could straddle a new run.
        run_id = self.run_id or (await self.describe()).run_id
        events: list[HistoryEvent] = []
        token: str | None = "1"
        while token:
            page, token = await self._history_page(run_id, token, page_size=HISTORY_PAGE_SIZE)
            events.extend(page)
        return WorkflowHistory(workflow_id=self.id, run_id=run_id, events=events)

    async def _history_page(self, run_id: str, token: str, *, page_size: int,
                            ) -> tuple[list[HistoryEvent], str | None]:
        """One `/history` page from event `token` on: its events typed, and the next page's
        token (None at the history's current end)."""
        path = self._path("/history")
        answer = await self._transport.call("GET", path, params={
            "run_id": run_id, "next_page_token": token, "page_size": str(page_size)},
            workflow=self._key)
        page = decode_answer(answer, HistoryPage, f"GET {path}")
        return page_events(page, f"history of run {run_id}"), page.next_page_token
