"""Custom search attributes end to end on a real 3-node cluster (issue 13, item 5).

Goal: a namespace registers `CustomerId keyword`, `Amount int` and `DueAt datetime` (CLI and
HTTP; a repeat is answered like the first, another type is a 409); workflows started with
attributes over HTTP and through the SDK, and a workflow that upserts its own, are found by
`CustomerId = 'c1' AND Amount > 5` through HTTP, the CLI (`workflow list --json`, `count`) and
the SDK (`list_workflows`, `count_workflows`), exactly the right runs, both while they run
(memory) and after they completed (SQLite); describe shows the attributes as given; a keyword
holding quotes and SQL text is stored and matched literally; an unregistered attribute or a
wrong type at start is a 400 naming `search_attributes.<name>`, and starts nothing.
Method: `raftflow node` processes on loopback (conftest.py), an SDK worker in this process
running the test's workflows, the real CLI as a subprocess.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import workflow
from raftflow.sdk.client import Client
from raftflow.sdk.worker import Worker
from tests.integration.cli_runner import cli_json

NS = "/api/v1/namespaces/default"
WF = NS + "/workflows"
COUNT = NS + "/workflow-count"
QUERY = "CustomerId = 'c1' AND Amount > 5"
HOSTILE = "c1' OR '1'='1'; DROP TABLE runs; --"
HOSTILE_QUERY = "CustomerId = 'c1'' OR ''1''=''1''; DROP TABLE runs; --'"
DUE = datetime(2026, 12, 6, 10, 0, 0, 250_000, tzinfo=UTC)
WAIT_S = 30.0


@workflow.defn
class Holder:
    """Runs until signalled "go"; its attributes were given at start."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "done"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn
class Upserter:
    """Sets its own attributes, then runs until signalled "go"."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, customer: str, amount: int) -> str:
        workflow.upsert_search_attributes({"CustomerId": customer, "Amount": amount})
        await workflow.wait_condition(lambda: self.go)
        return "done"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


def _cli(cluster: LocalCluster, *args: str) -> Any:
    return cli_json(cluster, *args, node=1)


async def _call(session: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None, **query: str) -> tuple[int, Any]:
    async with session.request(method, url, json=body, params=query or None) as answer:
        return answer.status, await answer.json()


async def _start_http(session: aiohttp.ClientSession, address: str, workflow_id: str,
                      attributes: dict[str, Any]) -> tuple[int, Any]:
    return await _call(session, "POST", address + WF, {
        "workflow_id": workflow_id, "workflow_type": "Holder", "task_queue": _QUEUE,
        "request_id": f"r-{workflow_id}", "search_attributes": attributes})


_QUEUE = f"sa-{uuid.uuid4().hex[:8]}"
EXPECTED = ["h-1", "s-1", "u-1"]


def _register(cluster: LocalCluster) -> None:
    for name, kind in (("CustomerId", "keyword"), ("Amount", "int")):
        info = _cli(cluster, "namespace", "add-search-attribute", "default", "--name", name,
                    "--type", kind)
        assert info["search_attributes"][name] == kind, info
    again = _cli(cluster, "namespace", "add-search-attribute", "default", "--name", "Amount",
                 "--type", "int")
    assert again["search_attributes"] == {"Amount": "int", "CustomerId": "keyword"}


async def _bad_inputs(session: aiohttp.ClientSession, address: str) -> None:
    status, conflict = await _call(session, "POST", address + NS + "/search-attributes",
                                   {"name": "Amount", "type": "double"})
    assert status == 409 and conflict["error"]["code"] == "search_attribute_conflict"
    status, refused = await _start_http(session, address, "bad-1", {"Nope": "x"})
    assert status == 400 and refused["error"]["field"] == "search_attributes.Nope", refused
    assert "search_attributes.Nope" in refused["error"]["message"]
    status, refused = await _start_http(session, address, "bad-2", {"Amount": "7"})
    assert status == 400 and refused["error"]["field"] == "search_attributes.Amount", refused
    assert "integer" in refused["error"]["message"]
    for workflow_id in ("bad-1", "bad-2"):
        status, _ = await _call(session, "GET", f"{address}{WF}/{workflow_id}")
        assert status == 404  # nothing started


async def _found(session: aiohttp.ClientSession, address: str, query: str) -> list[str]:
    status, page = await _call(session, "GET", address + WF, query=query, page_size="2")
    ids: list[str] = []
    while True:
        assert status == 200, page
        ids += [w["workflow_id"] for w in page["workflows"]]
        if not page["next_page_token"]:
            return sorted(ids)
        status, page = await _call(session, "GET", address + WF, query=query, page_size="2",
                                   next_page_token=page["next_page_token"])


async def _until_listed(session: aiohttp.ClientSession, address: str, query: str,
                        expected: list[str]) -> None:
    """An upsert is visible once its workflow task completed, which the worker does soon."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while await _found(session, address, query) != expected:
        assert asyncio.get_running_loop().time() < deadline, await _found(session, address,
                                                                         query)
        await asyncio.sleep(0.1)


async def _check_everywhere(client: Client, session: aiohttp.ClientSession,
                            addresses: list[str], query: str, expected: list[str]) -> None:
    for address in addresses:
        assert await _found(session, address, query) == expected
        status, counted = await _call(session, "GET", address + COUNT, query=query)
        assert status == 200 and counted == {"count": len(expected)}, counted
    listed = [e async for e in client.list_workflows(query, page_size=1)]
    assert sorted(e.id for e in listed) == expected
    assert all(e.search_attributes["CustomerId"] == "c1" for e in listed)
    assert await client.count_workflows(query) == len(expected)


def test_search_attributes_from_registration_to_closed_runs(cluster: LocalCluster) -> None:
    _register(cluster)
    addresses = [cluster.address(n) for n in cluster.node_ids]

    async def main() -> None:
        async with (aiohttp.ClientSession() as session,
                    await Client.connect(addresses) as client,
                    Worker(client, task_queue=_QUEUE, workflows=[Holder, Upserter])):
            status, info = await _call(session, "POST", addresses[2] + NS + "/search-attributes",
                                       {"name": "DueAt", "type": "datetime"})
            assert status == 200 and info["search_attributes"]["DueAt"] == "datetime", info
            await _bad_inputs(session, addresses[0])
            starts = {"h-1": {"CustomerId": "c1", "Amount": 10},
                      "h-2": {"CustomerId": "c1", "Amount": 3},
                      "h-3": {"CustomerId": "c2", "Amount": 50},
                      "h-4": {"CustomerId": HOSTILE, "Amount": 99}}
            for index, (workflow_id, attributes) in enumerate(starts.items()):
                status, started = await _start_http(session, addresses[index % 3], workflow_id,
                                                    attributes)
                assert status == 201, started
            handles = [await client.start_workflow(
                Holder.run, id="s-1", task_queue=_QUEUE,
                search_attributes={"CustomerId": "c1", "Amount": 6, "DueAt": DUE})]
            for workflow_id, amount in (("u-1", 20), ("u-2", 1)):
                handles.append(await client.start_workflow(Upserter.run, "c1", amount,
                                                           id=workflow_id, task_queue=_QUEUE))
            handles += [client.get_workflow_handle(w) for w in starts]

            # Running: open runs, matched in memory on each shard's leader.
            await _until_listed(session, addresses[0], QUERY, EXPECTED)
            await _check_everywhere(client, session, addresses, QUERY, EXPECTED)
            assert await _found(session, addresses[1], HOSTILE_QUERY) == ["h-4"]
            status, described = await _call(session, "GET", addresses[1] + WF + "/s-1")
            assert described["search_attributes"] == {
                "Amount": 6, "CustomerId": "c1", "DueAt": "2026-12-06T10:00:00.250Z"}
            status, described = await _call(session, "GET", addresses[1] + WF + "/h-4")
            assert described["search_attributes"] == {"Amount": 99, "CustomerId": HOSTILE}

            # Completed: closed runs, matched by SQL over the `search_attributes` table.
            for handle in handles:
                await handle.signal("proceed")
            for handle in handles:
                assert await asyncio.wait_for(handle.result(), WAIT_S) == "done"
            closed = QUERY + " AND ExecutionStatus = 'Completed'"
            await _check_everywhere(client, session, addresses, closed, EXPECTED)
            await _check_everywhere(client, session, addresses, QUERY, EXPECTED)
            assert await _found(session, addresses[2], HOSTILE_QUERY) == ["h-4"]
            status, described = await _call(session, "GET", addresses[0] + WF + "/u-1")
            assert described["status"] == "COMPLETED"
            assert described["search_attributes"] == {"Amount": 20, "CustomerId": "c1"}
            status, everything = await _call(session, "GET", addresses[0] + COUNT)
            assert everything == {"count": 7}  # the refused starts started nothing

    asyncio.run(main())
    listed = _cli(cluster, "workflow", "list", "--query", QUERY)
    assert sorted(w["workflow_id"] for w in listed["workflows"]) == EXPECTED
    assert all(w["search_attributes"]["CustomerId"] == "c1" for w in listed["workflows"])
    assert _cli(cluster, "workflow", "count", "--query", QUERY) == {"count": 3}
    described = _cli(cluster, "namespace", "describe", "default")
    assert described["search_attributes"] == {
        "Amount": "int", "CustomerId": "keyword", "DueAt": "datetime"}
    # The CLI's start takes them too: VALUE as JSON, else as text (a keyword, a datetime).
    _cli(cluster, "workflow", "start", "-w", "cli-sa", "-t", "X", "-q", "nobody",
         "--search-attribute", "CustomerId=c9", "--search-attribute", "Amount=12",
         "--search-attribute", "DueAt=2026-12-06T10:00:00.25+00:00")
    started = _cli(cluster, "workflow", "describe", "-w", "cli-sa")
    assert started["search_attributes"] == {
        "Amount": 12, "CustomerId": "c9", "DueAt": "2026-12-06T10:00:00.250Z"}
    assert _cli(cluster, "workflow", "count", "--query", "CustomerId = 'c9'") == {"count": 1}
    refused = subprocess.run(
        [sys.executable, "-m", "raftflow", "workflow", "start", "-w", "cli-sa-bad", "-t", "X",
         "-q", "nobody", "--search-attribute", 'Amount="12"', "--address",
         cluster.address(cluster.node_ids[0])],
        capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "search_attributes.Amount" in refused.stderr, refused
