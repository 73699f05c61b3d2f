"""`raftflow workflow ...`: start, inspect, wait for and control workflows, Temporal's
`temporal workflow` commands over raftflow's HTTP API.

Each subcommand is an HTTP client of one node (`--address`) and returns the JSON object that
`--json` prints; the human form is a line, a `key: value` block or a table. The commands that
wait for a run (`result`, `execute`, `show --follow`) live in `cli_wait`; `list` and `count`
in `cli_visibility`; this module holds the rest and the parser wiring of them all.

`--run-id` picks one run of the workflow id for `describe`, `show`, `result`, `query`,
`signal`, `cancel`, `terminate` and `reset`; without it the API takes the open run, else the latest
closed one.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import TextIO

from raftflow.cli_batch import add_query_arguments, start_batch
from raftflow.cli_http import (
    ANSWER_TIMEOUT,
    ApiClient,
    ClientCommand,
    TimeoutFlag,
    client_parser,
    workflows_path,
)
from raftflow.cli_namespace import search_attribute_value_arg
from raftflow.cli_output import CliError, JsonObject
from raftflow.cli_reset import add_reset_arguments, workflow_reset
from raftflow.cli_update import add_update_parsers
from raftflow.cli_visibility import (
    add_count_arguments,
    add_list_arguments,
    workflow_count,
    workflow_list,
)
from raftflow.cli_wait import report_result, wait_for_result, workflow_result, workflow_show

NAMESPACE_DEFAULT = "default"

# `result` and `execute`: --timeout bounds the wait for the close, not one HTTP answer.
RUN_TIMEOUT = TimeoutFlag(
    dest="wait_timeout_s", default_s=None,
    help="seconds to wait for the run to close (default: until it closes)")
SHOW_TIMEOUT = TimeoutFlag(
    dest="wait_timeout_s", default_s=None,
    help="seconds the whole command may take (default: no bound; with --follow it runs until "
         "the run closes)")


def _json_arg(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from None


def _json_list_arg(text: str) -> list[object]:
    value = _json_arg(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"not a JSON list of arguments: {text!r}")
    return value


def _with_run_id(body: JsonObject, args: argparse.Namespace) -> JsonObject:
    if args.run_id:
        body["run_id"] = args.run_id
    return body


# --- commands: each returns the JSON object that `--json` prints ----------------------------

def _start(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    body: JsonObject = {"workflow_id": args.workflow_id, "workflow_type": args.type,
                        "task_queue": args.task_queue, "input": args.input,
                        "request_id": args.request_id or str(uuid.uuid4())}
    if args.search_attribute:
        body["search_attributes"] = dict(args.search_attribute)
    started = api.call("POST", workflows_path(args.namespace), body)
    if not args.json:
        out.write(f"started workflow {started.get('workflow_id', args.workflow_id)} "
                  f"run {started.get('run_id')}\n")
    return started


def _execute(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    """Start, then wait for that run's result (following continue-as-new) like `result`."""
    started = _start(args, api, out)
    run_id = started.get("run_id")
    return report_result(args, wait_for_result(
        api, args, run_id if isinstance(run_id, str) else None), out)


def _signal_with_start(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    """Signal the workflow, starting it first if no run is open (one atomic call)."""
    body: JsonObject = {"workflow_type": args.type, "task_queue": args.task_queue,
                        "input": args.input, "signal_name": args.signal_name,
                        "signal_input": args.signal_input,
                        "request_id": args.request_id or str(uuid.uuid4())}
    if args.search_attribute:
        body["search_attributes"] = dict(args.search_attribute)
    answer = api.call("POST", workflows_path(args.namespace, args.workflow_id,
                                             "signal-with-start"), body)
    if not args.json:
        out.write(f"signalled workflow {args.workflow_id} run {answer.get('run_id')} with "
                  f"{args.signal_name} (started if no run was open)\n")
    return answer


def _describe(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    described = api.call("GET", workflows_path(args.namespace, args.workflow_id),
                         query={"run_id": args.run_id or ""})
    if not args.json:
        width = max((len(k) for k in described), default=0) + 1
        for key, value in described.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            out.write(f"{key + ':':<{width}} {shown}\n")
    return described


def _query(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    """Ask a worker to run the workflow's query handler; its `query_failed` is exit 1."""
    body: JsonObject = {"query_type": args.type}
    if args.input is not None:
        body["args"] = args.input
    answer = api.call("POST", workflows_path(args.namespace, args.workflow_id, "query"),
                      _with_run_id(body, args))
    if not args.json:
        out.write(json.dumps(answer.get("result")) + "\n")
    return answer


def _signal(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    if _one_workflow(args) is None:
        return start_batch(args, api, out, {"type": "signal", "signal_name": args.name,
                                            "input": args.input})
    body: JsonObject = {"signal_name": args.name, "input": args.input,
                        "request_id": args.request_id or str(uuid.uuid4())}
    answer = api.call("POST", workflows_path(args.namespace, args.workflow_id, "signal"),
                      _with_run_id(body, args))
    if not args.json:
        out.write(f"signalled workflow {args.workflow_id} with {args.name}\n")
    return answer


def _cancel(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    if _one_workflow(args) is None:
        return start_batch(args, api, out, {"type": "cancel", "reason": args.reason})
    answer = api.call("POST", workflows_path(args.namespace, args.workflow_id, "cancel"),
                      _close_body(args))
    if not args.json:
        out.write(f"requested cancellation of workflow {args.workflow_id}\n")
    return answer


def _terminate(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    if _one_workflow(args) is None:
        return start_batch(args, api, out, {"type": "terminate", "reason": args.reason})
    answer = api.call("POST", workflows_path(args.namespace, args.workflow_id, "terminate"),
                      _close_body(args))
    if not args.json:
        out.write(f"terminated workflow {args.workflow_id}\n")
    return answer


def _reset(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    if _one_workflow(args) is None:
        if args.event_id is not None:
            raise CliError("invalid_argument", "a --query reset takes --type, not --event-id")
        return start_batch(args, api, out, {"type": "reset", "reset_type": args.type,
                                            "reason": args.reason})
    return workflow_reset(args, api, out)


def _one_workflow(args: argparse.Namespace) -> str | None:
    """The -w of a command that also takes --query (exactly one of the two)."""
    if (args.workflow_id is None) == (args.query is None):
        raise CliError("invalid_argument", "give exactly one of -w/--workflow-id and --query")
    return str(args.workflow_id) if args.workflow_id is not None else None


def _close_body(args: argparse.Namespace) -> JsonObject:
    # Sent only when given: this command makes one attempt, so an id of its own would never
    # be reused; a user re-running it after a lost answer passes the same --request-id (I5).
    body: JsonObject = {"reason": args.reason}
    if args.request_id:
        body["request_id"] = args.request_id
    return _with_run_id(body, args)


# --- argument parsing ---------------------------------------------------------------------

def _parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
            command: ClientCommand, help_text: str, *,
            timeout: TimeoutFlag = ANSWER_TIMEOUT, batch: bool = False) -> argparse.ArgumentParser:
    """A subcommand about one workflow id (-w); with `batch`, or about every workflow a
    `--query` selects (cli_batch.py)."""
    parser = client_parser(subparsers, name, command, help_text, timeout=timeout)
    parser.add_argument("-n", "--namespace", default=NAMESPACE_DEFAULT)
    parser.add_argument("-w", "--workflow-id", required=not batch, default=None)
    if batch:
        add_query_arguments(parser)
    return parser


def _add_run_id(*parsers: argparse.ArgumentParser) -> None:
    for parser in parsers:
        parser.add_argument("-r", "--run-id", default=None,
                            help="one run of the workflow (default: the open run, else the "
                                 "latest closed one)")


def _add_start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--type", required=True, help="workflow type")
    parser.add_argument("-q", "--task-queue", required=True)
    parser.add_argument("-i", "--input", type=_json_arg, default=None, help="input as JSON")
    parser.add_argument("--request-id", default=None, help="idempotency key (default: random)")
    parser.add_argument("--search-attribute", action="append", type=search_attribute_value_arg,
                        metavar="NAME=VALUE", help="a registered search attribute (repeatable)")


def add_workflow_parsers(
        commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`raftflow workflow` and its subcommands."""
    workflow = commands.add_parser("workflow", help="start, inspect and control workflows")
    wf = workflow.add_subparsers(dest="workflow_command", required=True)
    start = _parser(wf, "start", _start, "start a workflow")
    execute = _parser(wf, "execute", _execute,
                      "start a workflow, then wait for its result (as `result` does)",
                      timeout=RUN_TIMEOUT)
    with_start = _parser(wf, "signal-with-start", _signal_with_start,
                         "signal a workflow, starting it if no run is open")
    for starting in (start, execute, with_start):
        _add_start_arguments(starting)
    with_start.add_argument("--signal-name", required=True, help="signal name")
    with_start.add_argument("--signal-input", type=_json_arg, default=None,
                            help="the signal's input as JSON")
    result = _parser(wf, "result", workflow_result,
                     "wait for a run to close; print its result, or exit 1 with its failure "
                     "(follows continue-as-new; --json: the closed run's description)",
                     timeout=RUN_TIMEOUT)
    describe = _parser(wf, "describe", _describe, "show a workflow's status")
    show = _parser(wf, "show", workflow_show, "print a workflow's full history",
                   timeout=SHOW_TIMEOUT)
    show.add_argument("-f", "--follow", action="store_true",
                      help="then print new events as they come, until the run closes "
                           "(--json: one JSON event per line)")
    query = _parser(wf, "query", _query, "run a query handler of a workflow, print its result")
    query.add_argument("--type", required=True, help="query type (the handler's name)")
    query.add_argument("-i", "--input", type=_json_list_arg, default=None, metavar="JSON_LIST",
                       help="the query's arguments as a JSON list, e.g. '[1, \"x\"]'")
    signal = _parser(wf, "signal", _signal, "send a signal to a workflow", batch=True)
    signal.add_argument("--name", required=True, help="signal name")
    signal.add_argument("-i", "--input", type=_json_arg, default=None, help="input as JSON")
    signal.add_argument("--request-id", default=None, help="idempotency key (default: random)")
    cancel = _parser(wf, "cancel", _cancel, "ask a workflow to cancel (its code decides how)",
                     batch=True)
    terminate = _parser(wf, "terminate", _terminate, "terminate a workflow", batch=True)
    for closing in (cancel, terminate):
        closing.add_argument("--reason", default="", help="recorded in the history")
        closing.add_argument("--request-id", default=None,
                             help="idempotency key: a repeated id gets the first answer")
    _add_run_id(result, describe, show, query, signal, cancel, terminate)
    reset = _parser(wf, "reset", _reset, "re-run a workflow from one of its workflow "
                    "tasks: a new run, the open one terminated (cli_reset.py)", batch=True)
    add_reset_arguments(reset)
    _add_run_id(reset)
    add_update_parsers(wf, _json_arg, NAMESPACE_DEFAULT)

    replay = wf.add_parser("replay", help="replay a saved history against current code")
    replay.add_argument("--history", required=True,
                        help="JSON file (raftflow workflow show --json)")
    replay.add_argument("--workflows", required=True, nargs="+", metavar="MODULE:CLASS",
                        help="workflow classes to replay with")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.set_defaults(server=("raftflow.sdk.replayer", "run_cli"))
    for name, command, help_text, add_arguments in (
            ("list", workflow_list, "list the runs a query selects, every page",
             add_list_arguments),
            ("count", workflow_count, "count the runs a query selects", add_count_arguments)):
        visibility = client_parser(wf, name, command, help_text)
        visibility.add_argument("-n", "--namespace", default=NAMESPACE_DEFAULT)
        add_arguments(visibility)
