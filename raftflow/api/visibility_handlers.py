"""Visibility: list and count a namespace's workflows with Temporal's query language.

Theory of operation. `GET .../workflows?query=&page_size=&next_page_token=` asks every shard
for its first `page_size + 1` runs after the page position (shards/visibility_reads.py, on the
shard's leader behind a barrier: a run whose start was acknowledged is there), merges them in
the query's order and answers the first `page_size`, with a token naming the last one's
position when more follow (raftflow.visibility.paging). The shards this node leads are read
here; each other shard is asked once of its leader (`.../shards/{shard}/workflows`, internal),
which answers its runs with their positions. `GET .../workflow-count?query=` sums the shards'
counts the same way. `status` and `limit` (the list's parameters before queries) still work:
`status` adds `ExecutionStatus = ...` to the query, `limit` is `page_size`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from functools import cmp_to_key
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.errors import InvalidArgumentError, error_for_code
from raftflow.api.namespace_handlers import FOLLOWER_KEY
from raftflow.api.render import description_answer
from raftflow.api.routing import Gateway, Relayed
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.protocol import http_answers as wire
from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.protocol.payload import json_dec_hook, json_enc_hook
from raftflow.shards import visibility_reads
from raftflow.shards.actor import ShardActor
from raftflow.visibility.paging import (
    PageCursor,
    PageTokenError,
    check_cursor,
    compare_positions,
    cursor_of,
    decode_token,
    encode_token,
)
from raftflow.visibility.query_ast import (
    And,
    AttributeType,
    BuiltinField,
    BuiltinRef,
    Compare,
    CompareOp,
    ExecutionStatus,
    Query,
)
from raftflow.visibility.query_parser import parse

T = TypeVar("T", bound=msgspec.Struct)

PAGE_SIZE_DEFAULT = 100
# A shard whose leader changes while a list or count asks it answers 503 not_leader. The
# part is a read, so asking again is safe; these many tries, each after the routing's own
# wait for a leader, cover one election before the whole call gives the client its 503.
PART_ATTEMPTS_MAX = 3
PART_RETRY_PAUSE_S = 0.2
JsonObject = dict[str, Any]


class ShardPage(msgspec.Struct, frozen=True, kw_only=True):
    """One shard's part of a list page (internal): its runs and their page positions."""

    workflows: list[wire.WorkflowDescription]
    positions: list[tuple[int | None, str]]  # (sort value, run id) of each, in order


class ShardCount(msgspec.Struct, frozen=True, kw_only=True):
    count: int


def _json(body: msgspec.Struct) -> web.Response:
    return web.Response(body=msgspec.json.encode(body, enc_hook=json_enc_hook),
                        content_type="application/json")


def _registry(request: web.Request) -> Mapping[str, AttributeType]:
    """The namespace's search attributes as this node's cluster map has them. A registration
    answers only after every shard's leader took it, and each waited for its own map to reach
    the registration's epoch first, so a node that leads a shard knows it by then."""
    found = request.app[FOLLOWER_KEY].cluster_map.namespace(request.match_info["namespace"])
    return {} if found is None else found.search_attributes


def _parse_query(request: web.Request) -> Query:
    # A name outside the builtin fields and the namespace's registered attributes is an
    # unknown field (400 naming its position).
    query = parse(request.query.get("query", ""), _registry(request))
    raw_status = request.query.get("status") or None
    if raw_status is None:
        return query
    status = {s.name: s for s in ExecutionStatus}.get(raw_status.upper())
    if status is None:
        raise InvalidArgumentError("query parameter 'status': must be one of "
                                   f"{', '.join(s.name for s in ExecutionStatus)}", "status")
    condition = Compare(field=BuiltinRef(field=BuiltinField.EXECUTION_STATUS), op=CompareOp.EQ,
                        value=status.value)
    where = condition if query.where is None else And(operands=(condition, query.where))
    return Query(where=where, order_by=query.order_by)


def _page_size(request: web.Request) -> int:
    raw = request.query.get("page_size", request.query.get("limit"))
    return v.parse_query_int("page_size", raw, default=PAGE_SIZE_DEFAULT, minimum=1,
                             maximum=v.QUERY_LIMIT_MAX)


def _cursor(request: web.Request, query: Query) -> PageCursor | None:
    token = request.query.get("next_page_token") or None
    if token is None:
        return None
    try:
        cursor = decode_token(token)
        check_cursor(cursor, query.order_by)
        return cursor
    except PageTokenError as error:
        raise InvalidArgumentError(str(error), "next_page_token") from None


def _shard_page(namespace: str, query: Query, after: PageCursor | None,
                limit: int) -> Callable[[ShardActor], Awaitable[ShardPage]]:
    async def read(actor: ShardActor) -> ShardPage:
        found = await actor.read(
            lambda s: visibility_reads.page(s, namespace, query, after, limit))
        positions = [cursor_of(row, query.order_by) for row, _ in found]
        return ShardPage(workflows=[description_answer(d) for _, d in found],
                         positions=[(p.sort_value, p.run_id) for p in positions])
    return read


async def list_shard_workflows(request: web.Request) -> web.StreamResponse:
    """Internal: one shard's part of a list page (asked by `list_workflows` of another node)."""
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    shard = _shard(request, gateway)
    query = _parse_query(request)
    work = _shard_page(namespace, query, _cursor(request, query), _page_size(request) + 1)
    answer = await gateway.on_leader(request, shard, work)
    return _relayed(answer) if isinstance(answer, Relayed) else _json(answer)


async def list_workflows(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    query = _parse_query(request)
    after, size = _cursor(request, query), _page_size(request)
    work = _shard_page(namespace, query, after, size + 1)
    parts = await _every_shard(request, gateway, namespace, "workflows", work, ShardPage)
    merged = [(PageCursor(sort_value=value, run_id=run_id), description)
              for part in parts
              for (value, run_id), description in zip(part.positions, part.workflows,
                                                      strict=True)]
    def by_position(a: tuple[PageCursor, wire.WorkflowDescription],
                    b: tuple[PageCursor, wire.WorkflowDescription]) -> int:
        return compare_positions(a[0], b[0], query.order_by)

    merged.sort(key=cmp_to_key(by_position))
    shown = merged[:size]
    token = encode_token(shown[-1][0]) if len(merged) > size else None
    return _json(wire.WorkflowList(workflows=[d for _, d in shown], next_page_token=token))


async def count_shard_workflows(request: web.Request) -> web.StreamResponse:
    """Internal: one shard's count (asked by `count_workflows` of another node)."""
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    answer = await gateway.on_leader(request, _shard(request, gateway),
                                     _shard_count(namespace, _parse_query(request)))
    return _relayed(answer) if isinstance(answer, Relayed) else _json(answer)


async def count_workflows(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    work = _shard_count(namespace, _parse_query(request))
    parts = await _every_shard(request, gateway, namespace, "workflow-count", work, ShardCount)
    return _json(wire.WorkflowCount(count=sum(part.count for part in parts)))


def _shard_count(namespace: str, query: Query) -> Callable[[ShardActor], Awaitable[ShardCount]]:
    async def read(actor: ShardActor) -> ShardCount:
        return ShardCount(count=await actor.read(
            lambda s: visibility_reads.count(s, namespace, query)))
    return read


async def _every_shard(
        request: web.Request, gateway: Gateway, namespace: str, route: str,
        work: Callable[[ShardActor], Awaitable[T]], part_type: type[T]) -> list[T]:
    """`work` on every shard's leader: here for the shards this node leads, else asked of the
    leader at `.../shards/{shard}/{route}` with this call's own query string."""

    async def once(shard: int) -> T:
        # The namespace is quoted: a `?` or `/` in it would reroute the call.
        path_qs = (f"/api/v1/namespaces/{quote(namespace, safe='')}/shards/{shard}/{route}"
                   f"?{request.query_string}")
        try:
            part = await gateway.on_leader(request, shard, work, path_qs=path_qs)
        except RaftflowError as error:
            raise error_for_code(error.code, f"shard {shard}: {error.message}") from None
        if isinstance(part, Relayed):
            return _decoded(shard, part, part_type)
        return part

    async def one(shard: int) -> T:
        for _ in range(PART_ATTEMPTS_MAX - 1):
            try:
                return await once(shard)
            except RaftflowError as error:
                if error.code is not ErrorCode.NOT_LEADER:
                    raise
            await asyncio.sleep(PART_RETRY_PAUSE_S)
        return await once(shard)  # the last try: its error is the call's

    return list(await asyncio.gather(*(one(s) for s in range(gateway.directory.shard_count))))


def _decoded(shard: int, part: Relayed, part_type: type[T]) -> T:
    if part.status != 200:
        try:
            error = json.loads(part.body)["error"]
            code, message = ErrorCode(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = ErrorCode.INTERNAL, f"answered {part.status} with no JSON error"
        raise error_for_code(code, f"shard {shard}: {message}")
    try:
        return msgspec.json.decode(part.body, type=part_type, dec_hook=json_dec_hook)
    except msgspec.ValidationError:
        raise error_for_code(ErrorCode.INTERNAL, f"shard {shard}: an answer not of this "
                             "release") from None


def _relayed(answer: Relayed) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


def _shard(request: web.Request, gateway: Gateway) -> int:
    return v.parse_query_int("shard", request.match_info["shard"], default=0, minimum=0,
                             maximum=gateway.directory.shard_count - 1)
