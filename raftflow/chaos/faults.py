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

Membership kinds (`join`, `drain`, `remove`, `replace`) change who is in the cluster. Whether
one is feasible depends on the cluster when it comes up (a drain needs more than ACTIVE_MIN
active nodes), so the schedule names only the kind and a node index, and `membership_steps`
decides at injection time, from the cluster's state, what the fault does (maybe a join
first, maybe nothing): a pure function, so `spare_slots_needed` can replay the schedule with
it and the harness can pre-plan the spare node slots the run will use.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

MEMBERSHIP_KINDS = ("join", "drain", "remove", "replace")
FAULT_KINDS = ("kill", "pause", "partition", "latency", "loss", "restart-all", "clock-skew",
               "leader", *MEMBERSHIP_KINDS)
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
    # Membership faults complete before their hold starts (a join waits for the node to be
    # active, a drain for it to hold nothing, every move to finish); the hold is the quiet
    # time after, in which recovery is still watched.
    "join": (1.0, 4.0),
    "drain": (1.0, 4.0),
    "remove": (1.0, 4.0),
    "replace": (1.0, 4.0),
}
QUIET_S = (2.0, 5.0)  # gap after each fault is healed, before the next one
PARTITION_VARIANTS = ("isolate", "split", "one-way")
LEADER_ACTIONS = ("kill", "pause", "isolate")
LATENCY_MS = (20, 150)  # one-way added delay on each affected link
LOSS_PERCENT = (5, 30)  # share of forwarded chunks that stall like a retransmission
SKEW_MS = (1_000, 30_000)  # size of the step, forward or backward
# Active nodes never fall below this: the replication factor is min(3, active), and the node
# refuses a drain that leaves fewer active nodes than that, so a drain needs one more.
ACTIVE_MIN = 3
# Running members (active and drained) at most: each is a Python process on the CI machine's
# two cores, next to the proxy and the workload.
MEMBERS_MAX = 5
# Spare node slots a run pre-plans at most (every slot costs 2 proxied links to every other
# slot); once they are used up, membership faults that need a fresh node are skipped.
SPARE_SLOTS_MAX = 16
# Steps of a membership fault, in order (see `membership_steps`).
STEP_JOIN, STEP_DRAIN, STEP_REMOVE = "join", "drain", "remove"
STEP_KILL, STEP_FORCE_REMOVE = "kill-for-good", "force-remove"


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
    if node_count < ACTIVE_MIN and any(k != "latency" and k != "loss" for k in kinds):
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """What a membership fault needs to know about the cluster when it comes up.

    active: members in state active; drained: members that were drained and still run
    (they hold nothing); spares_left: pre-planned node slots not used yet."""

    active: int
    drained: int
    spares_left: int


def membership_steps(kind: str, cluster: Membership) -> tuple[str, ...]:
    """The steps of membership fault `kind` on `cluster`, in order; () when it is skipped.

    join:    a spare node joins (and becomes active).
    drain:   an active node is drained (leaders, then replicas, leave it); it stays a member,
             holding nothing, until a `remove` or the next `drain` removes it (at most one
             drained node at a time). A join comes first when the drain would leave fewer
             than ACTIVE_MIN active nodes; with no spare left, the drain is skipped.
    remove:  the drained node is removed (plain remove) and its process exits 0; with none,
             a node is drained first (a join first if needed), then removed.
    replace: an active node is killed for good (SIGKILL), a fresh node joins, the dead one is
             removed with force; without a spare, only when the others stay >= ACTIVE_MIN.
    """
    assert cluster.active >= ACTIVE_MIN, cluster  # the harness keeps a working majority
    assert cluster.spares_left >= 0 and 0 <= cluster.drained <= 1, cluster
    if kind == "join":
        return (STEP_JOIN,) if _can_join(cluster) else ()
    if kind == "replace":
        if _can_join(cluster):
            return (STEP_KILL, STEP_JOIN, STEP_FORCE_REMOVE)
        return (STEP_KILL, STEP_FORCE_REMOVE) if cluster.active > ACTIVE_MIN else ()
    assert kind in ("drain", "remove"), kind
    steps: list[str] = []
    if cluster.drained:
        if kind == "remove":
            return (STEP_REMOVE,)
        steps.append(STEP_REMOVE)  # the drain before is finished first: one drained node
    state = after_steps(cluster, steps)
    if state.active <= ACTIVE_MIN:
        if not _can_join(state):
            return tuple(steps)
        steps.append(STEP_JOIN)
    steps.append(STEP_DRAIN)
    if kind == "remove":
        steps.append(STEP_REMOVE)
    return tuple(steps)


def _can_join(cluster: Membership) -> bool:
    return cluster.spares_left > 0 and cluster.active + cluster.drained < MEMBERS_MAX


def after_steps(cluster: Membership, steps: Sequence[str]) -> Membership:
    """The cluster once `steps` succeeded (the planner's model of the nemesis)."""
    active, drained, spares_left = cluster.active, cluster.drained, cluster.spares_left
    for step in steps:
        if step == STEP_JOIN:
            active, spares_left = active + 1, spares_left - 1
        elif step == STEP_DRAIN:
            active, drained = active - 1, drained + 1
        elif step == STEP_REMOVE:
            drained -= 1
        elif step == STEP_KILL:
            active -= 1
        else:
            assert step == STEP_FORCE_REMOVE, step
    after = Membership(active=active, drained=drained, spares_left=spares_left)
    assert after.active >= ACTIVE_MIN and after.drained >= 0, (cluster, steps, after)
    return after


def spare_slots_needed(plan: Sequence[PlannedFault], *, node_count: int) -> int:
    """Spare node slots the schedule uses if every membership fault succeeds (at most
    SPARE_SLOTS_MAX): the harness starts with that many, so a fault that fails leaves a
    slot unused rather than a later fault without one."""
    cluster = Membership(active=node_count, drained=0, spares_left=SPARE_SLOTS_MAX)
    for fault in plan:
        if fault.kind in MEMBERSHIP_KINDS:
            cluster = after_steps(cluster, membership_steps(fault.kind, cluster))
    return SPARE_SLOTS_MAX - cluster.spares_left
