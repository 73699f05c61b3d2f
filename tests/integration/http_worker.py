"""A plain HTTP worker, as a user without an SDK would write one: poll, decide, respond.

The workflow ("Order"): run activity `charge` (fails on its first attempt, so the server
retries it), then activity `ship`, then a 300 ms durable timer, then complete with both results.
Decisions are a pure function of the history, so any worker (or a restarted one) continues it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

NAMESPACE = "default"
TASK_QUEUE = "orders"


def decide(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The workflow's next commands, from its full history."""
    scheduled = {e["attributes"]["activity_id"]: e["event_id"]
                 for e in history if e["event_type"] == "ActivityTaskScheduled"}
    results = {e["attributes"]["scheduled_event_id"]: e["attributes"].get("result")
               for e in history if e["event_type"] == "ActivityTaskCompleted"}
    order = history[0]["attributes"]["input"]
    if "charge" not in scheduled:
        return [{"type": "ScheduleActivityTask", "activity_id": "charge", "activity_type": "charge",
                 "input": order, "start_to_close_timeout_ms": 5000,
                 "retry_policy": {"initial_interval_ms": 200, "maximum_attempts": 5}}]
    if scheduled["charge"] not in results:
        return []
    if "ship" not in scheduled:
        return [{"type": "ScheduleActivityTask", "activity_id": "ship", "activity_type": "ship",
                 "input": order, "start_to_close_timeout_ms": 5000}]
    if scheduled["ship"] not in results:
        return []
    if not any(e["event_type"] == "TimerStarted" for e in history):
        return [{"type": "StartTimer", "timer_id": "cool-off", "start_to_fire_timeout_ms": 300}]
    if not any(e["event_type"] == "TimerFired" for e in history):
        return []
    return [{"type": "CompleteWorkflowExecution",
             "result": {"charge": results[scheduled["charge"]], "ship": results[scheduled["ship"]]}}]


class HttpWorker:
    """Polls one node (the gateway fans polls out to every shard) and runs the Order workflow."""

    def __init__(self, session: aiohttp.ClientSession, addresses: list[str]) -> None:
        self.session = session
        self.addresses = addresses
        self.activity_runs: list[tuple[str, int]] = []  # (activity_type, attempt): at-least-once log
        self._turn = 0

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST to a live node, moving on to the next address on connection errors or 503."""
        for _ in range(50):
            address = self.addresses[self._turn % len(self.addresses)]
            try:
                async with self.session.post(address + path, json=body,
                                             timeout=aiohttp.ClientTimeout(total=15)) as answer:
                    if answer.status in (502, 503, 504):
                        self._turn += 1
                        await asyncio.sleep(0.2)
                        continue
                    payload = await answer.json() if answer.status != 204 else None
                    return answer.status, payload
            except (TimeoutError, aiohttp.ClientError):
                self._turn += 1
                await asyncio.sleep(0.2)
        raise AssertionError(f"no node answered {path}")

    async def run_workflow_tasks(self, stop: asyncio.Event) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/task-queues/{TASK_QUEUE}/workflow-tasks/poll"
        while not stop.is_set():
            status, task = await self._post(path, {"identity": "wf-worker", "wait_ms": 1000})
            if status != 200:
                continue
            commands = decide(task["history"])
            await self._post("/api/v1/tasks/workflow/complete",
                             {"task_token": task["task_token"], "commands": commands})

    async def run_activity_tasks(self, stop: asyncio.Event) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/task-queues/{TASK_QUEUE}/activity-tasks/poll"
        while not stop.is_set():
            status, task = await self._post(path, {"identity": "act-worker", "wait_ms": 1000})
            if status != 200:
                continue
            self.activity_runs.append((task["activity_type"], task["attempt"]))
            if task["activity_type"] == "charge" and task["attempt"] == 1:
                await self._post("/api/v1/tasks/activity/fail", {
                    "task_token": task["task_token"],
                    "failure": {"message": "card declined, try again", "type": "Transient"}})
                continue
            await self._post("/api/v1/tasks/activity/complete", {
                "task_token": task["task_token"],
                "result": {"done": task["activity_type"], "order": task["input"]}})
