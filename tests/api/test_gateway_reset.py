"""Goal: `POST .../workflows/{id}/reset` over HTTP on a live node: 201 and a new run whose
history is the base run's up to the chosen workflow task, then WorkflowTaskFailed (cause
ResetWorkflow) and the signals received after that task; the base run is terminated; a retry
with the same request_id gets the first answer and adds nothing; bad input is 400 naming
the field, an unknown workflow 404.

Method: the one-node cluster (`one`, conftest.py) driven by an aiohttp client playing the
worker (`gateway_harness._drive`); histories read back over the same API.
"""

from __future__ import annotations

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


def test_reset_copies_history_reapplies_signals_and_is_idempotent(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("reset"), _wid("tq")
        tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        status, started, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                        json=_start_body(wid, task_queue=queue))
        assert status == 201
        base = started["run_id"]
        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "commands": [
                {"type": "StartTimer", "timer_id": "t1", "start_to_fire_timeout_ms": 3_600_000}]})
        assert status == 200
        status, _, _ = await call("POST", wf + "/signal", json={
            "signal_name": "go", "input": {"n": 1}, "request_id": "sig-1"})
        assert status == 200

        body = {"reset_type": "FirstWorkflowTask", "reason": "bad deploy", "request_id": "rs-1"}
        status, first, _ = await call("POST", wf + "/reset", json=body)
        assert status == 201 and first["workflow_id"] == wid and first["run_id"] != base, first
        status, again, _ = await call("POST", wf + "/reset", json=body)
        assert (status, again) == (201, first)

        status, page, _ = await call("GET", wf + "/history")
        events = page["events"]
        assert [e["event_type"] for e in events] == [
            "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted",
            "WorkflowTaskFailed", "WorkflowExecutionSignaled", "WorkflowTaskScheduled"]
        failed = events[3]["attributes"]
        assert failed["cause"] == "ResetWorkflow"
        assert failed["failure"]["message"] == "bad deploy"
        assert failed["failure"]["details"] == {"base_run_id": base,
                                                "new_run_id": first["run_id"]}
        assert events[4]["attributes"]["request_id"] == "sig-1"
        status, described, _ = await call("GET", wf, params={"run_id": base})
        assert status == 200 and described["status"] == "TERMINATED", described

        # The new run is the open one; a reset of it by event id works as well.
        status, second, _ = await call("POST", wf + "/reset", json={"event_id": 3})
        assert status == 201 and second["run_id"] not in (base, first["run_id"])

    _drive(one, one.url(one.nodes[0]), scenario)


def test_bad_resets_are_refused_naming_the_field(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid = _wid("reset-bad")
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        status, missing, _ = await call("POST", wf + "/reset",
                                        json={"reset_type": "LastWorkflowTask"})
        assert status == 404 and _error_code(missing) == "not_found", missing
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid))
        assert status == 201
        for body, field in [
            ({}, "event_id"),
            ({"event_id": 3, "reset_type": "LastWorkflowTask"}, "event_id"),
            ({"event_id": 0}, "event_id"),
            ({"event_id": 1}, "event_id"),
            ({"reset_type": "Nope"}, "reset_type"),
            ({"reset_type": "LastWorkflowTask"}, "reset_type"),  # no completed task yet
            ({"event_id": 2, "unknown": 1}, "unknown"),
        ]:
            status, refused, _ = await call("POST", wf + "/reset", json=body)
            assert status == 400 and _error_code(refused) == "invalid_argument", (body, refused)
            assert field in (refused["error"]["field"] or ""), (body, refused)
        status, page, _ = await call("GET", wf + "/history")
        assert len(page["events"]) == 2  # the refusals added nothing

    _drive(one, one.url(one.nodes[0]), scenario)
