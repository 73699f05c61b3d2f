"""Command-line options of `raftflow bench noisy-neighbour` (kept free of heavy imports, like
options.py, so `raftflow.cli` builds its parser without loading aiohttp)."""

from __future__ import annotations

import argparse

PHASE_S_DEFAULT = 20.0
QUIET_CONCURRENCY_DEFAULT = 8
FLOOD_CONCURRENCY_DEFAULT = 64
NOISY_START_RATE_DEFAULT = 30.0


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def add_noisy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", action="append", default=None, metavar="URL",
                        help="node URL (repeatable); default: launch a local 3-node cluster")
    parser.add_argument("--duration", type=_positive_float, default=PHASE_S_DEFAULT,
                        help="seconds of each phase (alone, flood limited, flood unlimited)")
    parser.add_argument("--quiet-concurrency", type=_positive_int,
                        default=QUIET_CONCURRENCY_DEFAULT,
                        help="the quiet namespace's workflows in flight")
    parser.add_argument("--activities", type=int, default=3,
                        help="sequential activities of each quiet workflow")
    parser.add_argument("--flood-concurrency", type=_positive_int,
                        default=FLOOD_CONCURRENCY_DEFAULT,
                        help="the noisy namespace's clients, each starting workflows back to "
                             "back (a 429 is retried after its Retry-After)")
    parser.add_argument("--noisy-start-rate", type=_positive_float,
                        default=NOISY_START_RATE_DEFAULT,
                        help="the noisy namespace's start limit in the limited phase, per "
                             "second over the cluster")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
