"""A folded workflow task over the HTTP worker protocol (a worker in any language can fold).

Goal: an activity completion carrying `workflow_task_completion` (the workflow task it makes,
completed in advance) is applied in one commit when the history is the one the worker saw: the
answer says `workflow_task_completed`, carries the activities it started eagerly and the events
it wrote; with a stale `after_event_id` the completion is applied alone and the task comes back
started, as without folding; a bad field is 400 naming it and changes nothing.
Method: one in-process node (gateway_harness), plain HTTP calls.
"""

from __future__ import annotations

import time
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


async def _running_activity(call: Call, wid: str, queue: str) -> tuple[dict[str, Any], int]:
    """A run whose first task scheduled activity a1, started eagerly for us: (its task, the
    run's last event id)."""
    tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
    status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                              json=_start_body(wid, task_queue=queue))
    assert status == 201
    status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll",
                                 json={"wait_ms": 5000, "sticky_queue": "sticky-A"})
    assert status == 200
    status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
        "task_token": task["task_token"], "sticky_queue": "sticky-A", "eager_task_queue": queue,
        "eager_activities_max": 1, "commands": [_schedule("a1", queue)]})
    assert status == 200
    # What the completion wrote, for the worker's replay: WorkflowTaskCompleted, then a1.
    assert [e["event_type"] for e in answer["events"]] == ["WorkflowTaskCompleted",
                                                          "ActivityTaskScheduled"]
    activity = answer["activity_tasks"][0]
    assert activity["scheduled_event_id"] == answer["events"][1]["event_id"]
    return activity, answer["events"][-1]["event_id"]


def test_a_folded_task_is_applied_with_the_completion(node: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("fold"), _wid("tq")
        activity, last = await _running_activity(call, wid, queue)
        now_ms = int(time.time() * 1000)
        status, answer, _ = await call("POST", f"{API}/tasks/activity/complete", json={
            "task_token": activity["task_token"], "result": "r1", "eager_task_queue": queue,
            "sticky_queue": "sticky-A", "workflow_task_completion": {
                "after_event_id": last, "workflow_time_ms": now_ms,
                "eager_activities_max": 1, "commands": [_schedule("a2", queue)]}})
        assert status == 200, answer
        assert answer["workflow_task_completed"] is True and "workflow_task" not in answer
        assert [t["activity_id"] for t in answer["activity_tasks"]] == ["a2"]
        assert [e["event_type"] for e in answer["events"]] == ["WorkflowTaskCompleted",
                                                              "ActivityTaskScheduled"]
        status, history, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}/history")
        events = history["events"]
        assert [e["event_type"] for e in events[last:]] == [
            "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled",
            "WorkflowTaskStarted", "WorkflowTaskCompleted", "ActivityTaskScheduled"]
        assert len({e["timestamp"] for e in events[last:]}) == 1  # all at the worker's time

    _drive(node, node.url(node.nodes[0]), scenario)


def test_a_stale_fold_leaves_the_task_started_for_the_worker(node: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("stale-fold"), _wid("tq")
        activity, last = await _running_activity(call, wid, queue)
        status, answer, _ = await call("POST", f"{API}/tasks/activity/complete", json={
            "task_token": activity["task_token"], "result": "r1", "eager_task_queue": queue,
            "sticky_queue": "sticky-A", "workflow_task_completion": {
                "after_event_id": last - 1, "workflow_time_ms": int(time.time() * 1000),
                "commands": [{"type": "CompleteWorkflowExecution", "result": "x"}]}})
        assert status == 200 and "workflow_task_completed" not in answer
        task = answer["workflow_task"]
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": "y"}]})
        assert status == 200
        status, described, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}")
        assert described["status"] == "COMPLETED"

    _drive(node, node.url(node.nodes[0]), scenario)


def test_bad_folded_fields_are_400_and_change_nothing(node: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("bad-fold"), _wid("tq")
        activity, last = await _running_activity(call, wid, queue)
        good = {"after_event_id": last, "workflow_time_ms": int(time.time() * 1000)}
        for folded, field in (
                ({**good, "after_event_id": 0}, "workflow_task_completion.after_event_id"),
                ({**good, "workflow_time_ms": -1}, "workflow_task_completion.workflow_time_ms"),
                ({**good, "eager_activities_max": 17},
                 "workflow_task_completion.eager_activities_max"),
                ({**good, "commands": [_schedule("x" * 1001, queue)]},
                 "workflow_task_completion.commands[0].activity_id"),
                ({**good, "surprise": 1}, "workflow_task_completion.surprise")):
            status, body, _ = await call("POST", f"{API}/tasks/activity/complete", json={
                "task_token": activity["task_token"], "result": "r", "eager_task_queue": queue,
                "workflow_task_completion": folded})
            assert status == 400 and _error_code(body) == "invalid_argument", (field, body)
            assert body["error"]["field"] == field, body
        # Nothing changed: the activity is still running and completes now.
        status, _, _ = await call("POST", f"{API}/tasks/activity/complete", json={
            "task_token": activity["task_token"], "result": "r"})
        assert status == 200

    _drive(node, node.url(node.nodes[0]), scenario)
