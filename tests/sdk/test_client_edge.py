"""Goal: the client speaks the API's typed vocabulary at its HTTP edge. Every body it sends is
an `http_bodies` struct that the gateway decodes back into the same struct, and that means to
the server what the client's hand-built JSON meant before; every answer it reads is decoded
once into its `http_answers` struct, and an answer that is not its route's shape is refused
there with one clear error naming the route and the field, instead of a KeyError, a
ValueError or a silent coercion deeper in.

Method: a `Client` over a fake transport that records each call and answers from a table, in
the JSON the gateway renders (its own answer structs, encoded with the payload hook). Bodies go
through the transport's `encode_body` and the gateway's `validation.decode_body`. The refusal
tests use only the public client, the transport's `Answer` and `errors.RPCError` (checking
its `code`), so they also ran against the client before this edge existed: each failed there
(KeyError, ValueError, or a "yes" read as a cancel request).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import pytest

from raftflow.api import validation
from raftflow.protocol import http_answers as answers
from raftflow.protocol import http_bodies as bodies
from raftflow.protocol.commands import Failure, IdReusePolicy
from raftflow.protocol.commands import RetryPolicy as RetryPolicyBody
from raftflow.protocol.events import HistoryEvent, WorkflowExecutionFailedEventAttributes
from raftflow.protocol.history_json import event_json
from raftflow.protocol.payload import Payload, json_enc_hook
from raftflow.protocol.results import WorkflowExecutionStatus
from raftflow.sdk import ApplicationError, RetryPolicy, errors
from raftflow.sdk._activity_support import Heartbeater
from raftflow.sdk._http import Answer, Transport, encode_body
from raftflow.sdk._task_exchange import TaskExchange
from raftflow.sdk.client import Client, WorkflowHandle

WORKFLOWS = "/api/v1/namespaces/default/workflows"
ONE = WORKFLOWS + "/w"
START_TIME = "2026-01-02T03:04:05.678+00:00"


def _json(struct: msgspec.Struct) -> Any:
    """An answer as the transport hands it over: the gateway's struct, encoded as the gateway
    encodes it, parsed."""
    return json.loads(msgspec.json.encode(struct, enc_hook=json_enc_hook))


def _description(**changes: Any) -> answers.WorkflowDescription:
    fields: dict[str, Any] = dict(
        workflow_id="w", run_id="r-1", workflow_type="Order", task_queue="q",
        status=WorkflowExecutionStatus.COMPLETED, history_length=5, start_time=START_TIME,
        close_time=START_TIME, pending_activity_count=0, pending_timer_count=0,
        workflow_task_pending=False, continued_execution_run_id=None)
    fields.update(changes)
    return answers.WorkflowDescription(**fields)


def _with(body: Any, **changes: Any) -> Any:
    return {**body, **changes}


WELL_FORMED: dict[tuple[str, str], tuple[int, Any]] = {
    ("POST", WORKFLOWS): (201, _json(answers.StartWorkflowAnswer(workflow_id="w", run_id="r-1"))),
    ("GET", ONE): (200, _json(_description())),
    ("GET", ONE + "/result"): (200, _json(_description(result=Payload(b'{"total":12.5}')))),
    ("GET", WORKFLOWS): (200, _json(answers.WorkflowList(workflows=[_description()]))),
    ("POST", ONE + "/query"): (200, _json(answers.QueryWorkflowAnswer(result=[1, "two"]))),
    ("POST", ONE + "/signal"): (200, {}),
    ("POST", ONE + "/cancel"): (200, {}),
    ("POST", ONE + "/terminate"): (200, {}),
}


class _Server:
    """Stands in for the transport: records each call's body, answers from a table."""

    addresses = ("http://node",)

    def __init__(self, table: dict[tuple[str, str], tuple[int, Any]] | None = None) -> None:
        self.table = {**WELL_FORMED, **(table or {})}
        self.sent: list[tuple[str, object]] = []

    async def call(self, method: str, path: str, *, body: object = None, **_: Any) -> Answer:
        if body is not None:
            self.sent.append((path, body))
        status, answer = self.table[(method, path)]
        return Answer(status=status, body=answer, address="http://node")


def _client(server: _Server) -> Client:
    return Client(cast(Transport, server), "default")


def _run(server: _Server, act: Callable[[Client], Awaitable[Any]]) -> Any:
    return asyncio.run(act(_client(server)))


# -- what the client sends is what the gateway reads -------------------------------------------

async def _every_write(client: Client) -> None:
    await client.start_workflow("Order", 1, {"x": "é"}, id="w", task_queue="q", request_id="s-1",
                                id_reuse_policy="terminate_if_running", execution_timeout=60,
                                run_timeout=30.0, task_timeout=10)
    await client.start_workflow("Order", id="w", task_queue="q", request_id="s-2")
    for handle in (client.get_workflow_handle("w"), client.get_workflow_handle("w", "r-1")):
        await handle.signal("approve", "yes", 2, request_id="g-1")
        await handle.query("status", 3, timeout=5)
        await handle.query("status")
        await handle.cancel("enough", request_id="c-1")
        await handle.terminate(request_id="t-1")


# What the client sent before its bodies were structs, call by call (json.dumps of a dict that
# left out what was not given): the server must read the structs the same way.
HAND_BUILT: list[tuple[str, dict[str, object]]] = [
    (WORKFLOWS, {"workflow_id": "w", "workflow_type": "Order", "task_queue": "q",
                 "input": [1, {"x": "é"}], "request_id": "s-1",
                 "id_reuse_policy": "terminate_if_running", "execution_timeout_ms": 60_000,
                 "run_timeout_ms": 30_000, "task_timeout_ms": 10_000}),
    (WORKFLOWS, {"workflow_id": "w", "workflow_type": "Order", "task_queue": "q", "input": [],
                 "request_id": "s-2"}),
] + [entry for run in ({}, {"run_id": "r-1"}) for entry in [
    (ONE + "/signal", {"signal_name": "approve", "input": ["yes", 2], "request_id": "g-1", **run}),
    (ONE + "/query", {"query_type": "status", "args": [3], "timeout_ms": 5000, **run}),
    (ONE + "/query", {"query_type": "status", "args": [], **run}),
    (ONE + "/cancel", {"reason": "enough", "request_id": "c-1", **run}),
    (ONE + "/terminate", {"reason": "", "request_id": "t-1", **run}),
]]

BODY_TYPES: dict[str, type[msgspec.Struct]] = {
    WORKFLOWS: bodies.StartWorkflowRequest, ONE + "/signal": bodies.SignalWorkflowRequest,
    ONE + "/query": bodies.QueryWorkflowRequest, ONE + "/cancel": bodies.CancelWorkflowRequest,
    ONE + "/terminate": bodies.TerminateWorkflowRequest}


def test_every_client_body_is_a_request_struct_the_gateway_decodes_back() -> None:
    server = _Server()
    _run(server, _every_write)
    assert [path for path, _ in server.sent] == [path for path, _ in HAND_BUILT]
    for (path, sent), (_, hand_built) in zip(server.sent, HAND_BUILT, strict=True):
        body_type = BODY_TYPES[path]
        assert type(sent) is body_type, (path, sent)
        # Strict, unknown fields refused, payloads through the payload hook: the same struct.
        decoded = validation.decode_body(encode_body(sent), body_type)
        assert decoded == sent
        # JSON null where the old body left a field out means "not given": the same request.
        assert decoded == validation.decode_body(json.dumps(hand_built).encode(), body_type)


def test_start_payload_and_policy_are_typed_before_they_leave() -> None:
    server = _Server()
    _run(server, _every_write)
    start = server.sent[0][1]
    assert isinstance(start, bodies.StartWorkflowRequest)
    assert start.input == Payload('[1,{"x":"é"}]'.encode())
    assert start.id_reuse_policy is IdReusePolicy.TERMINATE_IF_RUNNING


def test_arguments_go_positionally_or_as_args_and_a_retry_policy_as_its_object() -> None:
    """temporalio's two forms of arguments (`f(wf, x)`, `f(wf, args=[x, y])`) send the same
    list; both at once is refused before anything is sent."""
    server = _Server()

    async def act(client: Client) -> None:
        policy = RetryPolicy(initial_interval=timedelta(milliseconds=250), maximum_attempts=4,
                             non_retryable_error_types=("Fatal",))
        await client.start_workflow("Order", args=[1, "two"], id="w", task_queue="q",
                                    retry_policy=policy)
        handle = client.get_workflow_handle("w")
        await handle.signal("approve", args=["yes", 2])
        await handle.query("status", args=[3])
        with pytest.raises(ValueError, match="not both"):
            await client.start_workflow("Order", 1, args=[2], id="w", task_queue="q")

    _run(server, act)
    start, signal, query = (body for _, body in server.sent)
    assert isinstance(start, bodies.StartWorkflowRequest)
    assert start.input == Payload(b'[1,"two"]')
    assert start.retry_policy == RetryPolicyBody(initial_interval_ms=250, maximum_attempts=4,
                                                 non_retryable_error_types=("Fatal",))
    assert isinstance(signal, bodies.SignalWorkflowRequest) and signal.input == b'["yes",2]'
    assert isinstance(query, bodies.QueryWorkflowRequest) and query.args == [3]


def test_a_value_json_cannot_carry_is_refused_before_anything_is_sent() -> None:
    server = _Server()
    with pytest.raises(TypeError, match="input of workflow Order"):
        _run(server, lambda c: c.start_workflow("Order", object(), id="w", task_queue="q"))
    with pytest.raises(TypeError, match="input of signal approve"):
        _run(server, lambda c: c.get_workflow_handle("w").signal("approve", {1, 2}))
    assert server.sent == []
    with pytest.raises(TypeError, match="not JSON-serializable"):  # a query's free-form args
        encode_body(bodies.QueryWorkflowRequest(query_type="q", args=[object()]))


# -- what the client reads is the gateway's answer struct --------------------------------------

def test_answers_are_read_as_the_gateways_structs() -> None:
    failure = Failure(message="card declined", type="Declined", non_retryable=True,
                      details=Payload(b'["c-1",3]'))
    # result() reads the close event too: a retried failure would name the next attempt.
    close = HistoryEvent(event_id=5, time_ms=0, attributes=WorkflowExecutionFailedEventAttributes(
        failure=Failure(message="card declined", type="Declined", non_retryable=True)))
    server = _Server({("GET", ONE + "/result"): (200, _json(_description(
        status=WorkflowExecutionStatus.FAILED, failure=failure))),
        ("GET", ONE + "/history"): (200, {"events": [event_json(close)],
                                          "next_page_token": None})})

    async def act(client: Client) -> tuple[Any, ...]:
        handle = await client.start_workflow("Order", id="w", task_queue="q")
        described = await handle.describe()
        listed = await client.list_workflows()
        queried = await handle.query("status")
        with pytest.raises(errors.WorkflowFailureError) as failed:
            await handle.result()
        return handle, described, listed, queried, failed.value

    handle, described, listed, queried, failed = _run(server, act)
    assert isinstance(handle, WorkflowHandle) and handle.result_run_id == "r-1"
    assert described.status is WorkflowExecutionStatus.COMPLETED
    assert described.start_time == datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert described.description == _description() and described.raw == _json(_description())
    assert listed == [described]
    assert queried == [1, "two"]
    cause = failed.cause
    assert isinstance(cause, ApplicationError) and failed.run_id == "r-1"
    assert (cause.message, cause.type, cause.non_retryable, cause.details) == (
        "card declined", "Declined", True, ("c-1", 3))


def test_a_completed_runs_result_is_its_payloads_json_value() -> None:
    assert _run(_Server(), lambda c: c.get_workflow_handle("w").result()) == {"total": 12.5}
    no_result = {("GET", ONE + "/result"): (200, _json(_description()))}
    assert _run(_Server(no_result), lambda c: c.get_workflow_handle("w").result()) is None


# -- an answer that is not its route's shape is refused where it arrives -----------------------

START_BODY = WELL_FORMED[("POST", WORKFLOWS)][1]
DESCRIPTION = WELL_FORMED[("GET", ONE)][1]


async def _list_all(client: Client) -> object:
    return await client.list_workflows()  # a listing is awaitable, not a coroutine


@pytest.mark.parametrize(("table", "act", "route", "problem"), [
    ({("POST", WORKFLOWS): (201, {"workflow_id": "w"})},
     lambda c: c.start_workflow("Order", id="w", task_queue="q"),
     f"POST {WORKFLOWS}", "missing required field `run_id`"),
    ({("POST", WORKFLOWS): (201, _with(START_BODY, run_id=7))},
     lambda c: c.start_workflow("Order", id="w", task_queue="q"),
     f"POST {WORKFLOWS}", "$.run_id"),
    ({("GET", ONE): (200, _with(DESCRIPTION, status="BOGUS"))},
     lambda c: c.get_workflow_handle("w").describe(), f"GET {ONE}", "$.status"),
    ({("GET", ONE): (200, _with(DESCRIPTION, history_length="5"))},
     lambda c: c.get_workflow_handle("w").describe(), f"GET {ONE}", "$.history_length"),
    ({("GET", ONE): (200, _with(DESCRIPTION, start_time="yesterday"))},
     lambda c: c.get_workflow_handle("w").describe(), f"GET {ONE}", "yesterday"),
    ({("GET", WORKFLOWS): (200, {"workflows": [_with(DESCRIPTION, run_id=None)]})},
     lambda c: _list_all(c), f"GET {WORKFLOWS}", "$.workflows[0].run_id"),
    ({("GET", ONE + "/result"): (200, _with(DESCRIPTION, status="FAILED",
                                            failure="card declined"))},
     lambda c: c.get_workflow_handle("w").result(), f"GET {ONE}/result", "$.failure"),
    ({("GET", ONE + "/result"): (200, None)},
     lambda c: c.get_workflow_handle("w").result(), f"GET {ONE}/result", "got `null`"),
    ({("POST", ONE + "/query"): (200, ["yes"])},
     lambda c: c.get_workflow_handle("w").query("status"), f"POST {ONE}/query", "array"),
], ids=["start-without-run-id", "start-run-id-not-text", "status-bogus", "length-as-text",
        "start-time-not-iso", "listed-run-without-id", "failure-not-a-failure", "result-null",
        "query-not-an-object"])
def test_a_malformed_answer_raises_one_error_naming_the_route(
        table: dict[tuple[str, str], tuple[int, Any]], act: Callable[[Client], Awaitable[Any]],
        route: str, problem: str) -> None:
    with pytest.raises(errors.RPCError) as refused:
        _run(_Server(table), act)
    assert refused.value.code == "malformed_answer"
    assert f"{route}: the answer is malformed" in str(refused.value)
    assert problem in str(refused.value)


class _EagerWorker:
    """A worker on the client that takes eager starts: records the tasks handed to it."""

    task_queue = "q"
    identity = "worker-1"

    def __init__(self) -> None:
        self.handed: list[object | None] = []

    async def reserve_workflow_slot(self) -> bool:
        return True

    def release_workflow_slot(self) -> None:
        raise AssertionError("an answered start hands its slot to the task")

    def accept_workflow_task(self, address: str, task: object | None) -> None:
        self.handed.append(task)


def test_an_eager_starts_task_stays_json_for_the_worker_whatever_its_shape() -> None:
    """The run exists once the start is answered: a malformed eager task is the worker's to
    refuse (it decodes it like a polled task), not a reason to fail the start."""
    task = {"task_token": "t", "history": "not a history"}
    server = _Server({("POST", WORKFLOWS): (201, _with(START_BODY, workflow_task=task))})
    client = _client(server)
    worker = _EagerWorker()
    client.connection.local_workers.register(worker)
    handle = asyncio.run(client.start_workflow("Order", id="w", task_queue="q",
                                               request_eager_start=True))
    assert handle.result_run_id == "r-1" and worker.handed == [task]
    start = server.sent[0][1]
    assert isinstance(start, bodies.StartWorkflowRequest)
    assert (start.eager_task_queue, start.eager_identity) == ("q", "worker-1")


def _activity_task() -> answers.ActivityTask:
    return answers.ActivityTask(
        task_token="t", namespace="default", workflow_id="w", run_id="r-1",
        workflow_type="Order", activity_id="1", activity_type="charge", task_queue="q",
        input=[], attempt=1, heartbeat_details=None, scheduled_time=START_TIME,
        current_attempt_scheduled_time=START_TIME, started_time=START_TIME,
        schedule_to_close_timeout_ms=None, start_to_close_timeout_ms=None,
        heartbeat_timeout_ms=None)


@pytest.mark.parametrize(("answer", "cancelled"), [
    ({"cancel_requested": True}, True), ({"cancel_requested": False}, False),
    ({"cancel_requested": "yes"}, False), ({}, False)])
def test_a_heartbeat_answer_cancels_only_when_it_says_so(
        answer: dict[str, object], cancelled: bool, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    async def post(path: str, body: msgspec.Struct) -> Answer:
        assert validation.decode_body(encode_body(body), bodies.HeartbeatRequest) == body
        return Answer(status=200, body=answer)

    async def main() -> None:
        beats = Heartbeater(post, _activity_task(), lambda: calls.append("cancel"))
        beats.record(["progress", 1])
        await asyncio.sleep(0)  # record() hands the details over through the loop
        await beats.flush()

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert calls == (["cancel"] if cancelled else [])
    if answer.get("cancel_requested") not in (True, False):
        assert "POST /api/v1/tasks/activity/heartbeat: the answer is malformed" in caplog.text


@pytest.mark.parametrize(("status", "targets"), [
    (_json(answers.ClusterStatus(nodes=[
        answers.ClusterNode(id="n1", address="127.0.0.1:8081", pid=1, alive=True),
        answers.ClusterNode(id="n2", address=None, pid=None, alive=False)], shards=[])),
     ("http://node", "http://127.0.0.1:8081")),
    ({"nodes": [{"id": "n1", "address": 8081}], "shards": []}, ("http://node",)),
], ids=["well-formed", "malformed"])
def test_a_worker_polls_the_nodes_the_cluster_status_names(status: Any,
                                                            targets: tuple[str, ...]) -> None:
    class _StatusServer:
        addresses = ("http://node",)

        async def call(self, method: str, path: str, **_: Any) -> Answer:
            assert (method, path) == ("GET", "/api/v1/cluster/status")
            return Answer(status=200, body=status)

    async def main() -> tuple[str, ...]:
        exchange = TaskExchange(cast(Transport, _StatusServer()), identity="w",
                                sticky_queue="s")
        return await exchange.poll_targets()

    assert asyncio.run(main()) == targets
