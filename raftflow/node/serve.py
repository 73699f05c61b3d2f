"""`raftflow node`: run one node until SIGINT or SIGTERM, then stop cleanly and exit 0.

A stop signal first hands every leadership this node holds to another replica (graceful stop:
a rolling restart costs clients no failed call). A node the cluster map says was removed says
so and exits 0 too: it has nothing left to serve.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import signal
import sys
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import uvloop

from raftflow.api.access import Authenticator
from raftflow.api.api_keys import AuthConfigError
from raftflow.api.rate_limits import UNLIMITED, RateDefaults
from raftflow.cluster.config import (
    ClusterConfig,
    ClusterConfigError,
    InvalidClusterConfigError,
    NodeSpec,
    parse_peers,
    resolve_config,
)
from raftflow.cluster.observability_flags import observability_of
from raftflow.node import gc_tuning
from raftflow.node.auth_setup import authenticator_from_args, reload_on_sighup
from raftflow.node.join import join_config, split_address
from raftflow.node.runtime import NodeRuntime
from raftflow.node.tls_setup import NodeTls, TlsConfigError, is_loopback, tls_from_args
from raftflow.node.wall_clock import SkewableWallClock, read_skew_file, watch_skew_file
from raftflow.observability.config import DEFAULT_OBSERVABILITY, ObservabilityConfig
from raftflow.observability.json_logs import configure_logging

log = logging.getLogger("raftflow.node")


def config_from_args(args: argparse.Namespace, tls: NodeTls | None = None,
                     auth: Authenticator | None = None) -> ClusterConfig:
    """The node's cluster configuration; a joining node is first admitted (after the checks
    of its own flags, so a node that will refuse to start never joins)."""
    if getattr(args, "join", None):
        if not args.secret:
            raise InvalidClusterConfigError("--join needs the cluster's --secret")
        if not (args.http_address and args.raft_address):
            raise InvalidClusterConfigError("--join needs --http-address and --raft-address")
        host, _ = split_address("--http-address", args.http_address)
        _refuse_exposed_without_protection(host, args, auth, tls)
        return join_config(data_dir=Path(args.data_dir), node_id=args.id, join_urls=args.join,
                           secret=args.secret, http_address=args.http_address,
                           raft_address=args.raft_address,
                           ssl_context=None if tls is None else tls.client)
    return resolve_config(
        config_file=Path(args.config) if args.config else None, peers=args.peers,
        cluster_id=args.cluster_id, shard_count=args.shards, secret=args.secret)


async def serve(config: ClusterConfig, node_id: str, data_dir: Path, *,
                dial: Mapping[str, NodeSpec] | None = None,
                clock_skew_file: Path | None = None,
                auth: Authenticator | None = None, auth_tokens: Path | None = None,
                tls: NodeTls | None = None, rate_defaults: RateDefaults = UNLIMITED,
                observability: ObservabilityConfig = DEFAULT_OBSERVABILITY) -> None:
    clock = SkewableWallClock()
    runtime = NodeRuntime(config, node_id, data_dir, dial=dial, clock=clock, auth=auth, tls=tls,
                          rate_defaults=rate_defaults, observability=observability)
    if clock_skew_file is not None:
        clock.set_skew_ms(read_skew_file(clock_skew_file))  # before any command
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if auth is not None and auth_tokens is not None:
        reload_on_sighup(auth, auth_tokens)
    await runtime.start()
    gc_tuning.install()
    background = [loop.create_task(gc_tuning.collect_forever())]
    if clock_skew_file is not None:
        background.append(loop.create_task(watch_skew_file(clock, clock_skew_file)))
    removed = loop.create_task(runtime.removed.wait())
    stopped = loop.create_task(stop.wait())
    try:
        await asyncio.wait({removed, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (*background, removed, stopped):
            task.cancel()
        if runtime.removed.is_set():
            log.warning("node %s was removed from the cluster; exiting", node_id)
            print(f"raftflow node {node_id}: removed from the cluster; exiting", flush=True)
        log.info("node %s stopping", node_id)
        await runtime.stop(graceful=not runtime.removed.is_set())


def _refuse_exposed_without_protection(host: str, args: argparse.Namespace,
                                       auth: Authenticator | None, tls: NodeTls | None) -> None:
    """A node reachable beyond this machine needs TLS (API and peer links) and auth, or an
    explicit --insecure: anyone who reaches the port could otherwise run any call."""
    missing = [what for what, present in (
        ("HTTPS (--tls-cert, --tls-key)", tls is not None),
        ("TLS on the peer links (--cluster-ca)", tls is not None and tls.peers is not None),
        ("auth (--auth-tokens or a JWT key)", auth is not None)) if not present]
    if not missing or is_loopback(host):
        return
    if getattr(args, "insecure", False):
        log.warning("node bound to %s runs without %s (--insecure)", host, ", ".join(missing))
        return
    raise TlsConfigError(f"refusing to serve on {host}, which is not a loopback address, "
                         f"without {', '.join(missing)}; give them, or --insecure to run "
                         "without them anyway")


def run_loop(main: Coroutine[Any, Any, None], *, tls: bool) -> None:
    """Run `main` on uvloop, or on asyncio's own loop when the node makes TLS connections.

    uvloop 0.23 (MagicStack/uvloop#738, open) leaves the socket of a `create_connection(sock=)`
    that is cancelled before it completes undetached: its fd is closed twice, and a socket
    opened meanwhile on the same number is corrupted; every later connect on it fails with
    "File descriptor N is used by transport". aiohttp connects that way, and a TLS connect
    stays open to cancellation for its whole handshake, so a timed-out call to a dead peer
    hits it (a secured chaos run's nodes stopped on it within seconds). Plain TCP connects
    complete within one loop turn, so nodes without TLS keep uvloop."""
    if tls:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _opentelemetry_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.sdk") is not None
    except ModuleNotFoundError:  # not even the `opentelemetry` namespace package
        return False


def run_node(args: argparse.Namespace) -> int:
    observability = observability_of(args)
    configure_logging(level=getattr(args, "log_level", "info"),
                      log_format=observability.log_format, node_id=args.id)
    if observability.tracing and not _opentelemetry_installed():
        print("error: --otel-exporter needs OpenTelemetry: pip install 'raftflow[otel]'",
              file=sys.stderr)
        return 2
    try:
        tls = tls_from_args(args)
        # A joining node's secret is its flag; the others' is in their config.
        auth = authenticator_from_args(args, args.secret) if getattr(args, "join", None) else None
        config = config_from_args(args, tls, auth)
        if auth is None:
            auth = authenticator_from_args(args, config.secret)
        _refuse_exposed_without_protection(config.node(args.id).host, args, auth, tls)
        data_dir = Path(args.data_dir)
        dial = {spec.id: spec for spec in parse_peers(args.dial)} if args.dial else None
        skew_file = Path(args.clock_skew_file) if args.clock_skew_file else None
        tokens = Path(args.auth_tokens) if getattr(args, "auth_tokens", None) else None
        rate_defaults = RateDefaults(start_rate_per_s=getattr(args, "default_start_rate", None),
                                     poll_rate_per_s=getattr(args, "default_poll_rate", None))
        run_loop(serve(config, args.id, data_dir, dial=dial, clock_skew_file=skew_file,
                       auth=auth, auth_tokens=tokens, tls=tls, rate_defaults=rate_defaults,
                       observability=observability),
                 tls=tls is not None)
    except (ClusterConfigError, AuthConfigError, TlsConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
