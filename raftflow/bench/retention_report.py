"""The numbers of one `raftflow bench retention` stage, and the report built from all of them.

A stage is measured at an exact retained count: memory and data dir after the fill settled,
then a restart, memory again, then the throughput probe (whose workflows the next stage counts
as retained). Everything derived across stages lives here, pure, so that it can be unit-tested:
RSS growth per retained workflow since the previous stage, data dir bytes per retained workflow
(over the empty stage's dir), restart time against the first non-empty stage, probe throughput
against the empty cluster, and the issue's goals and contract checked on whatever stages ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from raftflow.bench.retention_node import KIB, MIB, NodeMemory, RestartTiming

# Issue 13's goals ("Must show") and contract; reported, never asserted by tests.
# The goals are read on the last stage (200,000 retained by default).
RSS_GOAL_MB = 300.0  # per node
RESTART_GOAL_S = 5.0
PROBE_LOSS_GOAL_PCT = 10.0  # probe throughput at most this much below the empty cluster's
RSS_GROWTH_CONTRACT_KB = 2.0  # per retained workflow, between the first two non-empty stages
RESTART_RATIO_CONTRACT = 1.5  # second non-empty stage against the first

JsonObject = dict[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class FillResult:
    requested: int
    completed: int
    failed: int
    seconds: float

    def to_json(self) -> JsonObject:
        per_sec = self.completed / self.seconds if self.seconds > 0 else 0.0
        return {"requested": self.requested, "completed": self.completed,
                "failed": self.failed, "seconds": round(self.seconds, 1),
                "workflows_per_sec": round(per_sec, 1)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """`raftflow bench`'s summary and cost (bench/workflows.py `drive`), as it gave them."""

    summary: JsonObject
    cost: JsonObject

    @property
    def completed(self) -> int:
        value = self.summary["completed"]
        assert isinstance(value, int)
        return value

    @property
    def failed(self) -> int:
        value = self.summary["failed"]
        assert isinstance(value, int)
        return value

    @property
    def workflows_per_sec(self) -> float:
        value = self.summary["workflows_per_sec"]
        assert isinstance(value, int | float)
        return float(value)

    def to_json(self) -> JsonObject:
        cpu = self.cost.get("cpu_ms_per_workflow")
        nodes_cpu = cpu.get("nodes") if isinstance(cpu, dict) else None
        return {**self.summary, "node_cpu_ms_per_workflow": nodes_cpu,
                "machine_busy_fraction": self.cost.get("machine_busy_fraction"),
                "leader_changes": self.cost.get("leader_changes")}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSample:
    node_id: str
    memory: NodeMemory  # after the fill settled, before the restart
    memory_restarted: NodeMemory  # after the restart settled, before the probe
    data_parts_bytes: dict[str, int]

    @property
    def data_bytes(self) -> int:
        return sum(self.data_parts_bytes.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    target: int
    retained: int  # completed fills and probes before this stage's measurements
    fill: FillResult
    nodes: tuple[NodeSample, ...]
    restart: RestartTiming
    probe: ProbeResult

    @property
    def retained_after_probe(self) -> int:
        return self.retained + self.probe.completed


def _ratio(value: float, reference: float | None) -> float | None:
    return None if not reference else round(value / reference, 2)


def _first_non_empty(stages: list[Stage]) -> Stage | None:
    return next((s for s in stages if s.retained > 0), None)


def _node_json(node: NodeSample, previous: NodeSample | None, empty: NodeSample,
               retained: int, added: int) -> JsonObject:
    growth_kb = None
    if previous is not None and added > 0:
        growth_kb = round((node.memory.rss_bytes - previous.memory.rss_bytes) / added / KIB, 3)
    per_retained = None if retained == 0 else round(
        (node.data_bytes - empty.data_bytes) / retained)
    return {"id": node.node_id, **node.memory.to_json(),
            "restarted": node.memory_restarted.to_json(),
            "rss_growth_kb_per_workflow": growth_kb,
            "data_mb": round(node.data_bytes / MIB, 2),
            "data_parts_mb": {p: round(b / MIB, 2) for p, b in node.data_parts_bytes.items()},
            "data_bytes_per_retained": per_retained}


def stages_json(stages: list[Stage]) -> list[JsonObject]:
    """One object per stage, with the fields derived across stages."""
    assert stages and stages[0].retained == 0, "the first stage is the empty cluster"
    empty, first = stages[0], _first_non_empty(stages)
    rows: list[JsonObject] = []
    for index, stage in enumerate(stages):
        previous = stages[index - 1] if index else None
        added = stage.retained - previous.retained if previous else 0
        nodes = [_node_json(node, previous.nodes[i] if previous else None, empty.nodes[i],
                            stage.retained, added) for i, node in enumerate(stage.nodes)]
        vs_empty = (stage.probe.workflows_per_sec / empty.probe.workflows_per_sec - 1) * 100 \
            if empty.probe.workflows_per_sec > 0 else None
        rows.append({
            "target": stage.target, "retained": stage.retained,
            "retained_after_probe": stage.retained_after_probe, "fill": stage.fill.to_json(),
            "nodes": nodes,
            "restart": {**stage.restart.to_json(), "ratio_to_first_non_empty": _ratio(
                stage.restart.ready_s, first.restart.ready_s if first else None)},
            "probe": {**stage.probe.to_json(),
                      "vs_empty_pct": None if vs_empty is None else round(vs_empty, 1)}})
    return rows


def goals_json(rows: list[JsonObject]) -> JsonObject:
    """Issue 13's goals on the last stage and its contract on the first two non-empty ones
    (None where a number is missing, e.g. a stage that added no workflow)."""
    last = rows[-1]
    restart, probe = _object(last["restart"]), _object(last["probe"])
    goals: JsonObject = {
        "retained": last["retained"],
        f"rss_mb_max<={RSS_GOAL_MB:g}": _at_most(
            [n["rss_mb"] for n in _objects(last["nodes"])], RSS_GOAL_MB),
        f"restart_s<={RESTART_GOAL_S:g}": _at_most([restart["ready_s"]], RESTART_GOAL_S),
        f"probe_vs_empty_pct>=-{PROBE_LOSS_GOAL_PCT:g}": _at_most(
            [None if probe["vs_empty_pct"] is None else -_float(probe["vs_empty_pct"])],
            PROBE_LOSS_GOAL_PCT)}
    non_empty = [row for row in rows if _int(row["retained"]) > 0]
    if len(non_empty) >= 2:
        second = non_empty[1]
        goals["contract_between"] = [non_empty[0]["retained"], second["retained"]]
        goals[f"rss_growth_kb_per_workflow<={RSS_GROWTH_CONTRACT_KB:g}"] = _at_most(
            [n["rss_growth_kb_per_workflow"] for n in _objects(second["nodes"])],
            RSS_GROWTH_CONTRACT_KB)
        goals[f"restart_ratio<={RESTART_RATIO_CONTRACT:g}"] = _at_most(
            [_object(second["restart"])["ratio_to_first_non_empty"]], RESTART_RATIO_CONTRACT)
    return goals


def _at_most(values: list[object], bound: float) -> bool | None:
    if any(value is None for value in values):
        return None
    return max(_float(value) for value in values) <= bound


def _object(value: object) -> JsonObject:
    assert isinstance(value, dict)
    return value


def _objects(value: object) -> list[JsonObject]:
    assert isinstance(value, list)
    return [_object(item) for item in value]


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _float(value: object) -> float:
    assert isinstance(value, int | float), value
    return float(value)


def _per_node(nodes: list[JsonObject], key: str, spec: str) -> str:
    return "/".join("-" if n[key] is None else format(_float(n[key]), spec) for n in nodes)


TABLE_HEADER = ("retained", "RSS MB (n1/n2/n3)", "restarted RSS MB", "RSS KB/wf",
                "data MB", "B/wf", "restart s (x)", "probe wf/s (vs empty)")


def table(rows: list[JsonObject]) -> str:
    """One line per stage; per-node values are joined with "/" in node order."""
    lines = [" | ".join(TABLE_HEADER)]
    for row in rows:
        nodes = _objects(row["nodes"])
        restarted = [_object(n["restarted"]) for n in nodes]
        restart, probe = _object(row["restart"]), _object(row["probe"])
        ratio = restart["ratio_to_first_non_empty"]
        vs_empty = probe["vs_empty_pct"]
        lines.append(" | ".join((
            f"{row['retained']:>8}", _per_node(nodes, "rss_mb", ".0f"),
            _per_node(restarted, "rss_mb", ".0f"),
            _per_node(nodes, "rss_growth_kb_per_workflow", ".2f"),
            _per_node(nodes, "data_mb", ".1f"), _per_node(nodes, "data_bytes_per_retained", ".0f"),
            f"{_float(restart['ready_s']):.2f}" + ("" if ratio is None else f" ({ratio}x)"),
            f"{_float(probe['workflows_per_sec']):.1f}"
            + ("" if vs_empty is None else f" ({_float(vs_empty):+.1f}%)"))))
    return "\n".join(lines)
