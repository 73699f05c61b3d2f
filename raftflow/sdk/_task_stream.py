"""A worker's task stream to one node (protocol/task_stream.py): grants out and tasks in,
calls out and replies in, each direction in frames.

Theory of operation. Every slot the worker would have spent on a long poll to this node is a
grant instead: the grant loop takes a free slot, then grants the node one task of that kind.
A pushed task runs in the slot of the grant it used (`TaskExchange.spawn`), so the worker never
holds more tasks than it has slots. Calls (completions, failures, heartbeats) wait for their
`Reply` by sequence number; a reply renders as the HTTP answer would (`_http.Answer` or
`RPCError`). The writer sends whatever queued up while it last waited as one frame.

When the stream ends (the node died, the link broke, the worker closes it), every call still
waiting fails with `StreamClosedError` (the caller sends it again another way: the same body,
so a completion that did commit is refused as stale, never applied twice) and the slots of
unused grants are given back. A task the node sent that never arrived is handed out again after
its timeout, as one whose poll answer was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping

import aiohttp
import msgspec

from raftflow.protocol.commands import TaskKind
from raftflow.protocol.task_stream import (
    FRAME_TO_WORKER_BYTES_MAX,
    SEQ_MAX,
    STREAM_SUBPROTOCOL,
    Call,
    FrameToNode,
    Grant,
    PushedTask,
    Reply,
    ToNode,
    Withdraw,
    Withdrawn,
    decode_to_worker,
    encode_frame,
    first_frame,
)
from raftflow.sdk import _http

log = logging.getLogger(__name__)

# The worker pings the node this often; no pong within the same time and the stream is closed
# (a blackholed link shows as silence, not as a closed socket).
STREAM_HEARTBEAT_S = 5.0
STREAM_OPEN_TIMEOUT_S = 10.0  # the upgrade handshake of one stream

# Runs a pushed task (its JSON, decoded) in the slot its grant took: (address, task).
TaskStarter = Callable[[str, object], None]


class StreamClosedError(ConnectionError):
    """The stream ended before the call was answered (the call may still have been applied)."""


class _Grants:
    """One kind's grants on one stream: how many are unused, each holding a slot."""

    def __init__(self, slots: asyncio.Semaphore, start: TaskStarter, wanted: int,
                 anywhere: bool) -> None:
        self.slots = slots
        self.start = start
        self.wanted = wanted  # unused grants the loop keeps up (the poll plan's polls)
        self.anywhere = anywhere  # tasks of any shard, not only of the node's (see Grant)
        self.unused = 0
        self.room = asyncio.Event()


class NodeStream:
    """The stream to the node at `address`; `run` serves it until it closes."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, address: str,
                 transport: _http.Transport) -> None:
        self.address = address
        self._ws = ws
        self._transport = transport
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._outbox: list[ToNode] = []
        self._wake = asyncio.Event()
        self._grants: dict[TaskKind, _Grants] = {}
        self._withdrawn = asyncio.Event()  # the worker asked for no more tasks
        self._withdrawn_confirmed = asyncio.Event()  # the node answered: none will come
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, transport: _http.Transport, address: str, path: str,
                   params: Mapping[str, str]) -> NodeStream:
        """Raises aiohttp.WSServerHandshakeError (see its `status`), aiohttp.ClientError or
        TimeoutError."""
        async with asyncio.timeout(STREAM_OPEN_TIMEOUT_S):
            ws = await transport.open_websocket(
                address, path, params=params, protocol=STREAM_SUBPROTOCOL,
                heartbeat_s=STREAM_HEARTBEAT_S, frame_bytes_max=FRAME_TO_WORKER_BYTES_MAX)
        return cls(ws, address, transport)

    def serve_kind(self, kind: TaskKind, slots: asyncio.Semaphore, start: TaskStarter,
                   wanted: int, *, anywhere: bool) -> None:
        """Before `run`: keep `wanted` grants of `kind` up, each on a slot of `slots`."""
        self._grants[kind] = _Grants(slots, start, wanted, anywhere)

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set()

    async def run(self) -> None:
        """Read, write and grant until the stream closes; then fail what waits on it."""
        loops = [asyncio.create_task(self._write_loop())]
        loops += [asyncio.create_task(self._grant_loop(kind, grants))
                  for kind, grants in self._grants.items()]
        try:
            await self._read_loop()
        finally:
            self.closed.set()
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop  # the writer ends on its own when a write fails
            self._give_back_grants()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(StreamClosedError(f"task stream to {self.address} "
                                                           "closed"))
            self._waiting.clear()
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self._ws.close()

    async def close(self) -> None:
        await self._ws.close()

    # -- calls -----------------------------------------------------------------------------

    async def call(self, path: str, body: bytes, *, traceparent: str = "",
                   timeout_s: float = _http.REQUEST_TIMEOUT_S) -> _http.Answer:
        """One task call; its 2xx answer, or RPCError as over HTTP.

        Raises StreamClosedError or TimeoutError when no reply came (the call may have been
        applied: it is sent again with the same body)."""
        if self.closed.is_set():
            raise StreamClosedError(f"task stream to {self.address} closed")
        self._seq = 0 if self._seq >= SEQ_MAX else self._seq + 1
        seq = self._seq
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = future
        self._transport.stream_calls_sent += 1
        self._send(Call(seq=seq, path=path, body=body, traceparent=traceparent))
        try:
            async with asyncio.timeout(timeout_s):
                reply = await future
        finally:
            self._waiting.pop(seq, None)
        text = reply.body.decode()
        if 200 <= reply.status < 300:
            return _http.Answer(reply.status, json.loads(text) if text else None,
                                _http.normalize_address(reply.served_by or self.address))
        raise _http.error_of(reply.status, text)

    # -- tasks -----------------------------------------------------------------------------

    async def _grant_loop(self, kind: TaskKind, grants: _Grants) -> None:
        while not self._withdrawn.is_set():
            if grants.unused >= grants.wanted:
                grants.room.clear()
                await grants.room.wait()  # a task used a grant, or the worker withdrew
                continue
            await grants.slots.acquire()
            if self._withdrawn.is_set():
                grants.slots.release()
                return
            grants.unused += 1
            self._send(Grant(kind=kind, count=1, anywhere=grants.anywhere))

    def _task_arrived(self, task: PushedTask) -> None:
        grants = self._grants.get(task.kind)
        if grants is None or grants.unused <= 0:
            # Never granted: the node broke the protocol. The task is dropped (handed out
            # again after its timeout) rather than run without a slot.
            log.error("task stream to %s pushed a %s task it had no grant for", self.address,
                      task.kind)
            return
        grants.unused -= 1
        grants.room.set()
        try:
            body = json.loads(task.body)
        except ValueError as error:  # not JSON at all: nothing in it names the task to fail
            log.error("task stream to %s pushed a task that is not JSON: %s", self.address,
                      error)
            grants.slots.release()
            return
        grants.start(_http.normalize_address(task.served_by) if task.served_by
                     else self.address, body)

    async def withdraw(self, timeout_s: float) -> None:
        """Ask for no more tasks; returns once the node confirmed (every task it sent has
        arrived and the unused grants' slots are given back), the stream closed, or at
        `timeout_s`."""
        if self.closed.is_set():
            return
        self._withdrawn.set()
        for grants in self._grants.values():
            grants.room.set()  # the grant loop sees the withdrawal and ends
        self._send(Withdraw())
        confirmed = asyncio.ensure_future(self._withdrawn_confirmed.wait())
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait([confirmed, closed], timeout=timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            confirmed.cancel()
            closed.cancel()

    def _give_back_grants(self) -> None:
        for grants in self._grants.values():
            for _ in range(grants.unused):
                grants.slots.release()
            grants.unused = 0

    # -- reading and writing ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            await self._read_all()
        except (aiohttp.ClientError, ConnectionError) as error:
            log.debug("task stream to %s: read failed: %r", self.address, error)

    async def _read_all(self) -> None:
        async for message in self._ws:
            if message.type is aiohttp.WSMsgType.ERROR:  # the link broke (a reset, a timeout)
                log.debug("task stream to %s failed: %r", self.address, message.data)
                return
            if message.type is not aiohttp.WSMsgType.BINARY:
                log.warning("task stream to %s sent a %s message; closing", self.address,
                            message.type.name)
                return
            try:
                frame = decode_to_worker(message.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                log.error("task stream to %s sent a malformed frame: %s", self.address, error)
                return
            for item in frame.messages:
                if isinstance(item, Reply):
                    future = self._waiting.get(item.seq)
                    if future is not None and not future.done():
                        future.set_result(item)
                elif isinstance(item, PushedTask):
                    self._task_arrived(item)
                else:
                    assert isinstance(item, Withdrawn)
                    self._give_back_grants()
                    self._withdrawn_confirmed.set()

    def _send(self, message: ToNode) -> None:
        self._outbox.append(message)
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                frame, self._outbox = first_frame(self._outbox)
                self._transport.stream_frames_sent += 1
                try:
                    await self._ws.send_bytes(encode_frame(FrameToNode(messages=frame)))
                except (aiohttp.ClientError, ConnectionError) as error:
                    # The link broke: closing ends the read loop, and `run` with it.
                    log.debug("task stream to %s: write failed: %r", self.address, error)
                    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                        await self._ws.close()
                    return
