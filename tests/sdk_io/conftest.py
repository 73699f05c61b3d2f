"""One real 3-node cluster per test module (starting one takes a few seconds); always stopped."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    data_dir: Path = tmp_path_factory.mktemp("sdk-io-cluster")
    config = load_or_create_dev_config(data_dir, nodes=3, shards=8,
                                       http_port=free_port_block(3, random.Random()))
    local = LocalCluster(config, data_dir)
    local.start()
    try:
        local.wait_ready()
        _wait_balanced(local)
        yield local
    finally:
        local.stop()


BALANCED_WAIT_S = 15.0


def _wait_balanced(local: LocalCluster) -> None:
    """Wait until every shard is led by its preferred replica (the first one listed).

    Nodes hand leadership to the preferred replica about 2 s after start; tests that began
    earlier would see leaders move under them (see the report on result long polls).
    """
    deadline = time.monotonic() + BALANCED_WAIT_S
    while time.monotonic() < deadline:
        status = local.status()
        if status is not None and all(s["leader"] == s["replicas"][0] for s in status["shards"]):
            return
        time.sleep(0.1)
