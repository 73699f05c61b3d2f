"""Goal: `POST .../workflows/{id}/signal-with-start` over HTTP on a live node: 201 and a new run
holding the signal when none is open, 200 and the same run signalled when one is; a retry with
the same request_id gets its first answer and adds nothing; a refused call (closed run under
reject_duplicate, a bad body) is the documented 4xx and changes nothing.

Method: the one-node cluster (`one`, conftest.py) driven by an aiohttp client
(`gateway_harness._drive`); histories read back over the same API.
"""

from __future__ import annotations

from tests.api.gateway_harness import API, NS, Call, LiveCluster, _drive, _error_code, _wid


def _body(request_id: str, signal_input: object, **fields: object) -> dict[str, object]:
    return {"workflow_type": "Inbox", "task_queue": "q", "input": ["in"],
            "signal_name": "add", "signal_input": signal_input, "request_id": request_id,
            **fields}


def test_signal_with_start_starts_then_signals_and_retries_add_nothing(one: LiveCluster) -> None:
    wid = _wid("sws")
    url = f"{API}/namespaces/{NS}/workflows/{wid}"

    async def scenario(call: Call) -> None:
        status, first, _ = await call("POST", url + "/signal-with-start", json=_body("r1", "a"))
        assert status == 201 and first["workflow_id"] == wid, first
        status, second, _ = await call("POST", url + "/signal-with-start", json=_body("r2", "b"))
        assert status == 200 and second["run_id"] == first["run_id"], second
        status, again, _ = await call("POST", url + "/signal-with-start", json=_body("r1", "a"))
        assert (status, again) == (201, first)  # the first answer, nothing added
        status, page, _ = await call("GET", url + "/history")
        assert status == 200
        events = page["events"]
        assert [e["event_type"] for e in events] == [
            "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowExecutionSignaled",
            "WorkflowExecutionSignaled"]
        assert [e["attributes"]["input"] for e in events[2:]] == ["a", "b"]
        assert [e["attributes"]["request_id"] for e in events[2:]] == ["r1", "r2"]

        status, _, _ = await call("POST", url + "/terminate", json={"reason": "done"})
        assert status == 200
        status, refused, _ = await call("POST", url + "/signal-with-start", json=_body(
            "r3", "c", id_reuse_policy="reject_duplicate"))
        assert status == 409 and _error_code(refused) == "workflow_already_started", refused
        status, bad, _ = await call("POST", url + "/signal-with-start", json=_body(
            "r4", "c", signal_name=""))
        assert status == 400 and bad["error"]["field"] == "signal_name", bad
        status, page, _ = await call("GET", url + "/history")
        assert len(page["events"]) == 5  # four, and the termination: the refusals added none

    _drive(one, one.url(one.nodes[0]), scenario)
