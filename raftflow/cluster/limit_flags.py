"""The cluster's default namespace rate limits: flags `raftflow node` and `raftflow dev` share,
and how dev hands them to its nodes (api/rate_limits.py applies them).

A namespace with its own limits (`raftflow namespace create|update --start-rate/--poll-rate`)
uses those; the others use these. They are per-node flags, like Temporal's dynamic config:
give every node the same values, since each admits its share of them.

Kept free of heavy imports: `raftflow.cli` builds its parser from here without loading aiohttp.
"""

from __future__ import annotations

import argparse
import math

from raftflow.protocol.namespaces import RATE_PER_S_MAX, RATE_PER_S_MIN

# (flag, argparse dest, help)
_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("--default-start-rate", "default_start_rate",
     "workflow starts and signals per second (together) a namespace without its own limit may "
     "make over the whole cluster (default: unlimited)"),
    ("--default-poll-rate", "default_poll_rate",
     "task polls per second a namespace without its own limit may make over the whole cluster "
     "(default: unlimited)"),
)


def rate_per_s_arg(text: str) -> float:
    """argparse type of a rate: calls per second in [RATE_PER_S_MIN, RATE_PER_S_MAX]."""
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of calls per second") from None
    if not (math.isfinite(rate) and RATE_PER_S_MIN <= rate <= RATE_PER_S_MAX):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a rate is {RATE_PER_S_MIN} to {RATE_PER_S_MAX:g} calls per second")
    return rate


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, dest, help_text in _FLAGS:
        parser.add_argument(flag, dest=dest, type=rate_per_s_arg, default=None,
                            metavar="PER_S", help=help_text)


def limit_flags_of(args: argparse.Namespace) -> list[str]:
    """The limit flags of `args` as `raftflow node` arguments."""
    flags: list[str] = []
    for flag, dest, _ in _FLAGS:
        value = getattr(args, dest, None)
        if value is not None:
            flags += [flag, repr(value)]
    return flags
