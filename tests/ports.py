"""Single free loopback ports for tests that bind a listener themselves, from this pytest-xdist
worker's own range (tests/conftest.py) and below the kernel's ephemeral range: a port the kernel
hands out for port 0 can be taken by any outgoing connection before the test binds it."""

from __future__ import annotations

import random
import socket
from collections import deque

from raftflow.cluster.launcher import RAFT_PORT_OFFSET, port_range

PROBES_MAX = 500
RECENT_MAX = 64
_rng = random.Random()
_recent: deque[int] = deque(maxlen=RECENT_MAX)


def free_port(*, besides: frozenset[int] = frozenset()) -> int:
    """A port free now, not in `besides`, and not one of the last RECENT_MAX this process
    handed out: a probe reserves nothing, so two picks made before either port is bound (the
    nodes of one cluster, a proxy's listen and target ports) could otherwise be the same."""
    low, high = port_range()
    for _ in range(PROBES_MAX):
        port = _rng.randrange(low, high + RAFT_PORT_OFFSET)
        if port in besides or port in _recent:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _recent.append(port)
        return port
    raise RuntimeError(f"no free loopback port in {low}-{high + RAFT_PORT_OFFSET}")
