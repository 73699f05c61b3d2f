"""`raftflow dev`: a local cluster of N node processes on 127.0.0.1, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from raftflow.cluster.launcher import LocalCluster, load_or_create_dev_config
from raftflow.cluster.limit_flags import limit_flags_of
from raftflow.cluster.observability_flags import observability_flags_of
from raftflow.cluster.security_flags import auth_on, security_flags_of
from raftflow.cluster.supervisor import RestartPolicy, Supervisor

# How often the main loop wakes to check for SIGINT/SIGTERM and for dead nodes.
TICK_S = 0.5


def run_dev(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    config = load_or_create_dev_config(data_dir, nodes=args.nodes, http_port=args.http_port,
                                       shards=args.shards)
    # Security flags go to every node as given (files resolved here: nodes run elsewhere).
    # With HTTPS and no --cluster-ca, the certificate is taken as its own CA (self-signed,
    # as a local one is): nodes verify each other with it, and the peer links use it too.
    if args.tls_cert and not args.cluster_ca:
        args.cluster_ca = args.tls_cert
    flags = security_flags_of(args) + limit_flags_of(args) + observability_flags_of(args)
    cluster = LocalCluster(config, data_dir, node_args={n.id: flags for n in config.nodes},
                           tls_ca=Path(args.cluster_ca) if args.tls_cert else None)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster.start()
    try:
        status = cluster.wait_ready()
        addresses = ", ".join(cluster.address(n) for n in cluster.node_ids)
        print(f"raftflow dev cluster ready: {len(cluster.node_ids)} nodes, "
              f"{len(status['shards'])} shards, data in {data_dir}", flush=True)
        print(f"  HTTP: {addresses}", flush=True)
        # Every node serves the web UI (docs/ui.md); the first is as good as any.
        print(f"  UI: {cluster.address(cluster.node_ids[0])}/ui/", flush=True)
        if auth_on(args):
            print("  auth: on (send Authorization: Bearer <token>; CLI: --token or "
                  "RAFTFLOW_TOKEN)", flush=True)
        worker = _start_worker(args.worker_command, [cluster.address(n) for n in cluster.node_ids])
        supervisor = Supervisor(cluster, None if args.no_restart else RestartPolicy(), stop,
                                now_s=time.monotonic())
        print("  stop with Ctrl-C", flush=True)
        while not stop.wait(TICK_S):
            supervisor.tick(time.monotonic())
        if worker is not None:
            _stop_worker(worker)
        print("stopping the dev cluster", flush=True)
    except (TimeoutError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:  # whatever went wrong, no node process outlives the command
        cluster.stop()
    return 0


def _start_worker(command: str | None, addresses: list[str]) -> subprocess.Popen[bytes] | None:
    if not command:
        return None
    env = {**os.environ, "RAFTFLOW_ADDRESSES": ",".join(addresses)}
    worker = subprocess.Popen(shlex.split(command), env=env, start_new_session=True)
    print(f"  worker: {command} (pid {worker.pid})", flush=True)
    return worker


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
