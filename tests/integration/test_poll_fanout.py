"""A claimed task always reaches a poller: one worker with one slot gets every task at once.

Goal: the issue "one poll fan-out, and no claim without a taker". A gateway poll waits on every
node; when two nodes claim a task for the same poll, the one not returned must not sit where
no later poll looks (it was recorded `WorkflowTaskStarted`, so it would come back only after
its task timeout, as attempt 2).
Method: a real 3-node cluster with balanced leaders (so the workflows' tasks are spread over
the three nodes); N workflows are started on one task queue, then ONE raw HTTP poller with one
slot polls a random node each time (a plain workflow-task poll, no `local=1`) and completes
each task it gets. While tasks remain, every poll must return a task within 1 s; at the end
every workflow is completed and no history shows a timed-out or retried workflow task.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp

from raftflow.cluster.launcher import LocalCluster

NAMESPACE = "default"
TASK_QUEUE = "one-slot"
WORKFLOWS = 12
POLL_ANSWER_S_MAX = 1.0  # the bound: a task is handed out within 1 s of the ask
POLL_WAIT_MS = 5_000  # long enough that a missing task shows as a slow poll, not a 204
SEED = 20_261_206
WF = f"/api/v1/namespaces/{NAMESPACE}/workflows"
POLL = f"/api/v1/namespaces/{NAMESPACE}/task-queues/{TASK_QUEUE}/workflow-tasks/poll"


def _wait_balanced(cluster: LocalCluster, timeout_s: float = 30.0) -> None:
    """Leaders on their preferred replicas: tasks spread over all nodes, and no leader moves
    (which drops and re-derives dispatches) while the poller runs."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = cluster.status()
        assert status is not None
        shards = status["shards"]
        if all(s["leader"] == s["replicas"][0] for s in shards):
            assert len({s["leader"] for s in shards}) == len(cluster.node_ids)
            return
        assert time.monotonic() < deadline, "leaders never settled on their preferred replicas"
        time.sleep(0.2)


async def _call(session: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None) -> tuple[int, Any]:
    for _ in range(50):
        async with session.request(method, url, json=body,
                                   timeout=aiohttp.ClientTimeout(total=15)) as answer:
            if answer.status != 503:
                payload = await answer.json() if answer.status == 200 else None
                return answer.status, payload
        await asyncio.sleep(0.2)
    raise AssertionError(f"{method} {url} kept answering 503")


def test_one_poller_with_one_slot_gets_every_task_within_a_second(cluster: LocalCluster) -> None:
    _wait_balanced(cluster)
    addresses = [cluster.address(n) for n in cluster.node_ids]
    rng = random.Random(SEED)

    async def main() -> list[list[dict[str, Any]]]:
        async with aiohttp.ClientSession() as session:
            for index in range(WORKFLOWS):
                status, _ = await _call(session, "POST", addresses[index % 3] + WF, {
                    "workflow_id": f"fan-{index}", "workflow_type": "Fan",
                    "task_queue": TASK_QUEUE, "input": index, "request_id": f"fan-{index}"})
                assert status in (200, 201), status
            completed: set[str] = set()
            slow: list[str] = []
            while len(completed) < WORKFLOWS:
                address = rng.choice(addresses)
                sent = time.monotonic()
                status, task = await _call(session, "POST", address + POLL, {
                    "identity": "one-slot", "wait_ms": POLL_WAIT_MS})
                waited_s = time.monotonic() - sent
                if status != 200 or waited_s > POLL_ANSWER_S_MAX:
                    slow.append(f"poll to {address}: {status} after {waited_s:.2f} s with "
                                f"{WORKFLOWS - len(completed)} tasks left")
                if status != 200:
                    continue
                status, _ = await _call(
                    session, "POST", address + "/api/v1/tasks/workflow/complete",
                    {"task_token": task["task_token"], "commands": [
                        {"type": "CompleteWorkflowExecution", "result": task["workflow_id"]}]})
                assert status == 200, status
                completed.add(task["workflow_id"])
            assert not slow, f"seed {SEED}: polls not answered at once: {slow}"
            histories = []
            for index in range(WORKFLOWS):
                status, history = await _call(
                    session, "GET", f"{addresses[0]}{WF}/fan-{index}/history")
                assert status == 200, status
                histories.append(list(history["events"]))
            return histories

    for history in asyncio.run(main()):
        types = [e["event_type"] for e in history]
        assert types[-1] == "WorkflowExecutionCompleted", types
        assert "WorkflowTaskTimedOut" not in types, types
        attempts = [e["attributes"].get("attempt", 1) for e in history
                    if e["event_type"] == "WorkflowTaskScheduled"]
        assert all(a == 1 for a in attempts), (types, attempts)
