"""Goal: `raftflow bench retention` runs end to end, reports every stage, and derives its
per-stage numbers (growth, bytes per workflow, ratios) correctly.

Method: (1) run the CLI as a subprocess with tiny stages (300 and 600 retained, probes of 100
workflows); it launches a 3-node cluster, fills, restarts it at every stage, probes and tears it
down. We check the JSON shape, that the retained counts are exact (fills top up to each stage,
probes count too), that memory, data and restart times are positive, the restarts graceful and
every workflow completed, and that the human table has one row per stage. Speed and memory
are not asserted (docs/benchmarks.md). (2) Feed hand-made stages to the report functions and
compare the derived fields with numbers worked out by hand.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys

import pytest

from raftflow.bench.retention_node import MIB, NodeMemory, RestartTiming
from raftflow.bench.retention_options import parse_stages
from raftflow.bench.retention_report import (
    FillResult,
    NodeSample,
    ProbeResult,
    Stage,
    goals_json,
    stages_json,
    table,
)
from raftflow.cli import build_parser as build_cli_parser

RUN_TIMEOUT_S = 100.0  # a run takes ~35 s on an idle 2-core machine
STOP_GRACE_S = 30.0  # SIGTERM makes the benchmark stop its cluster; give it time to
PROBE_WORKFLOWS = 100


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the benchmark tears its cluster down on SIGTERM
        stdout, stderr = process.communicate(timeout=STOP_GRACE_S)
        raise AssertionError(f"benchmark took over {RUN_TIMEOUT_S} s\n{stderr[-3000:]}") from None
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


@pytest.mark.timeout(RUN_TIMEOUT_S + STOP_GRACE_S + 10)
@pytest.mark.xdist_group("heavy")  # loads the machine: run with the other heavy tests
def test_bench_retention_reports_every_stage_at_exact_retained_counts() -> None:
    done = _run([sys.executable, "-m", "raftflow", "bench", "retention", "--stages", "300,600",
                 "--probe-workflows", str(PROBE_WORKFLOWS), "--fill-concurrency", "16",
                 "--json"])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {"machine", "command", "options", "stages", "goals"}
    assert report["machine"]["nproc"] >= 1 and report["machine"]["memory_mb"] > 0
    assert "bench retention --stages 300,600" in report["command"]
    stages = report["stages"]
    assert [s["target"] for s in stages] == [0, 300, 600]
    assert [s["retained"] for s in stages] == [0, 300, 600]
    assert [s["retained_after_probe"] for s in stages] == [100, 400, 700]
    assert [s["fill"]["completed"] for s in stages] == [0, 200, 200]
    for stage in stages:
        assert stage["fill"]["failed"] == 0 and stage["probe"]["failed"] == 0
        assert stage["probe"]["completed"] == PROBE_WORKFLOWS
        assert stage["probe"]["workflows_per_sec"] > 0
        assert 0 < stage["probe"]["p50_ms"] <= stage["probe"]["p99_ms"]
        restart = stage["restart"]
        assert restart["graceful"] and restart["stop_s"] > 0
        assert restart["ready_s"] > 0, restart
        assert all(0 < s <= restart["ready_s"] * 10 for s in restart["healthz_s"].values())
        assert [n["id"] for n in stage["nodes"]] == ["node-1", "node-2", "node-3"]
        for node in stage["nodes"]:
            assert 0 < node["rss_anon_mb"] <= node["rss_mb"] <= node["peak_rss_mb"], node
            assert node["restarted"]["rss_mb"] > 0 and node["data_mb"] > 0
            assert node["data_mb"] == pytest.approx(sum(node["data_parts_mb"].values()), abs=0.1)
    assert all(n["rss_growth_kb_per_workflow"] is None for n in stages[0]["nodes"])
    assert all(isinstance(n["rss_growth_kb_per_workflow"], float) for n in stages[2]["nodes"])
    assert stages[1]["restart"]["ratio_to_first_non_empty"] == 1.0
    assert stages[0]["probe"]["vs_empty_pct"] == 0.0
    assert report["goals"]["retained"] == 600
    rows = [line for line in done.stderr.splitlines() if line.split("|")[0].strip().isdigit()]
    assert [int(line.split("|")[0]) for line in rows] == [0, 300, 600], done.stderr[-3000:]


def _memory(rss_mb: float) -> NodeMemory:
    rss = int(rss_mb * MIB)
    return NodeMemory(rss_bytes=rss, rss_anon_bytes=rss // 2, peak_rss_bytes=rss)


def _stage(retained: int, *, rss_mb: float, data_bytes: int, ready_s: float,
           per_sec: float) -> Stage:
    node = NodeSample(node_id="node-1", memory=_memory(rss_mb), memory_restarted=_memory(rss_mb),
                      data_parts_bytes={"raft": data_bytes // 2, "stores": data_bytes // 2})
    restart = RestartTiming(stop_s=1.0, exit_codes={"node-1": 0}, ready_s=ready_s,
                            healthz_s={"node-1": ready_s / 2})
    probe = ProbeResult(summary={"workflows": 10, "completed": 10, "failed": 0,
                                 "workflows_per_sec": per_sec, "p50_ms": 1.0, "p99_ms": 2.0},
                        cost={"cpu_ms_per_workflow": {"client": 1.0, "nodes": 3.0}})
    return Stage(target=retained, retained=retained,
                 fill=FillResult(requested=retained, completed=retained, failed=0, seconds=1.0),
                 nodes=(node,), restart=restart, probe=probe)


def test_report_derives_growth_bytes_per_workflow_and_ratios() -> None:
    stages = [_stage(0, rss_mb=50, data_bytes=1_000_000, ready_s=1.5, per_sec=200),
              _stage(1024, rss_mb=51, data_bytes=3_048_000, ready_s=2.0, per_sec=190),
              _stage(3072, rss_mb=54, data_bytes=7_144_000, ready_s=3.2, per_sec=170)]
    rows = json.loads(json.dumps(stages_json(stages)))  # as the CLI prints them
    nodes = [row["nodes"][0] for row in rows]
    # 1 MiB over 1024 workflows is 1 KiB each; 3 MiB over the next 2048 is 1.5 KiB each.
    assert [n["rss_growth_kb_per_workflow"] for n in nodes] == [None, 1.0, 1.5]
    # Bytes over the empty stage's dir, per retained workflow: 2,048,000/1024, 6,144,000/3072.
    assert [n["data_bytes_per_retained"] for n in nodes] == [None, 2000, 2000]
    ratios = [row["restart"]["ratio_to_first_non_empty"] for row in rows]
    assert ratios == [0.75, 1.0, 1.6]
    vs_empty = [row["probe"]["vs_empty_pct"] for row in rows]
    assert vs_empty == [0.0, -5.0, -15.0]
    goals = goals_json(rows)
    assert goals["contract_between"] == [1024, 3072]
    assert goals["rss_growth_kb_per_workflow<=2"] is True
    assert goals["restart_ratio<=1.5"] is False
    assert goals["probe_vs_empty_pct>=-10"] is False and goals["rss_mb_max<=300"] is True
    assert len(table(rows).splitlines()) == 1 + len(stages)


@pytest.mark.parametrize("text", ["0,100", "200,100", "100,100", "x", ""])
def test_stages_must_be_positive_and_increasing(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_stages(text)


def test_stages_accept_thousands() -> None:
    assert parse_stages("20k,80000,200K") == (20_000, 80_000, 200_000)


def test_the_raftflow_command_routes_bench_retention() -> None:
    args = build_cli_parser().parse_args(
        ["bench", "retention", "--stages", "300,600", "--probe-workflows", "100", "--json"])
    assert args.server == ("raftflow.bench.retention", "run_cli")
    assert (args.stages, args.probe_workflows, args.fill_concurrency, args.shards, args.json) \
        == ((300, 600), 100, 64, 16, True)
