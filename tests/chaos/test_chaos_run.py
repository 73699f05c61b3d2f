"""A short chaos run, end to end, as CI runs it on every change (the 10-minute run is
`make chaos`, recorded in docs/chaos.md).

Goal: `raftflow chaos run` starts its own cluster, injects the seed's faults under load, heals,
checks every invariant and writes its report; a healthy engine gives exit 0 with no
violations, every acknowledged workflow completed, and the JSON summary of the CLI contract.
Method: the real command in a subprocess with a temp report directory; it tears its own
cluster down (checked: no node process of the run is left).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Loads the machine: CI runs it with the other heavy tests on one pytest-xdist worker, one at
# a time, while the light tests run beside them (Makefile `test`: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("heavy")

SUMMARY_KEYS = {"seed", "duration_s", "faults_injected", "workflows_started",
                "workflows_completed", "violations"}
# Kinds whose schedule for this seed fits in 45 s: node faults, a partition and link faults.
SHORT_RUN_S = 45
SEED = 11
SUBPROCESS_TIMEOUT_S = 300


# The run's own budget (45 s of faults, up to 90 s of settling, start-up and checking) is the
# subprocess timeout below; pytest's default 120 s would cut a slow but healthy run short and
# leave its nodes behind.
@pytest.mark.timeout(SUBPROCESS_TIMEOUT_S + 30)
def test_a_short_run_with_faults_finds_no_violation_and_reports(tmp_path: Path) -> None:
    report = tmp_path / "report"
    command = [sys.executable, "-m", "raftflow", "chaos", "run", "--nodes", "3",
               "--duration", str(SHORT_RUN_S), "--faults", "all", "--seed", str(SEED),
               "--report", str(report), "--json", "--settle", "90"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(summary) == SUMMARY_KEYS
    assert summary["seed"] == SEED and summary["duration_s"] == SHORT_RUN_S
    assert summary["violations"] == []
    assert summary["faults_injected"] >= 3
    assert summary["workflows_started"] >= 20
    assert summary["workflows_completed"] == summary["workflows_started"]
    data = json.loads((report / "report.json").read_text())
    assert data["summary"] == summary
    assert len(data["faults"]) == summary["faults_injected"]
    assert all(row["violations"] == 0 for row in data["invariants"])
    html = (report / "report.html").read_text()
    assert "<svg" in html and "fault-band" in html
    # The run removed its temporary directory (nothing was kept: no violation).
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("raftflow-chaos-")]
