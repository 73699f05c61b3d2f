"""The per-link fault proxy, as the chaos harness uses it.

Goal: every fault does what the harness relies on (delay both ways, order kept, blackhole holds
then delivers, refuse resets, loss stalls without losing bytes), the control port rejects bad
requests by naming the field, and the process always goes away. Method: one real proxy process
(seed PROXY_SEED) in front of a threaded echo server; every test starts from healed links. Timing
checks are loose lower bounds only: the VM is shared and has two cores.
"""

from __future__ import annotations

import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from raftflow.chaos.link_control import (
    Heal,
    LinkControl,
    LinkControlError,
    SetDelay,
    parse_control_request,
)
from raftflow.chaos.link_faults import (
    Fault,
    LinkSpec,
    chunk_hold_s,
    format_link_spec,
    parse_link_spec,
)
from raftflow.chaos.link_limits import (
    CONNECTION_BUFFER_BYTES_MAX,
    DELAY_MS_MAX,
    LOSS_STALL_MS_MAX,
    LOSS_STALL_MS_MIN,
)
from raftflow.chaos.link_process import LinkProxyProcess, LinkProxyStartError
from tests import ports

PROXY_SEED = 1
TIMEOUT_S = 5.0
LINKS = ("a->echo", "b->echo", "stats->echo")


def _free_port() -> int:
    return ports.free_port()


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := self.request.recv(1 << 16):
                self.request.sendall(data)
        except OSError:  # the proxy reset us (refuse): nothing to echo any more
            pass


class _EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@dataclass(frozen=True)
class World:
    proxy: LinkProxyProcess
    control: LinkControl
    ports: dict[str, int]  # link name -> proxy listening port


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    echo = _EchoServer(("127.0.0.1", 0), _EchoHandler)
    serving = threading.Thread(target=echo.serve_forever, daemon=True)
    serving.start()
    try:
        echo_port = echo.server_address[1]
        specs = [LinkSpec(name, _free_port(), echo_port) for name in LINKS]
        with LinkProxyProcess.start(specs, control_port=_free_port(), seed=PROXY_SEED) as proxy:
            yield World(proxy, proxy.control, {s.name: s.listen_port for s in specs})
    finally:
        echo.shutdown()
        echo.server_close()


@pytest.fixture(autouse=True)
def healed(request: pytest.FixtureRequest) -> Iterator[None]:
    if "world" not in request.fixturenames:
        yield
        return
    control = request.getfixturevalue("world").control
    control.heal_all()
    yield
    control.heal_all()


def _dial(world: World, link: str = "a->echo") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", world.ports[link]), TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = sock.recv(min(size - got, 1 << 20))
        assert part, f"EOF after {got} of {size} bytes"
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _round_trip_s(sock: socket.socket, payload: bytes) -> float:
    started = time.monotonic()
    sock.sendall(payload)
    assert _recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - started


@pytest.mark.parametrize("delay_ms", [0, 5])
def test_bulk_transfer_passes_unchanged_and_half_closes(world: World, delay_ms: int) -> None:
    # 5 MiB is five times the per-connection bound, so both the straight path and the delay
    # queue must push back on the sender rather than buffer it all.
    world.control.delay("a->echo", delay_ms)
    payload = random.Random(PROXY_SEED).randbytes(5 << 20)
    with _dial(world) as sock:
        assert _round_trip_s(sock, b"p" * 64) >= 2 * delay_ms / 1000 * 0.9

        def send_all() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)  # the echo server closes on EOF: EOF comes back

        sender = threading.Thread(target=send_all)
        sender.start()
        try:
            echoed = _recv_exactly(sock, len(payload))
            assert sock.recv(1) == b""
        finally:
            sender.join(TIMEOUT_S)
    assert echoed == payload


def test_delayed_bulk_transfer_holds_a_bounded_amount(world: World) -> None:
    world.control.delay("a->echo", 100)
    payload = random.Random(PROXY_SEED).randbytes(4 << 20)
    held_bytes_max = 0
    with _dial(world) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        try:
            received = bytearray()
            while len(received) < len(payload):
                received += sock.recv(1 << 20)
                held_bytes_max = max(held_bytes_max, world.control.stats()["a->echo"]["held_bytes"])
        finally:
            sender.join(TIMEOUT_S)
    assert received == payload
    # Both directions, each: the bound plus one read (uvloop reads at most 256 KiB at a time).
    assert 0 < held_bytes_max <= 2 * (CONNECTION_BUFFER_BYTES_MAX + (256 << 10))


def test_delay_applies_to_both_directions_of_one_link_only(world: World) -> None:
    world.control.delay("a->echo", 100)
    with _dial(world) as sock:
        assert _round_trip_s(sock, b"ping") >= 0.19  # 100 ms there and 100 ms back
    stats = world.control.stats()
    assert stats["a->echo"]["fault"]["delay_ms"] == 100
    assert stats["b->echo"]["fault"] == {"mode": "forward", "delay_ms": 0, "jitter_ms": 0,
                                         "loss_percent": 0.0}


def test_jitter_never_reorders_bytes(world: World) -> None:
    world.control.delay("a->echo", 20, jitter_ms=20)
    messages = b"".join(i.to_bytes(4, "big") for i in range(300))
    with _dial(world) as sock:
        for i in range(0, len(messages), 4):  # one small send each: many chunks, many draws
            sock.sendall(messages[i:i + 4])
        assert _recv_exactly(sock, len(messages)) == messages


def test_blackhole_times_out_then_heal_delivers_what_was_held(world: World) -> None:
    with _dial(world) as before:
        _round_trip_s(before, b"warm")
        world.control.blackhole("a->echo")
        before.sendall(b"held-1")
        with _dial(world) as during:  # still accepted: a partition is not a refusal
            during.sendall(b"held-2")
            for sock in (before, during):
                sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    sock.recv(16)
            assert world.control.stats()["a->echo"]["fault"]["mode"] == "blackhole"
            world.control.heal("a->echo")
            for sock, expected in ((before, b"held-1"), (during, b"held-2")):
                sock.settimeout(TIMEOUT_S)
                assert _recv_exactly(sock, len(expected)) == expected


def test_refuse_resets_existing_and_new_connections(world: World) -> None:
    with _dial(world) as existing:
        _round_trip_s(existing, b"warm")
        world.control.refuse("a->echo")
        with pytest.raises(ConnectionResetError):
            existing.recv(16)
    try:
        fresh = _dial(world)
    except (ConnectionRefusedError, ConnectionResetError):
        pass  # the reset can beat connect() home on loopback
    else:
        with fresh:
            try:
                answer = fresh.recv(16)
            except ConnectionResetError:
                answer = b""
            assert answer == b""  # closed at once, nothing forwarded
    world.control.heal("a->echo")
    with _dial(world) as after:
        _round_trip_s(after, b"back")


def test_full_loss_stalls_every_chunk_but_loses_nothing(world: World) -> None:
    world.control.loss("a->echo", 100)
    with _dial(world) as sock:
        for payload in (b"first", b"second"):
            # One stall of at least LOSS_STALL_MS_MIN each way.
            assert _round_trip_s(sock, payload) >= 2 * LOSS_STALL_MS_MIN / 1000 * 0.95


def test_stats_count_connections_and_bytes(world: World) -> None:
    with _dial(world, "stats->echo") as sock:
        _round_trip_s(sock, b"x" * 1000)
        link = world.control.stats()["stats->echo"]
        assert (link["connections"], link["bytes_up"], link["bytes_down"]) == (1, 1000, 1000)
    deadline = time.monotonic() + TIMEOUT_S
    while world.control.stats()["stats->echo"]["connections"] and time.monotonic() < deadline:
        time.sleep(0.01)  # real sockets: the proxy sees our close a moment later
    link = world.control.stats()["stats->echo"]
    assert (link["connections"], link["accepted"], link["bytes_up"]) == (0, 1, 1000)


@pytest.mark.parametrize(("request_", "field"), [
    ({"op": "slow"}, "op"),
    ({"op": "delay", "link": "nope->echo", "ms": 5}, "link"),
    ({"op": "delay", "link": "a->echo"}, "ms"),
    ({"op": "delay", "link": "a->echo", "ms": DELAY_MS_MAX + 1}, "ms"),
    ({"op": "delay", "link": "a->echo", "ms": 10, "jitter_ms": 11}, "jitter_ms"),
    ({"op": "delay", "link": "a->echo", "ms": True}, "ms"),
    ({"op": "loss", "link": "*", "percent": 150}, "percent"),
    ({"op": "loss", "link": "a->echo", "percent": "10"}, "percent"),
])
def test_bad_requests_are_refused_naming_the_field(world: World, request_: dict[str, object],
                                                    field: str) -> None:
    answer = world.control.request(request_)
    assert answer["ok"] is False
    assert answer["error"].startswith(f"{field}:")
    assert world.control.stats()["a->echo"]["fault"]["delay_ms"] == 0  # nothing was applied


def test_non_json_line_is_refused_and_the_client_raises(world: World) -> None:
    with socket.create_connection(("127.0.0.1", world.proxy.control.port), TIMEOUT_S) as raw:
        raw.sendall(b"delay a->echo 5\n")
        assert b'"ok": false' in raw.recv(1024)
    with pytest.raises(LinkControlError, match="percent"):
        world.control.loss("a->echo", -1)


def test_stop_reaps_the_process_even_when_used_as_a_context_manager() -> None:
    spec = LinkSpec("x->y", _free_port(), _free_port())
    proxy = LinkProxyProcess.start([spec], control_port=_free_port(), seed=PROXY_SEED)
    with proxy:
        proxy.control.delay("x->y", 1)
    assert proxy.poll() == 0  # SIGTERM is an orderly exit
    assert proxy.stop() == 0  # and stopping twice is harmless


def test_proxy_exits_when_its_parent_goes_away() -> None:
    # Closing stdin is what the kernel does for us when the harness is killed.
    argv = [sys.executable, "-m", "raftflow.chaos.links", "--control-port", str(_free_port()),
            "--seed", str(PROXY_SEED), "--link", f"x->y={_free_port()}:{_free_port()}"]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               start_new_session=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == b"ready\n"
        process.stdin.close()
        assert process.wait(TIMEOUT_S) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]


def test_start_fails_cleanly_when_a_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        spec = LinkSpec("x->y", taken.getsockname()[1], _free_port())
        with pytest.raises(LinkProxyStartError, match="exit code"):
            LinkProxyProcess.start([spec], control_port=_free_port(), seed=PROXY_SEED)


# ------------------------------------------------------------------ pure parts
def test_link_spec_round_trips_and_bad_specs_say_why() -> None:
    spec = LinkSpec("node-1->node-2", 17002, 7002)
    assert parse_link_spec(format_link_spec(spec)) == spec
    for text, words in [("node-1", "NAME="), ("a b=1:2", "whitespace"), ("a=1", "TARGET_PORT"),
                        ("a=x:2", "LISTEN_PORT"), ("a=1:70000", "TARGET_PORT")]:
        with pytest.raises(ValueError, match=words):
            parse_link_spec(text)


def test_holds_are_reproducible_from_the_seed_and_bounded() -> None:
    fault = Fault(delay_ms=80, jitter_ms=40, loss_percent=10)
    rngs = [random.Random(f"{seed}/a->b") for seed in (7, 7, 8)]
    draws = [[chunk_hold_s(fault, rng) for _ in range(50)] for rng in rngs]
    assert draws[0] == draws[1] != draws[2]
    rng = random.Random(7)
    holds = [chunk_hold_s(fault, rng) for _ in range(2000)]
    assert min(holds) >= 0.040 and max(holds) <= (120 + LOSS_STALL_MS_MAX) / 1000
    assert any(h > 0.120 for h in holds)  # some chunks were "lost" and stalled


def test_control_requests_parse_into_commands() -> None:
    links = frozenset({"a->b"})
    assert parse_control_request(b'{"op":"delay","link":"a->b","ms":80}', links) == SetDelay(
        "a->b", 80, 0)
    assert parse_control_request(b'{"op":"heal","link":"*"}\n', links) == Heal("*")
