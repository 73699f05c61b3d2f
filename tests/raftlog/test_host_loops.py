"""Regression tests for a replica that silently stopped acking (found by the chaos harness).

A peer's connection was lost while its dialer had not yet cleaned up; uvloop raised on the
write in `send_batch`, the exception killed the host's WAL round loop, and the node kept
answering HTTP and hearing heartbeats while it never wrote its WAL or sent a message again.
Goal: such a write is skipped; and should a host loop ever die, the node fails stop.
Method: a PeerNetwork with a stub connection; a real RaftHost on uvloop whose send raises once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import uvloop

from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.network import PeerNetwork
from tests import ports


class _ClosingTransport:
    def __init__(self) -> None:
        self.writes = 0

    def is_closing(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        raise RuntimeError("unable to perform operation on a closed transport")


class _Out:
    def __init__(self) -> None:
        self.authenticated = True
        self.transport = _ClosingTransport()


def _free_port() -> int:
    return ports.free_port()


def test_a_batch_for_a_connection_being_closed_is_dropped_not_raised() -> None:
    network = PeerNetwork(node_id="a", listen=("127.0.0.1", 0), peers={"b": ("127.0.0.1", 1)},
                          secret=b"s", on_frame=lambda *_: None, on_peer=lambda *_: None)
    out = _Out()
    network._out["b"] = out  # type: ignore[assignment]
    network.send_batch("b", [(0, {"type": "append"})])  # must not raise
    assert out.transport.writes == 0


def test_a_dead_host_loop_stops_the_node_instead_of_leaving_it_silent(tmp_path: Path) -> None:
    async def main() -> list[BaseException]:
        fatal: list[BaseException] = []
        host = RaftHost(node_id="a", data_dir=str(tmp_path), listen=("127.0.0.1", _free_port()),
                        peers={}, secret=b"s", on_fatal=fatal.append)
        await host.start()

        def broken_send(peer: str, frames: Any) -> None:
            raise RuntimeError("send failed")

        host.network.send_batch = broken_send  # type: ignore[method-assign]
        try:
            host.enqueue("b", 0, {"type": "append"})  # the next round sends, and raises
            for _ in range(200):
                if fatal:
                    break
                await asyncio.sleep(0.01)
        finally:
            host.network.send_batch = lambda *_: None  # type: ignore[method-assign]
            await host.stop()
        return fatal

    fatal = uvloop.run(main())
    assert len(fatal) == 1 and str(fatal[0]) == "send failed"
