"""The client: start workflows, wait for results, signal, query, cancel, terminate, list.

    client = await Client.connect(["http://127.0.0.1:8080", "http://127.0.0.1:8081"])
    handle = await client.start_workflow(Order.run, "o-1", id="order-1", task_queue="orders")
    print(await handle.result())

Given several node addresses the client keeps working while one node is down: every call
that is safe to repeat goes to the next node on connection errors and 503/504, with the same
`request_id` (docs/api.md, DESIGN §4 I5). Writes carry a request id chosen here, once per call.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from raftflow.sdk import _http, errors
from raftflow.sdk._replay.definition import query_name_of, signal_name_of, workflow_type_of

__all__ = ["Client", "WorkflowExecution", "WorkflowExecutionStatus", "WorkflowHandle",
           "WorkflowHistory"]

CONNECT_DEADLINE_S = 5.0  # connect() tries every node for this long before it gives up
RESULT_WAIT_MS = 30_000  # one result long poll; the server allows up to 60 s
HISTORY_PAGE_SIZE = 1_000  # events per history page (the server's default page)
LIST_LIMIT_MAX = 1_000
CONTINUE_AS_NEW_FOLLOW_MAX = 10_000  # runs one result() follows before it gives up


class WorkflowExecutionStatus(enum.Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    TIMED_OUT = "TIMED_OUT"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecution:
    """One run as `describe()` and `list_workflows()` report it (the server's JSON in `raw`)."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    history_length: int
    start_time: datetime | None
    close_time: datetime | None
    raw: dict[str, Any]

    @staticmethod
    def from_json(body: dict[str, Any]) -> WorkflowExecution:
        return WorkflowExecution(
            id=str(body["workflow_id"]), run_id=str(body["run_id"]),
            workflow_type=str(body.get("workflow_type", "")),
            task_queue=str(body.get("task_queue", "")),
            status=WorkflowExecutionStatus(str(body["status"])),
            history_length=int(body.get("history_length") or 0),
            start_time=_time(body.get("start_time")), close_time=_time(body.get("close_time")),
            raw=body)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowHistory:
    """A run's whole history, events in the JSON shape `WorkflowRunner.activate` takes."""

    workflow_id: str
    run_id: str | None
    events: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "events": self.events}


def _seconds_ms(value: timedelta | float | None) -> int | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError(f"timeout must be positive, got {value!r}")
    return max(1, round(seconds * 1000))


class EagerWorker(Protocol):
    """What a client needs of a worker running on it to hand it eagerly started tasks."""

    task_queue: str
    identity: str

    async def reserve_workflow_slot(self) -> bool: ...

    def release_workflow_slot(self) -> None: ...

    def accept_workflow_task(self, address: str, task: object) -> None:
        """Run `task` (a workflow task JSON, or None: release the slot) in the reserved slot."""


class Client:
    """A connection to a raftflow cluster for one namespace. Use `await Client.connect(...)`."""

    def __init__(self, transport: _http.Transport, namespace: str) -> None:
        self._transport = transport
        self.namespace = namespace
        # Workers running on this client, by task queue: the targets of eager starts.
        self._local_workers: dict[str, EagerWorker] = {}

    @staticmethod
    async def connect(address: str | Sequence[str], *, namespace: str = "default") -> Client:
        """Connect to the cluster; raises (RPCError, aiohttp.ClientError or TimeoutError) if no
        node answers /healthz within CONNECT_DEADLINE_S.

        Pass several addresses to survive the loss of a node.
        """
        addresses = [address] if isinstance(address, str) else list(address)
        transport = _http.Transport(addresses)
        try:
            await transport.call("GET", "/healthz", deadline_s=CONNECT_DEADLINE_S)
        except BaseException:
            await transport.close()
            raise
        return Client(transport, namespace)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The node addresses this client was given (normalized)."""
        return self._transport.addresses

    @property
    def transport(self) -> _http.Transport:
        return self._transport

    async def close(self) -> None:
        await self._transport.close()

    def _register_worker(self, worker: EagerWorker) -> None:
        self._local_workers.setdefault(worker.task_queue, worker)

    def _unregister_worker(self, worker: EagerWorker) -> None:
        if self._local_workers.get(worker.task_queue) is worker:
            del self._local_workers[worker.task_queue]

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _path(self, suffix: str = "") -> str:
        return f"/api/v1/namespaces/{quote(self.namespace, safe='')}/workflows{suffix}"

    async def start_workflow(self, workflow: Callable[..., Any] | type | str, *args: Any,
                             id: str, task_queue: str, request_id: str | None = None,
                             id_reuse_policy: str | None = None,
                             execution_timeout: timedelta | float | None = None,
                             run_timeout: timedelta | float | None = None,
                             task_timeout: timedelta | float | None = None,
                             request_eager_start: bool = False) -> WorkflowHandle:
        """Start a run of `workflow` (its `@workflow.run` method, class, or type name).

        Idempotent: retried with the same `request_id` (one is chosen if not given), the call
        returns the first run. Raises `WorkflowAlreadyStartedError` if a run with this id is
        open (or `id_reuse_policy` refuses a new one).

        `request_eager_start` (as in Temporal): if a `Worker` of `task_queue` runs on this
        client and has a free slot, the server starts the first workflow task for it in the
        same commit as the start, saving a poll and a commit; otherwise it is ignored.
        """
        body: dict[str, object] = {
            "workflow_id": id, "workflow_type": workflow_type_of(workflow),
            "task_queue": task_queue, "input": list(args),
            "request_id": request_id or uuid.uuid4().hex}
        for key, value in (("id_reuse_policy", id_reuse_policy),
                           ("execution_timeout_ms", _seconds_ms(execution_timeout)),
                           ("run_timeout_ms", _seconds_ms(run_timeout)),
                           ("task_timeout_ms", _seconds_ms(task_timeout))):
            if value is not None:
                body[key] = value
        worker = self._local_workers.get(task_queue) if request_eager_start else None
        if worker is not None and await worker.reserve_workflow_slot():
            body.update(eager_task_queue=task_queue, eager_identity=worker.identity)
        else:
            worker = None
        try:
            answer = await self._transport.call("POST", self._path(), body=body)
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
            worker.accept_workflow_task(answer.address, answer.body.get("workflow_task"))
        run_id = str(answer.body["run_id"])
        return WorkflowHandle(self, id, run_id=None, result_run_id=run_id,
                              first_execution_run_id=run_id)

    async def execute_workflow(self, workflow: Callable[..., Any] | type | str, *args: Any,
                               id: str, task_queue: str, request_id: str | None = None,
                               id_reuse_policy: str | None = None,
                               execution_timeout: timedelta | float | None = None,
                               request_eager_start: bool = False) -> Any:
        """`start_workflow` then `result()`."""
        handle = await self.start_workflow(workflow, *args, id=id, task_queue=task_queue,
                                           request_id=request_id,
                                           id_reuse_policy=id_reuse_policy,
                                           execution_timeout=execution_timeout,
                                           request_eager_start=request_eager_start)
        return await handle.result()

    def get_workflow_handle(self, workflow_id: str, run_id: str | None = None,
                            ) -> WorkflowHandle:
        """A handle on an existing workflow: its latest run, or `run_id` if given."""
        return WorkflowHandle(self, workflow_id, run_id=run_id, result_run_id=run_id,
                              first_execution_run_id=None)

    async def list_workflows(self, status: WorkflowExecutionStatus | str | None = None,
                             limit: int = 100) -> list[WorkflowExecution]:
        """The latest run of each workflow id, newest first, from every shard."""
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValueError(f"limit must be in 1..{LIST_LIMIT_MAX}")
        params = {"limit": str(limit)}
        if status is not None:
            value = status.value if isinstance(status, WorkflowExecutionStatus) else status
            params["status"] = value.lower()
        answer = await self._transport.call("GET", self._path(), params=params)
        return [WorkflowExecution.from_json(w) for w in answer.body["workflows"]]


class WorkflowHandle:
    """A workflow id (and optionally one run) to act on.

    `run_id` is the run that signal/query/cancel/terminate/describe target (None: the latest
    run); `result_run_id` is where `result()` starts following the chain of runs.
    """

    def __init__(self, client: Client, workflow_id: str, *, run_id: str | None,
                 result_run_id: str | None, first_execution_run_id: str | None) -> None:
        self._client = client
        self.id = workflow_id
        self.run_id = run_id
        self.result_run_id = result_run_id
        self.first_execution_run_id = first_execution_run_id

    def __repr__(self) -> str:
        return f"WorkflowHandle(id={self.id!r}, run_id={self.run_id!r})"

    def _path(self, suffix: str = "") -> str:
        return self._client._path(f"/{quote(self.id, safe='')}{suffix}")

    def _transport(self) -> _http.Transport:
        return self._client.transport

    def _run_params(self, run_id: str | None) -> dict[str, str]:
        return {} if run_id is None else {"run_id": run_id}

    async def result(self, *, follow_runs: bool = True) -> Any:
        """Wait for the run to close and return its result (a JSON value).

        Waits on the server (long poll, no busy polling) and follows continue-as-new to the
        last run. Raises `WorkflowFailureError` if it failed, timed out, was terminated or
        canceled; its `cause` is the decoded failure.
        """
        run_id = self.result_run_id
        for _ in range(CONTINUE_AS_NEW_FOLLOW_MAX):
            closed = await self._wait_closed(run_id)
            status = WorkflowExecutionStatus(str(closed["status"]))
            if status is WorkflowExecutionStatus.COMPLETED:
                return closed.get("result")
            if status is WorkflowExecutionStatus.CONTINUED_AS_NEW and follow_runs:
                close_event = await self._last_event(closed)
                run_id = str(close_event["attributes"]["new_execution_run_id"])
                continue
            raise await self._failure(closed, status)
        raise RuntimeError(f"workflow {self.id!r} continued as new more than "
                           f"{CONTINUE_AS_NEW_FOLLOW_MAX} times")

    async def _wait_closed(self, run_id: str | None) -> dict[str, Any]:
        params = {**self._run_params(run_id), "wait_ms": str(RESULT_WAIT_MS)}
        while True:
            answer = await self._transport().call(
                "GET", self._path("/result"), params=params,
                timeout_s=RESULT_WAIT_MS / 1000 + _http.REQUEST_TIMEOUT_S)
            if answer.status == 200:
                return dict(answer.body)
            assert answer.status == 204, answer.status  # still running: wait again

    async def _last_event(self, described: dict[str, Any]) -> dict[str, Any]:
        length = int(described["history_length"])
        answer = await self._transport().call("GET", self._path("/history"), params={
            "run_id": str(described["run_id"]), "next_page_token": str(length),
            "page_size": "1"})
        events = answer.body["events"]
        assert events and events[-1]["event_id"] == length, events
        return dict(events[-1])

    async def _failure(self, closed: dict[str, Any],
                       status: WorkflowExecutionStatus) -> errors.WorkflowFailureError:
        cause: BaseException
        if status is WorkflowExecutionStatus.FAILED:
            cause = errors.from_failure(closed.get("failure"))
        elif status is WorkflowExecutionStatus.TIMED_OUT:
            attributes = (await self._last_event(closed))["attributes"]
            cause = errors.TimeoutError("workflow execution timed out",
                                        timeout_type=str(attributes.get("timeout_type", "")))
        elif status is WorkflowExecutionStatus.CANCELED:
            cause = asyncio.CancelledError("workflow execution canceled")
        else:
            cause = errors.ApplicationError(str(closed.get("reason") or status.value.lower()),
                                            type=status.value.capitalize(), non_retryable=True)
        return errors.WorkflowFailureError(
            f"workflow {self.id!r} {status.value.lower()}", cause=cause, status=status.value,
            workflow_id=self.id, run_id=str(closed.get("run_id", "")))

    async def signal(self, signal: Callable[..., Any] | str, *args: Any,
                     request_id: str | None = None) -> None:
        """Send a signal; delivered exactly once, in the order the server accepted signals.

        Retries (connection loss, 503/504) reuse this call's request id, so a signal that was
        accepted but whose answer was lost is not delivered twice. A caller that retries after
        this call raised passes the same `request_id` (one is chosen if not given).
        """
        body: dict[str, object] = {"signal_name": signal_name_of(signal), "input": list(args),
                                   "request_id": request_id or uuid.uuid4().hex}
        if self.run_id is not None:
            body["run_id"] = self.run_id
        await self._transport().call("POST", self._path("/signal"), body=body)

    async def query(self, query: Callable[..., Any] | str, *args: Any,
                    timeout: timedelta | float | None = None) -> Any:
        """Ask a worker to run a query handler on the workflow's current state.

        Raises `QueryFailedError` if the handler raised, the name is unknown, or no worker of
        the workflow's task queue answered in time.
        """
        body: dict[str, object] = {"query_type": query_name_of(query), "args": list(args)}
        if self.run_id is not None:
            body["run_id"] = self.run_id
        timeout_ms = _seconds_ms(timeout)
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        wait_s = (timeout_ms or 10_000) / 1000 + _http.REQUEST_TIMEOUT_S
        try:
            answer = await self._transport().call(
                "POST", self._path("/query"), body=body, timeout_s=wait_s,
                retry_statuses=_http.UNAVAILABLE_STATUSES)
        except errors.RPCError as error:
            if error.code in ("query_failed", "timeout"):
                raise errors.QueryFailedError(error.message) from error
            raise
        return answer.body.get("result")

    async def describe(self) -> WorkflowExecution:
        answer = await self._transport().call("GET", self._path(),
                                              params=self._run_params(self.run_id))
        return WorkflowExecution.from_json(dict(answer.body))

    async def cancel(self, reason: str = "") -> None:
        """Ask the workflow to cancel; its code decides how (CancelledError in the workflow)."""
        await self._close_request("/cancel", reason)

    async def terminate(self, reason: str = "") -> None:
        """End the run at once; no workflow code runs."""
        await self._close_request("/terminate", reason)

    async def _close_request(self, suffix: str, reason: str) -> None:
        body: dict[str, object] = {"reason": reason, "request_id": uuid.uuid4().hex}
        if self.run_id is not None:
            body["run_id"] = self.run_id
        await self._transport().call("POST", self._path(suffix), body=body)

    async def history(self) -> WorkflowHistory:
        """Every event of the run, all pages."""
        # Pin the run first: pages of "the latest run" could straddle a new run.
        run_id = self.run_id or (await self.describe()).run_id
        events: list[dict[str, Any]] = []
        token: str | None = "1"
        while token:
            params = {"run_id": run_id, "next_page_token": token,
                      "page_size": str(HISTORY_PAGE_SIZE)}
            answer = await self._transport().call("GET", self._path("/history"), params=params)
            events.extend(answer.body["events"])
            next_token = answer.body.get("next_page_token")
            token = str(next_token) if next_token else None
        return WorkflowHistory(workflow_id=self.id, run_id=run_id, events=events)
