"""A throw-away local cluster for a benchmark run: temp data dir, free loopback ports.

The cluster is always stopped (SIGTERM, then SIGKILL) and its data removed when the `with`
block ends, whether it ends normally, by an exception or by Ctrl-C. Only processes this module
started are signalled (LocalCluster keeps their handles).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from raftflow.cluster.launcher import LocalCluster, load_or_create_dev_config

LOOPBACK = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999) so that the benchmark's own outgoing connections
# cannot take a port between our probe and the node's bind.
PORT_BASE_MIN = 20_000
PORT_BASE_MAX = 30_000
RAFT_PORT_OFFSET = 1_000  # raft ports sit this far above the HTTP ports, as in `raftflow dev`
PORT_PROBES_MAX = 200
LAUNCH_ATTEMPTS_MAX = 3  # a probed port can still be taken before the node binds it
READY_TIMEOUT_S = 45.0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, rng: random.Random) -> int:
    """A base port such that base..base+count-1 and the matching raft ports are all free."""
    assert 1 <= count <= RAFT_PORT_OFFSET
    for _ in range(PORT_PROBES_MAX):
        base = rng.randrange(PORT_BASE_MIN, PORT_BASE_MAX - count)
        ports = [base + i for i in range(count)]
        ports += [port + RAFT_PORT_OFFSET for port in ports]
        if all(_port_free(port) for port in ports):
            return base
    raise RuntimeError(f"no block of {count} free loopback ports after {PORT_PROBES_MAX} probes")


def _launch(data_dir: Path, *, nodes: int, shards: int, rng: random.Random) -> LocalCluster:
    """Start the nodes and wait until every shard has a leader; stop them on any failure."""
    base = free_port_block(nodes, rng)
    config = load_or_create_dev_config(data_dir, nodes=nodes, http_port=base, shards=shards,
                                       raft_port_base=base + RAFT_PORT_OFFSET)
    cluster = LocalCluster(config, data_dir)
    try:
        cluster.start()
        cluster.wait_ready(READY_TIMEOUT_S)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def launched_cluster(*, nodes: int, shards: int, parent_dir: str | None,
                     keep_data: bool) -> Iterator[list[str]]:
    """Run a `nodes`-node cluster for the duration of the block; yield the HTTP addresses."""
    assert nodes >= 1 and shards >= 1
    root = Path(tempfile.mkdtemp(prefix="raftflow-bench-", dir=parent_dir))
    rng = random.Random()  # ports only; nothing about the measurement depends on it
    cluster: LocalCluster | None = None
    try:
        for attempt in range(1, LAUNCH_ATTEMPTS_MAX + 1):
            data_dir = root / f"attempt-{attempt}"
            try:
                cluster = _launch(data_dir, nodes=nodes, shards=shards, rng=rng)
                break
            except (RuntimeError, TimeoutError) as error:
                if attempt == LAUNCH_ATTEMPTS_MAX:
                    raise
                print(f"cluster launch failed ({error}); retrying on other ports",
                      file=sys.stderr, flush=True)
        assert cluster is not None
        yield [cluster.address(node_id) for node_id in cluster.node_ids]
    finally:
        if cluster is not None:
            cluster.stop()
        if keep_data:
            print(f"cluster data and node logs kept in {root}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
