"""Real node processes on loopback for integration tests; always torn down."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftflow.cluster.launcher import LocalCluster, load_or_create_dev_config


def free_port_block(count: int) -> int:
    """A base port such that base..base+count-1 and base+1000.. are all free on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(20_000, 50_000)
        sockets = []
        try:
            for port in [*range(base, base + count), *range(base + 1000, base + 1000 + count)]:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port block")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    config = load_or_create_dev_config(tmp_path, nodes=3, http_port=free_port_block(3), shards=8)
    local = LocalCluster(config, tmp_path)
    local.start()
    try:
        local.wait_ready()
        yield local
    finally:
        local.stop()
