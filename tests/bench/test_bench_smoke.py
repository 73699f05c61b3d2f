"""Goal: the workflow-start benchmark runs end to end and cleans up after itself.

Method: run `python -m raftflow.bench.starts` as a subprocess against the 3-node cluster it
launches itself, for ~2 s at concurrency 4, and read its `--json` line. We check that starts
were acknowledged and no start failed after its retries, and that the node processes it
reported are gone afterwards. Speed is not asserted: numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

BENCH_TIMEOUT_S = 28.0
STOP_GRACE_S = 20.0  # SIGTERM makes the benchmark stop its cluster; give it time to


def _run_benchmark() -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "raftflow.bench.starts", "--nodes", "3",
               "--concurrency", "4", "--duration", "2", "--warmup", "0.5", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        stdout, stderr = process.communicate(timeout=BENCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the benchmark tears its cluster down on SIGTERM
        stdout, stderr = process.communicate(timeout=STOP_GRACE_S)
        raise AssertionError(f"benchmark took over {BENCH_TIMEOUT_S} s\n{stderr}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_benchmark_acknowledges_starts_and_stops_its_cluster() -> None:
    started_s = time.monotonic()
    finished = _run_benchmark()

    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    assert result["starts"] > 0, finished.stderr
    assert result["errors"] == {}, finished.stderr
    assert result["starts_per_sec"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert len(result["nodes"]) == 3
    pids = [node["pid"] for node in result["nodes"]]
    assert all(isinstance(pid, int) for pid in pids), result["nodes"]
    assert not [pid for pid in pids if _alive(pid) and pid != os.getpid()], "nodes left running"
    assert time.monotonic() - started_s < 30.0
