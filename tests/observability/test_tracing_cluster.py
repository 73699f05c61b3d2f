"""Traces on a real cluster: one trace from a client's start to the worker's activity.

Goal: with `TracingInterceptor` on the client (and so on its worker) and `--otel-exporter
console` on every node, starting a workflow that runs one activity produces, in the client's
trace: `StartWorkflow:<type>` (client) → the nodes' `POST /api/v1/namespaces/{namespace}/
workflows` span (one more hop's span when the call was forwarded) → `RunWorkflow:<type>` for
each workflow task → `RunActivity:<type>` under the workflow task that scheduled it, and the
child's `RunWorkflow:<type>` under the workflow task that started the child; each task's
answer is a node span under its task's span, and task polls are not traced. The
traceparent recorded in WorkflowExecutionStarted and ActivityTaskScheduled is that chain's.
Method: a 3-node cluster of `raftflow node` processes; client, worker and their spans (an
in-memory exporter) in this process; the nodes' spans read from their log files (the console
exporter writes one JSON object per span) after the cluster stopped, flushing them.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config
from raftflow.protocol.events import (
    ActivityTaskScheduledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from raftflow.sdk import activity, workflow
from raftflow.sdk.client import Client
from raftflow.sdk.contrib.opentelemetry import TracingInterceptor
from raftflow.sdk.worker import Worker


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn
class Kid:
    @workflow.run
    async def run(self, name: str) -> str:
        return name.upper()


@workflow.defn
class Greeter:
    """An activity, then a child started by the workflow task that got its result."""

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(greet, name,
                                                   start_to_close_timeout=timedelta(seconds=10))
        loud = await workflow.execute_child_workflow(Kid.run, name, id=f"{name}-kid")
        return f"{greeting} / {loud}"


@pytest.fixture(scope="module")
def traced_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Path]]:
    data_dir: Path = tmp_path_factory.mktemp("traced-cluster")
    config = load_or_create_dev_config(data_dir, nodes=3, shards=4,
                                       http_port=free_port_block(3, random.Random()))
    cluster = LocalCluster(config, data_dir, node_args={
        node.id: ["--otel-exporter", "console"] for node in config.nodes})
    cluster.start()
    try:
        cluster.wait_ready()
        yield cluster, data_dir
    finally:
        cluster.stop()


def _hex(value: str) -> str:
    return value.removeprefix("0x")


def _node_spans(data_dir: Path, cluster: LocalCluster) -> list[dict[str, Any]]:
    spans = []
    for node_id in cluster.node_ids:
        for raw in (data_dir / f"{node_id}.log").read_text().splitlines():
            if raw.startswith("{") and '"span_id"' in raw:
                spans.append(json.loads(raw))
    return spans


def test_one_trace_from_the_client_start_to_the_activity(
        traced_cluster: tuple[LocalCluster, Path]) -> None:
    cluster, data_dir = traced_cluster
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    interceptor = TracingInterceptor(provider.get_tracer("test"))

    async def scenario() -> tuple[str, list[Any]]:
        client = await Client.connect([cluster.address(n) for n in cluster.node_ids],
                                      interceptors=[interceptor])
        try:
            async with Worker(client, task_queue="traced", workflows=[Greeter, Kid],
                              activities=[greet]):
                handle = await client.start_workflow(Greeter.run, "ada", id="traced-1",
                                                     task_queue="traced")
                result = await handle.result()
            return result, (await handle.history()).events
        finally:
            await client.close()

    result, events = asyncio.run(scenario())
    assert result == "hello ada / ADA"
    cluster.stop()  # flushes and closes the nodes' logs
    mine = {span.name: span for span in exporter.get_finished_spans()}
    start = mine["StartWorkflow:Greeter"]
    trace_id = start.context.trace_id
    in_process = exporter.get_finished_spans()
    assert {s.context.trace_id for s in in_process} == {trace_id}, [s.name for s in in_process]
    runs = [s for s in in_process if s.name == "RunWorkflow:Greeter"]
    activities = [s for s in in_process if s.name == "RunActivity:greet"]
    # The task that schedules the activity, the one that starts the child, the one that ends.
    assert len(runs) >= 3 and len(activities) == 1
    kid_runs = [s for s in in_process if s.name == "RunWorkflow:Kid"]
    assert kid_runs

    # The nodes' spans of the start call: the first is the client span's child, each
    # forwarded hop the previous one's; the last is the parent of every workflow task.
    node_spans = [s for s in _node_spans(data_dir, cluster)
                  if int(s["context"]["trace_id"], 16) == trace_id]
    starts = [s for s in node_spans
              if s["name"] == "POST /api/v1/namespaces/{namespace}/workflows"]
    assert 1 <= len(starts) <= 3, starts
    by_parent = {_hex(s["parent_id"]): s for s in starts}
    hop = by_parent[f"{start.context.span_id:016x}"]
    while _hex(hop["context"]["span_id"]) in by_parent:
        hop = by_parent[_hex(hop["context"]["span_id"])]
    recorded_parent = _hex(hop["context"]["span_id"])
    assert all(run.parent is not None and f"{run.parent.span_id:016x}" == recorded_parent
               for run in runs), [run.parent for run in runs]

    # RunActivity's parent is the RunWorkflow span of the task that scheduled the activity.
    (act,) = activities
    assert act.parent is not None and act.parent.span_id in {r.context.span_id for r in runs}
    first_run = min(runs, key=lambda s: s.start_time or 0)
    assert act.parent.span_id == first_run.context.span_id

    # Each task's answer is a call under the span of the work it answers; polls are untraced.
    all_node = _node_spans(data_dir, cluster)
    assert not [s for s in all_node if s["name"].endswith("/poll")]
    # (A forwarded answer's second span is the first's child: only first hops are compared.)
    node_ids = {_hex(s["context"]["span_id"]) for s in node_spans}
    first_hops = [s for s in node_spans if _hex(s["parent_id"] or "") not in node_ids]
    completions = [s for s in first_hops if s["name"] == "POST /api/v1/tasks/workflow/complete"]
    assert {_hex(s["parent_id"]) for s in completions} == {
        f"{r.context.span_id:016x}" for r in runs + kid_runs}
    (answered,) = [s for s in first_hops if s["name"] == "POST /api/v1/tasks/activity/complete"]
    assert _hex(answered["parent_id"]) == f"{act.context.span_id:016x}"

    # What history recorded is that chain (read from the typed events).
    started = events[0].attributes
    assert isinstance(started, WorkflowExecutionStartedEventAttributes)
    # (flags: sampled, plus W3C level 2's random-trace-id bit where the SDK sets it)
    assert started.traceparent.rsplit("-", 1)[0] == f"00-{trace_id:032x}-{recorded_parent}"
    # The child's tasks hang under the parent's task that started it (the second one).
    second_run = sorted(runs, key=lambda s: s.start_time or 0)[1]
    assert all(k.parent is not None and k.parent.span_id == second_run.context.span_id
               for k in kid_runs), [k.parent for k in kid_runs]

    (scheduled,) = [e.attributes for e in events
                    if isinstance(e.attributes, ActivityTaskScheduledEventAttributes)]
    assert scheduled.traceparent.rsplit("-", 1)[0] == (
        f"00-{trace_id:032x}-{first_run.context.span_id:016x}")
    assert int(started.traceparent[-2:], 16) & 1 and int(scheduled.traceparent[-2:], 16) & 1


