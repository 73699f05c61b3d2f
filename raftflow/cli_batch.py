"""Batch operations from the CLI (Temporal's `temporal workflow terminate --query ... --yes` and
`temporal batch describe|list|terminate`): `raftflow workflow terminate|cancel|signal|reset
--query Q --yes` start a durable batch job on every workflow Q selects (protocol/batches.py);
`raftflow batch describe -j ID | list | stop -j ID` follow and stop jobs.

A batch acts on many workflows at once, so it asks for `--yes`, as Temporal's CLI does.
"""

from __future__ import annotations

import argparse
from typing import TextIO
from urllib.parse import quote

from raftflow.cli_http import ApiClient, client_parser
from raftflow.cli_output import CliError, JsonObject, print_table

NAMESPACE_DEFAULT = "default"


def _batches_path(namespace: str, *rest: str) -> str:
    return "/".join([f"/api/v1/namespaces/{quote(namespace, safe='')}/batches",
                     *(quote(part, safe="") for part in rest)])


def add_query_arguments(parser: argparse.ArgumentParser) -> None:
    """`--query`, `--yes`, `--rps` on a workflow command that can act on many."""
    parser.add_argument("--query", default=None,
                        help="act on every workflow this visibility query selects, as a batch "
                             "job (instead of -w)")
    parser.add_argument("--yes", action="store_true",
                        help="confirm a --query batch (it may act on many workflows)")
    parser.add_argument("--rps", type=int, default=None,
                        help="a --query batch's operations per second (default 50)")
    parser.add_argument("--job-id", default=None,
                        help="a --query batch's id (default: random); running the command again "
                             "with the same id gets the same job, never a second one")


def start_batch(args: argparse.Namespace, api: ApiClient, out: TextIO,
                operation: JsonObject) -> JsonObject:
    if not args.yes:
        raise CliError("invalid_argument", "a --query batch acts on every workflow the query "
                                           "selects: pass --yes to go ahead")
    body: JsonObject = {"query": args.query, "operation": operation}
    if args.rps is not None:
        body["rps"] = args.rps
    if args.job_id:  # and a request id of its own: a rerun is a retry of the same start
        body["job_id"] = args.job_id
        body["request_id"] = f"cli-start-{args.job_id}"
    answer = api.call("POST", _batches_path(args.namespace), body)
    if not args.json:
        out.write(f"started batch job {answer.get('job_id')}: {operation['type']} on the "
                  f"workflows matching {args.query!r}; follow it with `raftflow batch describe "
                  f"-j {answer.get('job_id')}`\n")
    return answer


def _describe(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    job = api.call("GET", _batches_path(args.namespace, args.job_id))
    if not args.json:
        for key in ("job_id", "state", "query", "operation", "rps", "succeeded", "failed",
                    "start_time", "close_time", "reason", "errors"):
            out.write(f"{key + ':':<12} {job.get(key)}\n")
    return job


def _list(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    answer = api.call("GET", _batches_path(args.namespace))
    jobs = answer.get("jobs")
    if not args.json and isinstance(jobs, list):
        print_table(out, ("JOB", "STATE", "OPERATION", "SUCCEEDED", "FAILED", "STARTED"), [
            (j.get("job_id"), j.get("state"), (j.get("operation") or {}).get("type"),
             j.get("succeeded"), j.get("failed"), j.get("start_time")) for j in jobs])
    return answer


def _stop(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    job = api.call("POST", _batches_path(args.namespace, args.job_id, "stop"),
                   {"reason": args.reason})
    if not args.json:
        out.write(f"batch job {args.job_id} is {job.get('state')}\n")
    return job


def add_batch_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = commands.add_parser("batch", help="follow and stop batch jobs "
                                              "(start them with `workflow ... --query`)")
    sub = batch.add_subparsers(dest="batch_command", required=True)
    for name, command, help_text, with_job in (
            ("describe", _describe, "show a batch job's state and progress", True),
            ("list", _list, "list the namespace's batch jobs, newest first", False),
            ("stop", _stop, "stop a running batch job", True)):
        parser = client_parser(sub, name, command, help_text)
        parser.add_argument("-n", "--namespace", default=NAMESPACE_DEFAULT)
        if with_job:
            parser.add_argument("-j", "--job-id", required=True)
        if name == "stop":
            parser.add_argument("--reason", default="", help="recorded with the job")
