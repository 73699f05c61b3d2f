"""Options shared by the benches that launch a cluster of their own (`starts`, `retention`)."""

from __future__ import annotations

import argparse


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a bench that launches its own cluster: where, whether to keep it, JSON."""
    parser.add_argument("--data-dir", default=None,
                        help="parent directory of the launched cluster's temporary data "
                             "(default: the system temp dir); removed afterwards")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the launched cluster's data and logs, print where")
    parser.add_argument("--json", action="store_true",
                        help="human output on stderr, one JSON object on stdout")
