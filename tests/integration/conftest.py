"""Real node processes on loopback for integration tests; always torn down."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    config = load_or_create_dev_config(tmp_path, nodes=3, http_port=free_port_block(3, random.Random()), shards=8)
    local = LocalCluster(config, tmp_path)
    local.start()
    try:
        local.wait_ready()
        yield local
    finally:
        local.stop()
