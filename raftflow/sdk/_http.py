"""The SDK's HTTP transport: one aiohttp connection pool over several node addresses.

Any node answers any call (docs/api.md "Any node"), so a call that meets a dead node
(connection error, time-out) or an unavailable one (502/503/504) moves to the next address
and tries again (so does a 429 `rate_limited`: each node admits its share of a namespace's
rate, so the next node may have room, and Temporal's SDKs retry it too), with the same body and so the same `request_id`: the server returns the first
answer to a retried id (DESIGN §4 I5), which is what makes the retry safe. Callers say which
statuses are worth another node (`retry_statuses`): a query's 504 means "no worker answered",
not "this node is down", so it is not retried.

`Retry-After` is honoured, except that `not_leader` waits at most NOT_LEADER_WAIT_S_MAX: an
election takes 0.3-0.9 s here (DESIGN §8) and the next node may already know the new leader.
API errors become `RPCError(code, message, status)`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from raftflow.protocol.payload import json_enc_hook
from raftflow.protocol.shard_keys import SHARD_HEADER, parse_shard_header, shard_for
from raftflow.sdk.errors import RPCError

log = logging.getLogger(__name__)

# Each limit bounds one thing; together they bound how long a call can hide an outage.
CONNECTIONS_MAX = 200  # pooled connections over all nodes (workers hold one per long poll)
CALL_ATTEMPTS_MAX = 60  # tries of one call across nodes (dead nodes fail fast) before it gives up
CALL_DEADLINE_S = 60.0  # wall-clock budget of one call's retries (a leader election is < 1 s)
REQUEST_TIMEOUT_S = 30.0  # one attempt of an ordinary call (writes wait for a Raft commit)
RETRY_AFTER_S_MAX = 5.0  # longest Retry-After we honour for `overloaded` and `rate_limited`
NOT_LEADER_WAIT_S_MAX = 0.5  # an election is short and another node may know the leader now
ROUND_BACKOFF_S_MIN = 0.05  # pause after every node failed once, doubled per round...
ROUND_BACKOFF_S_MAX = 1.0  # ... up to this
assert NOT_LEADER_WAIT_S_MAX <= RETRY_AFTER_S_MAX < CALL_DEADLINE_S

SERVED_BY_HEADER = "X-Raftflow-Served-By"  # the API's header (the SDK talks HTTP only)
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
UNAVAILABLE_STATUSES = frozenset({502, 503})
NO_RETRY: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx answer: its status, decoded JSON body (None for an empty body, e.g. 204) and the
    node that gave it."""

    status: int
    body: Any
    address: str = ""


def normalize_address(address: str, *, tls: bool = False) -> str:
    """`host:port` or `http://host:port/` → `http://host:port` (`https://` with `tls`: a
    cluster that serves HTTPS hands out https addresses, and a bare host:port means it)."""
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = ("https://" if tls else "http://") + address
    return address


# A request body: a `protocol.http_bodies` struct (every SDK call), or a JSON object of builtins
# (the raw API calls of harnesses, through `Client.transport`).
Body = msgspec.Struct | Mapping[str, object]


def encode_body(body: Body) -> bytes:
    """Compact UTF-8 JSON, the smallest body. A struct is encoded by msgspec, payloads spliced
    in as their JSON text (`payload.json_enc_hook`), the encoding the gateway decodes it with.
    Raises TypeError if a value in it is not JSON (a query's argument), as `json.dumps` does."""
    if isinstance(body, msgspec.Struct):
        try:
            return msgspec.json.encode(body, enc_hook=json_enc_hook)
        except NotImplementedError as error:  # json_enc_hook's answer to a non-payload value
            raise TypeError(f"{type(body).__name__} is not JSON-serializable: {error}") from error
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def error_of(status: int, text: str) -> RPCError:
    """The RPCError of a refused call: the API's JSON error body, or the status alone."""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return RPCError(str(error.get("code") or "unknown"), str(error.get("message") or ""),
                        status)
    return RPCError("internal" if status >= 500 else "unknown", text[:200], status)


def _wait_s(error: RPCError, retry_after: str | None) -> float:
    try:
        wanted_s = float(retry_after) if retry_after else 0.0
    except ValueError:
        wanted_s = 0.0
    cap_s = NOT_LEADER_WAIT_S_MAX if error.code == "not_leader" else RETRY_AFTER_S_MAX
    return max(0.0, min(wanted_s, cap_s))


class Transport:
    """HTTP calls to a cluster given as several node addresses.

    Guarantees: a call is sent again only with the same method, path and body; it is retried
    only on connection errors, time-outs and the statuses the caller allows, at most
    CALL_ATTEMPTS_MAX times within `deadline_s` (CALL_DEADLINE_S by default). Later calls start at the node that last
    answered.
    """

    def __init__(self, addresses: Sequence[str], *, api_key: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 ) -> None:
        if not addresses:
            raise ValueError("at least one node address is needed")
        self._ssl: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
        self._server_hostname = server_hostname
        # Sent on every call (a node with auth on answers 401 without it); never logged.
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.addresses: tuple[str, ...] = tuple(dict.fromkeys(
            normalize_address(a, tls=ssl_context is not None) for a in addresses))
        self._session: aiohttp.ClientSession | None = None
        self._preferred = 0
        # HTTP requests sent (attempts, retries and long polls included); read by `raftflow bench`.
        self.requests_sent = 0
        # Attempts that failed and were retried (connection errors, 502-504); the chaos
        # harness draws them as the error rate.
        self.attempts_failed = 0
        # Task calls and frames sent on task streams (_task_stream.py); read by `raftflow bench`.
        self.stream_calls_sent = 0
        self.stream_frames_sent = 0
        # Workflow calls go first to the node that last answered for the workflow's shard (its
        # leader, if it is one of `addresses`), learnt from the `X-Raftflow-Shard` header of a
        # workflow's answers: no forwarding hop. At most SHARD_COUNT_MAX entries; a node that
        # fails a call is forgotten.
        self._shard_count: int | None = None
        self._shard_leaders: dict[int, str] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS_MAX, ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def open_websocket(self, address: str, path: str, *, params: Mapping[str, str],
                             protocol: str, heartbeat_s: float, frame_bytes_max: int,
                             ) -> aiohttp.ClientWebSocketResponse:
        """A WebSocket to one node, with this transport's credentials and TLS settings.

        Raises aiohttp.WSServerHandshakeError (its `status`: the node refused the upgrade, e.g.
        404 from a node without the route), aiohttp.ClientError or TimeoutError."""
        session = self._open_session()
        self.requests_sent += 1
        return await session.ws_connect(
            address + path, params=params, protocols=(protocol,), heartbeat=heartbeat_s,
            max_msg_size=frame_bytes_max, server_hostname=self._server_hostname,
            timeout=aiohttp.ClientWSTimeout(ws_close=REQUEST_TIMEOUT_S),
            autoping=True)

    async def call(self, method: str, path: str, *, body: Body | None = None,
                   params: Mapping[str, str] | None = None,
                   retry_statuses: frozenset[int] = RETRYABLE_STATUSES,
                   timeout_s: float = REQUEST_TIMEOUT_S,
                   deadline_s: float = CALL_DEADLINE_S,
                   headers: Mapping[str, str] | None = None,
                   workflow: tuple[str, str] | None = None) -> Answer:
        """Send one call, moving to the next node on connection errors and `retry_statuses`.
        `headers` go with every attempt (a start's `traceparent`). A call about one workflow
        names it (`workflow`: namespace, workflow id): its first attempt goes to the node known
        to lead the workflow's shard, if one is known.

        Raises:
            RPCError: the server refused the call, or kept failing it past the retry budget.
            aiohttp.ClientError / TimeoutError: no node could be reached within the budget.
        """
        data = None if body is None else encode_body(body)
        deadline = time.monotonic() + deadline_s
        start = self._preferred
        shard = self._shard_of(workflow)
        leader = None if shard is None else self._shard_leaders.get(shard)
        rotated = 0  # attempts on the rotation of given addresses
        last_error: BaseException | None = None
        for attempt in range(CALL_ATTEMPTS_MAX):
            routed = attempt == 0 and leader is not None
            if routed:
                assert leader is not None
                address = leader
            else:
                index = (start + rotated) % len(self.addresses)
                if rotated and index == start % len(self.addresses):
                    rounds = rotated // len(self.addresses)
                    await asyncio.sleep(min(ROUND_BACKOFF_S_MAX,
                                            ROUND_BACKOFF_S_MIN * 2 ** rounds))
                address = self.addresses[index]
                rotated += 1
            if time.monotonic() > deadline:
                break
            try:
                return await self._once(address, method, path, data, params, timeout_s,
                                        headers)
            except _Retryable as retryable:
                if routed and shard is not None:
                    self._shard_leaders.pop(shard, None)
                last_error = retryable.error
                self.attempts_failed += 1
                if (isinstance(retryable.error, RPCError)
                        and retryable.error.status not in retry_statuses):
                    raise retryable.error from None
                log.debug("%s %s on %s: %s; trying the next node", method, path,
                          address, retryable.error)
                await asyncio.sleep(retryable.wait_s)
        assert last_error is not None
        raise last_error

    async def call_node(self, address: str, method: str, path: str, *,
                        body: Body | None = None,
                        params: Mapping[str, str] | None = None,
                        timeout_s: float = REQUEST_TIMEOUT_S,
                        headers: Mapping[str, str] | None = None) -> Answer:
        """One attempt on one node, no retry (long polls pinned to a node use this)."""
        data = None if body is None else encode_body(body)
        try:
            return await self._once(address, method, path, data, params, timeout_s, headers)
        except _Retryable as retryable:
            raise retryable.error from None

    async def _once(self, address: str, method: str, path: str, data: bytes | None,
                    params: Mapping[str, str] | None, timeout_s: float,
                    extra_headers: Mapping[str, str] | None = None) -> Answer:
        session = self._open_session()
        headers = {"Content-Type": "application/json"} if data is not None else None
        if extra_headers:
            headers = {**(headers or {}), **extra_headers}
        self.requests_sent += 1
        try:
            async with session.request(method, address + path, data=data, params=params,
                                       headers=headers, server_hostname=self._server_hostname,
                                       timeout=aiohttp.ClientTimeout(total=timeout_s)) as answer:
                text = await answer.text()
                if 200 <= answer.status < 300:
                    self._preferred = self.addresses.index(address) if (
                        address in self.addresses) else self._preferred
                    # A relayed answer names the node that gave it (the shard's leader).
                    served_by = normalize_address(answer.headers.get(SERVED_BY_HEADER)
                                                  or address)
                    self._note_shard(answer.headers.get(SHARD_HEADER), served_by)
                    return Answer(answer.status, json.loads(text) if text else None,
                                  served_by)
                error = error_of(answer.status, text)
                if answer.status in RETRYABLE_STATUSES:
                    raise _Retryable(error, _wait_s(error, answer.headers.get("Retry-After")))
                raise error
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                TimeoutError) as error:
            raise _Retryable(error, 0.0) from error


    def _shard_of(self, workflow: tuple[str, str] | None) -> int | None:
        if workflow is None or self._shard_count is None:
            return None
        return shard_for(workflow[0], workflow[1], self._shard_count)

    def _note_shard(self, header: str | None, served_by: str) -> None:
        """Remember who answered for a shard (a workflow's answer names its shard)."""
        named = parse_shard_header(header)
        # Only nodes this client was given: a node's public address may be unreachable from
        # here (a client behind a load balancer), and a failed first attempt on every call
        # would cost more than the hop it saves.
        if named is None or served_by not in self.addresses:
            return
        shard, count = named
        if count != self._shard_count:  # first answer, or another cluster behind the same name
            self._shard_count = count
            self._shard_leaders.clear()
        self._shard_leaders[shard] = served_by


class _Retryable(Exception):
    """An attempt failed in a way another node (or a later try) may not."""

    def __init__(self, error: BaseException, wait_s: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_s = wait_s
