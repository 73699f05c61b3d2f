"""A throw-away local cluster for a benchmark run: temp data dir, free loopback ports.

The cluster is always stopped (SIGTERM, then SIGKILL) and its data removed when the `with`
block ends, whether it ends normally, by an exception or by Ctrl-C. Only processes this module
started are signalled (LocalCluster keeps their handles).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from raftflow.cluster.launcher import (
    RAFT_PORT_OFFSET,
    LocalCluster,
    free_port_block,
    load_or_create_dev_config,
)
from raftflow.cluster.local_pki import LocalSecurity

LAUNCH_ATTEMPTS_MAX = 3  # a probed port can still be taken before the node binds it
READY_TIMEOUT_S = 45.0


def _launch(data_dir: Path, *, nodes: int, shards: int, rng: random.Random,
            spare_nodes: int, security: LocalSecurity | None = None) -> LocalCluster:
    """Start the nodes and wait until every shard has a leader; stop them on any failure.
    The ports of `spare_nodes` more nodes (the next HTTP and raft ports) are free too."""
    base = free_port_block(nodes + spare_nodes, rng)
    config = load_or_create_dev_config(data_dir, nodes=nodes, http_port=base, shards=shards,
                                       raft_port_base=base + RAFT_PORT_OFFSET)
    flags = [] if security is None else list(security.node_flags)
    cluster = LocalCluster(config, data_dir, node_args={n.id: flags for n in config.nodes},
                           tls_ca=None if security is None else security.ca_cert)
    try:
        cluster.start()
        cluster.wait_ready(READY_TIMEOUT_S)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def sigterm_raises_interrupt() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does, so that `finally` blocks stop the cluster
    (`timeout` and CI runners stop a benchmark with SIGTERM)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def launched_local_cluster(*, nodes: int, shards: int, parent_dir: str | None, keep_data: bool,
                           spare_nodes: int = 0, security: LocalSecurity | None = None,
                           ) -> Iterator[tuple[LocalCluster, Path]]:
    """Run a `nodes`-node cluster for the duration of the block; yield it and its data dir.

    `spare_nodes`: the HTTP and raft ports right after the cluster's (node i+1 at base + i)
    were free at launch, for nodes that join later (bench/elastic_cluster.py)."""
    assert nodes >= 1 and shards >= 1 and spare_nodes >= 0
    root = Path(tempfile.mkdtemp(prefix="raftflow-bench-", dir=parent_dir))
    rng = random.Random()  # ports only; nothing about the measurement depends on it
    cluster: LocalCluster | None = None
    try:
        for attempt in range(1, LAUNCH_ATTEMPTS_MAX + 1):
            data_dir = root / f"attempt-{attempt}"
            try:
                cluster = _launch(data_dir, nodes=nodes, shards=shards, rng=rng,
                                  spare_nodes=spare_nodes, security=security)
                break
            except (RuntimeError, TimeoutError) as error:
                if attempt == LAUNCH_ATTEMPTS_MAX:
                    raise
                print(f"cluster launch failed ({error}); retrying on other ports",
                      file=sys.stderr, flush=True)
        assert cluster is not None
        yield cluster, data_dir
    finally:
        if cluster is not None:
            cluster.stop()
        if keep_data:
            print(f"cluster data and node logs kept in {root}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def launched_cluster(*, nodes: int, shards: int, parent_dir: str | None,
                     keep_data: bool, security: LocalSecurity | None = None,
                     ) -> Iterator[list[str]]:
    """Run a `nodes`-node cluster for the duration of the block; yield the HTTP addresses
    (https with `security`: its nodes run with its flags)."""
    with launched_local_cluster(nodes=nodes, shards=shards, parent_dir=parent_dir,
                                keep_data=keep_data, security=security) as (cluster, _):
        yield [cluster.address(node_id) for node_id in cluster.node_ids]
