"""Workflow queries: asked on the shard leader's node, answered by a worker, never logged.

A query reads workflow state that only worker code can compute, so the leader hands a query
task (with the run's full history) to a worker polling the workflow's task queue and waits for
the answer with a deadline. Nothing is proposed to the log: a query changes nothing. The query
id names the node that waits (`<node>~<random>`), so an answer that reaches another node is
forwarded there in one hop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import msgspec

from raftflow.actors.errors import MailboxFullError
from raftflow.matching.items import QueryTask
from raftflow.matching.matcher import Matcher
from raftflow.protocol.http_bodies import WAIT_MS_MAX, QueryAnswerRequest

# Queries waiting for a worker on this node; more are refused with 503 (I7).
QUERIES_PENDING_MAX = 1_000
QUERY_TIMEOUT_S_DEFAULT = 10.0
QUERY_TIMEOUT_S_MAX = WAIT_MS_MAX / 1000
_SEPARATOR = "~"


class QueryTimeoutError(Exception):
    """No worker answered in time."""


@dataclass(frozen=True, slots=True)
class QueryReply:
    """A worker's answer to a query task: the handler's result, or why the query failed."""

    result: object  # a JSON value
    error_message: str | None = None  # set when the query failed in the worker

    @staticmethod
    def of(body: QueryAnswerRequest) -> QueryReply:
        """The reply a worker's `respond` body holds (`{"result": ...}` or `{"error": ...}`)."""
        result = msgspec.json.decode(body.result) if body.result else None
        error = body.error
        if error is None:
            return QueryReply(result=result)
        message = error if isinstance(error, str) else error.message
        return QueryReply(result=result, error_message=message)


class QueryBroker:
    def __init__(self, node_id: str, matcher: Matcher) -> None:
        assert _SEPARATOR not in node_id
        self._node_id = node_id
        self._matcher = matcher
        self._pending: dict[str, asyncio.Future[QueryReply]] = {}
        # Each waiting query's namespace: only a worker of it may answer (access.py).
        self._namespaces: dict[str, str] = {}

    @staticmethod
    def node_of(query_id: str) -> str | None:
        node, separator, _ = query_id.partition(_SEPARATOR)
        return node if separator else None

    async def ask(self, *, shard: int, namespace: str, task_queue: str,
                  payload: dict[str, object], timeout_s: float) -> QueryReply:
        """Offer a query task (`payload`: its JSON for the worker) and wait for the worker's
        reply (raises QueryTimeoutError)."""
        if len(self._pending) >= QUERIES_PENDING_MAX:
            raise MailboxFullError(shard)
        query_id = f"{self._node_id}{_SEPARATOR}{uuid.uuid4().hex}"
        answer: asyncio.Future[QueryReply] = asyncio.get_running_loop().create_future()
        self._pending[query_id] = answer
        self._namespaces[query_id] = namespace
        try:
            self._matcher.offer_query(QueryTask(
                shard=shard, namespace=namespace, task_queue=task_queue, query_id=query_id,
                payload={"query_id": query_id, **payload},
                # The matcher drops query tasks by monotonic time: a wait, not a proposed time.
                deadline=time.monotonic() + timeout_s))
            async with asyncio.timeout(timeout_s):
                return await answer
        except TimeoutError:
            raise QueryTimeoutError from None
        finally:
            self._pending.pop(query_id, None)
            self._namespaces.pop(query_id, None)

    def namespace_of(self, query_id: str) -> str | None:
        """The namespace of the query `query_id` waiting here, if one does."""
        return self._namespaces.get(query_id)

    def answer(self, query_id: str, reply: QueryReply) -> bool:
        """Deliver a worker's reply; False if nobody waits for it (late or unknown)."""
        waiting = self._pending.get(query_id)
        if waiting is None or waiting.done():
            return False
        waiting.set_result(reply)
        return True
