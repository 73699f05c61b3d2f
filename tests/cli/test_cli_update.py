"""Goal: `raftflow workflow update execute|start|result` send the documented requests (the
update id chosen once; after the first call, waiting only reads), repeat a long poll until the
stage asked for,
print the result, and turn a rejected or failed update into exit status 1 (`update_failed`).

Method: a small fake node of its own (aiohttp on a background thread, a port the kernel picks)
answering the two update routes by workflow id: "slow" answers `admitted` once before the
outcome, "bad" a rejection, anything else the outcome at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from raftflow.cli import main

WF = "/api/v1/namespaces/default/workflows"


class UpdateNode:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.base_url = ""
        self.slow_answers = 1

    def app(self) -> web.Application:
        async def send(request: web.Request) -> web.Response:
            body = await request.json()
            self.requests.append(("POST", request.path, dict(request.query), body))
            return self._answer(request.match_info["wf"], body["update_id"])

        async def outcome(request: web.Request) -> web.Response:
            self.requests.append(("GET", request.path, dict(request.query), None))
            return self._answer(request.match_info["wf"], request.match_info["update_id"])

        application = web.Application()
        application.router.add_post(WF + "/{wf}/updates", send)
        application.router.add_get(WF + "/{wf}/updates/{update_id}", outcome)
        return application

    def _answer(self, workflow_id: str, update_id: str) -> web.Response:
        answer: dict[str, Any] = {"workflow_id": workflow_id, "run_id": "r1",
                                  "update_id": update_id, "stage": "completed"}
        if workflow_id == "slow" and self.slow_answers > 0:
            self.slow_answers -= 1
            answer["stage"] = "admitted"
        elif workflow_id == "bad":
            answer["failure"] = {"message": "amount must be positive", "type": "ValueError",
                                 "non_retryable": False, "details": None}
        else:
            answer["result"] = {"balance": 9}
        return web.json_response(answer)


@pytest.fixture
def node() -> Iterator[UpdateNode]:
    fake = UpdateNode()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(fake.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
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


def _run(node: UpdateNode, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["workflow", "update", *argv, "--address", node.base_url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_execute_waits_for_completion_with_one_update_id(
        node: UpdateNode, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(node, capsys, "execute", "-w", "slow", "--name", "deposit", "-i", "[3]")
    assert (code, out) == (0, '{"balance": 9}\n')
    first, second = node.requests
    assert first[:2] == ("POST", f"{WF}/slow/updates")
    body = first[3]
    assert body["name"] == "deposit" and body["input"] == [3]
    assert body["wait_for_stage"] == "completed" and body["wait_ms"] > 0
    # Admitted only: then read where that same update stands, proposing nothing.
    assert second[:2] == ("GET", f"{WF}/slow/updates/{body['update_id']}")
    assert second[2]["wait_for_stage"] == "completed"


def test_a_rejected_update_exits_1(node: UpdateNode, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(node, capsys, "execute", "-w", "bad", "--name", "deposit", "-i", "-1",
                          "--update-id", "u-9")
    assert (code, out) == (1, "")
    assert err == ("error: update_failed: update u-9 of workflow bad failed: ValueError: "
                   "amount must be positive\n")
    assert node.requests[0][3]["update_id"] == "u-9" and node.requests[0][3]["input"] == -1


def test_start_then_result(node: UpdateNode, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(node, capsys, "start", "-w", "wf", "--name", "close", "--update-id",
                        "u-1", "--run-id", "r1", "--json")
    assert code == 0 and json.loads(out)["stage"] == "completed"
    sent = node.requests[-1][3]
    assert sent["wait_for_stage"] == "accepted" and sent["run_id"] == "r1"
    code, out, _ = _run(node, capsys, "result", "-w", "wf", "--update-id", "u-1")
    assert (code, out) == (0, '{"balance": 9}\n')
    method, path, query, _ = node.requests[-1]
    assert (method, path) == ("GET", f"{WF}/wf/updates/u-1")
    assert query["wait_for_stage"] == "completed"


def test_describe_shows_the_stage_without_waiting(
        node: UpdateNode, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(node, capsys, "describe", "-w", "bad", "--update-id", "u-5")
    assert code == 0  # a failed update is described, not an error of the command
    assert "stage:" in out and "completed" in out and "amount must be positive" in out
    method, path, query, _ = node.requests[-1]
    assert (method, path, query) == ("GET", f"{WF}/bad/updates/u-5", {"wait_ms": "0"})


def test_result_needs_an_update_id(node: UpdateNode, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _run(node, capsys, "result", "-w", "wf")
    assert caught.value.code == 2 and node.requests == []
