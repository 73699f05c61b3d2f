"""Prometheus metrics of one node, in a registry of its own.

Each `Metrics` instance owns a dedicated `CollectorRegistry` (never the process-global one), so
several nodes in one test process, or a test and a node, never collide and nothing is
registered at import time. Label values are bounded: routes are the router's patterns
(`/api/v1/namespaces/{ns}/workflows`, not the concrete path), shards are 0..shard_count-1,
task kinds are "workflow"/"activity" (DESIGN §4 I7: bounded everything, metrics included).

The shells call the `record_*` methods; `GET /metrics` samples the scrape-time gauges
(`sample`, metrics_cluster.py) and serves `render()`. Workflow and activity counters live in
metrics_workflows.py, the Raft host's timings in `LogMetrics`; docs/metrics.md lists them all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from raftflow.actors.state_machine import AppliedCommand
from raftflow.api.metrics_cluster import ClusterGauges, ClusterSource, LogMetrics
from raftflow.api.metrics_commits import CommitTallies
from raftflow.api.metrics_workflows import WorkflowMetrics
from raftflow.protocol.commands import Command

# Latency buckets span a 1 ms local read to a 30 s long poll.
_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                      10.0, 30.0, 60.0)
# A timer fires late by a commit (milliseconds) up to a leader change or an overload (seconds).
_TIMER_DELAY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Powers of two up to the largest batch an actor may propose.
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
UNMATCHED_ROUTE = "unmatched"
# nginx's "client closed request": the status label of a request whose client left before
# its answer (aiohttp cancels the handler), so it is not counted as a 500.
CLIENT_CLOSED_STATUS = 499


class Metrics:
    """The node's metrics. One instance per node process (or per in-process test node)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_duration = Histogram(
            "raftflow_http_request_duration_seconds",
            "HTTP request latency by route pattern, method and status.",
            ("route", "method", "status"), buckets=_LATENCY_BUCKETS_S, registry=self.registry)
        # Counted on the apply path of every replica: plain ints, families built at scrape.
        self.commits = CommitTallies(_BATCH_BUCKETS)
        self.registry.register(self.commits)
        self.mailbox_depth = Gauge(
            "raftflow_mailbox_depth", "Commands waiting in a shard actor's mailbox.",
            ("shard",), registry=self.registry)
        self.leader_changes = Counter(
            "raftflow_leader_changes", "Times this node gained or lost a shard's leadership.",
            ("shard",), registry=self.registry)
        self.forwarded_calls = Counter(
            "raftflow_forwarded_calls", "Calls forwarded to the leader of their shard.",
            registry=self.registry)
        self.tasks_dispatched = Counter(
            "raftflow_tasks_dispatched", "Tasks handed to workers, by kind.",
            ("kind",), registry=self.registry)
        self.timers_fired = Counter(
            "raftflow_timers_fired", "Durable timers fired, per shard.",
            ("shard",), registry=self.registry)
        self.timer_delay = Histogram(
            "raftflow_timer_fire_delay_seconds", "From a leader's timer wake-up being due to "
            "its FireTimers applied, per shard.", ("shard",), buckets=_TIMER_DELAY_BUCKETS_S,
            registry=self.registry)
        self.workflows = WorkflowMetrics(self.registry)
        self.cluster = ClusterGauges(self.registry, self.workflows.namespaces,
                                     self.workflows.queues)
        self.log = LogMetrics(self.registry)  # the Raft host's LogObserver
        self._timer_delay_children: dict[int, Any] = {}
        self._request_children: dict[tuple[str, str, int], Any] = {}

    def observe_request(self, route: str, method: str, status: int, duration_s: float) -> None:
        assert duration_s >= 0
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:  # bounded: route patterns x methods x statuses
            child = self._request_children[key] = self.request_duration.labels(
                route, method, str(status))
        child.observe(duration_s)

    def record_commit(self, shard: int, batch_commands: int) -> None:
        """One committed entry holding `batch_commands` commands was applied on `shard`."""
        assert batch_commands >= 1, "an entry holds at least one command"
        self.commits.record(shard, batch_commands)

    def set_mailbox_depth(self, shard: int, depth: int) -> None:
        assert depth >= 0
        self.mailbox_depth.labels(str(shard)).set(depth)

    def record_leader_change(self, shard: int) -> None:
        self.leader_changes.labels(str(shard)).inc()

    def record_tasks_dispatched(self, kind: str, count: int = 1) -> None:
        assert kind in ("workflow", "activity"), kind
        self.tasks_dispatched.labels(kind).inc(count)

    def record_timers_fired(self, shard: int, count: int) -> None:
        assert count >= 0
        self.timers_fired.labels(str(shard)).inc(count)

    def record_applied(self, shard: int, commands: Sequence[Command],
                       outputs: Sequence[AppliedCommand]) -> None:
        self.workflows.record_applied(shard, commands, outputs)

    def record_timer_delay(self, shard: int, delay_s: float) -> None:
        assert delay_s >= 0
        child = self._timer_delay_children.get(shard)
        if child is None:  # bounded: one per shard
            child = self._timer_delay_children[shard] = self.timer_delay.labels(str(shard))
        child.observe(delay_s)

    def observe_schedule_to_start(self, namespace: str, task_queue: str, kind: str,
                                  waited_s: float) -> None:
        self.workflows.observe_schedule_to_start(namespace, task_queue, kind, waited_s)

    def sample(self, source: ClusterSource) -> None:
        """Read the scrape-time gauges (called by `GET /metrics` before `render`)."""
        for shard, depth in source.mailbox_depths().items():
            self.set_mailbox_depth(shard, depth)
        self.cluster.sample(source)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical


def metrics_middleware(metrics: Metrics) -> Middleware:
    """An aiohttp middleware timing every request by route pattern, method and status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started_s = time.perf_counter()
        status = 500  # an exception that is not an HTTP answer becomes a 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as err:
            status = err.status
            raise
        except asyncio.CancelledError:
            # The client left (a worker stopping its long polls): not a server error.
            status = CLIENT_CLOSED_STATUS
            raise
        finally:
            metrics.observe_request(_route_of(request), request.method, status,
                                    time.perf_counter() - started_s)

    return middleware


def metrics_handler(metrics: Metrics) -> Handler:
    """A `GET /metrics` handler serving `metrics.render()`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body, content_type = metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return handle
