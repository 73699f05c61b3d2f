"""The `raftflow` command: run nodes, inspect the cluster, drive workflows over the HTTP API.

`raftflow node` and `raftflow dev` start servers (their code lives in `raftflow.node` and
`raftflow.cluster`, imported only when used). Every other subcommand is an HTTP client of one node (`--address`):
human-readable output by default, exactly one JSON object on stdout with `--json`. An API error
`{"error": {"code", "message"}}` prints `error: <code>: <message>` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from raftflow.bench.options import add_bench_subcommands
from raftflow.bench.workflows import add_arguments as add_workflows_arguments
from raftflow.chaos.cli import add_arguments as add_chaos_arguments
from raftflow.cli_http import (
    ApiClient,
    add_credential_arguments,
    client_ssl_context,
    client_token,
)
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
    search_attribute_value_arg,
)
from raftflow.cli_output import CliError, JsonObject, print_table, records
from raftflow.cli_server import add_server_parsers
from raftflow.cli_visibility import (
    add_count_arguments,
    add_list_arguments,
    workflow_count,
    workflow_list,
)
from raftflow.cluster.config import ClusterConfig, resolve_config

ADDRESS_DEFAULT = "http://127.0.0.1:8080"
NAMESPACE_DEFAULT = "default"
REQUEST_TIMEOUT_S_DEFAULT = 30.0
HISTORY_PAGES_MAX = 10_000  # a history of 51,200 events needs far fewer pages; stops a loop.


def _workflows_path(namespace: str, *parts: str) -> str:
    quoted = [urllib.parse.quote(part, safe="") for part in (namespace, *parts)]
    return f"/api/v1/namespaces/{quoted[0]}/workflows" + "".join(
        "/" + part for part in quoted[1:])


def _json_arg(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from None


# --- client subcommands: each returns the JSON object that `--json` prints -----------------

def _workflow_start(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    body: JsonObject = {"workflow_id": args.workflow_id, "workflow_type": args.type,
                        "task_queue": args.task_queue, "input": args.input,
                        "request_id": args.request_id or str(uuid.uuid4())}
    if args.search_attribute:
        body["search_attributes"] = dict(args.search_attribute)
    started = api.call("POST", _workflows_path(args.namespace), body)
    if not args.json:
        out.write(f"started workflow {started.get('workflow_id', args.workflow_id)} "
                  f"run {started.get('run_id')}\n")
    return started


def _workflow_signal_with_start(args: argparse.Namespace, api: ApiClient,
                                out: TextIO) -> JsonObject:
    """Signal the workflow, starting it first if no run is open (one atomic call)."""
    body: JsonObject = {"workflow_type": args.type, "task_queue": args.task_queue,
                        "input": args.input, "signal_name": args.signal_name,
                        "signal_input": args.signal_input,
                        "request_id": args.request_id or str(uuid.uuid4())}
    if args.search_attribute:
        body["search_attributes"] = dict(args.search_attribute)
    answer = api.call("POST", _workflows_path(args.namespace, args.workflow_id,
                                              "signal-with-start"), body)
    if not args.json:
        out.write(f"signalled workflow {args.workflow_id} run {answer.get('run_id')} with "
                  f"{args.signal_name} (started if no run was open)\n")
    return answer


def _workflow_describe(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    described = api.call("GET", _workflows_path(args.namespace, args.workflow_id))
    if not args.json:
        width = max((len(k) for k in described), default=0) + 1
        for key, value in described.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            out.write(f"{key + ':':<{width}} {shown}\n")
    return described


def _workflow_show(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    events: list[JsonObject] = []
    token = ""
    for _ in range(HISTORY_PAGES_MAX):
        page = api.call("GET", _workflows_path(args.namespace, args.workflow_id, "history"),
                        query={"next_page_token": token})
        events.extend(records(page.get("events")))
        next_token = page.get("next_page_token")
        if not next_token:
            break
        token = str(next_token)
    else:
        raise CliError("bad_response", f"history did not end after {HISTORY_PAGES_MAX} pages")
    if not args.json:
        print_table(out, ("ID", "TIME", "TYPE", "ATTRIBUTES"), [
            (e.get("event_id"), e.get("timestamp"), e.get("event_type"),
             json.dumps(e.get("attributes", {}), separators=(",", ":")))
            for e in events])
    return {"workflow_id": args.workflow_id, "events": events}


def _workflow_signal(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    body: JsonObject = {"signal_name": args.name, "input": args.input,
                        "request_id": args.request_id or str(uuid.uuid4())}
    answer = api.call("POST", _workflows_path(args.namespace, args.workflow_id, "signal"), body)
    if not args.json:
        out.write(f"signalled workflow {args.workflow_id} with {args.name}\n")
    return answer


def _workflow_cancel(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    answer = api.call("POST", _workflows_path(args.namespace, args.workflow_id, "cancel"),
                      _close_body(args))
    if not args.json:
        out.write(f"requested cancellation of workflow {args.workflow_id}\n")
    return answer


def _workflow_terminate(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    answer = api.call("POST", _workflows_path(args.namespace, args.workflow_id, "terminate"),
                      _close_body(args))
    if not args.json:
        out.write(f"terminated workflow {args.workflow_id}\n")
    return answer


def _close_body(args: argparse.Namespace) -> JsonObject:
    # Sent only when given: this command makes one attempt, so an id of its own would never
    # be reused; a user re-running it after a lost answer passes the same --request-id (I5).
    body: JsonObject = {"reason": args.reason}
    if args.request_id:
        body["request_id"] = args.request_id
    return body


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

ClientCommand = Callable[[argparse.Namespace, ApiClient, TextIO], JsonObject]


def _client_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                   command: ClientCommand, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--address", default=ADDRESS_DEFAULT,
                        help=f"base URL of any node (default {ADDRESS_DEFAULT})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S_DEFAULT,
                        help="seconds to wait for each HTTP answer")
    add_credential_arguments(parser)
    parser.set_defaults(client_command=command)
    return parser


def _workflow_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                     command: ClientCommand, help_text: str) -> argparse.ArgumentParser:
    parser = _client_parser(subparsers, name, command, help_text)
    parser.add_argument("-n", "--namespace", default=NAMESPACE_DEFAULT)
    if name not in ("list", "count"):
        parser.add_argument("-w", "--workflow-id", required=True)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full `raftflow` argument parser."""
    parser = argparse.ArgumentParser(prog="raftflow", description="A durable workflow engine.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_server_parsers(commands)

    cluster = commands.add_parser("cluster", help="inspect the cluster, change its members")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True)
    _client_parser(cluster_commands, "status", cluster_status,
                   "nodes (state, replicas, leaders), shards, moves in progress")
    add_membership_arguments(
        _client_parser(cluster_commands, "drain", cluster_drain,
                       "move a node's leaders, then its replicas, to the other nodes"),
        _client_parser(cluster_commands, "remove", cluster_remove,
                       "remove a drained node (--force: a dead one) from the cluster"),
        _client_parser(cluster_commands, "rebalance", cluster_rebalance,
                       "show (--dry-run) or start the moves that balance the replicas"))

    namespace = commands.add_parser("namespace", help="create, inspect and change namespaces")
    ns_commands = namespace.add_subparsers(dest="namespace_command", required=True)
    add_namespace_arguments(
        _client_parser(ns_commands, "create", namespace_create, "create a namespace"),
        _client_parser(ns_commands, "describe", namespace_describe, "show a namespace"),
        _client_parser(ns_commands, "update", namespace_update,
                       "change a namespace's retention or description"))
    _client_parser(ns_commands, "list", namespace_list, "list the namespaces")
    add_search_attribute_arguments(_client_parser(
        ns_commands, "add-search-attribute", namespace_add_search_attribute,
        "register a custom search attribute (name and type) in a namespace"))

    workflow = commands.add_parser("workflow", help="start, inspect and control workflows")
    wf = workflow.add_subparsers(dest="workflow_command", required=True)
    start = _workflow_parser(wf, "start", _workflow_start, "start a workflow")
    with_start = _workflow_parser(wf, "signal-with-start", _workflow_signal_with_start,
                                  "signal a workflow, starting it if no run is open")
    for starting in (start, with_start):
        starting.add_argument("-t", "--type", required=True, help="workflow type")
        starting.add_argument("-q", "--task-queue", required=True)
        starting.add_argument("-i", "--input", type=_json_arg, default=None,
                            help="input as JSON")
        starting.add_argument("--request-id", default=None,
                            help="idempotency key (default: random)")
        starting.add_argument("--search-attribute", action="append",
                            type=search_attribute_value_arg, metavar="NAME=VALUE",
                            help="a registered search attribute (repeatable)")
    with_start.add_argument("--signal-name", required=True, help="signal name")
    with_start.add_argument("--signal-input", type=_json_arg, default=None,
                            help="the signal's input as JSON")
    _workflow_parser(wf, "describe", _workflow_describe, "show a workflow's status")
    _workflow_parser(wf, "show", _workflow_show, "print a workflow's full history")
    signal = _workflow_parser(wf, "signal", _workflow_signal, "send a signal to a workflow")
    signal.add_argument("--name", required=True, help="signal name")
    signal.add_argument("-i", "--input", type=_json_arg, default=None, help="input as JSON")
    signal.add_argument("--request-id", default=None, help="idempotency key (default: random)")
    cancel = _workflow_parser(wf, "cancel", _workflow_cancel,
                              "ask a workflow to cancel (its code decides how)")
    terminate = _workflow_parser(wf, "terminate", _workflow_terminate, "terminate a workflow")
    for closing in (cancel, terminate):
        closing.add_argument("--reason", default="", help="recorded in the history")
        closing.add_argument("--request-id", default=None,
                             help="idempotency key: a repeated id gets the first answer")
    replay = wf.add_parser("replay", help="replay a saved history against current code")
    replay.add_argument("--history", required=True, help="JSON file (raftflow workflow show --json)")
    replay.add_argument("--workflows", required=True, nargs="+", metavar="MODULE:CLASS",
                        help="workflow classes to replay with")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.set_defaults(server=("raftflow.sdk.replayer", "run_cli"))
    add_list_arguments(_workflow_parser(wf, "list", workflow_list,
                                        "list the runs a query selects, every page"))
    add_count_arguments(_workflow_parser(wf, "count", workflow_count,
                                         "count the runs a query selects"))

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
        if args.json:
            sys.stdout.write(json.dumps(answer) + "\n")
        return 0
    except CliError as err:
        sys.stderr.write(f"error: {err.code}: {err.message}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
