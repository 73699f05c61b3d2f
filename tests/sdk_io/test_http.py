"""The SDK transport's retry rules, against a scripted in-process HTTP server.

Goal: a call survives a dead node and `503 not_leader` by moving to the next address with the
same body (so the same request_id); `Retry-After` of not_leader is capped at 0.5 s; errors the
caller did not mark retryable (a query's 504, a 409) reach it at once as a typed RPCError; a
handle's cancel/terminate keeps one request_id across its retries.
Method: an aiohttp server on loopback answers from a script and records every body it saw.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from raftflow.sdk import _http
from raftflow.sdk._cluster_connection import ClusterConnection
from raftflow.sdk.client import WorkflowHandle
from raftflow.sdk.errors import RPCError

Reply = tuple[int, dict[str, object], dict[str, str]]
Script = list[Reply]


def _dead_address() -> str:
    with socket.socket() as probe:  # bound then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _serve(script: Script, seen: list[object],
           test: Callable[[str], Awaitable[None]]) -> None:
    async def handle(request: web.Request) -> web.Response:
        seen.append(json.loads(await request.read() or b"null"))
        status, body, headers = script.pop(0) if script else (200, {"ok": True}, {})
        return web.json_response(body, status=status, headers=headers)

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            await test(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    asyncio.run(main())


NOT_LEADER: Reply = (503, {"error": {"code": "not_leader", "message": "moved"}}, {"Retry-After": "1"})


def test_dead_node_and_not_leader_move_on_with_the_same_body() -> None:
    seen: list[object] = []

    async def test(address: str) -> None:
        transport = _http.Transport([_dead_address(), address])
        try:
            started = time.monotonic()
            answer = await transport.call("POST", "/x", body={"request_id": "r-1"})
            waited_s = time.monotonic() - started
        finally:
            await transport.close()
        assert answer.status == 200 and answer.body == {"ok": True}
        assert seen == [{"request_id": "r-1"}, {"request_id": "r-1"}]
        assert waited_s < 0.9  # Retry-After: 1 capped to 0.5 s for not_leader

    _serve([NOT_LEADER], seen, test)


def test_errors_not_marked_retryable_reach_the_caller_typed() -> None:
    seen: list[object] = []
    timeout: Reply = (504, {"error": {"code": "timeout", "message": "no worker"}}, {})
    conflict: Reply = (409, {"error": {"code": "workflow_already_started", "message": "x"}}, {})

    async def test(address: str) -> None:
        transport = _http.Transport([address])
        try:
            with pytest.raises(RPCError) as first:
                await transport.call("POST", "/q", body={}, retry_statuses=_http.UNAVAILABLE_STATUSES)
            with pytest.raises(RPCError) as second:
                await transport.call("POST", "/s", body={})
        finally:
            await transport.close()
        assert (first.value.status, first.value.code) == (504, "timeout")
        assert (second.value.status, second.value.code) == (409, "workflow_already_started")
        assert len(seen) == 2  # neither was sent twice

    _serve([timeout, conflict], seen, test)


def test_every_node_down_gives_up_with_the_connection_error() -> None:
    async def test() -> None:
        transport = _http.Transport([_dead_address(), _dead_address()])
        try:
            with pytest.raises(OSError):
                await transport.call("GET", "/healthz", deadline_s=1.0)
        finally:
            await transport.close()

    asyncio.run(test())


def test_cancel_and_terminate_resend_their_own_request_id_on_retry() -> None:
    """A handle's write picks one request id per call (none given): the retry after a 503
    resends it, and the next call picks a new one (DESIGN §4 I5)."""
    seen: list[object] = []

    async def test(address: str) -> None:
        transport = _http.Transport([address])
        handle = WorkflowHandle(ClusterConnection(transport=transport, namespace="default"),
                                "wf", run_id=None, result_run_id=None,
                                first_execution_run_id=None)
        try:
            await handle.cancel("a")
            await handle.terminate("b")
            await handle.terminate("c", request_id="t-1")
        finally:
            await transport.close()

    _serve([NOT_LEADER, (200, {}, {}), NOT_LEADER], seen, test)
    ids = [body["request_id"] for body in seen if isinstance(body, dict)]
    assert len(seen) == len(ids) == 5  # cancel twice, terminate twice, terminate once
    assert ids[0] == ids[1] != ids[2] == ids[3] != ids[4] == "t-1"
    assert [body["reason"] for body in seen if isinstance(body, dict)] == list("aabbc")
