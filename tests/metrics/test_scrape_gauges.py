"""Goal: the gauges sampled at scrape time say what the node holds now: a task queue's backlog
and waiting polls from the real matcher, replica indexes and leadership from log statuses,
each leader's per-peer lag; a sample replaces the previous one whole (no stale series), and
queues beyond the label limit are summed into the overflow series. A request whose client left
is not counted as a server error.

Method: a real `Matcher` fed dispatch effects with a poll waiting on another queue, and a
small `ClusterSource` of typed statuses; samples are read back from the node's registry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from raftflow.api.metric_labels import OVERFLOW_LABEL, TASK_QUEUES_MAX
from raftflow.api.metrics import Metrics, metrics_middleware
from raftflow.cluster.cluster_map import ClusterMap, genesis_map
from raftflow.matching.items import QueueSample
from raftflow.matching.matcher import Matcher
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.effects import DispatchActivityTask
from raftflow.raftlog.interface import LogStatus, NodeId, ShardId


def _dispatch(queue: str, run: int) -> DispatchActivityTask:
    return DispatchActivityTask(namespace="shop", task_queue=queue, workflow_id=f"wf-{run}",
                                run_id=f"run-{run}", scheduled_event_id=5, attempt=1)


class Source:
    def __init__(self, cluster_map: ClusterMap, queues: Iterable[QueueSample]) -> None:
        self.cluster_map = cluster_map
        self.queues = list(queues)
        self.statuses = [
            LogStatus(shard=ShardId(0), is_leader=True, leader=NodeId("a"), term=3,
                      commit_index=40, applied_index=38, last_index=41,
                      members=(NodeId("a"), NodeId("b"))),
            LogStatus(shard=ShardId(1), is_leader=False, leader=None, term=2,
                      commit_index=7, applied_index=7, last_index=7,
                      members=(NodeId("a"), NodeId("b"))),
        ]
        self.lags = [(0, "b", 12)]

    def local_status(self) -> list[LogStatus]:
        return self.statuses

    def replica_lags(self) -> list[tuple[int, str, int]]:
        return self.lags

    def mailbox_depths(self) -> dict[int, int]:
        return {0: 4}

    def queue_samples(self) -> list[QueueSample]:
        return self.queues


def _map() -> ClusterMap:
    return genesis_map("c", 2, [(n, f"http://127.0.0.1:{p}", "127.0.0.1", p + 1000)
                                for n, p in (("a", 9000), ("b", 9001))])


def test_backlog_and_pollers_come_from_the_matcher() -> None:
    async def main() -> list[QueueSample]:
        matcher = Matcher()
        matcher.on_effects(0, [_dispatch("orders", 1), _dispatch("orders", 2)])
        poll = asyncio.ensure_future(matcher.take("shop", "mail", TaskKind.ACTIVITY, 5.0))
        await asyncio.sleep(0.01)
        samples = matcher.queue_samples()
        poll.cancel()
        return samples

    samples = sorted(asyncio.run(main()), key=lambda s: s.task_queue)
    assert samples == [
        QueueSample(namespace="shop", task_queue="mail", kind="activity", backlog=0, pollers=1),
        QueueSample(namespace="shop", task_queue="orders", kind="activity", backlog=2,
                    pollers=0),
    ]


def test_a_sample_replaces_the_last_one_whole() -> None:
    metrics = Metrics()
    source = Source(_map(), [QueueSample(namespace="shop", task_queue="orders",
                                         kind="activity", backlog=2, pollers=0)])
    metrics.sample(source)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("raftflow_shard_is_leader", shard="0") == 1
    assert value("raftflow_shard_is_leader", shard="1") == 0
    assert value("raftflow_shard_leader_known", shard="1") == 0
    assert value("raftflow_replica_commit_index", shard="0") == 40
    assert value("raftflow_replica_applied_index", shard="0") == 38
    assert value("raftflow_replica_lag_entries", shard="0", peer="b") == 12
    assert value("raftflow_mailbox_depth", shard="0") == 4
    assert value("raftflow_task_queue_backlog", namespace="shop", task_queue="orders",
                 kind="activity") == 2
    assert value("raftflow_cluster_members", state="active") == 2

    source.statuses, source.lags, source.queues = source.statuses[1:], [], []
    metrics.sample(source)  # shard 0 left this node, its lag and the queue are gone
    assert value("raftflow_shard_is_leader", shard="0") is None
    assert value("raftflow_replica_lag_entries", shard="0", peer="b") is None
    assert value("raftflow_task_queue_backlog", namespace="shop", task_queue="orders",
                 kind="activity") is None


def test_task_queues_beyond_the_limit_are_summed_into_the_overflow_series() -> None:
    metrics = Metrics()
    queues = [QueueSample(namespace="shop", task_queue=f"q{i}", kind="workflow", backlog=1,
                          pollers=0) for i in range(TASK_QUEUES_MAX + 5)]
    metrics.sample(Source(_map(), queues))
    labelled = {s.labels["task_queue"] for m in metrics.registry.collect()
                if m.name == "raftflow_task_queue_backlog" for s in m.samples}
    assert len(labelled) == TASK_QUEUES_MAX + 1
    assert metrics.registry.get_sample_value("raftflow_task_queue_backlog", {
        "namespace": "shop", "task_queue": OVERFLOW_LABEL, "kind": "workflow"}) == 5


def test_a_request_whose_client_left_is_counted_as_499_not_as_a_server_error() -> None:
    metrics = Metrics()

    async def left(request: web.Request) -> web.StreamResponse:
        raise asyncio.CancelledError  # what aiohttp does to a handler whose client is gone

    async def main() -> None:
        app = web.Application(middlewares=[metrics_middleware(metrics)])
        app.router.add_post("/poll", left)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            with contextlib.suppress(aiohttp.ClientError):
                await client.post("/poll")

    asyncio.run(main())
    count = "raftflow_http_request_duration_seconds_count"
    labels = {"route": "/poll", "method": "POST"}
    assert metrics.registry.get_sample_value(count, {**labels, "status": "499"}) == 1
    assert metrics.registry.get_sample_value(count, {**labels, "status": "500"}) is None
