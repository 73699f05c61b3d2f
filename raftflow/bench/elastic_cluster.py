"""A throw-away local cluster that nodes can join: `raftflow node --join` on spare ports.

The first nodes are a dev cluster (bench/local_cluster.py: temp dir, free loopback ports); the
ports of the nodes that may join later were free at launch too. A joined node runs as
`python -m raftflow node --join ...` in its own session, exactly as an operator would start it.
Every process is stopped by its PID when the block ends (SIGTERM, then SIGKILL after
STOP_TIMEOUT_S), the joined ones first, before the data is removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from raftflow.bench.local_cluster import launched_local_cluster
from raftflow.cluster.launcher import RAFT_PORT_OFFSET, STOP_TIMEOUT_S, LocalCluster

SNAPSHOT_SUFFIX = ".snapshot"


class ElasticCluster:
    def __init__(self, cluster: LocalCluster, data_dir: Path, *, spare_nodes: int) -> None:
        self._cluster = cluster
        self.data_dir = data_dir
        self._spare_nodes = spare_nodes
        port = urlsplit(cluster.address(cluster.node_ids[0])).port
        assert port is not None
        self._http_port_base = port  # node i+1 serves on base + i (launcher.dev_cluster_config)
        self.joined: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def node_ids(self) -> list[str]:
        return [*self._cluster.node_ids, *self.joined]

    def address(self, node_id: str) -> str:
        if node_id in self.joined:
            return f"http://127.0.0.1:{self._http_port_base + self._index(node_id)}"
        return self._cluster.address(node_id)

    def addresses(self) -> list[str]:
        return [self.address(node_id) for node_id in self.node_ids]

    def node_dir(self, node_id: str) -> Path:
        return self.data_dir / node_id

    def pid(self, node_id: str) -> int:
        process = self.joined.get(node_id) or self._cluster.processes[node_id]
        return process.pid

    def _index(self, node_id: str) -> int:
        return self.node_ids.index(node_id)

    def join(self, node_id: str) -> None:
        """Start `node_id` on the next spare ports with `--join` (all current nodes as URLs)."""
        assert node_id not in self.node_ids
        index = len(self.node_ids)
        assert index < len(self._cluster.node_ids) + self._spare_nodes, "no spare ports left"
        http_port = self._http_port_base + index
        joins = [arg for address in self.addresses() for arg in ("--join", address)]
        log = open(self.data_dir / f"{node_id}.log", "ab")  # noqa: SIM115 (owned by the child)
        process = subprocess.Popen(
            [sys.executable, "-m", "raftflow", "node", "--id", node_id,
             "--data-dir", str(self.node_dir(node_id)), *joins,
             "--secret", self._cluster.config.secret,
             "--http-address", f"127.0.0.1:{http_port}",
             "--raft-address", f"127.0.0.1:{http_port + RAFT_PORT_OFFSET}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.joined[node_id] = process

    def stop_joined(self) -> None:
        for process in self.joined.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.joined.values():
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def snapshot_bytes(self, node_id: str) -> dict[int, int]:
        """Per group, the size of `node_id`'s snapshot file (groups without one are absent)."""
        sizes = {}
        directory = self.node_dir(node_id) / "snapshots"
        for path in directory.glob(f"shard-*{SNAPSHOT_SUFFIX}") if directory.exists() else ():
            group = int(path.name.removeprefix("shard-").removesuffix(SNAPSHOT_SUFFIX))
            with contextlib.suppress(OSError):  # replaced or dropped while we look
                sizes[group] = path.stat().st_size
        return sizes

    def dir_bytes(self, node_id: str) -> int:
        """Bytes in `node_id`'s data dir (WAL and snapshots)."""
        total = 0
        for path in self.node_dir(node_id).rglob("*"):
            with contextlib.suppress(OSError):
                if path.is_file():
                    total += path.stat().st_size
        return total


@contextlib.contextmanager
def launched_elastic_cluster(*, nodes: int, shards: int, spare_nodes: int,
                             parent_dir: str | None, keep_data: bool,
                             ) -> Iterator[ElasticCluster]:
    with launched_local_cluster(nodes=nodes, shards=shards, parent_dir=parent_dir,
                                keep_data=keep_data, spare_nodes=spare_nodes) as (cluster, data):
        elastic = ElasticCluster(cluster, data, spare_nodes=spare_nodes)
        try:
            yield elastic
        finally:
            elastic.stop_joined()
