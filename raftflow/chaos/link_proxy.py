"""The link proxy's server (asyncio shell): all links' listeners and the control port.

`serve` is what the proxy process runs: it binds every link and the control port, prints
`ready`, and runs until SIGTERM/SIGINT. If stdin is a pipe (as `LinkProxyProcess` starts it),
the proxy also exits when the pipe closes, so it does not outlive a killed harness.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, assert_never

from raftflow.chaos.link_connections import Link
from raftflow.chaos.link_control import (
    Blackhole,
    ControlCommand,
    ControlRequestError,
    Heal,
    Refuse,
    SetDelay,
    SetLoss,
    Stats,
    parse_control_request,
)
from raftflow.chaos.link_faults import Fault, LinkSpec, Mode, check_link_specs
from raftflow.chaos.link_limits import CONTROL_LINE_BYTES_MAX, HOST


class LinkProxy:
    """Every link's listener plus the control server that changes their faults."""

    def __init__(self, specs: Sequence[LinkSpec], seed: int) -> None:
        check_link_specs(specs)
        self.links = {spec.name: Link(spec, seed) for spec in specs}
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


async def serve(specs: Sequence[LinkSpec], control_port: int, seed: int) -> None:
    """Run the proxy until SIGTERM, SIGINT or (if stdin is a pipe) the parent going away."""
    proxy = LinkProxy(specs, seed)
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
