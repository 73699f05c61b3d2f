"""`raftflow node`: run one node until SIGINT or SIGTERM, then stop cleanly and exit 0."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import uvloop

from raftflow.cluster.config import (
    ClusterConfig,
    ClusterConfigError,
    NodeSpec,
    parse_peers,
    resolve_config,
)
from raftflow.node import gc_tuning
from raftflow.node.runtime import NodeRuntime
from raftflow.node.wall_clock import SkewableWallClock, read_skew_file, watch_skew_file

log = logging.getLogger("raftflow.node")


def config_from_args(args: argparse.Namespace) -> ClusterConfig:
    return resolve_config(
        config_file=Path(args.config) if args.config else None, peers=args.peers,
        cluster_id=args.cluster_id, shard_count=args.shards, secret=args.secret)


async def serve(config: ClusterConfig, node_id: str, data_dir: Path, *,
                dial: Mapping[str, NodeSpec] | None = None,
                clock_skew_file: Path | None = None) -> None:
    clock = SkewableWallClock()
    runtime = NodeRuntime(config, node_id, data_dir, dial=dial, clock=clock)
    if clock_skew_file is not None:
        clock.set_skew_ms(read_skew_file(clock_skew_file))  # before any command
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    gc_tuning.install()
    background = [loop.create_task(gc_tuning.collect_forever())]
    if clock_skew_file is not None:
        background.append(loop.create_task(watch_skew_file(clock, clock_skew_file)))
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        log.info("node %s stopping", node_id)
        await runtime.stop()


def run_node(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(args, "log_level", "info").upper(),
                        format=f"%(asctime)s {args.id} %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        data_dir = Path(args.data_dir)
        dial = {spec.id: spec for spec in parse_peers(args.dial)} if args.dial else None
        skew_file = Path(args.clock_skew_file) if args.clock_skew_file else None
        uvloop.run(serve(config, args.id, data_dir, dial=dial, clock_skew_file=skew_file))
    except ClusterConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
