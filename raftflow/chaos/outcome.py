"""What a chaos run produced, for its report: faults as they happened, load over time, verdicts.

Built by the runner from its own records and the checker's violations; rendered by `report.py`
into `report.html` and `report.json`. Plain frozen values, so a test can build one by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from raftflow.chaos.observations import Violation


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultWindow:
    """One injected fault. `start_s`/`end_s` are seconds since the run began; `end_s` is None
    for an instantaneous fault whose repair is part of it (none today) or one never healed.

    `recovered_after_s` is the time from `start_s` until cluster status, asked of a node not
    under fault, showed every shard led by a node not under fault (None if it never did
    before the fault ended... or the run ended)."""

    kind: str  # one of faults.FAULT_KINDS
    target: str  # e.g. "node-2", "node-1|node-2,node-3" (a split), "node-3->node-1"
    start_s: float
    end_s: float | None
    detail: str  # human words: "SIGKILL, restarted after 4.2 s", "delay 80±40 ms", ...
    recovered_after_s: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeBucket:
    """One second (or `width_s`) of load: acknowledged starts, completed workflows, failed
    client calls (each retry that failed counts), and end-to-end latency of the workflows that
    completed in it (None when none did)."""

    start_s: float
    width_s: float
    starts: int
    completions: int
    errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InvariantRow:
    """One line of the invariant table: the checker's name, what it promises, how many
    violations it found."""

    name: str
    description: str
    violations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosOutcome:
    seed: int
    duration_s: float  # the fault phase as requested; the run also warms up and settles
    nodes: int
    fault_kinds: tuple[str, ...]  # as requested
    command: str  # the command line that reproduces the run
    faults: tuple[FaultWindow, ...]
    buckets: tuple[TimeBucket, ...]
    invariants: tuple[InvariantRow, ...]
    violations: tuple[Violation, ...]
    workflows_started: int
    workflows_completed: int
    recovery_p50_s: float | None
    recovery_p99_s: float | None

    def summary_json(self) -> dict[str, object]:
        """The `--json` last line: exactly the keys the CLI contract names."""
        return {
            "seed": self.seed, "duration_s": self.duration_s,
            "faults_injected": len(self.faults),
            "workflows_started": self.workflows_started,
            "workflows_completed": self.workflows_completed,
            "violations": [v.to_json() for v in self.violations],
        }
