"""Goal: `raftflow bench` (workflows of sequential activities) runs end to end.

Method: run the CLI as a subprocess; it launches its own 3-node cluster, runs 20 workflows of 3
activities at concurrency 4 with an in-process SDK worker, prints a JSON summary and tears the
cluster down. We check every workflow completed; speed is not asserted (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_workflows_completes_every_workflow() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "raftflow", "bench", "--workflows", "20", "--concurrency", "4",
         "--activities", "3", "--json"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["workflows"] == 20 and summary["completed"] == 20 and summary["failed"] == 0
    assert set(summary) == {"workflows", "completed", "failed", "seconds", "workflows_per_sec",
                            "p50_ms", "p99_ms"}
