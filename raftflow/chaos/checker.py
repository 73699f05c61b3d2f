"""The chaos checker: compares what clients were told and what activities did with what the
cluster reports, and names every broken invariant. Pure: `check(observations)` does no IO, so
tests feed it doctored evidence.

Workload conventions it relies on (raftflow/chaos/workload_defs.py): a workflow's activity ids
are the plan index as a string ("0", "1", ...); a signal's input is `[sender, seq]`; a
completed workflow's result is `{"activities": [token...], "signals": [[sender, seq]...]}`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from raftflow.chaos.history_checks import history_problems
from raftflow.chaos.observations import Observations, RunRecord, StartAck, Violation

INVARIANTS: tuple[tuple[str, str], ...] = (
    ("acked_start_completes",
     "every acknowledged start completes, with the result its plan and executions imply"),
    ("no_lost_ack",
     "no acknowledged start, signal or completion is missing from the cluster"),
    ("history_well_formed",
     "event ids 1..n, one close event and last, activities and timers closed at most once"),
    ("activity_result_produced",
     "every activity result a workflow saw was produced by an execution; each ran at least once"),
    ("signals_exactly_once",
     "acknowledged signals are delivered exactly once, in order per sender"),
    ("one_open_run", "at most one open run per workflow id"),
    ("no_stuck_workflow",
     "no open workflow is left without a pending workflow task, activity or timer"),
    ("replicas_agree", "replicas of a shard end at one applied index with identical digests"),
    ("one_leader_per_term", "at most one leader per shard and term"),
)
_NAMES = frozenset(name for name, _ in INVARIANTS)
LISTED_MAX = 5  # items quoted in one detail


def check(observations: Observations) -> tuple[Violation, ...]:
    evidence = _Evidence.of(observations)
    found: set[Violation] = set()
    for checker in (_acked_starts, _lost_acks, _histories, _activity_results, _signals,
                    _open_runs, _stuck, _replicas, _leaders):
        found.update(checker(evidence))
    assert all(v.invariant in _NAMES for v in found), found
    return tuple(sorted(found))


def invariant_counts(violations: Iterable[Violation]) -> dict[str, int]:
    counts = dict.fromkeys((name for name, _ in INVARIANTS), 0)
    for violation in violations:
        counts[violation.invariant] += 1
    return counts


def _quote(items: Iterable[Any]) -> str:
    listed = list(items)
    more = f" and {len(listed) - LISTED_MAX} more" if len(listed) > LISTED_MAX else ""
    return ", ".join(repr(i) for i in listed[:LISTED_MAX]) + more


@dataclass(frozen=True, slots=True)
class _Evidence:
    """The observations with the lookups every invariant needs, built once per check."""

    obs: Observations
    runs: dict[tuple[str, str], RunRecord]
    by_id: dict[str, list[RunRecord]]
    tokens: dict[tuple[str, int], set[str]]

    @staticmethod
    def of(observations: Observations) -> _Evidence:
        by_id: dict[str, list[RunRecord]] = defaultdict(list)
        for run in observations.runs:
            by_id[run.workflow_id].append(run)
        tokens: dict[tuple[str, int], set[str]] = defaultdict(set)
        for execution in observations.executions:
            tokens[(execution.workflow_id, execution.activity_index)].add(execution.token)
        return _Evidence(obs=observations,
                         runs={(r.workflow_id, r.run_id): r for r in observations.runs},
                         by_id=by_id, tokens=tokens)

    def run_of(self, start: StartAck) -> RunRecord | None:
        return self.runs.get((start.plan.workflow_id, start.run_id))


def _delivered_signals(run: RunRecord) -> list[tuple[str, Any]]:
    """(request id, input) of each WorkflowExecutionSignaled event, in history order."""
    return [(str(e["attributes"].get("request_id")), e["attributes"].get("input"))
            for e in run.history if e.get("event_type") == "WorkflowExecutionSignaled"]


# -- the invariants -------------------------------------------------------------------------------


def _acked_starts(ev: _Evidence) -> Iterator[Violation]:
    name = "acked_start_completes"
    signals_acked: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for signal in ev.obs.signals:
        signals_acked[signal.workflow_id].append((signal.sender, signal.seq))
    for start in ev.obs.starts:
        wid = start.plan.workflow_id
        run = ev.run_of(start)
        if run is None:
            continue  # reported as a lost acknowledgement
        if run.status != "COMPLETED":
            yield Violation(invariant=name, subject=wid,
                            detail=f"run {run.run_id} is {run.status}, expected COMPLETED")
            continue
        result = run.result if isinstance(run.result, dict) else {}
        activities = result.get("activities")
        if not isinstance(activities, list) or len(activities) != start.plan.activity_count:
            yield Violation(invariant=name, subject=wid, detail=(
                f"result has activities {activities!r}, expected "
                f"{start.plan.activity_count} tokens"))
        received = result.get("signals")
        if not isinstance(received, list) or len(received) < start.plan.signals:
            yield Violation(invariant=name, subject=wid, detail=(
                f"result has signals {received!r}, expected at least {start.plan.signals}"))
        missing = sorted(set(signals_acked[wid]) - {tuple(s) for s in received or []
                                                    if isinstance(s, list)})
        if missing:
            yield Violation(invariant=name, subject=wid, detail=(
                f"acknowledged signals {_quote(missing)} are not in the result"))


def _lost_acks(ev: _Evidence) -> Iterator[Violation]:
    name = "no_lost_ack"
    for start in ev.obs.starts:
        if ev.run_of(start) is None:
            yield Violation(invariant=name, subject=start.plan.workflow_id, detail=(
                f"start acknowledged with run {start.run_id} at {start.acked_at_s:.1f} s; "
                "the cluster has no such run"))
    runs = ev.by_id
    for signal in ev.obs.signals:
        delivered = {rid for run in runs.get(signal.workflow_id, [])
                     for rid, _ in _delivered_signals(run)}
        if signal.request_id not in delivered:
            yield Violation(invariant=name, subject=signal.workflow_id, detail=(
                f"signal {signal.sender}#{signal.seq} (request {signal.request_id}) was "
                f"acknowledged at {signal.acked_at_s:.1f} s but is in no history"))
    for told in ev.obs.client_results:
        run = next((r for r in runs.get(told.workflow_id, []) if r.run_id == told.run_id), None)
        if run is None or run.status != "COMPLETED" or run.result != told.result:
            seen = "no such run" if run is None else f"{run.status} with {run.result!r}"
            yield Violation(invariant=name, subject=told.workflow_id, detail=(
                f"the client was told run {told.run_id} completed with {told.result!r}; "
                f"the cluster has {seen}"))


def _histories(ev: _Evidence) -> Iterator[Violation]:
    for run in ev.obs.runs:
        for problem in history_problems(run.history, open_run=run.status == "RUNNING"):
            yield Violation(invariant="history_well_formed",
                            subject=f"{run.workflow_id}/{run.run_id}", detail=problem)


def _activity_results(ev: _Evidence) -> Iterator[Violation]:
    name = "activity_result_produced"
    tokens = ev.tokens
    for run in ev.obs.runs:
        activity_of: dict[int, str] = {}
        for event in run.history:
            kind, attributes = event.get("event_type"), event.get("attributes", {})
            if kind == "ActivityTaskScheduled":
                activity_of[int(event["event_id"])] = str(attributes.get("activity_id"))
            elif kind == "ActivityTaskCompleted":
                activity_id = activity_of.get(attributes.get("scheduled_event_id"), "?")
                index = int(activity_id) if activity_id.isdigit() else -1
                if attributes.get("result") not in tokens.get((run.workflow_id, index), set()):
                    yield Violation(invariant=name, subject=run.workflow_id, detail=(
                        f"activity {activity_id} completed with {attributes.get('result')!r} "
                        f"(event {event.get('event_id')}), which no execution produced"))
        result = run.result if isinstance(run.result, dict) else {}
        for index, token in enumerate(result.get("activities") or []):
            if token not in tokens.get((run.workflow_id, index), set()):
                yield Violation(invariant=name, subject=run.workflow_id, detail=(
                    f"result's activity {index} is {token!r}, which no execution produced"))
    for start in ev.obs.starts:
        acked_run = ev.run_of(start)
        if acked_run is None or acked_run.status != "COMPLETED":
            continue
        never = [i for i in range(start.plan.activity_count)
                 if not tokens.get((start.plan.workflow_id, i))]
        if never:
            yield Violation(invariant=name, subject=start.plan.workflow_id, detail=(
                f"completed, but activities {never} have no execution in the log"))


def _signals(ev: _Evidence) -> Iterator[Violation]:
    name = "signals_exactly_once"  # unacknowledged signals may appear too, at most once
    for run in ev.obs.runs:
        delivered = _delivered_signals(run)
        counts: dict[str, int] = defaultdict(int)
        for request_id, _ in delivered:
            counts[request_id] += 1
        twice = sorted(r for r, n in counts.items() if n > 1)
        if twice:
            yield Violation(invariant=name, subject=run.workflow_id, detail=(
                f"signals delivered more than once: {_quote(twice)}"))
        inputs = [tuple(i) for _, i in delivered if isinstance(i, list) and len(i) == 2]
        yield from _order_violations(name, run.workflow_id, "history", inputs)
        result = run.result if isinstance(run.result, dict) else {}
        received = [tuple(s) for s in result.get("signals") or [] if isinstance(s, list)]
        yield from _order_violations(name, run.workflow_id, "result", received)


def _order_violations(name: str, workflow_id: str, where: str,
                      pairs: list[tuple[Any, ...]]) -> Iterator[Violation]:
    """Per sender, sequence numbers must strictly increase (no repeat, no reordering)."""
    last: dict[Any, int] = {}
    for sender, seq in pairs:
        if not isinstance(seq, int):
            yield Violation(invariant=name, subject=workflow_id,
                            detail=f"{where}: signal from {sender!r} has seq {seq!r}")
            continue
        if sender in last and seq <= last[sender]:
            yield Violation(invariant=name, subject=workflow_id, detail=(
                f"{where}: signal {sender}#{seq} after {sender}#{last[sender]} "
                "(duplicate or out of order)"))
        last[sender] = max(seq, last.get(sender, seq))


def _open_runs(ev: _Evidence) -> Iterator[Violation]:
    for workflow_id, runs in sorted(ev.by_id.items()):
        open_runs = sorted({r.run_id for r in runs if r.status == "RUNNING"})
        if len(open_runs) > 1:
            yield Violation(invariant="one_open_run", subject=workflow_id,
                            detail=f"{len(open_runs)} open runs: {_quote(open_runs)}")


def _stuck(ev: _Evidence) -> Iterator[Violation]:
    for run in ev.obs.runs:
        if run.status == "RUNNING" and not (run.pending_workflow_task
                                            or run.pending_activity_count
                                            or run.pending_timer_count):
            yield Violation(invariant="no_stuck_workflow",
                            subject=f"{run.workflow_id}/{run.run_id}", detail=(
                                f"open with {len(run.history)} events and no pending workflow "
                                "task, activity or timer: nothing will ever move it"))


def _replicas(ev: _Evidence) -> Iterator[Violation]:
    by_shard: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for digest in ev.obs.digests:
        by_shard[digest.shard].append((digest.applied_index, digest.digest, digest.node))
    for shard, readings in sorted(by_shard.items()):
        indexes = {index for index, _, _ in readings}
        if len(indexes) > 1:
            yield Violation(invariant="replicas_agree", subject=f"shard {shard}", detail=(
                "replicas never converged: applied indexes "
                + ", ".join(f"{node}={index}" for index, _, node in sorted(readings))))
            continue
        digests = {digest for _, digest, _ in readings}
        if len(digests) > 1:
            yield Violation(invariant="replicas_agree", subject=f"shard {shard}", detail=(
                f"different state at applied index {indexes.pop()}: "
                + ", ".join(f"{node}={digest[:12]}" for _, digest, node in sorted(readings))))


def _leaders(ev: _Evidence) -> Iterator[Violation]:
    leaders: dict[tuple[int, int], set[str]] = defaultdict(set)
    for sample in ev.obs.leader_samples:
        leaders[(sample.shard, sample.term)].add(sample.node)
    for (shard, term), nodes in sorted(leaders.items()):
        if len(nodes) > 1:
            yield Violation(invariant="one_leader_per_term", subject=f"shard {shard}",
                            detail=f"term {term} has leaders {_quote(sorted(nodes))}")
