"""Command-line options of `raftflow bench moves` and `python -m raftflow.bench.moves`.

Kept free of heavy imports so that `raftflow.cli` can build its parser without loading aiohttp.
"""

from __future__ import annotations

import argparse

SIZES_DEFAULT = (0, 2_000, 10_000, 40_000)
SIZES_COUNT_MAX = 16  # each size is a fresh cluster, a fill and a join: minutes each
WORKFLOWS_PER_SIZE_MAX = 1_000_000  # 16 shards x CLOSED_RUNS_PER_SHARD_MAX is 160k anyway
SHARDS_DEFAULT = 16
ACTIVITIES_DEFAULT = 3
FILL_CONCURRENCY_DEFAULT = 64
STEADY_CONCURRENCY_DEFAULT = 16  # well below saturation, so a drain's cost shows in latency
CONCURRENCY_MAX = 1024
BASELINE_S_DEFAULT = 60.0
WARMUP_S_DEFAULT = 5.0
MOVES_TIMEOUT_S_DEFAULT = 600.0
DRAIN_NODE_DEFAULT = "node-1"
PARTS = ("moves", "drain")


def parse_sizes(text: str) -> tuple[int, ...]:
    """`"0,2000,10k"` -> (0, 2000, 10000): workflows to close before each move measurement."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        scale = 1_000 if part.endswith("k") else 1
        try:
            value = int(part.removesuffix("k")) * scale
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a workflow count: {part!r}") from None
        if not 0 <= value <= WORKFLOWS_PER_SIZE_MAX:
            raise argparse.ArgumentTypeError(
                f"each size must be between 0 and {WORKFLOWS_PER_SIZE_MAX}, got {value}")
        sizes.append(value)
    if not 1 <= len(sizes) <= SIZES_COUNT_MAX:
        raise argparse.ArgumentTypeError(f"give 1 to {SIZES_COUNT_MAX} sizes, got {len(sizes)}")
    return tuple(sizes)


def _concurrency(text: str) -> int:
    value = int(text)
    if not 1 <= value <= CONCURRENCY_MAX:
        raise argparse.ArgumentTypeError(f"must be between 1 and {CONCURRENCY_MAX}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_moves_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the replica-move benchmark's options to `parser`."""
    parser.add_argument(
        "--only", choices=PARTS, default=None,
        help="run one part: moves (time per replica move against shard state size) or "
             "drain (client latency during a drain against a steady run); default both")
    parser.add_argument(
        "--sizes", type=parse_sizes, default=SIZES_DEFAULT, metavar="N[,N...]",
        help="workflows to complete before each move measurement, one fresh 3-node cluster "
             "each, then a 4th node joins (default "
             f"{','.join(str(s) for s in SIZES_DEFAULT)}; 10k = 10000)")
    parser.add_argument("--shards", type=int, default=SHARDS_DEFAULT,
                        help=f"shards of the launched clusters (default {SHARDS_DEFAULT})")
    parser.add_argument("--activities", type=_non_negative_int, default=ACTIVITIES_DEFAULT,
                        help="sequential activities per workflow, fill and steady load "
                             f"(default {ACTIVITIES_DEFAULT})")
    parser.add_argument("--fill-concurrency", type=_concurrency,
                        default=FILL_CONCURRENCY_DEFAULT,
                        help=f"workflows in flight while filling (default "
                             f"{FILL_CONCURRENCY_DEFAULT})")
    parser.add_argument("--concurrency", type=_concurrency, default=STEADY_CONCURRENCY_DEFAULT,
                        help="workflows in flight in the steady load of the drain part "
                             f"(default {STEADY_CONCURRENCY_DEFAULT})")
    parser.add_argument("--baseline", type=_positive_float, default=BASELINE_S_DEFAULT,
                        help="seconds of steady load measured before the drain (default "
                             f"{BASELINE_S_DEFAULT:g})")
    parser.add_argument("--warmup", type=_positive_float, default=WARMUP_S_DEFAULT,
                        help=f"unmeasured seconds of load first (default {WARMUP_S_DEFAULT:g})")
    parser.add_argument("--drain-node", default=DRAIN_NODE_DEFAULT,
                        help=f"the node the drain part drains (default {DRAIN_NODE_DEFAULT})")
    parser.add_argument("--moves-timeout", type=_positive_float,
                        default=MOVES_TIMEOUT_S_DEFAULT,
                        help="give up waiting for the moves of a join or drain after this "
                             f"many seconds (default {MOVES_TIMEOUT_S_DEFAULT:g})")
    parser.add_argument("--data-dir", default=None,
                        help="parent directory of the launched clusters' temporary data "
                             "(default: the system temp dir); removed afterwards")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the launched clusters' data and logs, print where")
    parser.add_argument("--json", action="store_true",
                        help="human output on stderr, one JSON object on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftflow bench moves",
        description="Time per replica move against shard state size, and client latency "
                    "during a drain against a steady run.")
    add_moves_arguments(parser)
    return parser
