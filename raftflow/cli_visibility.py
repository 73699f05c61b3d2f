"""`raftflow workflow list` and `raftflow workflow count`: visibility queries from the shell.

`list` follows the API's pages (`next_page_token`) until the last one, or until `--limit` runs,
so what it prints is every run the query selects across every shard; `--json` prints them as
one `{"workflows": [...]}` object. `count` prints the API's `{"count": n}`.
"""

from __future__ import annotations

import argparse
import urllib.parse
from typing import Protocol, TextIO

from raftflow.cli_output import CliError, JsonObject, print_table, records

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1_000  # the API's bound (api/validation.py QUERY_LIMIT_MAX)
# A listing stops after this many pages whatever `--limit` says: a query over millions of
# runs belongs in `count` or in a narrower filter, not on a terminal.
PAGES_MAX = 10_000


class Api(Protocol):
    def call(self, method: str, path: str, body: JsonObject | None = None,
             query: dict[str, str] | None = None) -> JsonObject: ...


def _path(namespace: str, leaf: str) -> str:
    return f"/api/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/{leaf}"


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--query", default="",
                        help="Temporal list filter, e.g. \"WorkflowType = 'X' AND "
                             "ExecutionStatus = 'Running'\" (default: every run)")
    parser.add_argument("--status", default=None, help="only runs in this status")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE_DEFAULT,
                        help=f"runs per request (1..{PAGE_SIZE_MAX})")
    parser.add_argument("--limit", type=int, default=None,
                        help="stop after this many runs (default: all)")


def add_count_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--query", default="", help="Temporal list filter (default: all)")


def workflow_list(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    if not 1 <= args.page_size <= PAGE_SIZE_MAX:
        raise CliError("invalid_argument", f"--page-size must be in 1..{PAGE_SIZE_MAX}")
    if args.limit is not None and args.limit < 1:
        raise CliError("invalid_argument", "--limit must be at least 1")
    found: list[JsonObject] = []
    token = ""
    for _ in range(PAGES_MAX):
        size = args.page_size if args.limit is None else min(args.page_size,
                                                              args.limit - len(found))
        page = api.call("GET", _path(args.namespace, "workflows"), query={
            "query": args.query, "status": args.status or "", "page_size": str(size),
            "next_page_token": token})
        found += records(page.get("workflows"))
        token = str(page.get("next_page_token") or "")
        if not token or (args.limit is not None and len(found) >= args.limit):
            break
    if not args.json:
        print_table(out, ("WORKFLOW ID", "RUN ID", "TYPE", "TASK QUEUE", "STATUS", "START"), [
            (w.get("workflow_id"), w.get("run_id"), w.get("workflow_type"),
             w.get("task_queue"), w.get("status"), w.get("start_time")) for w in found])
    return {"workflows": found}


def workflow_count(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    counted = api.call("GET", _path(args.namespace, "workflow-count"),
                       query={"query": args.query})
    if not args.json:
        print(counted.get("count"), file=out)
    return counted
