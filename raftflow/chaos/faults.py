"""The fault schedule of a chaos run: drawn from the seed alone, so a seed names a schedule.

Pure: `plan_faults` takes the seed, the run's length, the fault kinds asked for and the node
count, and returns what to inject when. What happens *because* of a fault (which node led the
busiest shard at that moment, how long recovery took) depends on timing and is recorded by the
nemesis as it runs; the schedule itself does not.

Faults come one at a time, each followed by a quiet gap. Overlapping faults would make more
interesting schedules, but with three nodes two overlapping node faults leave no majority, and
a run that cannot make progress checks nothing; one fault at a time keeps every fault one
that a 3-node cluster must survive, and makes recovery times attributable to one fault.
Kinds are drawn in shuffled rounds (every kind once per round), so every requested kind is
injected as soon as the run is long enough for one round.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

FAULT_KINDS = ("kill", "pause", "partition", "latency", "loss", "restart-all", "clock-skew",
               "leader")
# How a fault holds: (shortest, longest) seconds between injection and healing.
HOLD_S = {
    "kill": (2.0, 8.0),  # the node is down this long, then restarted
    "pause": (1.0, 6.0),  # SIGSTOP .. SIGCONT; beyond the election timeout, so leaders move
    "partition": (3.0, 10.0),
    "latency": (4.0, 12.0),
    "loss": (4.0, 12.0),
    "restart-all": (0.5, 3.0),  # every node down this long
    "clock-skew": (4.0, 12.0),
    "leader": (2.0, 8.0),
}
QUIET_S = (2.0, 5.0)  # gap after each fault is healed, before the next one
PARTITION_VARIANTS = ("isolate", "split", "one-way")
LEADER_ACTIONS = ("kill", "pause", "isolate")
LATENCY_MS = (20, 150)  # one-way added delay on each affected link
LOSS_PERCENT = (5, 30)  # share of forwarded chunks that stall like a retransmission
SKEW_MS = (1_000, 30_000)  # size of the step, forward or backward


class FaultPlanError(ValueError):
    """The requested kinds or sizes cannot make a schedule."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedFault:
    """One fault to inject `start_s` seconds into the fault phase, healed `hold_s` later.

    `nodes` are 0-based node indexes the fault acts on (for a split, the minority side; for
    `leader`, none: the target is chosen at injection time). `variant` and `magnitude` refine
    it: partition variant; leader action; latency ms; loss percent; skew ms (signed)."""

    kind: str
    start_s: float
    hold_s: float
    nodes: tuple[int, ...]
    variant: str = ""
    magnitude: int = 0


def parse_kinds(text: str) -> tuple[str, ...]:
    """`--faults kill,pause` or `all`. Raises FaultPlanError naming an unknown kind."""
    if text.strip() == "all":
        return FAULT_KINDS
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise FaultPlanError(
            f"--faults: unknown fault kind(s) {unknown or text!r}; choose from "
            f"{', '.join(FAULT_KINDS)} or 'all'")
    return kinds


def plan_faults(*, seed: int, duration_s: float, kinds: Sequence[str],
                node_count: int) -> tuple[PlannedFault, ...]:
    """The schedule: faults whose hold ends within `duration_s`, in start order."""
    if node_count < 3 and any(k != "latency" and k != "loss" for k in kinds):
        raise FaultPlanError("node faults need at least 3 nodes (a majority must survive one)")
    rng = random.Random(seed)
    faults: list[PlannedFault] = []
    clock_s = rng.uniform(*QUIET_S)
    order: list[str] = []
    while True:
        if not order:
            order = list(kinds)
            rng.shuffle(order)
        kind = order.pop()
        fault = _draw(rng, kind, clock_s, node_count)
        if fault.start_s + fault.hold_s > duration_s:
            return tuple(faults)
        faults.append(fault)
        clock_s = fault.start_s + fault.hold_s + rng.uniform(*QUIET_S)


def _draw(rng: random.Random, kind: str, start_s: float, node_count: int) -> PlannedFault:
    hold_s = round(rng.uniform(*HOLD_S[kind]), 2)
    start_s = round(start_s, 2)
    node = rng.randrange(node_count)
    if kind == "partition":
        variant = rng.choice(PARTITION_VARIANTS)
        if variant == "split":
            minority = rng.sample(range(node_count), (node_count - 1) // 2)
            return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s,
                                nodes=tuple(sorted(minority)), variant=variant)
        return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s, nodes=(node,),
                            variant=variant)
    if kind == "latency":
        return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s, nodes=(node,),
                            magnitude=rng.randint(*LATENCY_MS))
    if kind == "loss":
        return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s, nodes=(node,),
                            magnitude=rng.randint(*LOSS_PERCENT))
    if kind == "clock-skew":
        sign = rng.choice((-1, 1))
        return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s, nodes=(node,),
                            magnitude=sign * rng.randint(*SKEW_MS))
    if kind == "leader":
        return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s, nodes=(),
                            variant=rng.choice(LEADER_ACTIONS))
    if kind == "restart-all":
        return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s,
                            nodes=tuple(range(node_count)))
    return PlannedFault(kind=kind, start_s=start_s, hold_s=hold_s, nodes=(node,))
