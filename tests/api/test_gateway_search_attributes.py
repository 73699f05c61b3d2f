"""Goal: the gateway's side of custom search attributes: registering answers the namespace
with its registry (a repeat the same, another type 409, a bad name or type 400 naming the
rule); a start's attributes are checked before anything is proposed (400 naming
`search_attributes.<name>`); a workflow task completion whose upsert holds a value no log
entry can hold is refused at the edge, one whose upsert the registry refuses is refused by the
shard (the task stays started), and a good one shows in describe and in a list query.

Method: the one-node cluster of the gateway tests (`one`, conftest.py), played with an aiohttp
client (`gateway_harness._drive`); a namespace of its own so the registry starts empty.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.api.gateway_harness import API, Call, LiveCluster, _drive, _error_code, _start_body, _wid

# A namespace call goes to the cluster map's leader and then to every shard's leader: right
# after the cluster starts one may still be elected, which is a 503 to retry (docs/api.md).
RETRIES_503 = 50


async def _map_call(call: Call, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    for _ in range(RETRIES_503):
        status, answer, _ = await call("POST", path, json=body)
        if status != 503:
            return status, answer
        await asyncio.sleep(0.2)
    return status, answer


def test_register_start_and_upsert_through_the_gateway(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        ns = _wid("sa")
        status, created = await _map_call(call, f"{API}/namespaces", {"name": ns})
        assert status == 201, created
        attributes = f"{API}/namespaces/{ns}/search-attributes"
        status, info = await _map_call(call, attributes, {"name": "Amount", "type": "int"})
        assert status == 200 and info["search_attributes"] == {"Amount": "int"}, info
        again = await _map_call(call, attributes, {"name": "Amount", "type": "int"})
        assert again == (200, info)
        status, conflict = await _map_call(call, attributes, {"name": "Amount", "type": "keyword"})
        assert status == 409 and _error_code(conflict) == "search_attribute_conflict"
        for bad in ({"name": "ORDER", "type": "int"}, {"name": "X", "type": "text"},
                    {"name": "9x", "type": "int"}):
            status, refused = await _map_call(call, attributes, bad)
            assert status == 400 and _error_code(refused) == "invalid_argument", (bad, refused)
        status, described, _ = await call("GET", f"{API}/namespaces/{ns}")
        assert described["search_attributes"] == {"Amount": "int"}

        queue, wid = _wid("tq"), _wid("wf")
        workflows = f"{API}/namespaces/{ns}/workflows"
        for given, field in (({"Other": 1}, "search_attributes.Other"),
                             ({"Amount": 1.5}, "search_attributes.Amount"),
                             ({"Amount": 2**70}, "search_attributes.Amount")):
            status, refused, _ = await call("POST", workflows, json=_start_body(
                wid, task_queue=queue, search_attributes=given))
            assert status == 400 and refused["error"]["field"] == field, refused
        status, _, _ = await call("GET", f"{workflows}/{wid}")
        assert status == 404  # nothing was started
        status, _, _ = await call("POST", workflows, json=_start_body(
            wid, task_queue=queue, search_attributes={"Amount": 1}))
        assert status == 201

        tq = f"{API}/namespaces/{ns}/task-queues/{queue}"
        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200
        complete = f"{API}/tasks/workflow/complete"
        for values, code, field in (
                ({"Amount": 2**64}, "invalid_argument", "commands[0].search_attributes.Amount"),
                ({"Amount": "nine"}, "invalid_argument", "commands[0].search_attributes.Amount"),
                ({"Other": 1}, "invalid_argument", "commands[0].search_attributes.Other")):
            status, refused, _ = await call("POST", complete, json={
                "task_token": task["task_token"], "commands": [
                    {"type": "UpsertWorkflowSearchAttributes", "search_attributes": values}]})
            assert status == 400 and _error_code(refused) == code, refused
            assert refused["error"]["field"] == field, refused
        status, _, _ = await call("POST", complete, json={
            "task_token": task["task_token"], "commands": [
                {"type": "UpsertWorkflowSearchAttributes", "search_attributes": {"Amount": 9}}]})
        assert status == 200
        status, described, _ = await call("GET", f"{workflows}/{wid}")
        assert described["search_attributes"] == {"Amount": 9}
        status, history, _ = await call("GET", f"{workflows}/{wid}/history")
        upserts = [e for e in history["events"]
                   if e["event_type"] == "UpsertWorkflowSearchAttributes"]
        assert [e["attributes"]["search_attributes"] for e in upserts] == [
            [{"name": "Amount", "type": "int", "value": 9}]]
        status, listed, _ = await call("GET", workflows, params={"query": "Amount > 5"})
        assert status == 200 and [w["workflow_id"] for w in listed["workflows"]] == [wid]
        status, counted, _ = await call("GET", f"{API}/namespaces/{ns}/workflow-count",
                                        params={"query": "Amount <= 5"})
        assert status == 200 and counted == {"count": 0}

    _drive(one, one.url(one.nodes[0]), scenario)
