"""Single free loopback ports for tests that bind a listener themselves, from this pytest-xdist
worker's own range (tests/conftest.py) and below the kernel's ephemeral range: a port the kernel
hands out for port 0 can be taken by any outgoing connection before the test binds it."""

from __future__ import annotations

import random
import socket

from raftflow.cluster.launcher import RAFT_PORT_OFFSET, port_range

PROBES_MAX = 500
_rng = random.Random()


def free_port() -> int:
    low, high = port_range()
    for _ in range(PROBES_MAX):
        port = _rng.randrange(low, high + RAFT_PORT_OFFSET)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port in {low}-{high + RAFT_PORT_OFFSET}")
