"""Per-directed-link TCP fault proxy for real-process chaos runs, and its control client.

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

If stdin is a pipe (as `LinkProxyProcess` starts it), the proxy also exits when the pipe
closes, so it does not outlive a killed harness.

Seeds: each link draws jitter and loss from `random.Random(f"{seed}/{name}")`, one draw per
chunk, so the same seed and the same chunk sequence give the same holds. Chunk boundaries
depend on scheduling, so a real run's timing still varies from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import random
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, assert_never, cast

import uvloop

HOST: Final = "127.0.0.1"  # links and control are loopback only: the harness owns the box
# Per direction, queued bytes and the outgoing transport's buffer are each bounded by this;
# past it the incoming socket stops being read and TCP pushes back on the sender.
CONNECTION_BUFFER_BYTES_MAX: Final = 1 << 20
CONNECTION_BUFFER_BYTES_LOW: Final = CONNECTION_BUFFER_BYTES_MAX // 4  # resume reading here
LINK_CONNECTIONS_MAX: Final = 1024  # a node pair needs a handful; more means a leak upstream
DELAY_MS_MAX: Final = 60_000  # beyond election timeouts by far; larger is a typo
LOSS_STALL_MS_MIN: Final = 200  # Linux's minimum retransmission timeout
LOSS_STALL_MS_MAX: Final = 1000
CONTROL_LINE_BYTES_MAX: Final = 64 * 1024
CONTROL_TIMEOUT_S: Final = 5.0
READY_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
_LINGER_RESET: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_UP: Final = 0
_DOWN: Final = 1
assert CONNECTION_BUFFER_BYTES_LOW < CONNECTION_BUFFER_BYTES_MAX
assert 0 < LOSS_STALL_MS_MIN < LOSS_STALL_MS_MAX


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One directed link: listen on 127.0.0.1:listen_port, forward to 127.0.0.1:target_port."""

    name: str
    listen_port: int
    target_port: int


def parse_link_spec(text: str) -> LinkSpec:
    """Parse `NAME=LISTEN_PORT:TARGET_PORT`. Raises ValueError saying what is wrong."""
    name, equals, ports = text.partition("=")
    if not equals or not name or any(c.isspace() for c in name):
        raise ValueError(f"link {text!r}: expected NAME=LISTEN_PORT:TARGET_PORT, NAME without "
                         "whitespace or '='")
    listen, colon, target = ports.partition(":")
    if not colon:
        raise ValueError(f"link {text!r}: expected LISTEN_PORT:TARGET_PORT after '='")
    numbers = []
    for label, value in (("LISTEN_PORT", listen), ("TARGET_PORT", target)):
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            raise ValueError(f"link {text!r}: {label} must be an integer in 1..65535")
        numbers.append(int(value))
    return LinkSpec(name, numbers[0], numbers[1])


def format_link_spec(spec: LinkSpec) -> str:
    """The `--link` argument for `spec`; `parse_link_spec` reads it back unchanged."""
    return f"{spec.name}={spec.listen_port}:{spec.target_port}"


def check_link_specs(specs: Sequence[LinkSpec]) -> None:
    """Raise ValueError for duplicate names or listening ports, or the reserved name '*'."""
    names = [s.name for s in specs]
    ports = [s.listen_port for s in specs]
    if "*" in names:
        raise ValueError("link name '*' is reserved for 'all links'")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate link names in {names}")
    if len(set(ports)) != len(ports):
        raise ValueError(f"duplicate listening ports in {ports}")


class Mode(StrEnum):
    FORWARD = "forward"
    BLACKHOLE = "blackhole"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A link's current fault. Invariant: 0 <= jitter_ms <= delay_ms <= DELAY_MS_MAX."""

    mode: Mode = Mode.FORWARD
    delay_ms: int = 0
    jitter_ms: int = 0
    loss_percent: float = 0.0

    @property
    def holds_chunks(self) -> bool:
        return self.mode is not Mode.FORWARD or self.delay_ms > 0 or self.loss_percent > 0


def chunk_hold_s(fault: Fault, rng: random.Random) -> float:
    """How long one chunk waits before delivery; draws from `rng` only for jitter and loss."""
    assert 0 <= fault.jitter_ms <= fault.delay_ms <= DELAY_MS_MAX
    hold_ms = float(fault.delay_ms)
    if fault.jitter_ms:
        hold_ms += rng.uniform(-fault.jitter_ms, fault.jitter_ms)
    if fault.loss_percent and rng.random() * 100 < fault.loss_percent:
        hold_ms += rng.uniform(LOSS_STALL_MS_MIN, LOSS_STALL_MS_MAX)
    return max(hold_ms, 0.0) / 1000


# ------------------------------------------------------------------ control requests (pure)
@dataclass(frozen=True, slots=True)
class SetDelay:
    link: str
    ms: int
    jitter_ms: int


@dataclass(frozen=True, slots=True)
class SetLoss:
    link: str
    percent: float


@dataclass(frozen=True, slots=True)
class Blackhole:
    link: str


@dataclass(frozen=True, slots=True)
class Refuse:
    link: str


@dataclass(frozen=True, slots=True)
class Heal:
    link: str


@dataclass(frozen=True, slots=True)
class Stats:
    pass


ControlCommand = SetDelay | SetLoss | Blackhole | Refuse | Heal | Stats


class ControlRequestError(ValueError):
    """A control line the proxy refuses; the message names the offending field."""


def _int_field(request: dict[str, Any], key: str, low: int, high: int, default: int | None) -> int:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ControlRequestError(f"{key}: must be an integer in {low}..{high}, got {value!r}")
    return value


def parse_control_request(line: bytes, link_names: frozenset[str]) -> ControlCommand:
    """Decode one JSON control line into a command, validating every field."""
    try:
        request = json.loads(line)
    except ValueError as error:
        raise ControlRequestError(f"request: not JSON ({error})") from None
    if not isinstance(request, dict):
        raise ControlRequestError("request: must be a JSON object")
    op = request.get("op")
    if op == "stats":
        return Stats()
    if op not in ("delay", "loss", "blackhole", "refuse", "heal"):
        raise ControlRequestError(f"op: unknown {op!r}; one of delay, loss, blackhole, "
                                  "refuse, heal, stats")
    link = request.get("link")
    if not isinstance(link, str) or (link != "*" and link not in link_names):
        raise ControlRequestError(f"link: unknown {link!r}; one of {sorted(link_names)} or '*'")
    if op == "delay":
        ms = _int_field(request, "ms", 0, DELAY_MS_MAX, None)
        return SetDelay(link, ms, _int_field(request, "jitter_ms", 0, ms, 0))
    if op == "loss":
        percent = request.get("percent")
        if (isinstance(percent, bool) or not isinstance(percent, int | float)
                or not math.isfinite(percent) or not 0 <= percent <= 100):
            raise ControlRequestError(f"percent: must be a number in 0..100, got {percent!r}")
        return SetLoss(link, float(percent))
    if op == "blackhole":
        return Blackhole(link)
    return Refuse(link) if op == "refuse" else Heal(link)


# ------------------------------------------------------------------ proxy (asyncio shell)
def _reset(transport: asyncio.Transport | None) -> None:
    """Close with RST, as a crashed peer or a rejecting middlebox would."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class _Link:
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

    def _enqueue(self, chunk: bytes | None, link: _Link) -> None:
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
    def __init__(self, link: _Link) -> None:
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


class _Proxy:
    def __init__(self, specs: Sequence[LinkSpec], seed: int) -> None:
        check_link_specs(specs)
        self.links = {spec.name: _Link(spec, seed) for spec in specs}
        self.control: asyncio.AbstractServer | None = None

    async def start(self, control_port: int) -> None:
        loop = asyncio.get_running_loop()
        for link in self.links.values():
            link.server = await loop.create_server(
                link.accept, HOST, link.spec.listen_port, reuse_address=True)
        self.control = await asyncio.start_server(
            self._serve_control, HOST, control_port, reuse_address=True,
            limit=CONTROL_LINE_BYTES_MAX)

    def close(self) -> None:
        for link in self.links.values():
            if link.server is not None:
                link.server.close()
            for connection in list(link.connections):
                connection.reset()
        if self.control is not None:
            self.control.close()

    def execute(self, command: ControlCommand) -> dict[str, Any]:
        if isinstance(command, Stats):
            return {"ok": True, "links": {n: k.stats() for n, k in self.links.items()}}
        targets = list(self.links.values()) if command.link == "*" else [
            self.links[command.link]]
        for link in targets:
            match command:
                case SetDelay(_, ms, jitter_ms):
                    link.set_fault(replace(link.fault, delay_ms=ms, jitter_ms=jitter_ms))
                case SetLoss(_, percent):
                    link.set_fault(replace(link.fault, loss_percent=percent))
                case Blackhole():
                    link.set_fault(replace(link.fault, mode=Mode.BLACKHOLE))
                case Refuse():
                    link.set_fault(replace(link.fault, mode=Mode.REFUSE))
                case Heal():
                    link.set_fault(Fault())
                case _:
                    assert_never(command)
        return {"ok": True, "links": [link.spec.name for link in targets]}

    async def _serve_control(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    answer = self.execute(parse_control_request(line, frozenset(self.links)))
                except ControlRequestError as error:
                    answer = {"ok": False, "error": str(error)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ValueError, ConnectionError):  # over-long line or client gone: drop it
            pass
        finally:
            writer.close()


class _ParentWatch(asyncio.Protocol):
    """Stops the proxy when its stdin pipe closes: the parent holding the other end is gone,
    so a killed harness does not leave proxies holding the next run's ports."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def _serve(specs: Sequence[LinkSpec], control_port: int, seed: int) -> None:
    proxy = _Proxy(specs, seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        await loop.connect_read_pipe(lambda: _ParentWatch(stop), sys.stdin)
    try:
        await proxy.start(control_port)
        print("ready", flush=True)
        await stop.wait()
    finally:
        proxy.close()


def _link_arg(text: str) -> LinkSpec:
    try:
        return parse_link_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m raftflow.chaos.links",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--link", type=_link_arg, action="append", required=True,
                        metavar="NAME=LISTEN_PORT:TARGET_PORT")
    args = parser.parse_args(argv)
    try:
        check_link_specs(args.link)
    except ValueError as error:
        parser.error(str(error))
    uvloop.run(_serve(args.link, args.control_port, args.seed))
    return 0


# ------------------------------------------------------------------ client (sync, blocking)
class LinkControlError(RuntimeError):
    """The proxy refused a request (message from the proxy) or could not be reached."""


class LinkControl:
    """Blocking client for the control port; one connection, safe to share between threads."""

    def __init__(self, port: int, *, timeout_s: float = CONTROL_TIMEOUT_S) -> None:
        self._port = port
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._lines: io.BufferedReader | None = None

    @property
    def port(self) -> int:
        return self._port

    def delay(self, link: str, ms: int, jitter_ms: int = 0) -> None:
        self._call({"op": "delay", "link": link, "ms": ms, "jitter_ms": jitter_ms})

    def loss(self, link: str, percent: float) -> None:
        self._call({"op": "loss", "link": link, "percent": percent})

    def blackhole(self, link: str) -> None:
        self._call({"op": "blackhole", "link": link})

    def refuse(self, link: str) -> None:
        self._call({"op": "refuse", "link": link})

    def heal(self, link: str) -> None:
        self._call({"op": "heal", "link": link})

    def heal_all(self) -> None:
        self.heal("*")

    def stats(self) -> dict[str, Any]:
        """Per link: connections (open), accepted, rejected (refused or over the limit),
        bytes_up / bytes_down (delivered dialer->target / back), held_bytes (queued now), fault
        ({mode, delay_ms, jitter_ms, loss_percent})."""
        links: dict[str, Any] = self._call({"op": "stats"})["links"]
        return links

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one raw request and return the answer, `ok: false` included (for tests)."""
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.create_connection((HOST, self._port), self._timeout_s)
                    self._lines = self._sock.makefile("rb")
                assert self._lines is not None
                self._sock.sendall(json.dumps(request).encode() + b"\n")
                line = self._lines.readline(CONTROL_LINE_BYTES_MAX)
            except OSError as error:
                self._close_locked()
                raise LinkControlError(f"control port {self._port}: {error}") from error
            if not line.endswith(b"\n"):
                self._close_locked()
                raise LinkControlError(f"control port {self._port}: connection closed")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self.request(request)
        if not answer.get("ok"):
            raise LinkControlError(str(answer.get("error")))
        return answer

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._lines is not None:
            self._lines.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._lines = None


class LinkProxyStartError(RuntimeError):
    pass


class LinkProxyProcess:
    """The proxy as a child process in its own session; always reaped by `stop()`."""

    def __init__(self, process: subprocess.Popen[bytes], control_port: int) -> None:
        self._process = process
        self.control = LinkControl(control_port)

    @classmethod
    def start(cls, links: Sequence[LinkSpec], *, control_port: int, seed: int,
              ready_timeout_s: float = READY_TIMEOUT_S,
              log_path: Path | None = None) -> LinkProxyProcess:
        """Start the proxy and wait until every listener is bound (its `ready` line)."""
        check_link_specs(links)
        argv = [sys.executable, "-m", "raftflow.chaos.links", "--control-port",
                str(control_port), "--seed", str(seed)]
        for spec in links:
            argv += ["--link", format_link_spec(spec)]
        log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
        try:  # the child keeps its own copy of the log's descriptor
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log, start_new_session=True)
        finally:
            if log is not None:
                log.close()
        started = cls(process, control_port)
        try:
            started._wait_ready(ready_timeout_s)
        except BaseException:
            started.stop()
            raise
        return started

    def _wait_ready(self, timeout_s: float) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], timeout_s)
        line = stdout.readline() if readable else b""
        stdout.close()  # nothing follows `ready`
        if line.strip() != b"ready":
            raise LinkProxyStartError(f"link proxy not ready after {timeout_s} s (exit code "
                                      f"{self._process.poll()}, said {line!r})")

    def poll(self) -> int | None:
        return self._process.poll()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after `timeout_s`; returns the exit code once reaped."""
        self.control.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                return self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
        code = self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
        return code

    def __enter__(self) -> LinkProxyProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
