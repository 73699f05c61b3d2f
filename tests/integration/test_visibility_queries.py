"""Visibility queries on a real 3-node cluster (issue 13's contract, its second part).

Goal: `workflow list --query "WorkflowType = 'X' AND ExecutionStatus = 'Running'" --json` and
`workflow count` agree with what was started, across all shards, over more than one page; a
run whose start was acknowledged is listed by a query issued right after; pages neither repeat
nor skip a run; ORDER BY is honoured; a bad query is a 400 naming the position and the problem
and changes nothing.
Method: starts over HTTP (no worker: the runs stay running), queries over HTTP and through the
real CLI (`python -m raftflow`), against `raftflow node` processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from raftflow.cluster.launcher import LocalCluster
from tests.integration.cli_runner import cli_json

WF = "/api/v1/namespaces/default/workflows"
COUNT = "/api/v1/namespaces/default/workflow-count"
RUNNING_X = 23
OTHER_Y = 5


async def _start(session: aiohttp.ClientSession, address: str, workflow_id: str,
                 workflow_type: str) -> None:
    body = {"workflow_id": workflow_id, "workflow_type": workflow_type, "task_queue": "nobody",
            "request_id": f"r-{workflow_id}"}
    for _ in range(50):
        async with session.post(address + WF, json=body) as answer:
            if answer.status in (200, 201):
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id} not started")


async def _get(session: aiohttp.ClientSession, url: str, **query: str) -> tuple[int, Any]:
    async with session.get(url, params=query) as answer:
        return answer.status, await answer.json()


def _cli(cluster: LocalCluster, *args: str) -> Any:
    return cli_json(cluster, *args, node=1)


def test_list_and_count_agree_with_what_was_started_over_several_pages(
        cluster: LocalCluster) -> None:
    query = "WorkflowType = 'X' AND ExecutionStatus = 'Running'"

    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with aiohttp.ClientSession() as session:
            for i in range(RUNNING_X):
                await _start(session, addresses[i % 3], f"x-{i:02d}", "X")
                # Acknowledged means visible: asked of another node at once.
                status, counted = await _get(session, addresses[(i + 1) % 3] + COUNT,
                                             query=query)
                assert status == 200 and counted == {"count": i + 1}, counted
            for i in range(OTHER_Y):
                await _start(session, addresses[0], f"y-{i}", "Y")

            seen: list[str] = []
            token = ""
            pages = 0
            while True:
                params = {"query": query + " ORDER BY StartTime ASC", "page_size": "7"}
                if token:
                    params["next_page_token"] = token
                status, page = await _get(session, addresses[2] + WF, **params)
                assert status == 200, page
                pages += 1
                seen += [w["workflow_id"] for w in page["workflows"]]
                assert all(w["status"] == "RUNNING" and w["workflow_type"] == "X"
                           for w in page["workflows"])
                token = page["next_page_token"] or ""
                if not token:
                    break
            assert pages == 4 and seen == [f"x-{i:02d}" for i in range(RUNNING_X)]

            status, everything = await _get(session, addresses[0] + COUNT)
            assert status == 200 and everything == {"count": RUNNING_X + OTHER_Y}
            status, wrong = await _get(session, addresses[0] + WF,
                                       query="WorkflowType = 'X' AND")
            assert status == 400 and wrong["error"]["code"] == "invalid_argument"
            assert "position 22" in wrong["error"]["message"], wrong
            status, hostile = await _get(session, addresses[0] + COUNT,
                                         query="WorkflowId = 'x'; DROP TABLE runs; --'")
            assert status == 400 and "position" in hostile["error"]["message"], hostile
            status, quoted = await _get(session, addresses[0] + COUNT,
                                        query="WorkflowId = 'x''; DROP TABLE runs; --'")
            assert status == 200 and quoted == {"count": 0}  # a value, never SQL
            status, still = await _get(session, addresses[0] + COUNT)
            assert still == everything

    asyncio.run(main())
    listed = _cli(cluster, "workflow", "list", "--query", query, "--page-size", "5")
    assert sorted(w["workflow_id"] for w in listed["workflows"]) == [
        f"x-{i:02d}" for i in range(RUNNING_X)]
    assert _cli(cluster, "workflow", "count", "--query", query) == {"count": RUNNING_X}
