"""A worker's task stream on this node (protocol/task_stream.py): tasks pushed on grants,
task calls answered, each direction batched into frames.

Theory of operation. The stream lives as long as the WebSocket. Reading: every frame is decoded
once; a `Grant` starts one poll per granted task (`TaskPoller.poll_local`: tasks of the
shards this node leads; `poll_cluster` for an `anywhere` grant; hand-outs committed before they
leave, a claim whose stream went away given back to the matcher), a `Call` runs as the HTTP route would (`task_calls`), a `Withdraw`
ends the polls. Writing: messages are queued and one writer task sends whatever queued up while
it last waited as one frame, so replies finishing in the same turn of the loop share a write.

Bounds: CALLS_IN_FLIGHT_MAX calls per stream (one more is answered 503 `overloaded` with
Retry-After, as an HTTP call beyond a node's limits would be), GRANTS_OUTSTANDING_MAX grants per kind (more closes the
stream: the worker broke the protocol), frames of FRAME_TO_NODE_BYTES_MAX at most. The queue of
messages to send is bounded by those two: each entry is a reply to a call or a task on a grant.
A stream is never forwarded: the worker opens one on every node and each node pushes the tasks
of the shards it leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from raftflow.api import validation as v
from raftflow.api.access import PRINCIPAL_KEY, caller_headers
from raftflow.api.answers import respond
from raftflow.api.errors import (
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    error_response,
)
from raftflow.api.poll_types import POLL_TIMEOUT_S_MAX, Poller
from raftflow.api.polling import TaskPoller
from raftflow.api.principals import Principal
from raftflow.api.request_traces import TRACEPARENT_HEADER, TRACER_KEY, call_span
from raftflow.api.routing import SERVED_BY_HEADER, Gateway, OutgoingCall
from raftflow.api.task_calls import TASK_CALLS, TaskCall
from raftflow.api.task_handlers import POLLER_KEY
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.observability.tracing import NodeTracer
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.protocol.task_stream import (
    CALL_BODY_BYTES_MAX,
    CALLS_IN_FLIGHT_MAX,
    FRAME_TO_NODE_BYTES_MAX,
    GRANTS_OUTSTANDING_MAX,
    IDENTITY_LENGTH_MAX,
    STREAM_SUBPROTOCOL,
    Call,
    FrameToWorker,
    Grant,
    PushedTask,
    Reply,
    ToWorker,
    Withdraw,
    Withdrawn,
    decode_to_node,
    encode_frame,
    first_frame,
)

log = logging.getLogger(__name__)

# The node pings every stream this often; a worker that does not answer within the same time
# is gone (a dead host, a blackholed link) and its stream is closed, its claims given back.
STREAM_HEARTBEAT_S = 10.0
STREAM_CALL_RETRY_AFTER_S = 1  # a call beyond CALLS_IN_FLIGHT_MAX: try again after this
# A grant's poll that comes back empty sooner than this (the matcher parks at most
# POLLERS_PER_QUEUE_MAX polls per queue and answers more at once; a fan-out whose legs all
# failed fast) waits out the rest before polling again: a grant never spins the event loop.
GRANT_POLL_S_MIN = 0.5


@dataclass(frozen=True, slots=True)
class StreamPeer:
    """Who is at the other end of a stream, and where its tasks come from."""

    namespace: str
    task_queue: str
    worker: Poller
    principal: Principal | None  # None: auth is off on this node
    forward_headers: dict[str, str]  # the worker's principal, for calls this node forwards


async def task_stream(request: web.Request) -> web.StreamResponse:
    """`GET .../task-queues/{task_queue}/stream`: upgrade to the task stream and serve it."""
    gateway = request.app[GATEWAY_KEY]
    poller = request.app[POLLER_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    task_queue = v.check_path_id("task_queue", request.match_info["task_queue"])
    identity = request.query.get("identity") or request.remote or ""
    if len(identity) > IDENTITY_LENGTH_MAX:
        raise InvalidArgumentError(
            f"query 'identity': must be at most {IDENTITY_LENGTH_MAX} characters", "identity")
    sticky_queue = request.query.get("sticky_queue", "")
    if len(sticky_queue) > ID_LENGTH_MAX:
        raise InvalidArgumentError(
            f"query 'sticky_queue': must be at most {ID_LENGTH_MAX} characters", "sticky_queue")
    ws = web.WebSocketResponse(protocols=(STREAM_SUBPROTOCOL,), heartbeat=STREAM_HEARTBEAT_S,
                               max_msg_size=FRAME_TO_NODE_BYTES_MAX)
    if not ws.can_prepare(request).ok:
        raise InvalidArgumentError(
            "this route is a WebSocket: send `Upgrade: websocket` (subprotocol "
            f"{STREAM_SUBPROTOCOL}); HTTP workers poll the workflow-tasks/activity-tasks "
            "routes instead", "Upgrade")
    await ws.prepare(request)
    peer = StreamPeer(namespace=namespace, task_queue=task_queue,
                      worker=Poller(identity=identity, sticky_queue=sticky_queue),
                      principal=request.get(PRINCIPAL_KEY),
                      forward_headers=caller_headers(request))
    await StreamSession(ws, gateway, poller, peer, request.app.get(TRACER_KEY)).serve()
    return ws


class StreamSession:
    """One stream's reading, polls, calls and writing; `serve` returns when it closed, with
    every poll and call of it ended."""

    def __init__(self, ws: web.WebSocketResponse, gateway: Gateway, poller: TaskPoller,
                 peer: StreamPeer, tracer: NodeTracer | None = None) -> None:
        self._ws = ws
        self._tracer = tracer  # --otel-exporter: a server span per call
        self._gateway = gateway
        self._poller = poller
        self._peer = peer
        self._outbox: list[ToWorker] = []
        self._wake = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self._polls: dict[TaskKind, set[asyncio.Task[None]]] = {k: set() for k in TaskKind}
        self._withdrawn = False

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write_loop())
        try:
            async for message in self._ws:
                if message.type is WSMsgType.ERROR:  # the link broke: nothing to answer
                    log.debug("task stream of %s failed: %r", self._peer.worker.identity,
                              message.data)
                    break
                if message.type is not WSMsgType.BINARY:
                    await self._close_for("frames are binary (msgpack)")
                    break
                try:
                    frame = decode_to_node(message.data)
                except (msgspec.DecodeError, msgspec.ValidationError) as error:
                    await self._close_for(f"malformed frame: {error}")
                    break
                for item in frame.messages:
                    if isinstance(item, Call):
                        self._call(item)
                    elif isinstance(item, Grant):
                        if not self._grant(item):
                            await self._close_for("grants beyond GRANTS_OUTSTANDING_MAX")
                            break
                    else:
                        assert isinstance(item, Withdraw)
                        self._withdraw()
        finally:
            running = [*self._calls, *self._polls[TaskKind.WORKFLOW],
                       *self._polls[TaskKind.ACTIVITY], writer]
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _close_for(self, reason: str) -> None:
        log.warning("task stream of %s closed: %s", self._peer.worker.identity, reason)
        await self._ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=reason[:120].encode())

    # -- tasks -----------------------------------------------------------------------------

    def _grant(self, grant: Grant) -> bool:
        polls = self._polls[grant.kind]
        if len(polls) + grant.count > GRANTS_OUTSTANDING_MAX:
            return False
        if self._withdrawn:
            return True  # a grant sent before the worker saw its own Withdraw answered: void
        for _ in range(grant.count):
            poll = asyncio.create_task(self._push_one(grant.kind, grant.anywhere))
            polls.add(poll)
            poll.add_done_callback(polls.discard)
        return True

    async def _push_one(self, kind: TaskKind, anywhere: bool) -> None:
        """Wait for one task of `kind` (on this node, or `anywhere` in the cluster as an HTTP
        poll would) and send it: one grant's worth."""
        peer = self._peer
        poll = self._poller.poll_cluster if anywhere else self._poller.poll_local
        here = self._gateway.directory.public_address(self._gateway.directory.node_id) or ""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            task = await poll(peer.namespace, peer.task_queue, kind, peer.worker,
                              POLL_TIMEOUT_S_MAX)
            if task is None:
                await asyncio.sleep(max(0.0, started + GRANT_POLL_S_MIN - loop.time()))
            else:
                self._send(PushedTask(kind=kind, body=msgspec.json.encode(task.payload),
                                      served_by="" if task.served_by == here
                                      else task.served_by))
                return

    def _withdraw(self) -> None:
        self._withdrawn = True
        for polls in self._polls.values():
            for poll in polls:
                poll.cancel()  # a claim in progress completes and is given back (polling.py)
        answer = asyncio.create_task(self._answer_withdraw())
        self._calls.add(answer)  # held (a bare task may be collected) and ended with the stream
        answer.add_done_callback(self._calls.discard)

    async def _answer_withdraw(self) -> None:
        polls = [*self._polls[TaskKind.WORKFLOW], *self._polls[TaskKind.ACTIVITY]]
        await asyncio.gather(*polls, return_exceptions=True)
        self._send(Withdrawn())  # after every task a poll sent: the stream keeps the order

    # -- calls -----------------------------------------------------------------------------

    def _call(self, call: Call) -> None:
        if len(self._calls) >= CALLS_IN_FLIGHT_MAX:
            self._reply(call.seq, error_response(OverloadedError(
                f"more than {CALLS_IN_FLIGHT_MAX} calls in flight on one task stream",
                retry_after_s=STREAM_CALL_RETRY_AFTER_S)))
            return
        running = asyncio.create_task(self._run_call(call))
        self._calls.add(running)
        running.add_done_callback(self._calls.discard)

    async def _run_call(self, call: Call) -> None:
        try:
            run = TASK_CALLS.get(call.path)
            if run is None:
                raise NotFoundError(f"no task call {call.path!r} on a task stream")
            if len(call.body) > CALL_BODY_BYTES_MAX:
                raise PayloadTooLargeError(
                    f"call body is larger than {CALL_BODY_BYTES_MAX} bytes")
            with call_span(self._tracer, "POST", call.path, call.traceparent) as traceparent:
                headers = dict(self._peer.forward_headers)
                if traceparent:
                    headers[TRACEPARENT_HEADER] = traceparent
                source = OutgoingCall(method="POST", path_qs=call.path, body=call.body,
                                      hops=0, headers=headers)
                outcome = await run(self._gateway, TaskCall(
                    body=call.body, principal=self._peer.principal, source=source))
                response = respond(outcome, self._gateway.tokens)
        except RaftflowError as error:
            response = error_response(error)
        except Exception:
            log.exception("task stream call %s failed", call.path)
            response = error_response(InternalError())
        assert isinstance(response, web.Response), response
        self._reply(call.seq, response)

    def _reply(self, seq: int, response: web.Response) -> None:
        body = response.body
        assert isinstance(body, bytes | bytearray) or body is None, type(body)
        self._send(Reply(seq=seq, status=response.status, body=bytes(body or b""),
                         served_by=response.headers.get(SERVED_BY_HEADER, ""),
                         retry_after=response.headers.get("Retry-After", "")))

    # -- writing ---------------------------------------------------------------------------

    def _send(self, message: ToWorker) -> None:
        self._outbox.append(message)
        self._wake.set()

    async def _write_loop(self) -> None:
        """Send what queued up since the last write, in as few frames as the bounds allow."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                frame, self._outbox = first_frame(self._outbox)
                try:
                    await self._ws.send_bytes(encode_frame(FrameToWorker(messages=frame)))
                except (ConnectionError, RuntimeError) as error:
                    # The worker is gone (reset, or closing): closing ends `serve`'s read
                    # loop, which ends every poll and call of the stream.
                    log.debug("task stream of %s: write failed: %r",
                              self._peer.worker.identity, error)
                    await self._ws.close()
                    return
