"""Command-line options of `raftflow bench starts` (and `python -m raftflow.bench.starts`),
and the registration of the `raftflow bench` subcommands.

Kept free of heavy imports so that `raftflow.cli` can build its parser without loading aiohttp.
"""

from __future__ import annotations

import argparse

from raftflow.bench.launch_options import add_launch_arguments
from raftflow.bench.move_options import add_moves_arguments
from raftflow.bench.noisy_options import add_noisy_arguments
from raftflow.bench.retention_options import add_retention_arguments

NODES_DEFAULT = 3
SHARDS_DEFAULT = 16
CONCURRENCY_DEFAULT = 64
CONCURRENCY_MAX = 4096  # one coroutine and one keep-alive connection each
DURATION_S_DEFAULT = 20.0
WARMUP_S_DEFAULT = 3.0
NAMESPACE_DEFAULT = "default"
ROUTE_ROUND_ROBIN = "round-robin"
ROUTE_LEADER = "leader"
ROUTES = (ROUTE_ROUND_ROBIN, ROUTE_LEADER)


def _positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= CONCURRENCY_MAX:
        raise argparse.ArgumentTypeError(f"must be between 1 and {CONCURRENCY_MAX}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_starts_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the workflow-start benchmark's options to `parser`."""
    parser.add_argument(
        "--address", action="extend", nargs="+", default=None, metavar="URL",
        help="base URLs of the nodes (--address A B C or repeated); "
             "default: launch a local cluster")
    parser.add_argument("--nodes", type=int, default=NODES_DEFAULT,
                        help=f"nodes of the launched cluster (default {NODES_DEFAULT})")
    parser.add_argument("--shards", type=int, default=SHARDS_DEFAULT,
                        help=f"shards of the launched cluster (default {SHARDS_DEFAULT})")
    parser.add_argument("--concurrency", type=_positive_int, default=CONCURRENCY_DEFAULT,
                        help=f"concurrent clients (default {CONCURRENCY_DEFAULT})")
    parser.add_argument("--duration", type=_non_negative_float, default=DURATION_S_DEFAULT,
                        help=f"measured seconds (default {DURATION_S_DEFAULT:g})")
    parser.add_argument("--warmup", type=_non_negative_float, default=WARMUP_S_DEFAULT,
                        help=f"unmeasured seconds first (default {WARMUP_S_DEFAULT:g})")
    parser.add_argument("--route", choices=ROUTES, default=ROUTE_ROUND_ROBIN,
                        help="round-robin over nodes (default; the gateway forwards to the "
                             "leader) or leader (send each start to its shard's leader, as "
                             "read from cluster status once at the start)")
    parser.add_argument("--namespace", default=NAMESPACE_DEFAULT)
    parser.add_argument("--ignore-retry-after", action="store_true",
                        help="a 429 or 503 is final: send the next start at once instead of "
                             "retrying after Retry-After (a misbehaving client)")
    add_launch_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftflow bench starts",
        description="Throughput and latency of workflow starts over HTTP.")
    add_starts_arguments(parser)
    return parser


def add_bench_subcommands(
        bench_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `raftflow bench starts`, `moves`, `retention` and `noisy-neighbour` (their
    code is imported only when they run: `server` names the module and function)."""
    starts = bench_commands.add_parser("starts", help="workflow starts per second over HTTP")
    add_starts_arguments(starts)
    starts.set_defaults(server=("raftflow.bench.starts", "run_cli"))
    moves = bench_commands.add_parser(
        "moves", help="time per replica move against shard state size, and client latency "
                      "during a drain against a steady run")
    add_moves_arguments(moves)
    moves.set_defaults(server=("raftflow.bench.moves", "run_cli"))
    retention = bench_commands.add_parser(
        "retention", help="node memory, data dir, restart time and throughput as a cluster "
                          "retains more and more closed workflows")
    add_retention_arguments(retention)
    retention.set_defaults(server=("raftflow.bench.retention", "run_cli"))
    noisy = bench_commands.add_parser(
        "noisy-neighbour", help="one namespace's workflow latency while another floods starts, "
                                "with the flood rate-limited and without")
    add_noisy_arguments(noisy)
    noisy.set_defaults(server=("raftflow.bench.noisy_neighbour", "run_cli"))
