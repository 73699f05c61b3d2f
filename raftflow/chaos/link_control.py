"""The link proxy's control protocol: requests as commands, their parser, and a blocking client.

One JSON object per line each way, over a TCP connection to the proxy's control port:
`{"op": "delay"|"loss"|"blackhole"|"refuse"|"heal", "link": NAME or "*", ...}` or
`{"op": "stats"}`; the answer is `{"ok": true, ...}` or `{"ok": false, "error": why}`.
The parser is pure (the proxy's side); `LinkControl` is the harness's side.
"""

from __future__ import annotations

import io
import json
import math
import socket
import threading
from dataclasses import dataclass
from typing import Any

from raftflow.chaos.link_limits import (
    CONTROL_LINE_BYTES_MAX,
    CONTROL_TIMEOUT_S,
    DELAY_MS_MAX,
    HOST,
)


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
