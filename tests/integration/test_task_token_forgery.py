"""Goal: task tokens cannot be forged or altered on a real cluster. A completion whose token no
node of this cluster handed out (the old unsigned shape, one signed with another secret, a real
one with its namespace, run or attempt changed) is refused with 400 `invalid_task_token` on
every node and changes nothing; the real worker then completes the same task with its token,
and the workflow runs to completion.

Method: plain HTTP against three `raftflow node` processes (tests/integration/conftest.py):
poll the first workflow task and the first activity task by hand, send forged completions to
each node, check the run's history did not move, then answer with the real tokens and let the
plain HTTP worker (http_worker.py) finish the workflow.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import msgpack

from raftflow.api.task_tokens import MAC_BYTES, TaskTokens
from raftflow.cluster.launcher import LocalCluster
from tests.integration.http_worker import NAMESPACE, TASK_QUEUE, HttpWorker, decide

WF = f"/api/v1/namespaces/{NAMESPACE}/workflows"
TQ = f"/api/v1/namespaces/{NAMESPACE}/task-queues/{TASK_QUEUE}"


def _forgeries(real: str, task: dict[str, Any], kind: str) -> list[str]:
    signed = base64.urlsafe_b64decode(real + "=" * (-len(real) % 4))
    fields, mac = msgpack.unpackb(signed[:-MAC_BYTES]), signed[-MAC_BYTES:]

    def pack(values: list[Any], tail: bytes = b"") -> str:
        return base64.urlsafe_b64encode(msgpack.packb(values) + tail).decode().rstrip("=")

    altered = []
    for index, value in ((1, "other-namespace"), (3, "run-of-someone-else"), (5, fields[5] + 1)):
        changed = list(fields)
        changed[index] = value
        altered.append(pack(changed, mac))
    assert [fields[1], fields[2], fields[3], fields[6]] == [
        task["namespace"], task["workflow_id"], task["run_id"], kind]
    unsigned = pack(fields[1:7])  # the release before signing: the same names, no signature
    other_cluster = TaskTokens("another-cluster's-secret", lambda: 0)._mac(signed[:-MAC_BYTES])  # noqa: SLF001
    return [unsigned, *altered, pack(fields, other_cluster)]


async def _refused_everywhere(session: aiohttp.ClientSession, addresses: list[str], path: str,
                              forgeries: list[str], body: dict[str, Any]) -> None:
    for n, token in enumerate(forgeries):
        address = addresses[n % len(addresses)]
        async with session.post(address + path, json={**body, "task_token": token}) as answer:
            error = (await answer.json())["error"]
            assert answer.status == 400, (answer.status, error)
            assert (error["code"], error["field"]) == ("invalid_task_token", "task_token"), error


async def _history_length(session: aiohttp.ClientSession, address: str) -> int:
    async with session.get(f"{address}{WF}/forge-1") as answer:
        assert answer.status == 200
        description = await answer.json()
        assert description["status"] == "RUNNING", description
        return int(description["history_length"])


async def _poll(session: aiohttp.ClientSession, address: str, kind: str) -> dict[str, Any]:
    for _ in range(50):
        async with session.post(f"{address}{TQ}/{kind}-tasks/poll",
                                json={"identity": "real-worker", "wait_ms": 1000}) as answer:
            if answer.status == 200:
                return dict(await answer.json())
    raise AssertionError(f"no {kind} task")


def test_forged_tokens_change_nothing_and_the_real_worker_completes_the_task(
        cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with aiohttp.ClientSession() as session:
            body = {"workflow_id": "forge-1", "workflow_type": "Order", "task_queue": TASK_QUEUE,
                    "input": {"order": "forge-1"}, "request_id": "r-forge-1"}
            async with session.post(addresses[0] + WF, json=body) as answer:
                assert answer.status == 201, await answer.text()

            task = await _poll(session, addresses[1], "workflow")
            before = await _history_length(session, addresses[0])
            await _refused_everywhere(
                session, addresses, "/api/v1/tasks/workflow/complete",
                _forgeries(task["task_token"], task, "workflow"),
                {"commands": [{"type": "CompleteWorkflowExecution", "result": "forged"}]})
            assert await _history_length(session, addresses[2]) == before
            async with session.post(addresses[2] + "/api/v1/tasks/workflow/complete", json={
                    "task_token": task["task_token"], "commands": decide(task["history"])}) as answer:
                assert answer.status == 200, await answer.text()

            activity = await _poll(session, addresses[0], "activity")
            before = await _history_length(session, addresses[1])
            await _refused_everywhere(session, addresses, "/api/v1/tasks/activity/complete",
                                      _forgeries(activity["task_token"], activity, "activity"),
                                      {"result": "forged"})
            assert await _history_length(session, addresses[0]) == before
            async with session.post(addresses[1] + "/api/v1/tasks/activity/complete", json={
                    "task_token": activity["task_token"], "result": {"done": "charge"}}) as answer:
                assert answer.status == 200, await answer.text()

            worker = HttpWorker(session, addresses)
            stop = asyncio.Event()
            loops = [asyncio.create_task(worker.run_workflow_tasks(stop)),
                     asyncio.create_task(worker.run_activity_tasks(stop))]
            try:
                async with session.get(f"{addresses[0]}{WF}/forge-1/result?wait_ms=30000") as answer:
                    result = await answer.json()
                    assert answer.status == 200, result
            finally:
                stop.set()
                await asyncio.gather(*loops)
            assert result["status"] == "COMPLETED", result
            assert result["result"]["charge"] == {"done": "charge"}  # the real worker's answer

    asyncio.run(main())
