"""Suite-wide set-up: each pytest-xdist worker gets its own range of loopback ports.

Tests pick "free" ports by probing them, then bind them a moment (or, for a node process, a
second) later. Two workers probing one range can pick the same port in between, and a port
handed out by the kernel (bind to port 0) can be taken meanwhile by any outgoing connection, as
it comes from the ephemeral range (32768-60999 here). So every worker, and every process it
starts (they inherit the environment), picks below the ephemeral range from a slice of its own
(raftflow/cluster/launcher.py PORT_RANGE_ENV; tests/ports.py for single ports).
"""

from __future__ import annotations

import os

from raftflow.cluster.launcher import PORT_BASE_MAX, PORT_BASE_MIN, PORT_RANGE_ENV, RAFT_PORT_OFFSET


def _worker_slice() -> str | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or workers <= 1:
        return None
    index = int(worker[2:])
    # Slices of the default range, each with room above it for its raft ports, so the ports of
    # two slices (HTTP and raft) never meet.
    span = (PORT_BASE_MAX + RAFT_PORT_OFFSET - PORT_BASE_MIN) // workers
    low = PORT_BASE_MIN + index * span
    high = low + span - RAFT_PORT_OFFSET
    assert span > RAFT_PORT_OFFSET * 2 and high > low, (span, workers)
    return f"{low}-{high}"


_SLICE = _worker_slice()
if _SLICE is not None:
    os.environ[PORT_RANGE_ENV] = _SLICE
