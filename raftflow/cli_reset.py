"""`raftflow workflow reset`: re-run a workflow from one of its workflow tasks (Temporal's
`temporal workflow reset`), over `POST .../workflows/{workflow_id}/reset`.

The reset point is `--event-id N` (a WorkflowTaskCompleted event's id, or the task's Started,
Failed or TimedOut event; `workflow show` lists them) or `--type FirstWorkflowTask` /
`LastWorkflowTask`. The new run's id is printed (`--json`: the API's answer). The request id is
sent only when given, as for `terminate`: a user re-running the command after a lost answer
passes the same `--request-id` and gets the same new run.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from raftflow.cli_http import ApiClient, workflows_path
from raftflow.cli_output import JsonObject

RESET_TYPES = ("FirstWorkflowTask", "LastWorkflowTask")


def _event_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not an event id (a positive integer): {text!r}")
    return value


def workflow_reset(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    body: JsonObject = {"reason": args.reason}
    if args.event_id is not None:
        body["event_id"] = args.event_id
    else:
        body["reset_type"] = args.type
    if args.request_id:
        body["request_id"] = args.request_id
    if args.run_id:
        body["run_id"] = args.run_id
    answer = api.call("POST", workflows_path(args.namespace, args.workflow_id, "reset"), body)
    if not args.json:
        out.write(f"reset workflow {args.workflow_id}: new run {answer.get('run_id')}\n")
    return answer


def add_reset_arguments(parser: argparse.ArgumentParser) -> None:
    point = parser.add_mutually_exclusive_group(required=True)
    point.add_argument("--event-id", type=_event_id, default=None,
                       help="the workflow task to reset to: its WorkflowTaskCompleted event "
                            "(or its Started, Failed or TimedOut event)")
    point.add_argument("--type", choices=RESET_TYPES, default=None,
                       help="the first or the last completed workflow task")
    parser.add_argument("--reason", required=True, help="recorded in both runs' histories")
    parser.add_argument("--request-id", default=None,
                        help="idempotency key: a repeated id gets the first answer")
