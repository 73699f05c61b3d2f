"""A real `raftflow node` cluster on free loopback ports in a temp dir, for fixtures: started,
ready (and, by default, balanced), always stopped. Not a test module.

Nodes hand each shard's leadership to its preferred replica (the first listed) about 2 s after
start; a test that began earlier would see leaders move under its calls, so `running` waits
for that unless told not to (a test about membership, whose map changes anyway).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config

BALANCED_WAIT_S = 15.0


def wait_balanced(local: LocalCluster) -> None:
    """Wait (up to BALANCED_WAIT_S) until every shard is led by its preferred replica."""
    deadline = time.monotonic() + BALANCED_WAIT_S
    while time.monotonic() < deadline:
        status = local.status()
        if status is not None and all(s["leader"] == s["replicas"][0] for s in status["shards"]):
            return
        time.sleep(0.1)


@contextmanager
def running(tmp_path_factory: pytest.TempPathFactory, name: str, *, nodes: int = 3,
            shards: int = 8, balanced: bool = True) -> Iterator[LocalCluster]:
    """A dev cluster of `nodes` nodes and `shards` shards in a fresh temp dir `name`."""
    data_dir = tmp_path_factory.mktemp(name)
    config = load_or_create_dev_config(data_dir, nodes=nodes, shards=shards,
                                       http_port=free_port_block(nodes, random.Random()))
    local = LocalCluster(config, data_dir)
    local.start()
    try:
        local.wait_ready()
        if balanced:
            wait_balanced(local)
        yield local
    finally:
        local.stop()
