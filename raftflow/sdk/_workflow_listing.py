"""`Client.list_workflows` and `count_workflows`: visibility queries, every page of them.

A listing asks `GET .../workflows?query=&page_size=` and follows `next_page_token` until the
server gives none, yielding each run as it arrives; the token is the position of the last row
returned, so a page never repeats or skips a run that stays put (server-side keyset paging).
Awaiting a listing gives all its runs as a list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

from raftflow.protocol import http_answers
from raftflow.sdk._cluster_connection import ClusterConnection
from raftflow.sdk._wire_answers import decode_answer, decode_executions
from raftflow.sdk._workflow_execution import WorkflowExecution

# The gateway's bounds on one page (api/validation.QUERY_LIMIT_MAX).
PAGE_SIZE_MAX = 1_000
PAGE_SIZE_DEFAULT = 100


class WorkflowListing:
    """The runs a visibility query selects, in its order (default: newest start first).

    `async for execution in client.list_workflows(query)` reads page after page;
    `await client.list_workflows(query)` returns them all as a list.
    """

    def __init__(self, connection: ClusterConnection, query: str, page_size: int) -> None:
        if not 1 <= page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be in 1..{PAGE_SIZE_MAX}")
        self._connection = connection
        self._query = query
        self._page_size = page_size

    def __aiter__(self) -> AsyncIterator[WorkflowExecution]:
        return self._executions()

    def __await__(self) -> Generator[Any, None, list[WorkflowExecution]]:
        return self._all().__await__()

    async def _all(self) -> list[WorkflowExecution]:
        return [execution async for execution in self._executions()]

    async def _executions(self) -> AsyncIterator[WorkflowExecution]:
        path = self._connection.workflows_path()
        token: str | None = None
        while True:
            params = {"query": self._query, "page_size": str(self._page_size)}
            if token is not None:
                params["next_page_token"] = token
            answer = await self._connection.transport.call("GET", path, params=params)
            for execution in decode_executions(answer, f"GET {path}"):
                yield execution
            token = decode_answer(answer, http_answers.WorkflowList,
                                  f"GET {path}").next_page_token
            if not token:
                return


async def count_workflows(connection: ClusterConnection, query: str) -> int:
    """How many runs `query` selects, summed over every shard."""
    path = connection.workflows_path().removesuffix("/workflows") + "/workflow-count"
    answer = await connection.transport.call("GET", path, params={"query": query})
    return decode_answer(answer, http_answers.WorkflowCount, f"GET {path}").count
