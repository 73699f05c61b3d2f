"""Issue 12's contract, run from outside exactly as an operator would, under an SDK workload.

Goal: on a `raftflow dev --nodes 3` cluster (16 shards) under a continuous workload of workflows
with activities, timers and signals (the chaos workload):
- `raftflow node --join` of node-4: within 120 s node-4 is active and every node holds 12 ± 1
  replicas;
- `raftflow cluster drain --node node-1 --wait` returns 0 within 180 s; node-1 then holds no
  replica and leads nothing, and every shard has 3 replicas;
- `raftflow cluster remove --node node-1` returns 0, node-1 leaves the status and its process
  exits 0;
- kill -9 node-2, join node-5, `raftflow cluster remove --node node-2 --force`: within 180 s
  every shard has 3 replicas, all on live nodes;
- every workflow started completes with the right result, no client call fails (the SDK's own
  retries are allowed), nothing acknowledged is lost: the chaos checker's invariants hold.
Method: real processes (`raftflow dev`, `raftflow node --join`, the CLI) on free loopback ports
and a temp dir; the chaos harness's workload, worker and checker in this process. Every process
is stopped by its PID at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raftflow.chaos import checker
from raftflow.cluster.launcher import free_port_block
from tests.integration.chaos_load import run_under_load

# Loads the machine: CI runs it with the other heavy tests on one pytest-xdist worker, one at
# a time, while the light tests run beside them (Makefile `test`: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("heavy")

SHARDS = 16
SESSIONS = 6
JOIN_WITHIN_S = 120.0
DRAIN_WITHIN_S = 180.0
REPLACE_WITHIN_S = 180.0


class Processes:
    """Every process this test starts, stopped by PID whatever happens."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.out", "ab")  # noqa: SIM115 (owned by the child)
        process = subprocess.Popen([sys.executable, "-m", "raftflow", *args], stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started[name] = process
        return process

    def output(self, name: str) -> str:
        return (self.root / f"{name}.out").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in self.started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def _cli(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftflow", *args], capture_output=True,
                          text=True, timeout=timeout_s)


def _status(address: str) -> dict[str, Any]:
    done = _cli("cluster", "status", "--json", "--address", address)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _until(what: str, within_s: float, check: Callable[[], bool]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        try:
            if check():
                return time.monotonic() - started
        except AssertionError:
            pass
        time.sleep(1.0)
    raise AssertionError(f"not within {within_s:.0f} s: {what}")


def _every_shard_has_3_live_replicas(status: dict[str, Any]) -> bool:
    live = {n["id"] for n in status["nodes"] if n["alive"]}
    return all(len(s["replicas"]) == 3 and set(s["replicas"]) <= live and s["leader"]
               for s in status["shards"]) and not status["moves"]


@pytest.mark.timeout(900)
def test_join_drain_remove_and_replace_under_load(tmp_path: Path, processes: Processes) -> None:
    port = free_port_block(5, random.Random())
    addresses = [f"http://127.0.0.1:{port + i}" for i in range(5)]
    dev = processes.start("dev", ["dev", "--nodes", "3", "--shards", str(SHARDS),
                                  "--http-port", str(port), "--data-dir", str(tmp_path / "dev")])
    _until("the dev cluster is ready", 60, lambda: "ready" in processes.output("dev"))
    secret = json.loads((tmp_path / "dev" / "dev-cluster.json").read_text())["secret"]

    def join(index: int) -> None:
        node_id = f"node-{index + 1}"
        processes.start(node_id, [
            "node", "--id", node_id, "--data-dir", str(tmp_path / node_id),
            "--join", addresses[0 if index == 3 else 2], "--join", addresses[2],
            "--secret", secret, "--http-address", f"127.0.0.1:{port + index}",
            "--raft-address", f"127.0.0.1:{port + 1000 + index}"])

    steps: dict[str, float] = {}

    def operate() -> None:
        join(3)

        def node4_in() -> bool:
            status = _status(addresses[2])
            nodes = {n["id"]: n for n in status["nodes"]}
            return (nodes.get("node-4", {}).get("state") == "active"
                    and all(abs(n["replicas"] - 12) <= 1 for n in nodes.values()))

        steps["join node-4"] = _until("node-4 active, 12 ± 1 replicas each", JOIN_WITHIN_S,
                                      node4_in)
        started = time.monotonic()
        drained = _cli("cluster", "drain", "--node", "node-1", "--wait", "--address",
                       addresses[1], timeout_s=DRAIN_WITHIN_S)
        steps["drain node-1"] = time.monotonic() - started
        assert drained.returncode == 0, drained.stderr
        status = _status(addresses[1])
        node1 = next(n for n in status["nodes"] if n["id"] == "node-1")
        assert (node1["replicas"], node1["leaders"]) == (0, 0)
        assert all(len(s["replicas"]) == 3 and "node-1" not in s["replicas"]
                   for s in status["shards"])
        removed = _cli("cluster", "remove", "--node", "node-1", "--address", addresses[2])
        assert removed.returncode == 0, removed.stderr
        _until("node-1 leaves the status", 30,
               lambda: "node-1" not in {n["id"] for n in _status(addresses[2])["nodes"]})
        _until("node-1 exits 0", 30, lambda: re.search(
            r"node-1 \(pid \d+\) exited with 0;", processes.output("dev")) is not None)
        node2 = next(n for n in _status(addresses[2])["nodes"] if n["id"] == "node-2")
        os.kill(node2["pid"], signal.SIGKILL)
        join(4)
        started = time.monotonic()
        forced = _cli("cluster", "remove", "--node", "node-2", "--force", "--address",
                      addresses[2])
        assert forced.returncode == 0, forced.stderr
        _until("every shard has 3 replicas on live nodes", REPLACE_WITHIN_S,
               lambda: _every_shard_has_3_live_replicas(_status(addresses[2])))
        steps["replace node-2"] = time.monotonic() - started

    observations, client_errors = asyncio.run(run_under_load(
        addresses, tmp_path, seed=12, sessions=SESSIONS, deadline_s=900.0, operate=operate))
    print("contract steps (s):", {k: round(v, 1) for k, v in steps.items()},
          "workflows:", len(observations.starts))
    assert len(observations.starts) >= SESSIONS
    assert len(observations.client_results) == len(observations.starts)
    assert checker.check(observations) == ()
    assert client_errors == []
    assert dev.poll() is None  # the dev command itself kept running
