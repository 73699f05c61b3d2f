"""Membership steps as an operator runs them: join a node, drain it, remove it, replace a dead one.

Each step is a blocking call (the nemesis runs it in a thread) that returns once the cluster
shows it done, or raises `MembershipStepError` saying what did not happen within its bound:
- join: the next spare slot starts with `--join`; done when the status lists it `active`;
- drain: `POST .../drain`; done when the node holds no replica and leads no shard;
- remove: `POST .../remove`; done when the node's process exits by itself, which must be 0;
- force-remove: `POST .../remove?force=true` of a node killed for good; done once accepted;
- settle: after the steps, until every shard is back at its replication factor on live active
  members with no move in progress (`placement_checks.placement_problems`), so the next fault
  starts on a cluster with a majority in every group.
Membership calls go to any member (they are forwarded to the cluster map's leader). A call is
retried on other members while the map has no leader; a refusal is retried too (a move may
still be finishing) unless the status already shows the step done (a retry whose first
attempt was applied but answered too late).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from raftflow.chaos.cluster import ChaosCluster
from raftflow.chaos.observations import PlacementReading
from raftflow.chaos.placement_checks import placement_problems

STATUS_PATH = "/api/v1/cluster/status"
REQUEST_TIMEOUT_S = 5.0
CALL_WAIT_S = 30.0  # a membership call retried this long (map leader elections take < 5 s)
POLL_S = 0.5
# Bounds on each step, well above what a healthy 8-shard cluster under load needs (join and
# drain take ~10 s, a replace ~20 s; see tests/integration/test_elastic_cluster.py).
JOIN_ACTIVE_WAIT_S = 90.0
DRAIN_WAIT_S = 150.0
EXIT_WAIT_S = 30.0
SETTLE_WAIT_S = 150.0

Status = dict[str, Any]


class MembershipStepError(Exception):
    """A membership step did not complete within its bound; the message says what was seen."""


def read_status(cluster: ChaosCluster) -> Status | None:
    """`GET /api/v1/cluster/status` from the first member that answers, or None."""
    for node in cluster.node_ids:
        try:
            ask = urllib.request.Request(cluster.address(node) + STATUS_PATH,
                                         headers=cluster.credentials.headers())
            with urllib.request.urlopen(ask, timeout=REQUEST_TIMEOUT_S,
                                        context=cluster.credentials.ssl_context) as answer:
                return dict(json.loads(answer.read()))
        except (OSError, ValueError):
            continue
    return None


def placement_of(cluster: ChaosCluster, status: Status, waited_s: float) -> PlacementReading:
    return PlacementReading.of_status(status, expected_members=tuple(cluster.node_ids),
                                      waited_s=waited_s)


def join(cluster: ChaosCluster) -> str:
    node = cluster.join_spare()
    _until(cluster, f"{node} active after joining", JOIN_ACTIVE_WAIT_S,
           lambda status: _state(status, node) == "active", exited=node)
    return node


def drain(cluster: ChaosCluster, node: str) -> None:
    _call(cluster, f"/api/v1/cluster/nodes/{node}/drain",
          done=lambda status: _state(status, node) == "draining")
    _until(cluster, f"{node} drained (no replica, no leadership)", DRAIN_WAIT_S,
           lambda status: _holdings(status, node) == (0, 0), exited=node)


def remove(cluster: ChaosCluster, node: str) -> None:
    _call(cluster, f"/api/v1/cluster/nodes/{node}/remove",
          done=lambda status: _state(status, node) is None)
    code = cluster.wait_exit(node, EXIT_WAIT_S)
    if code != 0:
        seen = "did not exit (SIGKILLed)" if code is None else f"exited with code {code}"
        raise MembershipStepError(f"removed node {node} {seen} within {EXIT_WAIT_S:.0f} s, "
                                  "expected it to exit 0 by itself")


def force_remove(cluster: ChaosCluster, node: str) -> None:
    assert node in cluster.gone, f"{node} must be killed for good before a forced remove"
    _call(cluster, f"/api/v1/cluster/nodes/{node}/remove?force=true",
          done=lambda status: _state(status, node) is None)


def settle(cluster: ChaosCluster) -> float:
    """Wait until every shard is at its replication factor again; the seconds it took."""
    return _until(cluster, "every shard back at its replication factor, no move in progress",
                  SETTLE_WAIT_S, lambda status: not placement_problems(
                      placement_of(cluster, status, 0.0)))


def final_placement(cluster: ChaosCluster) -> PlacementReading:
    """The status once settled (or the last one read when SETTLE_WAIT_S runs out), for the
    checker's `replication_restored`."""
    started = time.monotonic()
    status: Status | None = None
    while True:
        status = read_status(cluster) or status
        waited_s = time.monotonic() - started
        if status is not None:
            reading = placement_of(cluster, status, waited_s)
            if not placement_problems(reading) or waited_s > SETTLE_WAIT_S:
                return reading
        elif waited_s > SETTLE_WAIT_S:
            return PlacementReading(members=(), shards=(), moves=0,
                                    expected_members=tuple(cluster.node_ids), waited_s=waited_s)
        time.sleep(POLL_S)


# -- calls and waits ---------------------------------------------------------------------------


def _state(status: Status, node: str) -> str | None:
    """The node's membership state in `status`; None once it is not a member."""
    for row in status.get("nodes", []):
        if row.get("id") == node:
            return str(row.get("state"))
    return None


def _holdings(status: Status, node: str) -> tuple[int, int] | None:
    for row in status.get("nodes", []):
        if row.get("id") == node:
            return int(row.get("replicas", 0)), int(row.get("leaders", 0))
    return None


def _call(cluster: ChaosCluster, path: str, *, done: Callable[[Status], bool]) -> None:
    """POST `path` to the members in turn until one accepts it (see the module docstring)."""
    deadline = time.monotonic() + CALL_WAIT_S
    last = "no member answered"
    while time.monotonic() < deadline:
        for node in cluster.node_ids:
            request = urllib.request.Request(cluster.address(node) + path, data=b"",
                                             method="POST", headers=cluster.credentials.headers())
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S,
                                            context=cluster.credentials.ssl_context):
                    return
            except urllib.error.HTTPError as error:
                last = f"{node} answered {error.code}: {error.read()[:300]!r}"
            except OSError as error:
                last = f"{node}: {error!r}"
            status = read_status(cluster)
            if status is not None and done(status):
                return
        time.sleep(POLL_S)
    raise MembershipStepError(f"POST {path} not accepted within {CALL_WAIT_S:.0f} s; last: "
                              f"{last}")


def _until(cluster: ChaosCluster, what: str, within_s: float,
           check: Callable[[Status], bool], *, exited: str | None = None) -> float:
    """Poll the status until `check` holds; the seconds it took. Fails early if the node
    `exited` names is a member whose process ended."""
    started = time.monotonic()
    status: Status | None = None
    while time.monotonic() - started < within_s:
        status = read_status(cluster)
        if status is not None and check(status):
            return time.monotonic() - started
        if exited is not None and exited in cluster.node_ids and cluster.pid(exited) is None:
            raise MembershipStepError(f"waiting for {what}: the process of {exited} ended "
                                      f"(exit code {cluster.exit_code(exited)})")
        time.sleep(POLL_S)
    shown = "none answered" if status is None else json.dumps(_brief(status))[:1500]
    raise MembershipStepError(f"not within {within_s:.0f} s: {what}; last status: {shown}")


def _brief(status: Status) -> Status:
    """The parts of a status that explain a stuck step."""
    return {"epoch": status.get("epoch"), "moves": status.get("moves"),
            "nodes": [{k: n.get(k) for k in ("id", "state", "alive", "replicas", "leaders")}
                      for n in status.get("nodes", [])],
            "shards": [[s.get("shard"), s.get("leader"), s.get("replicas")]
                       for s in status.get("shards", [])]}
