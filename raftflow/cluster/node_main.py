"""`raftflow node`: run one node until SIGINT or SIGTERM, then stop cleanly and exit 0."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

import uvloop

from raftflow.cluster import gc_tuning
from raftflow.cluster.config import ClusterConfig, ClusterConfigError, resolve_config
from raftflow.cluster.node import NodeRuntime

log = logging.getLogger("raftflow.node")


def config_from_args(args: argparse.Namespace) -> ClusterConfig:
    return resolve_config(
        config_file=Path(args.config) if args.config else None, peers=args.peers,
        cluster_id=args.cluster_id, shard_count=args.shards, secret=args.secret)


async def serve(config: ClusterConfig, node_id: str, data_dir: Path) -> None:
    runtime = NodeRuntime(config, node_id, data_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    gc_tuning.install()
    collector = loop.create_task(gc_tuning.collect_forever())
    try:
        await stop.wait()
    finally:
        collector.cancel()
        log.info("node %s stopping", node_id)
        await runtime.stop()


def run_node(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(args, "log_level", "info").upper(),
                        format=f"%(asctime)s {args.id} %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        data_dir = Path(args.data_dir)
        uvloop.run(serve(config, args.id, data_dir))
    except ClusterConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
