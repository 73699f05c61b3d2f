"""Goal: the public API over HTTP on a real node — idempotent start (I5), describe and paged
history (I3), signal/terminate, 404 for an unknown workflow, error bodies
`{"error": {"code", "message", "field"}}` with the state unchanged on refusal, payload bounds,
and 503 + Retry-After for `overloaded` when a shard's mailbox is full (I7).

Method: a one-node cluster (`one`, conftest.py) on one asyncio loop in a background thread;
each test drives it with an aiohttp client on that loop (`gateway_harness._drive`) and, for
refusals, counts the leaders' executions before and after. Waits are condition waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from raftflow.actors import limits
from raftflow.actors.errors import MailboxFullError
from raftflow.cluster.ring import shard_for
from raftflow.protocol.commands import Barrier
from tests.api.gateway_harness import (
    API,
    NS,
    Call,
    LiveCluster,
    _drive,
    _error_code,
    _start_body,
    _wid,
)


def test_start_is_idempotent_per_request_id_and_one_run_is_open(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid = _wid("start")
        status, first, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(wid, request_id="r-1"))
        assert status == 201 and first["workflow_id"] == wid and first["run_id"]
        status, again, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(wid, request_id="r-1"))
        assert status in (200, 201) and again["run_id"] == first["run_id"]
        status, other, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(wid, request_id="r-2"))
        assert status == 409 and _error_code(other) == "workflow_already_started"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_describe_history_paging_signal_and_terminate(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid = _wid("life")
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        status, started, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                        json=_start_body(wid))
        assert status == 201
        status, described, _ = await call("GET", wf)
        assert status == 200 and described["status"] == "RUNNING"
        assert described["run_id"] == started["run_id"]
        for i in range(3):
            status, _, _ = await call("POST", wf + "/signal",
                                      json={"signal_name": "ping", "input": i})
            assert status == 200
        status, whole, _ = await call("GET", wf + "/history")
        assert status == 200 and whole["next_page_token"] is None
        ids = [e["event_id"] for e in whole["events"]]
        assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 5
        assert [e["event_type"] for e in whole["events"]].count("WorkflowExecutionSignaled") == 3
        paged: list[int] = []
        token: str | None = None
        for _ in range(len(ids) + 1):
            query = f"?page_size=2{'' if token is None else '&next_page_token=' + token}"
            status, page, _ = await call("GET", wf + "/history" + query)
            assert status == 200 and len(page["events"]) <= 2
            paged += [e["event_id"] for e in page["events"]]
            token = page["next_page_token"]
            if token is None:
                break
        assert paged == ids
        status, _, _ = await call("POST", wf + "/terminate", json={"reason": "test"})
        assert status == 200
        status, described, _ = await call("GET", wf)
        assert described["status"] == "TERMINATED"
        status, refused, _ = await call("POST", wf + "/signal", json={"signal_name": "late"})
        assert status == 409 and _error_code(refused) == "workflow_not_running"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_unknown_workflow_is_404(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wf = f"{API}/namespaces/{NS}/workflows/{_wid('nobody')}"
        for method, path, body in (("GET", wf, None), ("GET", wf + "/history", None),
                                   ("POST", wf + "/signal", {"signal_name": "s"}),
                                   ("POST", wf + "/terminate", {})):
            status, answer, _ = await call(method, path, json=body)
            assert status == 404, (method, path, answer)
            assert _error_code(answer) == "not_found"

    _drive(one, one.url(one.nodes[0]), scenario)


@pytest.mark.parametrize(("namespace", "body", "field"), [
    (NS, {"workflow_type": "T", "task_queue": "q"}, "workflow_id"),
    (NS, {"workflow_id": 5, "workflow_type": "T", "task_queue": "q"}, "workflow_id"),
    (NS, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q", "colour": 1}, "colour"),
    (NS, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q",
          "execution_timeout_ms": "soon"}, "execution_timeout_ms"),
    ("n" * 1001, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q"}, "namespace"),
    # Beyond msgpack's int64: must be refused here, not poison the shard's next log entry.
    (NS, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q",
          "task_timeout_ms": 10**30}, "task_timeout_ms"),
])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(
        one: LiveCluster, namespace: str, body: dict[str, Any], field: str) -> None:
    before = one.executions()

    async def scenario(call: Call) -> None:
        status, answer, _ = await call("POST", f"{API}/namespaces/{namespace}/workflows",
                                       json=body)
        assert status == 400, answer
        assert answer["error"]["code"] == "invalid_argument"
        assert answer["error"]["field"] == field
        assert field in answer["error"]["message"]

    _drive(one, one.url(one.nodes[0]), scenario)
    assert one.executions() == before


def test_a_payload_over_2_mib_is_413_and_changes_nothing(one: LiveCluster) -> None:
    before = one.executions()

    async def scenario(call: Call) -> None:
        big = "x" * (2 * 1024 * 1024 + 1)
        status, answer, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                       json=_start_body(_wid("big"), input=big))
        assert status == 413 and _error_code(answer) == "payload_too_large"
        status, answer, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                       json=_start_body(_wid("huge"), input="y" * 5_000_000))
        assert status == 413
        assert _error_code(answer) == "payload_too_large"  # JSON error body, like every error

    _drive(one, one.url(one.nodes[0]), scenario)
    assert one.executions() == before


def test_a_full_mailbox_answers_503_overloaded_with_retry_after(one: LiveCluster) -> None:
    node = one.nodes[0]
    wid = _wid("busy")
    shard = shard_for(NS, wid, one.shard_count)
    group = node.host.groups[shard]  # type: ignore[union-attr]
    actor = node.actor(shard)
    assert actor is not None
    held: list[Callable[[str], None]] = []

    async def fill() -> int:
        # Stop the log from committing this shard, then fill its mailbox to the bound.
        group.propose = lambda data, on_failed: held.append(on_failed)  # type: ignore[method-assign]
        filled = 0
        while True:  # until a drain (in-flight cap reached) frees no room any more
            try:
                future = actor.submit(Barrier(now_ms=actor.now_ms(), leader_node=node.node_id,
                                              term=0))
                future.add_done_callback(lambda f: f.cancelled() or f.exception())
                filled += 1
                continue
            except MailboxFullError:
                await asyncio.sleep(0)
            if actor.mailbox_depth == limits.MAILBOX_COMMANDS_MAX and held:
                return filled

    async def release() -> None:
        del group.propose
        for on_failed in held:
            on_failed("test released")
        await one.wait_for(lambda: actor.mailbox_depth == 0)

    assert one.run(fill()) > 0
    try:
        async def scenario(call: Call) -> None:
            status, answer, headers = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                                 json=_start_body(wid))
            assert status == 503 and _error_code(answer) == "overloaded"
            assert int(headers["Retry-After"]) >= 1

        _drive(one, one.url(node), scenario)
    finally:
        one.run(release())

    async def after(call: Call) -> None:
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows", json=_start_body(wid))
        assert status == 201  # the shard recovers once its log commits again

    _drive(one, one.url(node), after)
