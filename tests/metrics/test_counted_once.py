"""Goal: a workflow fact is counted once per cluster, by the replica of the node that proposed
the entry, whatever the number of replicas; a run's close is counted with its namespace and
outcome; a timer's firing delay is measured from when it was due; label values beyond their
limit fall into the overflow series.

Method: two replicas of one shard over the simulated log of tests/actors (sim_log.py), each
with its own `Metrics` as the actor observer, as in two node processes. Commands are proposed
on the leader, committed and applied on both replicas; then leadership moves and the new leader
proposes. Samples are read back from each node's registry.
"""

from __future__ import annotations

import asyncio

from raftflow.api.metric_labels import OVERFLOW_LABEL, WORKFLOW_TYPES_MAX
from raftflow.api.metrics import Metrics
from raftflow.protocol.commands import StartWorkflow, TerminateWorkflow
from raftflow.shards.actor import ShardMachine, new_shard_actor
from tests.actors.sim_log import SimGroup, SimLog
from tests.actors.test_shard_actor import SHARD, FakeClock, RecordingSink, _until

STARTED = "raftflow_workflows_started_total"
CLOSED = "raftflow_workflows_closed_total"


class Node:
    def __init__(self, group: SimGroup, node_id: str, clock: list[int]) -> None:
        self.metrics = Metrics()
        self.actor = new_shard_actor(shard=SHARD, node_id=node_id, incarnation=1,
                                     sink=RecordingSink(), clock=FakeClock(clock),
                                     observer=self.metrics)
        self.log: SimLog = group.replica(node_id, self.actor)
        self.actor.bind(self.log)

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def _start(workflow_id: str, namespace: str = "default", workflow_type: str = "Order",
           **fields: object) -> StartWorkflow:
    return StartWorkflow(now_ms=1_000, namespace=namespace, workflow_id=workflow_id,
                         workflow_type=workflow_type, task_queue="q",
                         request_id=f"req-{workflow_id}", run_id=f"run-{workflow_id}",
                         **fields)  # type: ignore[arg-type]


async def _lead(group: SimGroup, node: Node) -> None:
    group.set_leader(node.log.node_id)
    await _until(lambda: bool(node.log.proposed))
    group.commit()
    node.log.sync()
    assert node.actor.is_ready_leader()


async def _run(group: SimGroup, node: Node, *commands: object) -> None:
    futures = [node.actor.submit(c) for c in commands]  # type: ignore[arg-type]
    await _until(lambda: bool(node.log.proposed))
    group.commit()
    node.log.sync()
    for future in futures:
        await future


def test_starts_and_closes_are_counted_once_by_the_proposer() -> None:
    async def main() -> None:
        clock = [1_000]
        group = SimGroup(SHARD)
        a, b = Node(group, "a", clock), Node(group, "b", clock)
        await _lead(group, a)
        await _run(group, a, _start("wf1"), _start("wf2", namespace="billing"))
        await _run(group, a, TerminateWorkflow(now_ms=1_100, namespace="default",
                                               workflow_id="wf1", request_id="t1"))
        assert len(b.actor.state.executions) == 1  # b applied everything too ...
        assert a.sample(STARTED, namespace="default", workflow_type="Order") == 1
        assert a.sample(STARTED, namespace="billing", workflow_type="Order") == 1
        assert a.sample(CLOSED, namespace="default", outcome="terminated") == 1
        assert b.sample(STARTED, namespace="default", workflow_type="Order") == 0  # ... once
        assert b.sample(CLOSED, namespace="default", outcome="terminated") == 0

        await _lead(group, b)  # the new leader counts what it proposes, a counts no more
        await _run(group, b, TerminateWorkflow(now_ms=1_200, namespace="billing",
                                               workflow_id="wf2", request_id="t2"))
        assert b.sample(CLOSED, namespace="billing", outcome="terminated") == 1
        assert a.sample(CLOSED, namespace="billing", outcome="terminated") == 0
        total = sum(n.sample(CLOSED, namespace=ns, outcome="terminated")
                    for n in (a, b) for ns in ("default", "billing"))
        assert total == 2

    asyncio.run(main())


def test_a_timed_out_run_is_counted_by_the_leader_that_fired_its_timer() -> None:
    async def main() -> None:
        clock = [1_000]
        group = SimGroup(SHARD)
        a, b = Node(group, "a", clock), Node(group, "b", clock)
        await _lead(group, a)
        await _run(group, a, _start("wf", run_timeout_ms=500))
        a.log.proposed.clear()
        clock[0] = 1_750  # the run timeout was due at 1_500: the wake-up runs 250 ms late
        await _until(lambda: bool(a.log.proposed))  # the leader's FireTimers
        group.commit()
        a.log.sync()
        await _until(lambda: a.sample("raftflow_timer_fire_delay_seconds_count",
                                      shard=str(SHARD)) == 1)
        assert a.sample(CLOSED, namespace="default", outcome="timed_out") == 1
        assert b.sample(CLOSED, namespace="default", outcome="timed_out") == 0
        assert a.sample("raftflow_timer_fire_delay_seconds_sum", shard=str(SHARD)) >= 0.25
        assert b.sample("raftflow_timer_fire_delay_seconds_count", shard=str(SHARD)) == 0

    asyncio.run(main())


def test_workflow_types_beyond_the_limit_are_counted_in_the_overflow_series() -> None:
    metrics = Metrics()
    machine = ShardMachine(SHARD)
    commands = [_start(f"wf{i}", workflow_type=f"T{i}") for i in range(WORKFLOW_TYPES_MAX + 3)]
    outputs = [machine.apply(c) for c in commands]
    metrics.record_applied(SHARD, commands, outputs)
    seen = {s.labels["workflow_type"] for metric in metrics.registry.collect()
            if metric.name == "raftflow_workflows_started" for s in metric.samples
            if s.name == STARTED}
    assert len(seen) == WORKFLOW_TYPES_MAX + 1 and OVERFLOW_LABEL in seen
    assert metrics.registry.get_sample_value(
        STARTED, {"namespace": "default", "workflow_type": OVERFLOW_LABEL}) == 3
    assert sum(metrics.registry.get_sample_value(
        STARTED, {"namespace": "default", "workflow_type": t}) or 0 for t in seen) == (
        WORKFLOW_TYPES_MAX + 3)


class _BrokenMetrics(Metrics):
    def record_applied(self, shard: int, commands: object, outputs: object) -> None:
        raise RuntimeError("a bug in counting")


class _BrokenNode(Node):
    def __init__(self, group: SimGroup, node_id: str, clock: list[int]) -> None:
        self.metrics = _BrokenMetrics()
        self.actor = new_shard_actor(shard=SHARD, node_id=node_id, incarnation=1,
                                     sink=RecordingSink(), clock=FakeClock(clock),
                                     observer=self.metrics)
        self.log = group.replica(node_id, self.actor)
        self.actor.bind(self.log)


def test_a_metrics_bug_never_stops_the_replica_applying_or_answering() -> None:
    """Counting runs inside apply on the proposer: if it raised, the entry is still applied
    and its callers still answered (the failure is logged)."""
    async def main() -> None:
        group = SimGroup(SHARD)
        a = _BrokenNode(group, "a", [1_000])
        await _lead(group, a)
        await asyncio.wait_for(_run(group, a, _start("wf1")), 10)
        assert "run-wf1" in a.actor.state.executions

    asyncio.run(main())
