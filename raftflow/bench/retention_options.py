"""Command-line options of `raftflow bench retention` and `python -m raftflow.bench.retention`.

Kept free of heavy imports so that `raftflow.cli` can build its parser without loading aiohttp.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from raftflow.bench.launch_options import add_launch_arguments
from raftflow.bench.move_options import parse_sizes

STAGES_DEFAULT = (20_000, 80_000, 200_000)  # the contract (20k, 80k) and goal (200k)
SHARDS_DEFAULT = 16
FILL_CONCURRENCY_DEFAULT = 64
FILL_CONCURRENCY_MAX = 1024
PROBE_WORKFLOWS_DEFAULT = 3_000
PROBE_WORKFLOWS_MAX = 100_000  # the probe is a measurement, not a fill
PROBE_CONCURRENCY = 64  # the "c64 3-activity throughput"
PROBE_ACTIVITIES = 3


def parse_stages(text: str) -> tuple[int, ...]:
    """`"20k,80000,200k"` -> (20000, 80000, 200000): retained counts to reach, increasing."""
    stages = parse_sizes(text)  # same syntax and bounds as `bench moves --sizes`
    if stages[0] < 1 or any(b <= a for a, b in zip(stages, stages[1:], strict=False)):
        raise argparse.ArgumentTypeError(
            f"stages must be positive and strictly increasing, got {list(stages)}")
    return stages


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value
    return parse


def add_retention_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the retention benchmark's options to `parser`."""
    parser.add_argument(
        "--stages", type=parse_stages, default=STAGES_DEFAULT, metavar="N[,N...]",
        help="retained closed workflows to reach, cumulative, one measurement each after the "
             "empty one (default "
             f"{','.join(str(s) for s in STAGES_DEFAULT)}; 20k = 20000)")
    parser.add_argument("--shards", type=_bounded_int(1, 1024), default=SHARDS_DEFAULT,
                        help=f"shards of the launched cluster (default {SHARDS_DEFAULT})")
    parser.add_argument("--fill-concurrency", type=_bounded_int(1, FILL_CONCURRENCY_MAX),
                        default=FILL_CONCURRENCY_DEFAULT,
                        help="workflows (0 activities each) in flight while filling (default "
                             f"{FILL_CONCURRENCY_DEFAULT})")
    parser.add_argument("--probe-workflows", type=_bounded_int(1, PROBE_WORKFLOWS_MAX),
                        default=PROBE_WORKFLOWS_DEFAULT,
                        help="workflows of the throughput probe after each restart, as "
                             f"`raftflow bench --concurrency {PROBE_CONCURRENCY} --activities "
                             f"{PROBE_ACTIVITIES}` (default {PROBE_WORKFLOWS_DEFAULT}); "
                             "they stay retained too")
    add_launch_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftflow bench retention",
        description="Node memory, data dir size, restart time and throughput of a 3-node "
                    "cluster as it retains more and more closed workflows.")
    add_retention_arguments(parser)
    return parser
