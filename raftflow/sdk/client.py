"""The client: start workflows, wait for results, signal, query, cancel, terminate, list.

    client = await Client.connect(["http://127.0.0.1:8080", "http://127.0.0.1:8081"])
    handle = await client.start_workflow(Order.run, "o-1", id="order-1", task_queue="orders")
    print(await handle.result())

Given several node addresses the client keeps working while one node is down: every call
that is safe to repeat goes to the next node on connection errors and 503/504, with the same
`request_id` (docs/api.md, DESIGN §4 I5). Writes carry a request id chosen here, once per call.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import msgspec

from raftflow.protocol.commands import IdReusePolicy
from raftflow.protocol.http_bodies import SignalWithStartWorkflowRequest, StartWorkflowRequest
from raftflow.sdk import _http, errors
from raftflow.sdk import _schedule_handle as _schedules
from raftflow.sdk._cluster_connection import ClusterConnection
from raftflow.sdk._interceptors import Interceptors, trace_headers
from raftflow.sdk._replay.commands import arguments, payload
from raftflow.sdk._replay.definition import signal_name_of, workflow_type_of
from raftflow.sdk._schedule_handle import ScheduleHandle
from raftflow.sdk._search_attribute_values import json_attributes
from raftflow.sdk._updates import (
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from raftflow.sdk._wire_answers import decode_start
from raftflow.sdk._wire_payloads import PayloadShape, WirePayloads
from raftflow.sdk._wire_tasks import eager_workflow_task
from raftflow.sdk._workflow_execution import (
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHistory,
)
from raftflow.sdk._workflow_handle import WorkflowHandle
from raftflow.sdk._workflow_listing import PAGE_SIZE_DEFAULT, WorkflowListing, count_workflows
from raftflow.sdk.converter import PayloadCodec
from raftflow.sdk.interceptor import Interceptor, StartWorkflowInput
from raftflow.sdk.retry import RetryPolicy, duration_ms
from raftflow.sdk.schedules import Schedule, ScheduleBackfill, ScheduleListDescription
from raftflow.sdk.tls import TLSConfig, ssl_context

__all__ = ["Client", "IdReusePolicy", "WorkflowExecution", "WorkflowExecutionStatus",
           "WorkflowHandle", "WorkflowHistory", "WorkflowListing", "WorkflowUpdateFailedError",
           "WorkflowUpdateHandle", "WorkflowUpdateStage"]

CONNECT_DEADLINE_S = 5.0  # connect() tries every node for this long before it gives up
LIST_LIMIT_MAX = 1_000  # page_size of list_workflows


def _timeout_ms(value: timedelta | float | None) -> int | None:
    return None if value is None else duration_ms(value)


class Client:
    """A connection to a raftflow cluster for one namespace. Use `await Client.connect(...)`."""

    def __init__(self, transport: _http.Transport, namespace: str, *,
                 payload_codec: PayloadCodec | None = None,
                 interceptors: Sequence[Interceptor] = ()) -> None:
        self._connection = ClusterConnection(transport=transport, namespace=namespace,
                                             payloads=WirePayloads(payload_codec),
                                             interceptors=Interceptors(interceptors))

    @staticmethod
    async def connect(address: str | Sequence[str], *, namespace: str = "default",
                      api_key: str | None = None,
                      tls: bool | TLSConfig | ssl.SSLContext = False,
                      payload_codec: PayloadCodec | None = None,
                      interceptors: Sequence[Interceptor] = ()) -> Client:
        """Connect to the cluster; raises (RPCError, aiohttp.ClientError or TimeoutError) if no
        node answers /healthz within CONNECT_DEADLINE_S.

        Pass several addresses to survive the loss of a node. `api_key` (an API key or a JWT)
        is sent as a bearer token on every call, the workers' included: with auth on, a call
        without the role it needs raises `RPCError` with status 401 or 403. `tls`: True for
        HTTPS verified by the system's CAs, a `TLSConfig` naming the nodes' CA (and a client
        certificate for mutual TLS), or an `ssl.SSLContext`.

        `payload_codec` (`raftflow.sdk.converter.PayloadCodec`, e.g. an encrypting one) encodes
        every payload this client and its workers send (inputs, results, signal and query
        arguments, heartbeat and failure details) and decodes every encoded one they receive,
        so the server stores only what the codec produced. Without one an encoded payload
        received raises `PayloadCodecError`. Ids, types, task queues, search attributes and
        failure messages stay plain (docs/security.md).

        `interceptors` (`raftflow.sdk.interceptor.Interceptor`, e.g.
        `raftflow.sdk.contrib.opentelemetry.TracingInterceptor()`) wrap this client's starts and
        the tasks of every Worker built on it, as temporalio's client interceptors do.
        """
        addresses = [address] if isinstance(address, str) else list(address)
        transport = _http.Transport(
            addresses, api_key=api_key, ssl_context=ssl_context(tls),
            server_hostname=tls.domain if isinstance(tls, TLSConfig) else None)
        try:
            await transport.call("GET", "/healthz", deadline_s=CONNECT_DEADLINE_S)
        except BaseException:
            await transport.close()
            raise
        return Client(transport, namespace, payload_codec=payload_codec,
                      interceptors=interceptors)

    @property
    def namespace(self) -> str:
        return self._connection.namespace

    @property
    def payload_codec(self) -> PayloadCodec | None:
        """The codec this client and its workers put every payload through (None: none)."""
        return self._connection.payloads.codec

    @property
    def addresses(self) -> tuple[str, ...]:
        """The node addresses this client was given (normalized)."""
        return self._connection.transport.addresses

    @property
    def connection(self) -> ClusterConnection:
        """For the SDK's `Worker`, not a user API: the transport, namespace and local-worker
        registry this client shares with its handles and workers."""
        return self._connection

    @property
    def transport(self) -> _http.Transport:
        """The HTTP transport, for harnesses (`raftflow bench`, chaos) that read its counters
        or send raw API calls; an SDK user needs only the methods below."""
        return self._connection.transport

    async def close(self) -> None:
        await self._connection.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start_workflow(self, workflow: Callable[..., Any] | type | str,
                             *positional: Any, args: Sequence[Any] = (),
                             id: str, task_queue: str, request_id: str | None = None,
                             id_reuse_policy: IdReusePolicy | str | None = None,
                             execution_timeout: timedelta | float | None = None,
                             run_timeout: timedelta | float | None = None,
                             task_timeout: timedelta | float | None = None,
                             request_eager_start: bool = False,
                             search_attributes: Mapping[str, object] | None = None,
                             start_signal: Callable[..., Any] | str | None = None,
                             start_signal_args: Sequence[Any] = (),
                             retry_policy: RetryPolicy | None = None,
                             ) -> WorkflowHandle:
        """Start a run of `workflow` (its `@workflow.run` method, class, or type name) with
        its arguments given positionally or as `args=[...]` (temporalio's two forms).

        Idempotent: retried with the same `request_id` (one is chosen if not given), the call
        returns the first run. Raises `WorkflowAlreadyStartedError` if a run with this id is
        open (or `id_reuse_policy` refuses a new one). `id_reuse_policy` is an `IdReusePolicy`
        or its value (`"reject_duplicate"`); any other string raises ValueError here.

        `request_eager_start` (as in Temporal): if a `Worker` of `task_queue` runs on this
        client and has a free slot, the server starts the first workflow task for it in the
        same commit as the start, saving a poll and a commit; otherwise it is ignored.

        `search_attributes` sets custom search attributes the namespace registered, by name:
        `str`, `int`, `float`, `bool` or a timezone-aware `datetime` (sent as RFC 3339, UTC,
        milliseconds); another type raises TypeError here, a name or type the namespace does
        not have is an `RPCError` 400 naming `search_attributes.<name>`.

        `start_signal` (signal-with-start, as in Temporal): send this signal with
        `start_signal_args` in the same atomic call; if a run of `id` is open it is signalled
        instead of refused (unless `id_reuse_policy` is terminate_if_running), and the handle is
        on that run. Not with `request_eager_start` (ValueError).

        `retry_policy` (Temporal's workflow retry): a run that fails (the workflow raised) or
        reaches `run_timeout` is started again after the policy's back-off, with the same
        input, as a new run of the same id (`workflow.info().attempt` counts); a non-retryable
        failure, the attempts used up or `execution_timeout` end the chain. `result()` follows
        the retries to the last run.
        """
        # Everything that can refuse the call (input not JSON, a codec that fails, an unknown
        # policy, a duration that is not positive) is done before a worker slot is reserved.
        workflow_type = workflow_type_of(workflow)
        what = f"input of workflow {workflow_type}"
        wire_input = await self._connection.payloads.encode(
            payload(arguments(positional, args), what), PayloadShape.ARGS, what)
        body = StartWorkflowRequest(
            workflow_id=id, workflow_type=workflow_type, task_queue=task_queue,
            input=wire_input,
            request_id=request_id or uuid.uuid4().hex,
            id_reuse_policy=None if id_reuse_policy is None else IdReusePolicy(id_reuse_policy),
            execution_timeout_ms=_timeout_ms(execution_timeout),
            run_timeout_ms=_timeout_ms(run_timeout), task_timeout_ms=_timeout_ms(task_timeout),
            search_attributes=None if not search_attributes else json_attributes(
                search_attributes),
            retry_policy=None if retry_policy is None else retry_policy.to_protocol())
        if start_signal is not None:
            if request_eager_start:
                raise ValueError("request_eager_start cannot be used with start_signal")
            return await self._signal_with_start(body, start_signal, start_signal_args)
        path = self._connection.workflows_path()
        workers = self._connection.local_workers
        worker = workers.for_task_queue(task_queue) if request_eager_start else None
        if worker is not None and await worker.reserve_workflow_slot():
            body = msgspec.structs.replace(body, eager_task_queue=task_queue,
                                           eager_identity=worker.identity)
        else:
            worker = None
        try:
            answer = await self._start_call(path, body, body.workflow_id)
        except errors.RPCError as error:
            if worker is not None:
                worker.release_workflow_slot()
            if error.code == "workflow_already_started":
                raise errors.WorkflowAlreadyStartedError(id, error.message) from error
            raise
        except BaseException:
            if worker is not None:
                worker.release_workflow_slot()
            raise
        if worker is not None:  # the task, if started for us, runs in the reserved slot
            worker.accept_workflow_task(answer.address, eager_workflow_task(answer.body))
        started = decode_start(answer, f"POST {path}")
        return WorkflowHandle(self._connection, id, run_id=None, result_run_id=started.run_id,
                              first_execution_run_id=started.run_id)

    async def _signal_with_start(self, start: StartWorkflowRequest,
                                 signal: Callable[..., Any] | str,
                                 args: Sequence[Any]) -> WorkflowHandle:
        name = signal_name_of(signal)
        what = f"input of signal {name}"
        body = SignalWithStartWorkflowRequest(
            signal_name=name, workflow_type=start.workflow_type, task_queue=start.task_queue,
            signal_input=await self._connection.payloads.encode(
                payload(list(args), what), PayloadShape.ARGS, what),
            input=start.input, request_id=start.request_id,
            id_reuse_policy=start.id_reuse_policy,
            execution_timeout_ms=start.execution_timeout_ms,
            run_timeout_ms=start.run_timeout_ms, task_timeout_ms=start.task_timeout_ms,
            search_attributes=start.search_attributes, retry_policy=start.retry_policy)
        path = self._connection.workflow_path(start.workflow_id, "/signal-with-start")
        try:
            answer = await self._start_call(path, body, start.workflow_id)
        except errors.RPCError as error:
            if error.code == "workflow_already_started":
                raise errors.WorkflowAlreadyStartedError(start.workflow_id,
                                                         error.message) from error
            raise
        started = decode_start(answer, f"POST {path}")
        # 200: an open run was signalled, maybe a later run of a continue-as-new chain.
        return WorkflowHandle(self._connection, start.workflow_id, run_id=None,
                              result_run_id=started.run_id,
                              first_execution_run_id=(started.run_id if answer.status == 201
                                                      else None))

    async def _start_call(self, path: str,
                          body: StartWorkflowRequest | SignalWithStartWorkflowRequest,
                          workflow_id: str) -> _http.Answer:
        """POST a start; inside the interceptors' `start_workflow`, whose traceparent goes
        with it as the W3C header (the server records it in WorkflowExecutionStarted)."""
        transport = self._connection.transport
        interceptors = self._connection.interceptors
        if not interceptors:
            return await transport.call("POST", path, body=body,
                                        workflow=(self.namespace, workflow_id))
        with interceptors.start_workflow(StartWorkflowInput(
                namespace=self.namespace, workflow_id=workflow_id,
                workflow_type=body.workflow_type, task_queue=body.task_queue)) as traceparent:
            return await transport.call("POST", path, body=body,
                                        headers=trace_headers(traceparent),
                                        workflow=(self.namespace, workflow_id))

    async def execute_workflow(self, workflow: Callable[..., Any] | type | str,
                               *positional: Any, args: Sequence[Any] = (), id: str, task_queue: str, request_id: str | None = None,
                               id_reuse_policy: IdReusePolicy | str | None = None,
                               execution_timeout: timedelta | float | None = None,
                               run_timeout: timedelta | float | None = None,
                               task_timeout: timedelta | float | None = None,
                               request_eager_start: bool = False,
                               search_attributes: Mapping[str, object] | None = None,
                               retry_policy: RetryPolicy | None = None) -> Any:
        """`start_workflow` then `result()`."""
        handle = await self.start_workflow(workflow, *positional, args=args, id=id,
                                           task_queue=task_queue,
                                           request_id=request_id,
                                           id_reuse_policy=id_reuse_policy,
                                           execution_timeout=execution_timeout,
                                           run_timeout=run_timeout, task_timeout=task_timeout,
                                           request_eager_start=request_eager_start,
                                           search_attributes=search_attributes,
                                           retry_policy=retry_policy)
        return await handle.result()

    async def create_schedule(self, id: str, schedule: Schedule, *,
                              trigger_immediately: bool = False,
                              backfill: Sequence[ScheduleBackfill] = (),
                              request_id: str | None = None) -> ScheduleHandle:
        """Create the schedule `id` (temporalio's signature); raises
        `ScheduleAlreadyRunningError` if the namespace has one of that id, ValueError naming
        the field for a schedule the server would refuse (a bad cron expression or zone).
        `trigger_immediately` takes one action at once; `backfill` ranges are taken now."""
        return await _schedules.create_schedule(
            self._connection, id, schedule, trigger_immediately=trigger_immediately,
            backfill=backfill, request_id=request_id)

    def get_schedule_handle(self, id: str) -> ScheduleHandle:
        return ScheduleHandle(self._connection, id)

    async def list_schedules(self) -> AsyncIterator[ScheduleListDescription]:
        """Every schedule of the namespace, by id: `async for s in await
        client.list_schedules()`, as in temporalio."""
        return _schedules.list_schedules(self._connection)

    def get_workflow_handle(self, workflow_id: str, run_id: str | None = None,
                            ) -> WorkflowHandle:
        """A handle on an existing workflow: its latest run, or `run_id` if given."""
        return WorkflowHandle(self._connection, workflow_id, run_id=run_id, result_run_id=run_id,
                              first_execution_run_id=None)

    def list_workflows(self, query: str = "", *,
                       page_size: int = PAGE_SIZE_DEFAULT) -> WorkflowListing:
        """Every run of the namespace that the visibility `query` selects (Temporal's query
        language: `CustomerId = 'c1' AND ExecutionStatus = 'Running' ORDER BY StartTime`;
        empty: all runs), newest start first unless it says otherwise, from every shard.

        `async for execution in client.list_workflows(q)` follows the pages (`page_size` runs
        each) to the end; `await client.list_workflows(q)` returns them all as a list. A bad
        query is an `RPCError` 400 naming the position and the problem.
        """
        return WorkflowListing(self._connection, query, page_size)

    async def count_workflows(self, query: str = "") -> int:
        """How many runs of the namespace the visibility `query` selects (empty: all)."""
        return await count_workflows(self._connection, query)
