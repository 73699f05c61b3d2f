"""A rolling restart under load costs clients no failed call (graceful stop on SIGTERM).

Goal: a node stopped with SIGTERM first hands every leadership it holds to another replica,
then exits 0; restarting the nodes one after another under a workload of workflows with
activities, timers and signals fails no client call (the SDK's own retries are allowed) and
loses nothing (the chaos checker's invariants hold).
Method: real node processes (tests/integration/conftest.py), the chaos workload, worker and
checker in this process; each node in turn gets SIGTERM, must have led no shard by the time it
exits, and is started again once the cluster reports every shard led.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from raftflow.chaos import checker
from raftflow.cluster.launcher import LocalCluster
from tests.integration.chaos_load import run_under_load

# Loads the machine: CI runs it with the other heavy tests on one pytest-xdist worker, one at
# a time, while the light tests run beside them (Makefile `test`: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("heavy")

SESSIONS = 6
STOP_WITHIN_S = 15.0


def _restart_each(cluster: LocalCluster, handed_off: list[str]) -> None:
    for node_id in cluster.node_ids:
        process = cluster.processes[node_id]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_WITHIN_S) == 0
        log = (cluster.log_dir / f"{node_id}.log").read_text(errors="replace")
        if "still leading" not in log.split("stopping")[-1]:
            handed_off.append(node_id)
        cluster.start_node(node_id)
        cluster.wait_ready()
        time.sleep(2.0)  # let the workload run on the full cluster between restarts


@pytest.mark.timeout(300)
def test_a_rolling_restart_under_load_fails_no_client_call(cluster: LocalCluster) -> None:
    handed_off: list[str] = []

    def operate() -> None:
        time.sleep(3.0)
        _restart_each(cluster, handed_off)

    observations, client_errors = asyncio.run(run_under_load(
        [cluster.address(n) for n in cluster.node_ids], cluster.log_dir, seed=7,
        sessions=SESSIONS, deadline_s=240.0, operate=operate))
    assert handed_off == cluster.node_ids  # every node handed its leaderships over first
    assert len(observations.starts) >= SESSIONS
    assert len(observations.client_results) == len(observations.starts)
    assert checker.check(observations) == ()
    assert client_errors == []
