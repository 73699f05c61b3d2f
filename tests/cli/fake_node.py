"""A fake raftflow node for the CLI tests: a tiny aiohttp app (its own event loop on a
background thread, bound to 127.0.0.1 on a port the kernel picks) that records each request and
answers canned bodies chosen by the workflow id: a paged history, a history that grows while a
test follows it, result long polls that answer 204 before the close, error bodies.

The waiting commands read `time` through `raftflow.cli_wait.time`; a test installs `Fake.clock`
there, and the fake's result endpoint advances that clock by the `wait_ms` it was asked to wait
whenever it answers 204, as a real node holds the call that long. No test sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from raftflow.cli import main

HISTORY_PAGES = {"": ("p2", [1, 2]), "p2": ("p3", [3]), "p3": (None, [4, 5])}
# The history of run-1 of "live", by page token: each request takes the first answer left
# (events, next_page_token), so following it sees nothing new once, then events 3 and the close.
LIVE_PAGES: dict[str, list[tuple[list[int], str | None]]] = {
    "": [([1], "2")], "2": [([2], None)], "3": [([], None), ([3], None)], "4": [([4], None)]}
LIVE_TYPES = {1: "WorkflowExecutionStarted", 2: "WorkflowTaskScheduled",
              3: "WorkflowExecutionSignaled", 4: "WorkflowExecutionCompleted"}
# Closed runs the result endpoint answers at once, by workflow id.
CLOSED: dict[str, dict[str, object]] = {
    "done": {"status": "COMPLETED", "result": {"total": 3}},
    "failed": {"status": "FAILED", "failure": {"message": "card declined",
                                               "type": "PaymentError"}},
    "terminated": {"status": "TERMINATED", "reason": "no longer needed"},
    "canceled": {"status": "CANCELED"},
    "timed-out": {"status": "TIMED_OUT"},
    "orphan": {"status": "CONTINUED_AS_NEW", "history_length": 2},
}
SLOW_POLLS = 2  # "slow" answers 204 this many times, then completes


class FakeClock:
    """`time` for `raftflow.cli_wait`: monotonic() reads, sleep() and the fake node advance."""

    def __init__(self) -> None:
        self.now_s = 1_000.0
        self.sleeps_s: list[float] = []

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps_s.append(seconds)
        self.now_s += seconds


@dataclass
class Fake:
    base_url: str = ""
    requests: list[tuple[str, str, dict[str, str], object]] = field(default_factory=list)
    clock: FakeClock = field(default_factory=FakeClock)
    live_pages: dict[str, list[tuple[list[int], str | None]]] = field(
        default_factory=lambda: {token: list(answers) for token, answers in LIVE_PAGES.items()})

    def calls_to(self, suffix: str) -> list[tuple[str, str, dict[str, str], object]]:
        return [r for r in self.requests if r[1].endswith(suffix)]


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"code": code, "message": message, "field": None}}
    return web.json_response(body, status=status)


def _event(event_id: int, event_type: str, **attributes: object) -> dict[str, object]:
    return {"event_id": event_id, "event_type": event_type, "timestamp": "t",
            "attributes": attributes}


def _description(workflow_id: str, run_id: str, fields: dict[str, object]) -> web.Response:
    return web.json_response({"workflow_id": workflow_id, "run_id": run_id,
                              "workflow_type": "Checkout", "task_queue": "orders",
                              "history_length": 5, **fields})


def app(fake: Fake) -> web.Application:
    async def record(request: web.Request) -> object:
        body = await request.json() if request.can_read_body else None
        fake.requests.append((request.method, request.path, dict(request.query), body))
        return body

    async def status(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({
            "nodes": [{"id": "n1", "address": "127.0.0.1:8080", "pid": 11, "alive": True}],
            "shards": [{"shard": 0, "leader": "n1", "replicas": ["n1", "n2"], "term": 3,
                        "commit_index": 42}]})

    async def start(request: web.Request) -> web.Response:
        body = await record(request)
        assert isinstance(body, dict)
        if body["workflow_id"] == "dup":
            return _error(409, "workflow_already_started", "workflow 'dup' is running")
        return web.json_response({"workflow_id": body["workflow_id"], "run_id": "run-1"},
                                 status=201)

    async def describe(request: web.Request) -> web.Response:
        await record(request)
        workflow_id = request.match_info["id"]
        if workflow_id == "missing":
            return _error(404, "not_found", "no workflow 'missing'")
        if workflow_id == "busy":
            return web.json_response({"error": {"code": "overloaded", "message": "try later"}},
                                     status=503, headers={"Retry-After": "1"})
        if workflow_id == "broken":
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response({"workflow_id": workflow_id, "run_id": "run-1",
                                  "workflow_type": "Checkout", "task_queue": "orders",
                                  "status": "running", "history_length": 5, "result": None})

    async def history(request: web.Request) -> web.Response:
        await record(request)
        workflow_id, token = request.match_info["id"], request.query.get("next_page_token", "")
        if workflow_id == "live":
            ids, next_token = fake.live_pages[token].pop(0)
            events = [_event(i, LIVE_TYPES[i]) for i in ids]
            return web.json_response({"events": events, "next_page_token": next_token})
        if workflow_id == "chain":
            assert dict(request.query) == {"run_id": "c1", "next_page_token": "7",
                                           "page_size": "1"}, request.query
            return web.json_response({"events": [_event(
                7, "WorkflowExecutionContinuedAsNew", new_execution_run_id="c2")],
                "next_page_token": None})
        if workflow_id == "orphan":
            return web.json_response({"events": [], "next_page_token": None})
        if workflow_id == "retried":  # attempt r1 failed; its retry policy started r2
            return web.json_response({"events": [_event(
                5, "WorkflowExecutionFailed", failure={"message": "first", "type": "E"},
                new_execution_run_id="r2")], "next_page_token": None})
        if workflow_id in ("failed", "timed-out"):  # closes that name no retried attempt
            close = (_event(5, "WorkflowExecutionFailed", failure=CLOSED["failed"]["failure"])
                     if workflow_id == "failed" else
                     _event(5, "WorkflowExecutionTimedOut", timeout_type="run"))
            return web.json_response({"events": [close], "next_page_token": None})
        if workflow_id == "stuck":
            started = [_event(1, "WorkflowExecutionStarted")] if not token else []
            return web.json_response({"events": started, "next_page_token": None})
        if workflow_id == "done":
            return web.json_response({"events": [
                _event(1, "WorkflowExecutionStarted"),
                _event(2, "WorkflowExecutionCompleted", result=3)], "next_page_token": None})
        next_token, ids = HISTORY_PAGES[token]
        events = [_event(i, f"E{i}") for i in ids]
        return web.json_response({"events": events, "next_page_token": next_token})

    async def result(request: web.Request) -> web.Response:
        await record(request)
        workflow_id = request.match_info["id"]
        run_id = request.query.get("run_id", "run-1")
        polls = len(fake.calls_to(f"/{workflow_id}/result"))
        if workflow_id in CLOSED:
            return _description(workflow_id, run_id, CLOSED[workflow_id])
        if workflow_id == "chain":
            if run_id == "c2":
                return _description(workflow_id, "c2", {"status": "COMPLETED", "result": "end"})
            return _description(workflow_id, "c1", {"status": "CONTINUED_AS_NEW",
                                                    "history_length": 7})
        if workflow_id == "retried":
            if run_id == "r2":
                return _description(workflow_id, "r2", {"status": "COMPLETED", "result": "2nd"})
            return _description(workflow_id, "r1", {"status": "FAILED", "failure": {
                "message": "first", "type": "E"}})
        if workflow_id == "missing":
            return _error(404, "not_found", "no workflow 'missing'")
        if workflow_id == "flaky" and polls == 1:
            return _error(503, "not_leader", "shard 3 has no leader")
        if workflow_id == "forever" or (workflow_id == "slow" and polls <= SLOW_POLLS):
            fake.clock.now_s += int(request.query["wait_ms"]) / 1000  # the node held the call
            return web.Response(status=204)
        return _description(workflow_id, run_id, {"status": "COMPLETED", "result": polls})

    async def query(request: web.Request) -> web.Response:
        body = await record(request)
        assert isinstance(body, dict)
        if body["query_type"] == "boom":
            return _error(400, "query_failed", "the query failed in the worker: boom")
        return web.json_response({"result": {"total": 3}})

    async def started(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"workflow_id": request.match_info["id"], "run_id": "run-7"})

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({})

    async def listing(request: web.Request) -> web.Response:
        await record(request)
        second = request.query.get("next_page_token") == "p2"
        return web.json_response({"workflows": [
            {"workflow_id": "b" if second else "a", "run_id": "r", "workflow_type": "T",
             "task_queue": "q", "status": "running", "start_time": "2026-12-06T10:00:00Z"}],
            "next_page_token": None if second else "p2"})

    async def count(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"count": 7})

    one = "/api/v1/namespaces/{ns}/workflows/{id}"
    application = web.Application()
    application.router.add_get("/api/v1/cluster/status", status)
    application.router.add_post("/api/v1/namespaces/{ns}/workflows", start)
    application.router.add_get("/api/v1/namespaces/{ns}/workflows", listing)
    application.router.add_get("/api/v1/namespaces/{ns}/workflow-count", count)
    application.router.add_get(one, describe)
    application.router.add_get(one + "/history", history)
    application.router.add_get(one + "/result", result)
    application.router.add_post(one + "/query", query)
    application.router.add_post(one + "/signal", ok)
    application.router.add_post(one + "/signal-with-start", started)
    application.router.add_post(one + "/terminate", ok)
    application.router.add_post(one + "/cancel", ok)
    application.router.add_post(one + "/reset", started)
    return application


@contextmanager
def serving() -> Iterator[Fake]:
    """A fake node listening until the block ends."""
    fake = Fake()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app(fake))
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)  # port 0: the kernel picks a free port
    loop.run_until_complete(site.start())
    host, port = runner.addresses[0][:2]
    fake.base_url = f"http://{host}:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def run(fake: Fake, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`raftflow *argv --address <fake>` in-process: (exit status, stdout, stderr)."""
    code = main([*argv, "--address", fake.base_url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
