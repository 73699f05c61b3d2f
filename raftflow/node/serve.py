"""`raftflow node`: run one node until SIGINT or SIGTERM, then stop cleanly and exit 0.

A stop signal first hands every leadership this node holds to another replica (graceful stop:
a rolling restart costs clients no failed call). A node the cluster map says was removed says
so and exits 0 too: it has nothing left to serve.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import uvloop

from raftflow.api.access import Authenticator
from raftflow.api.api_keys import AuthConfigError
from raftflow.cluster.config import (
    ClusterConfig,
    ClusterConfigError,
    InvalidClusterConfigError,
    NodeSpec,
    parse_peers,
    resolve_config,
)
from raftflow.node import gc_tuning
from raftflow.node.auth_setup import authenticator_from_args, reload_on_sighup
from raftflow.node.join import join_config
from raftflow.node.runtime import NodeRuntime
from raftflow.node.wall_clock import SkewableWallClock, read_skew_file, watch_skew_file

log = logging.getLogger("raftflow.node")


def config_from_args(args: argparse.Namespace) -> ClusterConfig:
    if getattr(args, "join", None):
        if not args.secret:
            raise InvalidClusterConfigError("--join needs the cluster's --secret")
        if not (args.http_address and args.raft_address):
            raise InvalidClusterConfigError("--join needs --http-address and --raft-address")
        return join_config(data_dir=Path(args.data_dir), node_id=args.id, join_urls=args.join,
                           secret=args.secret, http_address=args.http_address,
                           raft_address=args.raft_address)
    return resolve_config(
        config_file=Path(args.config) if args.config else None, peers=args.peers,
        cluster_id=args.cluster_id, shard_count=args.shards, secret=args.secret)


async def serve(config: ClusterConfig, node_id: str, data_dir: Path, *,
                dial: Mapping[str, NodeSpec] | None = None,
                clock_skew_file: Path | None = None,
                auth: Authenticator | None = None, auth_tokens: Path | None = None) -> None:
    clock = SkewableWallClock()
    runtime = NodeRuntime(config, node_id, data_dir, dial=dial, clock=clock, auth=auth)
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


def run_node(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(args, "log_level", "info").upper(),
                        format=f"%(asctime)s {args.id} %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        data_dir = Path(args.data_dir)
        dial = {spec.id: spec for spec in parse_peers(args.dial)} if args.dial else None
        skew_file = Path(args.clock_skew_file) if args.clock_skew_file else None
        auth = authenticator_from_args(args, config.secret)
        tokens = Path(args.auth_tokens) if getattr(args, "auth_tokens", None) else None
        uvloop.run(serve(config, args.id, data_dir, dial=dial, clock_skew_file=skew_file,
                         auth=auth, auth_tokens=tokens))
    except (ClusterConfigError, AuthConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
