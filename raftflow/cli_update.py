"""`raftflow workflow update execute|start|result|describe`: workflow updates from the command line, as
Temporal's `temporal workflow update` commands.

`execute` sends an update and waits for its outcome: it prints the handler's result, or exits 1
(`update_failed`) with the rejection or the handler's failure. `start` returns once the update
was accepted (or rejected: then it is completed at once) and prints its update id; `result`
waits for the outcome of an update already sent; `describe` shows where one stands, with no
wait. The update is named by its id
(`--update-id`, random when `execute` or `start` get none), so sending it again never runs it
twice; once sent, waiting reads where it stands (`GET .../updates/{id}`): a series of bounded
long polls within `--timeout`, a 503/504 between them asked again.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from typing import TextIO
from urllib.parse import quote

from raftflow.cli_http import TRANSIENT_ERROR_CODES, TimeoutFlag, client_parser, workflows_path
from raftflow.cli_output import CliError, JsonObject
from raftflow.cli_wait import RETRY_PAUSE_S, TRANSIENT_RETRIES_MAX, Api, Deadline

UPDATE_POLL_WAIT_MS = 30_000  # one long poll (the server allows up to 60 s)
_STAGES = ("admitted", "accepted", "completed")
WAIT_TIMEOUT = TimeoutFlag(
    dest="wait_timeout_s", default_s=None,
    help="seconds to wait for the update's stage (default: until it is reached)")


def _reached(answer: JsonObject, stage: str) -> bool:
    reached = answer.get("stage")
    return reached in _STAGES and _STAGES.index(str(reached)) >= _STAGES.index(stage)


def _wait(args: argparse.Namespace, stage: str,
          ask: Callable[[int, float], JsonObject]) -> JsonObject:
    """Ask (`ask(wait_ms, timeout_s)`) until the answer reached `stage`, within --timeout."""
    deadline = Deadline.after(args.wait_timeout_s)
    failures = 0
    while True:
        remaining_s = deadline.remaining_s()
        wait_ms = UPDATE_POLL_WAIT_MS if remaining_s is None else max(
            0, min(UPDATE_POLL_WAIT_MS, int(remaining_s * 1000)))
        try:
            answer = ask(wait_ms, wait_ms / 1000 + args.timeout)
            failures = 0
        except CliError as error:
            failures += 1
            if (error.code not in TRANSIENT_ERROR_CODES or failures > TRANSIENT_RETRIES_MAX
                    or deadline.passed()):
                raise
            time.sleep(RETRY_PAUSE_S)
            continue
        if _reached(answer, stage):
            return answer
        if deadline.passed():
            raise deadline.ran_out(f"update {answer.get('update_id')} of workflow "
                                   f"{args.workflow_id} is {answer.get('stage')}")


def _send(args: argparse.Namespace, api: Api, stage: str) -> JsonObject:
    body: JsonObject = {"name": args.name, "input": args.input,
                        "update_id": args.update_id or uuid.uuid4().hex,
                        "wait_for_stage": stage}
    if args.run_id:
        body["run_id"] = args.run_id
    path = workflows_path(args.namespace, args.workflow_id, "updates")
    sent: list[JsonObject] = []

    def ask(wait_ms: int, timeout_s: float) -> JsonObject:
        """The first call admits the update (asked again, with the same update id, until one
        is answered); later ones read where it stands, proposing nothing."""
        if not sent:
            sent.append(api.call("POST", path, {**body, "wait_ms": wait_ms},
                                 timeout_s=timeout_s))
            return sent[0]
        return api.call("GET", f"{path}/{quote(str(body['update_id']), safe='')}",
                        query={"wait_for_stage": stage, "wait_ms": str(wait_ms)},
                        timeout_s=timeout_s)

    return _wait(args, stage, ask)


def _report(args: argparse.Namespace, answer: JsonObject, out: TextIO) -> JsonObject:
    """A completed update's result on stdout; its failure is a CliError `update_failed`."""
    failure = answer.get("failure")
    if isinstance(failure, dict):
        why = ": ".join(str(p) for p in (failure.get("type"), failure.get("message")) if p)
        raise CliError("update_failed", f"update {answer.get('update_id')} of workflow "
                       f"{args.workflow_id} failed: {why}", answer=answer)
    if not args.json:
        out.write(json.dumps(answer.get("result")) + "\n")
    return answer


def update_execute(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    return _report(args, _send(args, api, "completed"), out)


def update_start(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    answer = _send(args, api, "accepted")
    if not args.json:
        out.write(f"update {answer.get('update_id')} of workflow {args.workflow_id} is "
                  f"{answer.get('stage')}\n")
    return answer


def update_result(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    path = workflows_path(args.namespace, args.workflow_id, "updates", args.update_id)
    return _report(args, _wait(args, "completed", lambda wait_ms, timeout_s: api.call(
        "GET", path, query={"wait_for_stage": "completed", "wait_ms": str(wait_ms)},
        timeout_s=timeout_s)), out)


def update_describe(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    """Where an update stands now (no wait): its stage and, once completed, its outcome."""
    answer = api.call("GET", workflows_path(args.namespace, args.workflow_id, "updates",
                                            args.update_id), query={"wait_ms": "0"})
    if not args.json:
        width = max((len(k) for k in answer), default=0) + 1
        for key, value in answer.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            out.write(f"{key + ':':<{width}} {shown}\n")
    return answer


def add_update_parsers(wf: argparse._SubParsersAction[argparse.ArgumentParser],
                       json_arg: Callable[[str], object], namespace_default: str) -> None:
    """`raftflow workflow update` and its subcommands."""
    update = wf.add_parser("update", help="run workflow updates (@workflow.update handlers)")
    commands = update.add_subparsers(dest="update_command", required=True)
    for name, command, help_text in (
            ("execute", update_execute, "run an update and print its result (exit 1 if it "
                                        "was rejected or failed)"),
            ("start", update_start, "send an update; return once it was accepted"),
            ("result", update_result, "wait for an update's outcome and print its result"),
            ("describe", update_describe, "show where an update stands (no wait)")):
        parser = client_parser(commands, name, command, help_text, timeout=WAIT_TIMEOUT)
        parser.add_argument("-n", "--namespace", default=namespace_default)
        parser.add_argument("-w", "--workflow-id", required=True)
        parser.add_argument("--update-id", required=name in ("result", "describe"), default=None,
                            help="the update's id: a repeated id gets the first outcome "
                                 "(default: random)")
        if name in ("execute", "start"):
            parser.add_argument("--name", required=True, help="update name (the handler's)")
            parser.add_argument("-i", "--input", type=json_arg, default=None,
                                help="input as JSON (a list: the handler's arguments)")
            parser.add_argument("-r", "--run-id", default=None,
                                help="one run of the workflow (default: the open run)")
