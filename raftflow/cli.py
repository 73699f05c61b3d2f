"""The `raftflow` command: run nodes, inspect the cluster, drive workflows over the HTTP API.

`raftflow node` and `raftflow dev` start servers (their code lives in `raftflow.node` and
`raftflow.cluster`, imported only when used). Every other subcommand is an HTTP client of one
node (`--address`): human-readable output by default, exactly one JSON object on stdout with
`--json` (`workflow show --follow --json` streams one JSON event per line instead). An API error
`{"error": {"code", "message"}}` prints `error: <code>: <message>` on stderr and exits 1. The
workflow commands are in `cli_workflow` and `cli_wait`, the namespace ones in `cli_namespace`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from raftflow.bench.options import add_bench_subcommands
from raftflow.bench.workflows import add_arguments as add_workflows_arguments
from raftflow.chaos.cli import add_arguments as add_chaos_arguments
from raftflow.cli_batch import add_batch_parsers
from raftflow.cli_http import ApiClient, client_parser, client_ssl_context, client_token
from raftflow.cli_membership import add_arguments as add_membership_arguments
from raftflow.cli_membership import (
    cluster_drain,
    cluster_rebalance,
    cluster_remove,
    cluster_status,
)
from raftflow.cli_namespace import add_arguments as add_namespace_arguments
from raftflow.cli_namespace import (
    add_search_attribute_arguments,
    namespace_add_search_attribute,
    namespace_create,
    namespace_describe,
    namespace_list,
    namespace_update,
)
from raftflow.cli_output import CliError
from raftflow.cli_schedule import add_schedule_parsers
from raftflow.cli_server import add_server_parsers
from raftflow.cli_workflow import add_workflow_parsers
from raftflow.cluster.config import ClusterConfig, resolve_config

# --- server subcommands: implemented in raftflow.node/cluster, imported on use --------------

def _run_server(module: str, function: str, args: argparse.Namespace) -> int:
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        raise CliError("unavailable", f"{module} is not part of this build") from None
    code = getattr(imported, function)(args)
    if inspect.iscoroutine(code):  # an async entry point runs on a fresh event loop
        code = asyncio.run(code)
    return 0 if code is None else int(code)


def node_cluster_config(args: argparse.Namespace) -> ClusterConfig:
    """The cluster configuration described by `raftflow node` flags (file and/or flags).

    Raises InvalidClusterConfigError with a message for the operator.
    """
    return resolve_config(
        config_file=Path(args.config) if args.config else None, peers=args.peers,
        cluster_id=args.cluster_id, shard_count=args.shards, secret=args.secret)


# --- argument parsing ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The full `raftflow` argument parser."""
    parser = argparse.ArgumentParser(prog="raftflow", description="A durable workflow engine.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_server_parsers(commands)

    cluster = commands.add_parser("cluster", help="inspect the cluster, change its members")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True)
    client_parser(cluster_commands, "status", cluster_status,
                  "nodes (state, replicas, leaders), shards, moves in progress")
    add_membership_arguments(
        client_parser(cluster_commands, "drain", cluster_drain,
                      "move a node's leaders, then its replicas, to the other nodes"),
        client_parser(cluster_commands, "remove", cluster_remove,
                      "remove a drained node (--force: a dead one) from the cluster"),
        client_parser(cluster_commands, "rebalance", cluster_rebalance,
                      "show (--dry-run) or start the moves that balance the replicas"))

    namespace = commands.add_parser("namespace", help="create, inspect and change namespaces")
    ns_commands = namespace.add_subparsers(dest="namespace_command", required=True)
    add_namespace_arguments(
        client_parser(ns_commands, "create", namespace_create, "create a namespace"),
        client_parser(ns_commands, "describe", namespace_describe, "show a namespace"),
        client_parser(ns_commands, "update", namespace_update,
                      "change a namespace's retention or description"))
    client_parser(ns_commands, "list", namespace_list, "list the namespaces")
    add_search_attribute_arguments(client_parser(
        ns_commands, "add-search-attribute", namespace_add_search_attribute,
        "register a custom search attribute (name and type) in a namespace"))

    add_workflow_parsers(commands)
    add_batch_parsers(commands)
    add_schedule_parsers(commands)

    bench = commands.add_parser(
        "bench", help="measure a cluster: workflows/s (default), `bench starts`, `bench moves`")
    add_workflows_arguments(bench)
    bench.set_defaults(server=("raftflow.bench.workflows", "run_cli"))
    add_bench_subcommands(bench.add_subparsers(dest="bench_command", required=False))

    chaos = commands.add_parser("chaos", help="fault-injection runs against a real cluster")
    chaos_commands = chaos.add_subparsers(dest="chaos_command", required=True)
    chaos_run = chaos_commands.add_parser(
        "run", help="start a cluster, inject seeded faults under load, check the invariants")
    add_chaos_arguments(chaos_run)
    chaos_run.set_defaults(server=("raftflow.chaos.cli", "run_cli"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `raftflow` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "server", None) is not None:
            module, function = args.server
            return _run_server(module, function, args)
        api = ApiClient(args.address, args.timeout, token=client_token(args),
                        ssl_context=client_ssl_context(args))
        answer = args.client_command(args, api, sys.stdout)
        if args.json and answer is not None:  # None: the command streamed its own JSON lines
            sys.stdout.write(json.dumps(answer) + "\n")
        return 0
    except CliError as err:
        if err.answer is not None and getattr(args, "json", False):
            sys.stdout.write(json.dumps(err.answer) + "\n")
        sys.stderr.write(f"error: {err.code}: {err.message}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
