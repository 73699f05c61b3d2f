"""Workflows for the UI tests, driven over the plain HTTP API (docs/api.md, worker protocol):
the test plays the worker, so the state the pages show is exactly the state it built."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

NS = "/api/v1/namespaces/default"
POLL_WAIT_MS = 10_000
CALL_TIMEOUT_S = 30.0
RETRY_WAIT_S = 0.2


def call(base: str, method: str, path: str, body: Any = None,
         token: str | None = None) -> tuple[int, Any]:
    """One call (with `token` as its bearer token, if any); 503 (a leader moving) is asked
    again, as clients must."""
    deadline = time.monotonic() + CALL_TIMEOUT_S
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    while True:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                return error.code, json.loads(error.read() or b"null")
        time.sleep(RETRY_WAIT_S)


def ok(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    status, answer = call(base, method, path, body, token)
    assert 200 <= status < 300, (method, path, status, answer)
    return answer


def start(base: str, workflow_id: str, workflow_type: str, task_queue: str,
          workflow_input: Any = None) -> str:
    answer = ok(base, "POST", f"{NS}/workflows", {
        "workflow_id": workflow_id, "workflow_type": workflow_type, "task_queue": task_queue,
        "input": workflow_input})
    return str(answer["run_id"])


def poll(base: str, kind: str, task_queue: str) -> dict[str, Any]:
    status, task = call(base, "POST", f"{NS}/task-queues/{task_queue}/{kind}-tasks/poll",
                        {"identity": "ui-test-worker", "wait_ms": POLL_WAIT_MS})
    assert status == 200, (kind, status, task)
    return dict(task)


def charge_with_a_retry(base: str, workflow_id: str, task_queue: str) -> None:
    """`workflow_id` schedules activity `charge` (5 attempts) and a one-hour timer; the first
    attempt fails with `CardDeclined`, the second is running and has heartbeated
    {"progress": 50}: a pending activity with attempt 2, a last failure and details."""
    start(base, workflow_id, "Order", task_queue, {"item": "book", "quantity": 2})
    task = poll(base, "workflow", task_queue)
    assert task["workflow_id"] == workflow_id, task
    ok(base, "POST", "/api/v1/tasks/workflow/complete", {
        "task_token": task["task_token"], "commands": [
            {"type": "ScheduleActivityTask", "activity_id": "charge",
             "activity_type": "ChargeCard", "task_queue": task_queue, "input": [42],
             "start_to_close_timeout_ms": 600_000,
             "retry_policy": {"initial_interval_ms": 100, "backoff_coefficient": 1.0,
                              "maximum_attempts": 5}},
            {"type": "StartTimer", "timer_id": "reminder",
             "start_to_fire_timeout_ms": 3_600_000}]})
    first = poll(base, "activity", task_queue)
    ok(base, "POST", "/api/v1/tasks/activity/fail", {
        "task_token": first["task_token"],
        "failure": {"message": "card declined", "type": "CardDeclined",
                    "non_retryable": False}})
    second = poll(base, "activity", task_queue)
    assert second["attempt"] == 2, second
    ok(base, "POST", "/api/v1/tasks/activity/heartbeat",
       {"task_token": second["task_token"], "details": {"progress": 50}})


def complete_first_task(base: str, workflow_id: str, workflow_type: str, task_queue: str,
                        commands: list[dict[str, Any]]) -> str:
    """Start `workflow_id` and answer its first workflow task with `commands`; its run id."""
    run_id = start(base, workflow_id, workflow_type, task_queue)
    task = poll(base, "workflow", task_queue)
    assert task["workflow_id"] == workflow_id, task
    ok(base, "POST", "/api/v1/tasks/workflow/complete",
       {"task_token": task["task_token"], "commands": commands})
    return run_id


def wait_described(base: str, workflow_id: str, ready: Any) -> dict[str, Any]:
    """Describe `workflow_id` until `ready(description)` holds (a child's start crosses
    shards through the outbox: it lands a moment after the parent's task completed)."""
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while True:
        described = dict(ok(base, "GET", f"{NS}/workflows/{workflow_id}"))
        if ready(described):
            return described
        assert time.monotonic() < deadline, described
        time.sleep(RETRY_WAIT_S)
