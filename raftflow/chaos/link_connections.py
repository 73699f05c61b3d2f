"""The proxy's byte shaping (asyncio shell): links, proxied connections and their directions.

Theory of operation. Every node dials every peer through a link: node A's connections to B
enter link "A->B" on its listening port and leave towards B's real port. One process (uvloop)
serves all links. Each accepted connection is a pair of Protocol sides joined by two
`_Direction`s (up = dialer to target, down = back). A direction forwards straight through
while its link has no fault; otherwise every chunk waits in a bounded FIFO with a due time of
`max(now + hold, previous due)`, so order within a connection is never broken. Faults apply to
*both* directions of the link's connections, so `delay 100` adds 200 ms to a round trip.

  delay ± jitter  each chunk waits delay ± jitter (uniform, clipped at 0)
  loss            per chunk, with probability percent/100, an extra 200..1000 ms stall; data
                  is never dropped or reordered, as TCP would retransmit it
  blackhole       both directions stop reading (pause_reading, so TCP backpressure bounds
                  memory) and hold what is queued; sockets stay open, peers see timeouts. New
                  connections are accepted but not dialled onwards until heal
  refuse          existing connections are reset (RST); new ones are accepted and reset at once
  heal            clear all faults; held and delayed bytes are delivered at once, in order

Only bytes are shaped: connection set-up is not delayed. Memory per connection is bounded:
each direction holds at most CONNECTION_BUFFER_BYTES_MAX queued plus one read, and as much in
the outgoing transport's buffer, before it stops reading.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
from collections import deque
from typing import Any, Final, cast

from raftflow.chaos.link_faults import Fault, LinkSpec, Mode, chunk_hold_s
from raftflow.chaos.link_limits import (
    CONNECTION_BUFFER_BYTES_LOW,
    CONNECTION_BUFFER_BYTES_MAX,
    HOST,
    LINK_CONNECTIONS_MAX,
)

_LINGER_RESET: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_UP: Final = 0
_DOWN: Final = 1


def _reset(transport: asyncio.Transport | None) -> None:
    """Close with RST, as a crashed peer or a rejecting middlebox would."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class Link:
    """One directed link: its listener, current fault, seeded rng, open connections, counters."""

    def __init__(self, spec: LinkSpec, seed: int) -> None:
        self.spec = spec
        self.fault = Fault()
        self.rng = random.Random(f"{seed}/{spec.name}")  # str seeds hash stably (sha512)
        self.connections: set[_Connection] = set()
        self.bytes_forwarded = [0, 0]  # [_UP, _DOWN]
        self.accepted = 0
        self.rejected = 0
        self.server: asyncio.AbstractServer | None = None

    def accept(self) -> _Side:
        return _Connection(self).client

    def set_fault(self, fault: Fault) -> None:
        self.fault = fault
        for connection in list(self.connections):
            if fault.mode is Mode.REFUSE:
                connection.reset()
                continue
            connection.refresh()
            if fault == Fault():  # nothing left to emulate: what was held is now delivered
                connection.release_held()

    def stats(self) -> dict[str, Any]:
        return {"connections": len(self.connections), "accepted": self.accepted,
                "rejected": self.rejected, "bytes_up": self.bytes_forwarded[_UP],
                "bytes_down": self.bytes_forwarded[_DOWN],
                "held_bytes": sum(c.up.queued_bytes + c.down.queued_bytes
                                  for c in self.connections),
                "fault": {"mode": self.fault.mode.value, "delay_ms": self.fault.delay_ms,
                          "jitter_ms": self.fault.jitter_ms,
                          "loss_percent": self.fault.loss_percent}}


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; hands every event to its connection."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.outgoing: _Direction  # both set by the connection right after construction
        self.incoming: _Direction

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert self.transport is None, "a side is connected once"
        # uvloop's TCPTransport has Transport's methods but does not subclass it.
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        transport.set_write_buffer_limits(CONNECTION_BUFFER_BYTES_MAX, CONNECTION_BUFFER_BYTES_LOW)
        self.connection.on_side_made(self)

    def data_received(self, data: bytes) -> None:
        self.outgoing.on_data(data)

    def eof_received(self) -> bool:
        self.outgoing.on_end(abort=False)
        return True  # stay half-open: the other direction may still be talking

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.connection.on_side_lost(self, exc)

    def pause_writing(self) -> None:
        self.incoming.set_dst_full(True)

    def resume_writing(self) -> None:
        self.incoming.set_dst_full(False)


class _Direction:
    """Bytes from `src` to `dst`: straight through, or via a FIFO of (due time, chunk)."""

    def __init__(self, connection: _Connection, src: _Side, dst: _Side, index: int) -> None:
        self.connection, self.src, self.dst, self.index = connection, src, dst, index
        self.queue: deque[tuple[float, bytes | None]] = deque()  # None marks end of stream
        self.queued_bytes = 0
        self.last_due = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.queue_full = False
        self.dst_full = False
        self.end_abort = False
        self.ended = False  # end of stream delivered (or dst gone): nothing more to do

    def on_data(self, data: bytes) -> None:
        link = self.connection.link
        if self.ended:
            return
        dst = self.dst.transport
        if not self.queue and not link.fault.holds_chunks and dst is not None:
            dst.write(data)
            link.bytes_forwarded[self.index] += len(data)
            return
        self._enqueue(data, link)
        self.queue_full = self.queue_full or self.queued_bytes >= CONNECTION_BUFFER_BYTES_MAX
        # uvloop starts reading only after connection_made returns, so a pause asked for
        # there is lost; checking here on every held chunk makes it take effect.
        self.update_reading()

    def on_end(self, *, abort: bool) -> None:
        if self.ended:
            return
        if self.dst.transport is None and abort:  # the dialer left before the target answered
            self.connection.reset()
            return
        self.end_abort = abort
        link = self.connection.link
        if self.queue or link.fault.holds_chunks or self.dst.transport is None:
            self._enqueue(None, link)
        else:
            self._deliver(None)

    def _enqueue(self, chunk: bytes | None, link: Link) -> None:
        due = max(asyncio.get_running_loop().time() + chunk_hold_s(link.fault, link.rng),
                  self.last_due)  # never before the previous chunk: TCP keeps order
        self.last_due = due
        self.queue.append((due, chunk))
        self.queued_bytes += len(chunk) if chunk else 0
        self.schedule()

    def schedule(self) -> None:
        if (self.timer is None and self.queue and self.dst.transport is not None
                and self.connection.link.fault.mode is Mode.FORWARD):
            self.timer = asyncio.get_running_loop().call_at(self.queue[0][0], self.flush)

    def flush(self, until: float | None = None) -> None:
        """Deliver queued chunks due by `until` (default now); on heal, `math.inf`."""
        self.timer = None
        if (self.connection.link.fault.mode is not Mode.FORWARD or self.ended
                or self.dst.transport is None):
            return  # blackholed or not yet dialled: hold everything
        until = asyncio.get_running_loop().time() if until is None else until
        while self.queue and self.queue[0][0] <= until and not self.ended:
            _, chunk = self.queue.popleft()
            self._deliver(chunk)
        if self.queue_full and self.queued_bytes <= CONNECTION_BUFFER_BYTES_LOW:
            self.queue_full = False
            self.update_reading()
        self.schedule()

    def _deliver(self, chunk: bytes | None) -> None:
        assert self.dst.transport is not None
        if chunk is None:
            self.ended = True
            self.connection.on_direction_ended(self)
            return
        self.queued_bytes -= len(chunk)
        self.dst.transport.write(chunk)
        self.connection.link.bytes_forwarded[self.index] += len(chunk)
        assert self.queued_bytes >= 0

    def set_dst_full(self, full: bool) -> None:
        self.dst_full = full
        self.update_reading()

    def update_reading(self) -> None:
        transport = self.src.transport
        if transport is None or transport.is_closing():
            return
        want = (self.dst.transport is not None and not self.queue_full and not self.dst_full
                and not self.ended and self.connection.link.fault.mode is Mode.FORWARD)
        if want and not transport.is_reading():
            transport.resume_reading()
        elif not want and transport.is_reading():
            transport.pause_reading()

    def discard(self) -> None:
        self.ended = True
        self.queue.clear()
        self.queued_bytes = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Connection:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.client = _Side(self)
        self.upstream = _Side(self)
        self.up = _Direction(self, self.client, self.upstream, _UP)
        self.down = _Direction(self, self.upstream, self.client, _DOWN)
        self.client.outgoing = self.upstream.incoming = self.up
        self.upstream.outgoing = self.client.incoming = self.down
        self.dial: asyncio.Task[None] | None = None

    def on_side_made(self, side: _Side) -> None:
        if side is self.client:
            self.link.accepted += 1
            if (self.link.fault.mode is Mode.REFUSE
                    or len(self.link.connections) >= LINK_CONNECTIONS_MAX):
                self.link.rejected += 1
                _reset(side.transport)
                return
            self.link.connections.add(self)
        self.refresh()

    def refresh(self) -> None:
        """Re-evaluate after a fault change or a new socket: dial, read, schedule delivery."""
        if self.dial is None and self.link.fault.mode is Mode.FORWARD and not self.client.lost:
            self.dial = asyncio.get_running_loop().create_task(self._dial())
        for direction in (self.up, self.down):
            direction.update_reading()
            direction.schedule()

    def release_held(self) -> None:
        for direction in (self.up, self.down):
            if direction.timer is not None:
                direction.timer.cancel()
            direction.flush(math.inf)

    async def _dial(self) -> None:
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: self.upstream, HOST, self.link.spec.target_port)
        except OSError:
            self.reset()  # the target is down: the dialer sees a reset, as from a dead node

    def on_direction_ended(self, direction: _Direction) -> None:
        other = self.down if direction is self.up else self.up
        if direction.end_abort:
            self.reset()
        elif other.ended:
            for side in (self.client, self.upstream):
                if side.transport is not None:
                    side.transport.close()  # after the write buffer drains
        elif direction.dst.transport is None or direction.dst.transport.is_closing():
            self.reset()
        else:
            direction.dst.transport.write_eof()

    def on_side_lost(self, side: _Side, exc: Exception | None) -> None:
        side.incoming.discard()
        if exc is not None:
            side.outgoing.on_end(abort=True)  # after what is queued, like an RST behind data
        if self.client.lost and (self.upstream.lost or self.upstream.transport is None):
            self._forget()

    def reset(self) -> None:
        self.up.discard()
        self.down.discard()
        _reset(self.client.transport)
        _reset(self.upstream.transport)
        self._forget()

    def _forget(self) -> None:
        if self.dial is not None and not self.dial.done():
            self.dial.cancel()
        self.link.connections.discard(self)

