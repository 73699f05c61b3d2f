"""Goal: workflow updates over HTTP, with the test playing the worker: the caller waits for
the stage it asked for; the task carries the update; accept + complete gives the caller the
result, a rejection its failure and no event; the update id deduplicates; bad input is a 400
naming the field; a run closed before the update completed answers 409.

Method: the one-node cluster (`one`, conftest.py); updates are sent in a background task while
the test polls and completes the workflow task by hand.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from raftflow.api.errors import OverloadedError
from raftflow.api.update_handlers import UpdateWaiters
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


async def _started(call: Call) -> tuple[str, str, str]:
    """A run whose first workflow task completed (it waits on a long timer)."""
    wid, queue = _wid("upd"), _wid("tq")
    tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
    status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                              json=_start_body(wid, task_queue=queue))
    assert status == 201
    status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
    assert status == 200
    status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
        "task_token": task["task_token"], "commands": [
            {"type": "StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 3_600_000}]})
    assert status == 200
    return wid, tq, f"{API}/namespaces/{NS}/workflows/{wid}"


async def _poll(call: Call, tq: str) -> dict[str, Any]:
    status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
    assert status == 200, task
    return dict(task)


def test_update_accepted_and_completed_reaches_the_caller_and_history(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, tq, wf = await _started(call)
        caller = asyncio.ensure_future(call("POST", f"{wf}/updates", json={
            "name": "add", "input": [2], "update_id": "u-1", "wait_for_stage": "completed"}))
        task = await _poll(call, tq)
        assert task["updates"] == [{"update_id": "u-1", "name": "add", "input": [2]}]
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "update_responses": [{"update_id": "u-1"}],
            "commands": [{"type": "CompleteWorkflowUpdate", "update_id": "u-1", "result": 5}]})
        assert status == 200
        status, answer, _ = await caller
        assert status == 200, answer
        assert answer["stage"] == "completed" and answer["result"] == 5
        assert answer["update_id"] == "u-1" and answer["workflow_id"] == wid
        status, again, _ = await call("POST", f"{wf}/updates", json={
            "name": "add", "input": [2], "update_id": "u-1"})
        assert status == 200 and again == answer  # deduplicated: the first outcome
        status, read, _ = await call("GET", f"{wf}/updates/u-1")
        assert status == 200 and read == answer
        status, page, _ = await call("GET", f"{wf}/history")
        types = [e["event_type"] for e in page["events"]]
        assert types[-3:] == ["WorkflowTaskCompleted", "WorkflowExecutionUpdateAccepted",
                              "WorkflowExecutionUpdateCompleted"]
        accepted = page["events"][-2]["attributes"]
        assert accepted["update_id"] == "u-1" and accepted["input"] == [2]

    _drive(one, one.url(one.nodes[0]), scenario)


def test_rejected_update_gives_the_failure_and_no_event(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        _, tq, wf = await _started(call)
        status, admitted, _ = await call("POST", f"{wf}/updates", json={
            "name": "add", "update_id": "u-2", "wait_ms": 0})
        assert status == 200 and admitted["stage"] == "admitted"
        task = await _poll(call, tq)
        rejection = {"message": "negative", "type": "ValueError"}
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "update_responses": [{"update_id": "u-2", "rejection": rejection}]})
        assert status == 200
        status, outcome, _ = await call("GET", f"{wf}/updates/u-2?wait_ms=5000")
        assert status == 200 and outcome["stage"] == "completed"
        assert outcome["failure"]["message"] == "negative" and "result" not in outcome
        status, page, _ = await call("GET", f"{wf}/history")
        assert not any("Update" in e["event_type"] for e in page["events"])

    _drive(one, one.url(one.nodes[0]), scenario)


def test_bad_update_input_and_closed_runs_are_refused(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        _, tq, wf = await _started(call)
        status, body, _ = await call("POST", f"{wf}/updates", json={"name": ""})
        assert status == 400 and body["error"]["field"] == "name"
        status, body, _ = await call("POST", f"{wf}/updates", json={
            "name": "x", "wait_for_stage": "soon"})
        assert status == 400 and "wait_for_stage" in body["error"]["field"]
        status, body, _ = await call("GET", f"{wf}/updates/nope?wait_ms=0")
        assert status == 404 and _error_code(body) == "not_found"
        status, _, _ = await call("POST", f"{wf}/updates", json={
            "name": "x", "update_id": "u-3", "wait_ms": 0})
        assert status == 200
        status, _, _ = await call("POST", f"{wf}/terminate", json={"reason": "done"})
        assert status == 200
        status, body, _ = await call("GET", f"{wf}/updates/u-3?wait_ms=0")
        assert status == 409 and _error_code(body) == "workflow_not_running"
        status, body, _ = await call("POST", f"{wf}/updates", json={"name": "x"})
        assert status == 409 and _error_code(body) == "workflow_not_running"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_update_waiters_are_bounded_per_node() -> None:
    waiters = UpdateWaiters(limit=2)
    with waiters.slot(), waiters.slot():
        with pytest.raises(OverloadedError), waiters.slot():
            pass
        assert waiters.waiting == 2
    assert waiters.waiting == 0
    with waiters.slot():  # freed again
        assert waiters.waiting == 1


def test_updates_reach_the_leader_from_every_node(three: LiveCluster) -> None:
    """Sent to any node, an update is admitted on the shard's leader (forwarded one hop), and
    its outcome is read through any node."""
    async def scenario(call: Call) -> None:
        wid, queue = _wid("upd3"), _wid("tq")
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        urls = [three.url(node) for node in three.nodes]
        for index, url in enumerate(urls):
            status, answer, _ = await call("POST", f"{wf}/updates", base_url=url, json={
                "name": "n", "update_id": f"via-{index}", "wait_ms": 0})
            assert status == 200 and answer["stage"] == "admitted", answer
        for url in urls:
            for index in range(len(urls)):
                status, answer, _ = await call("GET", f"{wf}/updates/via-{index}?wait_ms=0",
                                               base_url=url)
                assert status == 200 and answer["stage"] == "admitted"
        tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
        task = await _poll(call, tq)
        assert [u["update_id"] for u in task["updates"]] == ["via-0", "via-1", "via-2"]

    _drive(three, three.url(three.nodes[0]), scenario)
