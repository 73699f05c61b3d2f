"""Start and stop a cluster of real node processes on this machine (dev mode, tests, chaos).

Each node runs as `python -m raftflow node ...` in its own session (process group), so a test
or the chaos harness can SIGKILL, SIGSTOP or restart exactly the processes it started.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raftflow.cluster.config import ClusterConfig, dev_cluster_config, served_address
from raftflow.cluster.node_credential import node_headers

LOOPBACK = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999) so that the benchmark's own outgoing connections
# cannot take a port between our probe and the node's bind.
PORT_BASE_MIN = 20_000
PORT_BASE_MAX = 30_000
RAFT_PORT_OFFSET = 1_000  # raft ports sit this far above the HTTP ports, as in `raftflow dev`
PORT_PROBES_MAX = 200
# `LO-HI`: where to look for base ports instead (HI exclusive; raft ports go up to HI +
# RAFT_PORT_OFFSET). The test suite gives each pytest-xdist worker a range of its own
# (tests/conftest.py), so two workers never probe the same port and then both bind it.
PORT_RANGE_ENV = "RAFTFLOW_PORT_RANGE"


def port_range() -> tuple[int, int]:
    """The base ports free_port_block picks from: PORT_RANGE_ENV, else the defaults."""
    text = os.environ.get(PORT_RANGE_ENV, "")
    if not text:
        return PORT_BASE_MIN, PORT_BASE_MAX
    low_text, _, high_text = text.partition("-")
    try:
        low, high = int(low_text), int(high_text)
    except ValueError:
        low = high = 0  # refused just below, with the rule
    if not 1024 <= low < high <= 65_535 - RAFT_PORT_OFFSET:
        raise ValueError(f"{PORT_RANGE_ENV}={text!r}: want LO-HI with 1024 <= LO < HI <= "
                         f"{65_535 - RAFT_PORT_OFFSET}")
    return low, high


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
    low, high = port_range()
    for _ in range(PORT_PROBES_MAX):
        base = rng.randrange(low, high - count)
        ports = [base + i for i in range(count)]
        ports += [port + RAFT_PORT_OFFSET for port in ports]
        if all(_port_free(port) for port in ports):
            return base
    raise RuntimeError(f"no block of {count} free loopback ports after {PORT_PROBES_MAX} probes")

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
DEV_CONFIG_FILE = "dev-cluster.json"


def load_or_create_dev_config(data_dir: Path, *, nodes: int, http_port: int, shards: int,
                              raft_port_base: int | None = None) -> ClusterConfig:
    """The dev cluster's config: created once per data dir (secret, cluster id, shard count),
    with this run's node count and ports."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DEV_CONFIG_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    secret = stored.get("secret") or secrets.token_hex(16)
    cluster_id = stored.get("cluster_id") or f"dev-{secrets.token_hex(4)}"
    shard_count = int(stored.get("shard_count") or shards)
    config = dev_cluster_config(node_count=nodes, http_port_base=http_port, shard_count=shard_count,
                                secret=secret, cluster_id=cluster_id, raft_port_base=raft_port_base)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config.to_dict(), indent=2))
    os.replace(tmp, path)
    return config


class LocalCluster:
    def __init__(self, config: ClusterConfig, data_dir: Path, *, log_dir: Path | None = None,
                 node_args: Mapping[str, Sequence[str]] | None = None,
                 tls_ca: Path | None = None) -> None:
        self.config = config
        # Nodes serve HTTPS (their --tls-cert) signed by this CA: addresses are https and the
        # launcher's own probes verify them with it.
        self.ssl_context = None if tls_ca is None else ssl.create_default_context(
            cafile=str(tls_ca))
        # Extra `raftflow node` flags per node id (the chaos harness adds --dial and
        # --clock-skew-file).
        self.node_args = {node_id: list(args) for node_id, args in (node_args or {}).items()}
        self.data_dir = data_dir
        self.log_dir = log_dir or data_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.config_path = data_dir / DEV_CONFIG_FILE
        if not self.config_path.exists():
            self.config_path.write_text(json.dumps(config.to_dict(), indent=2))

    def address(self, node_id: str) -> str:
        return served_address(self.config.node(node_id).http_address,
                              tls=self.ssl_context is not None)

    @property
    def node_ids(self) -> list[str]:
        return [n.id for n in self.config.nodes]

    def start_node(self, node_id: str) -> subprocess.Popen[bytes]:
        assert node_id not in self.processes or self.processes[node_id].poll() is not None
        log = open(self.log_dir / f"{node_id}.log", "ab")  # noqa: SIM115 (owned by the child)
        process = subprocess.Popen(
            [sys.executable, "-m", "raftflow", "node", "--id", node_id,
             "--data-dir", str(self.data_dir / node_id), "--config", str(self.config_path),
             *self.node_args.get(node_id, ())],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes[node_id] = process
        return process

    def start(self) -> None:
        for node_id in self.node_ids:
            self.start_node(node_id)

    def kill(self, node_id: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[node_id]
        if process.poll() is None:
            os.killpg(process.pid, sig)
        if sig == signal.SIGKILL:
            process.wait()

    def stop(self) -> None:
        """SIGTERM every node this launcher started, then SIGKILL any that lingers."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def status(self, node_id: str | None = None) -> dict[str, Any] | None:
        """`GET /api/v1/cluster/status` from one live node, or None if none answers."""
        candidates = [node_id] if node_id else self.live_nodes()
        for candidate in candidates:
            try:
                # The node credential: with auth on, cluster status is for admins and nodes.
                ask = urllib.request.Request(self.address(candidate) + "/api/v1/cluster/status",
                                             headers=node_headers(self.config.secret))
                with urllib.request.urlopen(ask, timeout=3, context=self.ssl_context) as answer:
                    return dict(json.loads(answer.read()))
            except (OSError, urllib.error.URLError, ValueError):
                continue
        return None

    def live_nodes(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is None]

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait until every live node reports a leader for every shard.

        Every node, not just one: a node that has not yet heard of a shard's leader answers a
        call it must forward with 503 not_leader, so "ready" from one node's view let the first
        calls to another fail (seen in CI under load)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node_id, process in self.processes.items():
                if process.poll() is not None and process.returncode not in (-9, 0):
                    raise RuntimeError(f"{node_id} exited with {process.returncode}; see its log")
            views = [self.status(node_id) for node_id in self.live_nodes()]
            if views and all(v is not None and all(s["leader"] for s in v["shards"])
                             for v in views):
                return views[0]  # type: ignore[return-value]
            time.sleep(0.1)
        raise TimeoutError(f"cluster not ready within {timeout_s} s")
