"""Goal: the worker protocol over HTTP — poll, complete, fail, heartbeat, stale completions
refused, bad worker input refused with the field named and the task left open, a retried
signal that changes nothing (I5), cancel closed through the worker, a durable timer that
schedules the next workflow task, and a task not lost to a poller that hung up.

Method: a one-node cluster (`one`, conftest.py), and the three-node one (`three`) for the
hung-up poller, on one asyncio loop in a background thread; each test plays the worker with an
aiohttp client on that loop (`gateway_harness._drive`). Waits are long polls; no fixed sleeps.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

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


def test_worker_flow_poll_complete_fail_heartbeat_and_stale_completions(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("work"), _wid("tq")
        tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        status, _, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 0})
        assert status == 204
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200 and task["workflow_id"] == wid
        assert [e["event_id"] for e in task["history"]] == list(range(1, len(task["history"]) + 1))
        commands = [
            {"type": "ScheduleActivityTask", "activity_id": "a1", "activity_type": "Charge",
             "task_queue": queue, "input": {"n": 1}, "start_to_close_timeout_ms": 30_000},
            {"type": "ScheduleActivityTask", "activity_id": "a2", "activity_type": "Charge",
             "task_queue": queue, "start_to_close_timeout_ms": 30_000,
             "retry_policy": {"maximum_attempts": 1}},
            {"type": "StartTimer", "timer_id": "t1", "start_to_fire_timeout_ms": 3_600_000},
        ]
        completion = {"task_token": task["task_token"], "commands": commands}
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json=completion)
        assert status == 200
        status, stale, _ = await call("POST", f"{API}/tasks/workflow/complete", json=completion)
        assert status == 409 and _error_code(stale) == "stale_task"

        activities = {}
        for _ in range(2):
            status, activity, _ = await call("POST", f"{tq}/activity-tasks/poll",
                                             json={"wait_ms": 5000})
            assert status == 200
            activities[activity["activity_id"]] = activity
        assert activities["a1"]["input"] == {"n": 1}
        token1, token2 = activities["a1"]["task_token"], activities["a2"]["task_token"]
        status, beat, _ = await call("POST", f"{API}/tasks/activity/heartbeat",
                                     json={"task_token": token1, "details": {"p": 50}})
        assert status == 200 and beat == {"cancel_requested": False}
        status, _, _ = await call("POST", f"{API}/tasks/activity/complete",
                                  json={"task_token": token1, "result": {"ok": True}})
        assert status == 200
        status, stale, _ = await call("POST", f"{API}/tasks/activity/complete",
                                      json={"task_token": token1, "result": {"ok": True}})
        assert status == 409 and _error_code(stale) == "stale_task"
        status, _, _ = await call("POST", f"{API}/tasks/activity/fail", json={
            "task_token": token2, "failure": {"message": "card declined", "type": "Declined",
                                              "non_retryable": True}})
        assert status == 200

        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": {"done": 1}}]})
        assert status == 200
        status, described, _ = await call("GET", wf)
        assert described["status"] == "COMPLETED"
        status, history, _ = await call("GET", wf + "/history")
        types = [e["event_type"] for e in history["events"]]
        for expected in ("ActivityTaskScheduled", "ActivityTaskCompleted", "ActivityTaskFailed",
                         "TimerStarted", "WorkflowExecutionCompleted"):
            assert expected in types, (expected, types)
        assert types[-1] == "WorkflowExecutionCompleted"
        assert [e["event_id"] for e in history["events"]] == list(range(1, len(types) + 1))

    _drive(one, one.url(one.nodes[0]), scenario)


def test_bad_worker_input_is_400(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("badworker"), _wid("tq")
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        status, task, _ = await call(
            "POST", f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll",
            json={"wait_ms": 5000})
        assert status == 200
        huge_timer = [{"type": "StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 10**30}]
        status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "commands": huge_timer})
        assert status == 400, answer
        assert answer["error"]["field"] == "commands[0].start_to_fire_timeout_ms"
        status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "commands": [{"type": "Explode"}]})
        assert status == 400 and answer["error"]["field"] == "commands[0].type"
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "commands": []})
        assert status == 200  # the refusals above left the task open
        status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete",
                                       json={"commands": []})
        assert status == 400 and answer["error"]["field"] == "task_token"
        status, answer, _ = await call("POST", f"{API}/namespaces/{NS}/task-queues/q/workflow-tasks/poll",
                                       json={"wait_ms": -1})
        assert status == 400 and answer["error"]["field"] == "wait_ms"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_signal_retry_is_idempotent_and_cancel_closes_through_the_worker(
        one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("cancel"), _wid("tq")
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        poll = f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll"
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        for _ in range(2):
            status, _, _ = await call("POST", wf + "/signal", json={
                "signal_name": "go", "input": 1, "request_id": "sig-1"})
            assert status == 200
        status, _, _ = await call("POST", wf + "/cancel", json={"reason": "user"})
        assert status == 200
        status, history, _ = await call("GET", wf + "/history")
        types = [e["event_type"] for e in history["events"]]
        assert types.count("WorkflowExecutionSignaled") == 1  # the retry changed nothing (I5)
        assert "WorkflowExecutionCancelRequested" in types
        status, task, _ = await call("POST", poll, json={"wait_ms": 5000})
        assert status == 200
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CancelWorkflowExecution", "details": "bye"}]})
        assert status == 200
        status, described, _ = await call("GET", wf)
        assert described["status"] == "CANCELED"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_a_durable_timer_fires_and_schedules_the_next_workflow_task(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("timer"), _wid("tq")
        poll = f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll"
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, task, _ = await call("POST", poll, json={"wait_ms": 5000})
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 50}]})
        assert status == 200
        status, task, _ = await call("POST", poll, json={"wait_ms": 5000})
        assert status == 200, "the timer did not fire"
        types = [e["event_type"] for e in task["history"]]
        assert types.index("TimerStarted") < types.index("TimerFired")

    _drive(one, one.url(one.nodes[0]), scenario)


@pytest.mark.parametrize("cluster_name", ["one", "three"])
def test_a_task_is_not_lost_to_a_poller_that_hung_up(
        request: pytest.FixtureRequest, cluster_name: str) -> None:
    """A worker whose long poll is cut (client timeout, crash) must not swallow the next task:
    the next poll gets it at once, first attempt, not after the 10 s task timeout."""
    cluster: LiveCluster = request.getfixturevalue(cluster_name)
    wid, queue = _wid("hangup"), _wid("tq")
    poll = f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll"
    entry = cluster.nodes[0]

    async def scenario(call: Call) -> None:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.post(cluster.url(entry) + poll, json={"wait_ms": 20_000},
                                   timeout=aiohttp.ClientTimeout(total=0.3))
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, task, _ = await call("POST", poll, json={"wait_ms": 3000})
        assert status == 200, "the task went to the poller that hung up"
        assert task["workflow_id"] == wid and task["attempt"] == 1

    _drive(cluster, cluster.url(entry), scenario)
