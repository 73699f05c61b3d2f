"""Waiting for a result and querying a workflow, on a real 3-node cluster.

Goal: `GET .../result` long-polls (204 while running, the closed run's description as soon as it
closes, not at the end of the wait); `POST .../query` reaches a worker of the workflow's task
queue as a query task with the run's history, and the worker's answer, sent to any node, comes
back to the caller; no worker → 504; a failing query handler → 400 query_failed.
Method: plain HTTP against `raftflow node` processes (tests/integration/conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from raftflow.cluster.launcher import LocalCluster
from tests.integration.http_worker import NAMESPACE, HttpWorker

WF = f"/api/v1/namespaces/{NAMESPACE}/workflows"


async def _start(session: aiohttp.ClientSession, address: str, workflow_id: str, queue: str) -> str:
    body = {"workflow_id": workflow_id, "workflow_type": "Order", "task_queue": queue,
            "input": {"order": workflow_id}, "request_id": f"r-{workflow_id}"}
    for _ in range(50):
        async with session.post(address + WF, json=body) as answer:
            if answer.status in (200, 201):
                return str((await answer.json())["run_id"])
        await asyncio.sleep(0.2)
    raise AssertionError("not started")


def test_result_long_poll_answers_when_the_run_closes(cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with aiohttp.ClientSession() as session:
            run_id = await _start(session, addresses[0], "res-1", "orders")
            async with session.get(f"{addresses[1]}{WF}/res-1/result?wait_ms=200") as answer:
                assert answer.status == 204
            waiting = asyncio.ensure_future(session.get(f"{addresses[2]}{WF}/res-1/result?wait_ms=30000"))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            worker = HttpWorker(session, addresses)
            stop = asyncio.Event()
            loops = [asyncio.create_task(worker.run_workflow_tasks(stop)),
                     asyncio.create_task(worker.run_activity_tasks(stop))]
            started = time.monotonic()
            answer = await waiting
            waited_s = time.monotonic() - started
            body = await answer.json()
            stop.set()
            await asyncio.gather(*loops)
            assert answer.status == 200, body
            assert body["status"] == "COMPLETED" and body["run_id"] == run_id
            assert body["result"]["ship"]["done"] == "ship"
            assert waited_s < 15  # woken by the close, not by the 30 s wait

    asyncio.run(main())


async def _answer_one_query(session: aiohttp.ClientSession, poll_at: str, answer_at: str,
                            reply: dict[str, Any]) -> dict[str, Any]:
    """Poll workflow tasks until a query task arrives; answer it at another node."""
    poll = f"{poll_at}/api/v1/namespaces/{NAMESPACE}/task-queues/lookups/workflow-tasks/poll"
    while True:
        async with session.post(poll, json={"identity": "q-worker", "wait_ms": 2000}) as answer:
            if answer.status != 200:
                continue
            task = await answer.json()
        if "query_id" not in task:
            await session.post(f"{poll_at}/api/v1/tasks/workflow/complete",
                               json={"task_token": task["task_token"], "commands": []})
            continue
        async with session.post(f"{answer_at}/api/v1/tasks/query/respond",
                                json={"query_id": task["query_id"], **reply}) as answered:
            assert answered.status == 200, await answered.text()
        return dict(task)


def test_query_goes_through_a_worker_and_back(cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with aiohttp.ClientSession() as session:
            run_id = await _start(session, addresses[0], "q-1", "lookups")
            query = asyncio.ensure_future(session.post(
                f"{addresses[1]}{WF}/q-1/query", json={"query_type": "status", "args": [1, "x"]}))
            task = await _answer_one_query(session, addresses[2], addresses[0],
                                           {"result": {"stage": "packing"}})
            answer = await query
            assert answer.status == 200, await answer.text()
            assert await answer.json() == {"result": {"stage": "packing"}}
            assert task["query_type"] == "status" and task["args"] == [1, "x"]
            assert task["run_id"] == run_id and task["workflow_type"] == "Order"
            assert task["history"][0]["event_type"] == "WorkflowExecutionStarted"

            failing = asyncio.ensure_future(session.post(
                f"{addresses[2]}{WF}/q-1/query", json={"query_type": "boom"}))
            await _answer_one_query(session, addresses[0], addresses[1],
                                    {"error": {"message": "no such query", "type": "KeyError"}})
            answer = await failing
            assert answer.status == 400
            assert (await answer.json())["error"]["code"] == "query_failed"

            async with session.post(f"{addresses[0]}{WF}/q-1/query",
                                    json={"query_type": "status", "timeout_ms": 300}) as lonely:
                assert lonely.status == 504
                assert (await lonely.json())["error"]["code"] == "timeout"

    asyncio.run(main())
