"""Eager tasks and sticky histories over the HTTP worker protocol, on a real in-process node.

Goal: a workflow task completion that asks for eager activities gets them started in the same
commit (in its answer, not on the activity-task queue); an activity completion that asks for
the next workflow task gets it in its answer, carrying only the events the sticky worker has
not seen; any other worker polling gets the whole history; bad eager fields are 400 naming the
field and change nothing.
Method: one node of `NodeRuntime` on a background loop (the in-process gateway harness), driven
with plain HTTP calls; every wait is a long poll with a bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.gateway_harness import (
    API,
    NS,
    Call,
    LiveCluster,
    _cluster,
    _drive,
    _error_code,
    _start_body,
    _wid,
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    yield from _cluster(tmp_path_factory, 1, 2)


def _schedule(activity_id: str, queue: str) -> dict[str, Any]:
    return {"type": "ScheduleActivityTask", "activity_id": activity_id, "activity_type": "Step",
            "task_queue": queue, "input": [activity_id], "start_to_close_timeout_ms": 30_000}


def _ids(task: dict[str, Any]) -> list[int]:
    return [int(e["event_id"]) for e in task["history"]]


def test_eager_activity_then_eager_workflow_task_with_only_new_events(node: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("eager"), _wid("tq")
        tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll",
                                     json={"wait_ms": 5000, "sticky_queue": "sticky-A"})
        assert status == 200 and _ids(task) == [1, 2, 3]  # not sticky yet: whole history
        # Two activities, room for one eager start: the first is started for us, the second
        # is left on the queue for pollers.
        status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "sticky_queue": "sticky-A",
            "eager_task_queue": queue, "eager_activities_max": 1,
            "commands": [_schedule("a1", queue), _schedule("a2", queue)]})
        assert status == 200
        assert [t["activity_id"] for t in answer["activity_tasks"]] == ["a1"]
        eager = answer["activity_tasks"][0]
        assert eager["attempt"] == 1 and eager["input"] == ["a1"]
        status, polled, _ = await call("POST", f"{tq}/activity-tasks/poll", json={"wait_ms": 5000})
        assert status == 200 and polled["activity_id"] == "a2"
        status, nothing, _ = await call("POST", f"{tq}/activity-tasks/poll", json={"wait_ms": 200})
        assert status == 204, nothing  # a1 was never dispatched to pollers

        # Completing a1 schedules workflow task 2 and starts it for us, sticky: events 4.. only.
        status, answer, _ = await call("POST", f"{API}/tasks/activity/complete", json={
            "task_token": eager["task_token"], "result": "r1", "eager_task_queue": queue,
            "sticky_queue": "sticky-A"})
        assert status == 200
        second = answer["workflow_task"]
        assert second["previous_started_event_id"] == 3
        ids = _ids(second)
        assert ids[0] == 4 and ids == list(range(4, second["started_event_id"] + 1)), ids
        types = [e["event_type"] for e in second["history"]]
        assert types[0] == "WorkflowTaskCompleted" and types[-1] == "WorkflowTaskStarted"
        assert "ActivityTaskCompleted" in types
        status, nothing, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 200})
        assert status == 204, nothing  # the eager task was not also dispatched

        # Completing a2 while task 2 runs buffers its events: nothing eager (task 2 is running).
        status, answer, _ = await call("POST", f"{API}/tasks/activity/complete", json={
            "task_token": polled["task_token"], "result": "r2", "eager_task_queue": queue,
            "sticky_queue": "sticky-A"})
        assert status == 200 and answer == {}
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": second["task_token"], "commands": [], "sticky_queue": "sticky-A"})
        assert status == 200
        # Task 3 (for the buffered a2 events) goes to a poller; a different sticky queue (a
        # restarted worker) gets the whole history.
        status, third, _ = await call("POST", f"{tq}/workflow-tasks/poll",
                                      json={"wait_ms": 5000, "sticky_queue": "sticky-B"})
        assert status == 200 and _ids(third) == list(range(1, third["started_event_id"] + 1))
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": third["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": "done"}]})
        assert status == 200
        status, history, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}/history")
        events = history["events"]
        assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
        assert [e["event_type"] for e in events].count("ActivityTaskCompleted") == 2
        assert events[-1]["event_type"] == "WorkflowExecutionCompleted"

    _drive(node, node.url(node.nodes[0]), scenario)


def test_bad_eager_fields_are_400_and_change_nothing(node: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("bad-eager"), _wid("tq")
        tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
        await call("POST", f"{API}/namespaces/{NS}/workflows",
                   json=_start_body(wid, task_queue=queue))
        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200
        for field, value in (("eager_activities_max", 17), ("eager_activities_max", "2"),
                             ("eager_activities_max", 2**70),
                             ("eager_task_queue", 5), ("sticky_queue", "x" * 1001)):
            status, body, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
                "task_token": task["task_token"], "commands": [_schedule("a1", queue)],
                field: value})
            assert status == 400 and _error_code(body) == "invalid_argument", (field, body)
            assert body["error"]["field"] == field, body
        # The task is still the current one: a correct completion is accepted.
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": None}]})
        assert status == 200

    _drive(node, node.url(node.nodes[0]), scenario)


def test_eager_start_hands_the_first_task_to_the_caller_once(node: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("eager-start"), _wid("tq")
        tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
        body = _start_body(wid, task_queue=queue, request_id=_wid("req"),
                           eager_task_queue=queue, eager_identity="me")
        status, started, _ = await call("POST", f"{API}/namespaces/{NS}/workflows", json=body)
        assert status == 201
        task = started["workflow_task"]
        assert task["run_id"] == started["run_id"] and _ids(task) == [1, 2, 3]
        assert task["history"][2]["attributes"]["identity"] == "me"
        status, nothing, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 200})
        assert status == 204, nothing  # not also offered to pollers
        # A retry of the start (same request id: its first answer was lost) gets the first
        # answer, with the same task while it is still started (else it would wait for its
        # timeout with nobody running it).
        status, again, _ = await call("POST", f"{API}/namespaces/{NS}/workflows", json=body)
        assert status in (200, 201) and again == started
        # Another queue asks for nothing eager: the task goes to pollers as usual.
        other = _start_body(_wid("eager-other"), task_queue=queue, eager_task_queue="elsewhere")
        status, plain, _ = await call("POST", f"{API}/namespaces/{NS}/workflows", json=other)
        assert status == 201 and "workflow_task" not in plain
        status, polled, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200 and polled["run_id"] == plain["run_id"]
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": 1}]})
        assert status == 200
        status, body, _ = await call("POST", f"{API}/namespaces/{NS}/workflows", json=_start_body(
            _wid("eager-bad"), task_queue=queue, eager_identity="x" * 1001))
        assert status == 400 and body["error"]["field"] == "eager_identity", body

    _drive(node, node.url(node.nodes[0]), scenario)
