"""A run longer than the in-memory part of a history, on a real cluster (issue 13, item 6).

Goal: an open run whose history passes HISTORY_HOT_EVENTS_MAX + a chunk has its oldest events
moved to the shard store (run_history.py), and nothing outside can tell: the history pages,
the whole history a (non-sticky) workflow task hands a worker, and describe's length are as
if it all stayed in memory, through a crash of every node (the spilled chunks are store rows,
the log replays the rest) and after the run closes (its chunks join the closed run).
Method: real node processes (tests/integration/conftest.py), HTTP only. One workflow gets
SIGNALS signals while no worker polls, so each one is one event; then every node is killed
with SIGKILL and started again; then a worker polls its task and completes the run.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import pytest

from raftflow.cluster.launcher import LocalCluster
from raftflow.shards.core import limits

NS = "/api/v1/namespaces/default"
WID = "long-history"
QUEUE = "long-q"
# Enough events for two spills: the run then holds 2 chunks in the store.
SIGNALS = limits.HISTORY_HOT_EVENTS_MAX + 3 * limits.HISTORY_CHUNK_EVENTS
CONCURRENT_SIGNALS = 16
PAGE_SIZE = 97  # pages that straddle chunk boundaries
RETRIES = 100


async def _call(session: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One call, retried on 503 (a leader changing, a node restarting), as clients do."""
    for _ in range(RETRIES):
        try:
            async with session.request(method, url, json=body) as answer:
                if answer.status != 503:
                    text = await answer.text()
                    return answer.status, await answer.json() if text else None
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{method} {url}: no answer but 503")


async def _history(session: aiohttp.ClientSession, address: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = ""
    while True:
        url = f"{address}{NS}/workflows/{WID}/history?page_size={PAGE_SIZE}"
        status, page = await _call(session, "GET", url + (f"&next_page_token={token}"
                                                          if token else ""))
        assert status == 200, page
        events += page["events"]
        token = page["next_page_token"] or ""
        if not token:
            return events


def _check_whole(events: list[dict[str, Any]]) -> None:
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event_type"] == "WorkflowExecutionStarted"
    signalled = [e["attributes"]["input"] for e in events
                 if e["event_type"] == "WorkflowExecutionSignaled"]
    assert sorted(signalled) == sorted(range(SIGNALS)), len(signalled)


@pytest.mark.timeout(300)
def test_a_run_longer_than_memory_holds_reads_whole_through_a_crash(
        cluster: LocalCluster) -> None:
    addresses = [cluster.address(n) for n in cluster.node_ids]

    async def signal_all(session: aiohttp.ClientSession) -> None:
        status, _ = await _call(session, "POST", f"{addresses[0]}{NS}/workflows", {
            "workflow_id": WID, "workflow_type": "Long", "task_queue": QUEUE,
            "request_id": "start-long"})
        assert status == 201
        pending = iter(range(SIGNALS))

        async def signaller(lane: int) -> None:
            for i in pending:
                status, answer = await _call(
                    session, "POST", f"{addresses[lane % 3]}{NS}/workflows/{WID}/signal",
                    {"signal_name": "tick", "input": i, "request_id": f"tick-{i}"})
                assert status == 200, answer

        await asyncio.gather(*(signaller(lane) for lane in range(CONCURRENT_SIGNALS)))

    async def before_crash() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            await signal_all(session)
            events = await _history(session, addresses[1])
            _check_whole(events)
            status, described = await _call(session, "GET", f"{addresses[2]}{NS}/workflows/{WID}")
            assert status == 200 and described["history_length"] == len(events)
            return events

    events = asyncio.run(before_crash())
    assert len(events) > limits.HISTORY_HOT_EVENTS_MAX + limits.HISTORY_CHUNK_EVENTS

    for node_id in cluster.node_ids:
        cluster.kill(node_id, signal.SIGKILL)
    for node_id in cluster.node_ids:
        cluster.start_node(node_id)
    cluster.wait_ready()

    async def after_crash() -> None:
        async with aiohttp.ClientSession() as session:
            assert await _history(session, addresses[2]) == events
            status, task = await _call(
                session, "POST", f"{addresses[0]}{NS}/task-queues/{QUEUE}/workflow-tasks/poll",
                {"wait_ms": 20_000, "identity": "long-worker"})
            assert status == 200, task
            # Not sticky: the whole history, the spilled part read back from the store.
            assert task["history"][:len(events)] == events
            assert [e["event_id"] for e in task["history"]] == list(
                range(1, task["started_event_id"] + 1))
            status, done = await _call(session, "POST", f"{addresses[1]}/api/v1/tasks/workflow/complete", {
                "task_token": task["task_token"],
                "commands": [{"type": "CompleteWorkflowExecution", "result": len(events)}]})
            assert status == 200, done
            closed = await _history(session, addresses[1])
            assert closed[:len(events)] == events
            assert closed[-1]["event_type"] == "WorkflowExecutionCompleted"
            _check_whole(closed)
            status, described = await _call(session, "GET", f"{addresses[0]}{NS}/workflows/{WID}")
            assert described["status"] == "COMPLETED"
            assert described["history_length"] == len(closed)

    asyncio.run(after_crash())
