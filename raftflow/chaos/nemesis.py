"""The nemesis: injects the planned faults into the running cluster and heals them.

It follows `faults.plan_faults` one fault at a time. For each fault it records what was done
to which node (`FaultWindow`) and how long the cluster took to recover: from injection until
the sampler sees every shard led by a node outside the fault (`Sampler.all_led`). Recovery is
watched past the fault's end if needed (up to RECOVERY_WATCH_S), with nobody excluded once the
fault is healed.

Membership faults (`join`, `drain`, `remove`, `replace`) are decided when they come up:
`faults.membership_steps` turns the kind and the cluster's state (active and drained members,
spare slots left) into steps, which run one by one (`membership_ops`), each followed by telling
the runner who the members are now (sampler, client); then the nemesis waits until every shard
is back at its replication factor, so the next fault starts on a cluster with a majority in
every group. A step that does not complete is recorded in `membership_failures` (the checker's
`membership_completes`), and no membership fault follows it (the cluster may still miss
replicas, and removing another node could take a group's majority). Other kinds pick their nodes among the current members only: a node
that left is never signalled or restarted again.

`heal_everything` undoes every fault that may be in force (resume, restart, links healed, skew
reset); the runner calls it when the fault phase ends, however it ends, so the settle phase
runs on a whole cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from raftflow.chaos import membership_ops
from raftflow.chaos.cluster import ChaosCluster
from raftflow.chaos.faults import (
    MEMBERSHIP_KINDS,
    STEP_DRAIN,
    STEP_FORCE_REMOVE,
    STEP_JOIN,
    STEP_KILL,
    STEP_REMOVE,
    Membership,
    PlannedFault,
    membership_steps,
)
from raftflow.chaos.membership_ops import MembershipStepError
from raftflow.chaos.outcome import FaultWindow
from raftflow.chaos.sampler import SAMPLE_S, Sampler

log = logging.getLogger(__name__)

RECOVERY_WATCH_S = 60.0


@dataclass(slots=True)
class _Injected:
    """A fault in force: which nodes it excludes from leading, what to say about it."""

    target: str
    detail: str
    excluded: set[str]


async def _no_recovery() -> float | None:
    return None


class Nemesis:
    def __init__(self, cluster: ChaosCluster, sampler: Sampler, plan: tuple[PlannedFault, ...],
                 *, t0_monotonic: float, phase_start_s: float, phase_end_s: float | None = None,
                 on_members: Callable[[dict[str, str]], None] | None = None) -> None:
        self._cluster = cluster
        self._sampler = sampler
        self._plan = plan
        self._t0 = t0_monotonic
        self._phase_start_s = phase_start_s
        # Membership faults take as long as the cluster needs, so later faults may come late;
        # none starts after the fault phase's end.
        self._phase_end_s = phase_end_s
        self._on_members = on_members
        self.windows: list[FaultWindow] = []
        self.membership_failures: list[str] = []
        self._drained: list[str] = []  # members drained and not removed yet (at most one)
        self._killed_for_good: str | None = None
        self._watchers: list[asyncio.Task[float | None]] = []

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    async def run(self) -> None:
        """Inject every planned fault at its time; returns when the last one is healed."""
        for fault in self._plan:
            await asyncio.sleep(max(0.0, self._phase_start_s + fault.start_s - self.now_s()))
            if self._phase_end_s is not None and self.now_s() >= self._phase_end_s:
                log.info("fault phase over: %s and later faults not injected", fault.kind)
                return
            if fault.kind in MEMBERSHIP_KINDS:
                await self._membership(fault)
            else:
                await self._one(fault)

    async def _one(self, fault: PlannedFault) -> None:
        start_s = self.now_s()
        injected = await asyncio.to_thread(self._inject, fault)
        log.info("fault %s on %s at %.1f s: %s", fault.kind, injected.target, start_s,
                 injected.detail)
        watcher = asyncio.ensure_future(self._recovery(start_s, injected.excluded))
        self._watchers.append(watcher)
        await asyncio.sleep(fault.hold_s)
        await asyncio.to_thread(self._heal, fault, injected)
        injected.excluded.clear()  # the watcher now waits for any leader
        end_s = self.now_s()
        self.windows.append(FaultWindow(
            kind=fault.kind, target=injected.target, start_s=round(start_s, 3),
            end_s=round(end_s, 3), detail=injected.detail, recovered_after_s=None))

    async def finish(self) -> list[FaultWindow]:
        """The windows with their recovery times (waits for the watchers still running)."""
        recovered = await asyncio.gather(*self._watchers)
        self.windows = [FaultWindow(kind=w.kind, target=w.target, start_s=w.start_s,
                                    end_s=w.end_s, detail=w.detail,
                                    recovered_after_s=None if r is None else round(r, 3))
                        for w, r in zip(self.windows, recovered, strict=False)]
        return self.windows

    async def _recovery(self, start_s: float, excluded: set[str]) -> float | None:
        while self.now_s() - start_s < RECOVERY_WATCH_S:
            await asyncio.sleep(SAMPLE_S / 2)
            if self._sampler.all_led(excluded=excluded, since_s=start_s):
                return self.now_s() - start_s
        return None

    # -- membership faults ----------------------------------------------------------------------

    async def _membership(self, fault: PlannedFault) -> None:
        start_s = self.now_s()
        active = self._active()
        state = Membership(active=len(active), drained=len(self._drained),
                           spares_left=self._cluster.spares_left)
        # After a membership fault that did not complete, the cluster may still miss replicas
        # (a stuck move): another one could take a group's majority, so none follows.
        steps = () if self.membership_failures else membership_steps(fault.kind, state)
        excluded: set[str] = set()  # grows as steps name their nodes; the watcher reads it
        touched: list[str] = []  # every node a step acted on, joined ones included
        # A skipped fault did nothing, so it has no recovery time (and does not dilute them).
        watcher = asyncio.ensure_future(self._recovery(start_s, excluded) if steps
                                        else _no_recovery())
        self._watchers.append(watcher)
        done: list[str] = []
        try:
            for step in steps:
                done.append(await asyncio.to_thread(self._step, step, fault, excluded, touched))
                self._follow()
            if steps:
                settle_s = await asyncio.to_thread(membership_ops.settle, self._cluster)
                done.append(f"replicas back in place after {settle_s:.1f} s")
        except MembershipStepError as error:
            self.membership_failures.append(f"{fault.kind} at {start_s:.1f} s: {error}")
            done.append(f"FAILED: {error}")
            log.error("membership fault %s at %.1f s failed: %s", fault.kind, start_s, error)
            self._follow()
        detail = "; ".join(done) if steps else (
            "skipped: an earlier membership fault did not complete" if self.membership_failures
            else f"skipped: {state.active} active, {state.drained} drained, "
                 f"{state.spares_left} spare slots left")
        log.info("fault %s at %.1f s: %s", fault.kind, start_s, detail)
        await asyncio.sleep(fault.hold_s)
        excluded.clear()
        self.windows.append(FaultWindow(
            kind=fault.kind, target=",".join(dict.fromkeys(touched)) or "-",
            start_s=round(start_s, 3), end_s=round(self.now_s(), 3), detail=detail,
            recovered_after_s=None))

    def _active(self) -> list[str]:
        return [n for n in self._cluster.node_ids if n not in self._drained]

    def _step(self, step: str, fault: PlannedFault, excluded: set[str],
              touched: list[str]) -> str:
        """One membership step (blocking); what it did, in words."""
        cluster = self._cluster
        if step == STEP_JOIN:
            joined = membership_ops.join(cluster)
            touched.append(joined)
            return f"joined {joined}"
        if step == STEP_FORCE_REMOVE:
            dead = self._killed_for_good
            assert dead is not None
            membership_ops.force_remove(cluster, dead)
            self._killed_for_good = None
            return f"removed {dead} with force"
        if step == STEP_REMOVE:
            node = self._drained[0]
            excluded.add(node)
            touched.append(node)
            try:
                membership_ops.remove(cluster, node)
            finally:  # a node that left (even with a wrong exit code) is drained no more
                if node not in cluster.node_ids:
                    self._drained.remove(node)
            return f"removed drained {node} (it exited 0)"
        active = self._active()
        node = active[fault.nodes[0] % len(active)]
        excluded.add(node)
        touched.append(node)
        if step == STEP_KILL:
            cluster.kill_for_good(node)
            self._killed_for_good = node
            return f"SIGKILL {node} for good"
        assert step == STEP_DRAIN, step
        self._drained.append(node)  # even if the drain fails: it may be draining
        membership_ops.drain(cluster, node)
        return f"drained {node} (no replica, no leadership)"

    def _follow(self) -> None:
        if self._on_members is not None:
            self._on_members(self._cluster.member_addresses())

    # -- injecting and healing (blocking calls, run in a thread) -------------------------------

    def _inject(self, fault: PlannedFault) -> _Injected:
        nodes = self._cluster.node_ids
        # The schedule's indexes are taken modulo the current members (membership faults
        # change them); duplicates collapse, so a split's side stays a minority.
        targets = list(dict.fromkeys(nodes[i % len(nodes)] for i in fault.nodes))
        kind = fault.kind
        if kind == "leader":
            leader = self._sampler.leader_of_busiest_shard()
            leader = leader if leader in nodes else nodes[0]
            return self._inject_on_node(fault.variant, leader, fault.hold_s,
                                        prefix="leader of the busiest shard: ")
        if kind in ("kill", "pause"):
            return self._inject_on_node(kind, targets[0], fault.hold_s)
        if kind == "restart-all":
            for node in nodes:
                self._cluster.kill(node)
            return _Injected(target="all nodes", excluded=set(nodes),
                             detail=f"SIGKILL every node, restart after {fault.hold_s:.1f} s")
        if kind == "partition":
            return self._partition(fault.variant, targets, fault.hold_s)
        links = self._links_of(targets[0])
        if kind == "latency":
            jitter_ms = fault.magnitude // 2
            for link in links:
                self._cluster.links.delay(link, fault.magnitude, jitter_ms)
            return _Injected(target=targets[0], excluded=set(), detail=(
                f"+{fault.magnitude}±{jitter_ms} ms on every link to and from it"))
        if kind == "loss":
            for link in links:
                self._cluster.links.loss(link, fault.magnitude)
            return _Injected(target=targets[0], excluded=set(), detail=(
                f"{fault.magnitude} % of chunks stall like retransmissions on its links"))
        if kind == "clock-skew":
            self._cluster.set_skew_ms(targets[0], fault.magnitude)
            return _Injected(target=targets[0], excluded=set(),
                             detail=f"wall clock {fault.magnitude:+d} ms")
        raise AssertionError(f"unknown fault kind {kind!r}")

    def _inject_on_node(self, action: str, node: str, hold_s: float, *,
                        prefix: str = "") -> _Injected:
        if action == "kill":
            self._cluster.kill(node)
            detail = f"SIGKILL, restart after {hold_s:.1f} s"
        elif action == "pause":
            self._cluster.pause(node)
            detail = f"SIGSTOP, SIGCONT after {hold_s:.1f} s"
        else:
            assert action == "isolate", action
            for link in self._links_of(node):
                self._cluster.links.blackhole(link)
            detail = f"isolated (every link blackholed) for {hold_s:.1f} s"
        return _Injected(target=node, excluded={node}, detail=prefix + detail)

    def _partition(self, variant: str, side: list[str], hold_s: float) -> _Injected:
        others = [n for n in self._cluster.node_ids if n not in side]
        if variant == "one-way":
            links = self._cluster.links_between(side, others)
            detail = f"one-way: nothing from {side[0]} reaches the others for {hold_s:.1f} s"
            target = f"{side[0]}->{','.join(others)}"
        else:
            links = (self._cluster.links_between(side, others)
                     + self._cluster.links_between(others, side))
            detail = f"{variant}: {','.join(side)} cut from {','.join(others)} for {hold_s:.1f} s"
            target = f"{','.join(side)}|{','.join(others)}"
        for link in links:
            self._cluster.links.blackhole(link)
        return _Injected(target=target, excluded=set(side), detail=detail)

    def _links_of(self, node: str) -> list[str]:
        others = [n for n in self._cluster.node_ids if n != node]
        return (self._cluster.links_between([node], others)
                + self._cluster.links_between(others, [node]))

    def _heal(self, fault: PlannedFault, injected: _Injected) -> None:
        if fault.kind in ("kill", "restart-all") or (
                fault.kind == "leader" and fault.variant == "kill"):
            for node in self._cluster.node_ids:
                self._cluster.restart(node)
        elif fault.kind == "pause" or (fault.kind == "leader" and fault.variant == "pause"):
            for node in injected.excluded:
                self._cluster.resume(node)
        elif fault.kind == "clock-skew":
            for node in self._cluster.node_ids:
                self._cluster.set_skew_ms(node, 0)
        else:
            self._cluster.links.heal_all()

    def heal_everything(self) -> None:
        """Undo whatever may be in force (idempotent; blocking)."""
        for node in self._cluster.node_ids:
            self._cluster.resume(node)
            self._cluster.restart(node)
            self._cluster.set_skew_ms(node, 0)
        self._cluster.links.heal_all()
