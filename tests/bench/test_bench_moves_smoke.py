"""Goal: `raftflow bench moves` (drain part) runs end to end and cleans up after itself.

Method: run the CLI as a subprocess with a 3 s baseline at concurrency 4; it launches a 3-node
cluster, joins a 4th node with `raftflow node --join`, times the join's moves, drains node-1
under the steady load and tears everything down. We check the JSON shape, that the moves were
seen and finished, that the drain command succeeded and that no client call failed. Speed is
not asserted (docs/benchmarks.md). The moves part shares the join and timing code; its fill is
the workload of `raftflow bench` (test_bench_workflows_smoke.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Loads the machine: CI runs it with the other heavy tests on one pytest-xdist worker, one at
# a time, while the light tests run beside them (Makefile `test`: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("heavy")

RUN_TIMEOUT_S = 150.0


@pytest.mark.timeout(200)
def test_bench_moves_drain_part_runs_and_finishes_every_move() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "raftflow", "bench", "moves", "--only", "drain", "--baseline",
         "3", "--warmup", "1", "--concurrency", "4", "--moves-timeout", "100", "--json"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"drain"}
    drain = result["drain"]
    report = {k: drain[k] for k in ("errors_total", "drain_command", "baseline", "drain")}
    assert drain["errors_total"] == 0, (report, done.stderr[-3000:])
    assert drain["drain_command"]["returncode"] == 0, (report, done.stderr[-3000:])
    for part in ("join_moves", "drain_moves"):
        moves = drain[part]
        assert moves["shard_moves"] > 0 and moves["unfinished"] == 0, (
            part, moves, {k: drain[k] for k in drain if not k.endswith("_moves")},
            done.stderr[-3000:])
    for window in (drain["baseline"], drain["drain"]):
        assert window["completed"] > 0 and window["errors"] == 0
        assert 0 < window["p50_ms"] <= window["p99_ms"] <= window["max_ms"]
