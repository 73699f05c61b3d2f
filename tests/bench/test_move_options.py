"""Goal: `raftflow bench moves` parses its options and is registered beside `bench starts`.

Method: parse argument lists with the benchmark's own parser and with the `raftflow` parser,
and check the values, the defaults and the refusals (argparse exits with status 2).
"""

from __future__ import annotations

import argparse

import pytest

from raftflow.bench.move_options import SIZES_DEFAULT, build_parser, parse_sizes
from raftflow.cli import build_parser as build_cli_parser


def test_sizes_accept_thousands_and_spaces() -> None:
    assert parse_sizes("0, 2k,10000 ,40K") == (0, 2_000, 10_000, 40_000)


@pytest.mark.parametrize("text", ["", ",", "-1", "two", "2m", "2000000",
                                  ",".join(["1"] * 17)])
def test_sizes_refuse_nonsense(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_sizes(text)


def test_defaults() -> None:
    args = build_parser().parse_args([])
    assert args.sizes == SIZES_DEFAULT and args.only is None and not args.json
    assert (args.shards, args.activities, args.concurrency, args.drain_node) == \
        (16, 3, 16, "node-1")


@pytest.mark.parametrize("argv", [["--concurrency", "0"], ["--baseline", "0"],
                                  ["--only", "both"], ["--activities", "-1"],
                                  ["--sizes", "x"]])
def test_refusals_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_the_raftflow_command_routes_bench_moves_and_bench_starts() -> None:
    moves = build_cli_parser().parse_args(
        ["bench", "moves", "--only", "drain", "--baseline", "30", "--json"])
    assert moves.server == ("raftflow.bench.moves", "run_cli")
    assert (moves.only, moves.baseline, moves.json) == ("drain", 30.0, True)
    starts = build_cli_parser().parse_args(["bench", "starts", "--duration", "2"])
    assert starts.server == ("raftflow.bench.starts", "run_cli") and starts.duration == 2.0
    workflows = build_cli_parser().parse_args(["bench", "--workflows", "5"])
    assert workflows.server == ("raftflow.bench.workflows", "run_cli")
