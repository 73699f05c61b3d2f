"""`raftflow cluster status|drain|remove|rebalance`: the membership commands of the CLI.

Each is an HTTP client of one node (any node: membership calls are forwarded to the cluster
map's leader). `--json` prints the answer object; the human form is a table or a sentence.
`drain --wait` polls the cluster status until the node holds no replica and leads no shard.
A call answered 503 or 504 (the cluster map's leader is moving) is sent again for up to
`RETRY_FOR_S`; the commands are idempotent.
"""

from __future__ import annotations

import argparse
import time
from typing import Protocol, TextIO

from raftflow.cli_output import CliError, JsonObject, joined, print_table, records

# A membership call answered 503/504 (the map's leader is moving, or the node that forwarded
# the call could not reach it: a node just killed or removed) is sent again this often, for
# this long: the commands are idempotent (a drained node drained again, a removed one removed
# again, change nothing).
RETRY_PAUSE_S = 1.0
RETRY_FOR_S = 60.0
_RETRIED_CODES = frozenset({"not_leader", "overloaded", "timeout"})
# `drain --wait` looks at the status this often, and gives up after --wait-timeout seconds.
DRAIN_POLL_S = 1.0
DRAIN_WAIT_S_DEFAULT = 600.0


class Api(Protocol):
    def call(self, method: str, path: str, body: JsonObject | None = None,
             query: dict[str, str] | None = None) -> JsonObject: ...


def _call(api: Api, method: str, path: str, query: dict[str, str] | None = None) -> JsonObject:
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            return api.call(method, path, query=query)
        except CliError as error:
            if error.code not in _RETRIED_CODES or time.monotonic() > deadline:
                raise
        time.sleep(RETRY_PAUSE_S)


def cluster_status(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    status = _call(api, "GET", "/api/v1/cluster/status")
    if not args.json:
        print_table(out, ("NODE", "STATE", "ADDRESS", "PID", "ALIVE", "REPLICAS", "LEADERS"), [
            (n.get("id"), n.get("state"), n.get("address"), n.get("pid"), n.get("alive"),
             n.get("replicas"), n.get("leaders"))
            for n in records(status.get("nodes"))])
        out.write("\n")
        print_table(out, ("SHARD", "LEADER", "REPLICAS", "TERM", "COMMIT"), [
            (s.get("shard"), s.get("leader"), joined(s.get("replicas")), s.get("term"),
             s.get("commit_index"))
            for s in records(status.get("shards"))])
        moves = records(status.get("moves"))
        out.write(f"\nmap epoch {status.get('epoch')}; {len(moves)} moves in progress\n")
        for move in moves:
            group = "meta" if move.get("shard") == -1 else f"shard {move.get('shard')}"
            out.write(f"  {group}: +{move.get('learner') or move.get('promoted')} "
                      f"-{move.get('leaving')}\n")
    return status


def _holdings(api: Api, node_id: str) -> tuple[int, int] | None:
    """(replicas, leaders) of `node_id` in the cluster status, a replica of the meta group or
    a move in progress that still involves it counting as one more replica; None once it is
    not a member."""
    status = _call(api, "GET", "/api/v1/cluster/status")
    moving = sum(1 for move in records(status.get("moves"))
                 if node_id in (move.get("learner"), move.get("promoted"), move.get("leaving")))
    for node in records(status.get("nodes")):
        if node.get("id") == node_id:
            replicas, leaders = node.get("replicas"), node.get("leaders")
            assert isinstance(replicas, int) and isinstance(leaders, int)
            return replicas + moving, leaders
    return None


def cluster_drain(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    answer = _call(api, "POST", f"/api/v1/cluster/nodes/{args.node}/drain")
    if args.wait:
        deadline = time.monotonic() + args.wait_timeout
        while True:
            held = _holdings(api, args.node)
            if held is None or held == (0, 0):
                break
            if time.monotonic() > deadline:
                raise CliError("timeout", f"{args.node} still holds {held[0]} replicas "
                                      f"and leads {held[1]} shards after {args.wait_timeout} s")
            time.sleep(DRAIN_POLL_S)
        answer = {**answer, "drained": True}
    if not args.json:
        done = "drained: it holds no replica" if args.wait else "draining"
        out.write(f"{args.node} {done} (map epoch {answer.get('epoch')})\n")
    return answer


def cluster_remove(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    answer = _call(api, "POST", f"/api/v1/cluster/nodes/{args.node}/remove",
                   query={"force": "true" if args.force else ""})
    if not args.json:
        out.write(f"{args.node} removed from the cluster (map epoch {answer.get('epoch')})\n")
    return answer


def cluster_rebalance(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    answer = _call(api, "POST", "/api/v1/cluster/rebalance",
                   query={"dry_run": "true" if args.dry_run else ""})
    if not args.json:
        planned = records(answer.get("planned"))
        verb = "would start" if args.dry_run else "started"
        out.write(f"{verb} {len(planned)} moves ({answer.get('moves_in_progress')} in "
                  f"progress, map epoch {answer.get('epoch')})\n")
        for move in planned:
            out.write(f"  group {move.get('group')}: +{move.get('add')} -{move.get('remove')}\n")
    return answer


def add_arguments(drain: argparse.ArgumentParser, remove: argparse.ArgumentParser,
                  rebalance: argparse.ArgumentParser) -> None:
    drain.add_argument("--node", required=True, help="the node id to drain")
    drain.add_argument("--wait", action="store_true",
                       help="return once the node holds no replica and leads no shard")
    drain.add_argument("--wait-timeout", type=float, default=DRAIN_WAIT_S_DEFAULT,
                       help=f"seconds --wait waits at most (default {DRAIN_WAIT_S_DEFAULT:.0f})")
    remove.add_argument("--node", required=True, help="the node id to remove")
    remove.add_argument("--force", action="store_true",
                        help="remove a dead node whatever it holds; its replicas are rebuilt "
                             "on live nodes from the surviving majorities")
    rebalance.add_argument("--dry-run", action="store_true",
                           help="show the moves the rebalancer would start, start none")
