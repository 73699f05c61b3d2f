"""The chaos checker: compares what clients were told and what activities did with what the
cluster reports, and names every broken invariant.

Theory of operation. `check(observations)` evaluates each invariant of `INVARIANTS` on its own
over the same evidence, so one fault can break (and be counted under) several invariants: a
lost run is both a lost acknowledgement and a start that never completed. Violations are
deduplicated and sorted. Pure: no IO, no clock, so tests feed it doctored evidence.

Histories arrive as the HTTP API's JSON (what the harness records); `_Evidence.of` decodes each
once into the protocol's typed events (`history_checks.decode_history`) and every invariant
reads those. An event that does not decode is a `history_well_formed` violation of its run,
not an exception (see history_checks).

Subjects: a workflow id; `workflow_id/run_id` when the rule is about one run's history or
state (history_well_formed, no_stuck_workflow); `shard N` for replicas and leaders.

Workload conventions it relies on (raftflow/chaos/workload_defs.py):
- a workflow's activity ids are its plan indexes as strings ("0", "1", ...; `plan_index`);
- a signal's input (its args) is `[sender, seq]`;
- a completed run's result is `{"activities": [token, ...], "signals": [[sender, seq], ...]}`,
  tokens in plan order, signals in the order the workflow received them;
- the workload never continues as new, but a chain of runs is followed anyway.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from raftflow.chaos import message_checks
from raftflow.chaos.history_checks import (
    EvidenceEvent,
    Pair,
    activity_completions,
    continued_as_new_run_id,
    decode_history,
    history_problems,
    order_problems,
    signal_events,
    signal_pair,
)
from raftflow.chaos.observations import JsonValue, Observations, RunRecord, StartAck, Violation
from raftflow.chaos.placement_checks import placement_problems

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
     "no open run is left without a pending workflow task, activity or timer"),
    ("replicas_agree", "replicas of a shard end at one applied index with identical digests"),
    ("one_leader_per_term",
     "at most one leader per shard and term, across replica moves and membership changes"),
    ("replication_restored",
     "after the run every shard has min(3, active) replicas, all on live active members, "
     "with no move in progress, and the members are the nodes the harness holds"),
    ("membership_completes",
     "each join, drain and forced remove completes within its bound, and a removed node "
     "exits 0 by itself"),
    (message_checks.NAME, message_checks.DESCRIPTION),
)
_NAMES = frozenset(name for name, _ in INVARIANTS)
LISTED_MAX = 5  # items quoted in one detail
VALUE_CHARS_MAX = 160  # a quoted value (a result, an input) is cut to this many characters

def check(observations: Observations) -> tuple[Violation, ...]:
    """Every broken invariant, sorted, each reported once."""
    evidence = _Evidence.of(observations)
    found: set[Violation] = set()
    for invariant in (_acked_starts_complete, _no_lost_ack, _histories_well_formed,
                      _activity_results_produced, _signals_exactly_once, _one_open_run,
                      _no_stuck_workflow, _replicas_agree, _one_leader_per_term,
                      _replication_restored, _membership_completes, _messages_exactly_once):
        found.update(invariant(evidence))
    assert all(v.invariant in _NAMES for v in found), found
    return tuple(sorted(found))


def invariant_counts(violations: Iterable[Violation]) -> dict[str, int]:
    """Violations per invariant, every invariant present (0 when none), in table order."""
    counts = dict.fromkeys((name for name, _ in INVARIANTS), 0)
    for violation in violations:
        counts[violation.invariant] += 1
    return counts


def _show(value: JsonValue) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_CHARS_MAX else text[:VALUE_CHARS_MAX - 3] + "..."


def _quote(items: Iterable[JsonValue]) -> str:
    listed = list(items)
    more = f" and {len(listed) - LISTED_MAX} more" if len(listed) > LISTED_MAX else ""
    return ", ".join(_show(i) for i in listed[:LISTED_MAX]) + more


def _result_part(run: RunRecord, key: str) -> JsonValue:
    return run.result.get(key) if isinstance(run.result, dict) else None


@dataclass(frozen=True, slots=True)
class _Run:
    """A run as the invariants read it: the cluster's record, and its history decoded."""

    record: RunRecord
    events: tuple[EvidenceEvent, ...]


@dataclass(frozen=True, slots=True)
class _Evidence:
    """The observations with the lookups every invariant needs, built once per check."""

    obs: Observations
    all_runs: tuple[_Run, ...]  # in the order of `obs.runs`, histories decoded once
    runs: dict[tuple[str, str], _Run]
    by_id: dict[str, list[_Run]]
    tokens: dict[tuple[str, int], set[str]]  # (workflow id, activity index) -> tokens
    acked_signals: dict[str, dict[str, Pair]]  # workflow id -> request id -> (sender, seq)

    @staticmethod
    def of(observations: Observations) -> _Evidence:
        all_runs = tuple(_Run(record=r, events=decode_history(r.history))
                         for r in observations.runs)
        by_id: dict[str, list[_Run]] = defaultdict(list)
        for run in all_runs:
            by_id[run.record.workflow_id].append(run)
        tokens: dict[tuple[str, int], set[str]] = defaultdict(set)
        for execution in observations.executions:
            tokens[(execution.workflow_id, execution.activity_index)].add(execution.token)
        acked: dict[str, dict[str, Pair]] = defaultdict(dict)
        for signal in observations.signals:
            acked[signal.workflow_id][signal.request_id] = (signal.sender, signal.seq)
        return _Evidence(obs=observations, all_runs=all_runs,
                         runs={(r.record.workflow_id, r.record.run_id): r for r in all_runs},
                         by_id=by_id, tokens=tokens, acked_signals=acked)

    def run_of(self, start: StartAck) -> _Run | None:
        return self.runs.get((start.plan.workflow_id, start.run_id))

    def produced(self, workflow_id: str, index: int, token: JsonValue) -> bool:
        return isinstance(token, str) and token in self.tokens.get((workflow_id, index), ())

    def last_of_chain(self, start: StartAck) -> tuple[RunRecord | None, str]:
        """The acked run, or the run it continued as new into (transitively), with the run id
        that was looked for last (missing when the run is None)."""
        run_id = start.run_id
        run = self.runs.get((start.plan.workflow_id, run_id))
        for _ in range(len(self.all_runs)):  # a chain visits each run at most once
            next_id = continued_as_new_run_id(run.events) if run is not None else None
            if run is None or next_id is None or run.record.status != "CONTINUED_AS_NEW":
                break
            run_id = next_id
            run = self.runs.get((start.plan.workflow_id, run_id))
        return (run.record if run is not None else None), run_id


# -- client acknowledgements against the cluster --------------------------------------------------


def _acked_starts_complete(ev: _Evidence) -> Iterator[Violation]:
    for start in ev.obs.starts:
        wid = start.plan.workflow_id
        run, run_id = ev.last_of_chain(start)
        if run is None:
            via = "" if run_id == start.run_id else f", continued from acked run {start.run_id},"
            yield _start_violation(wid, f"expected run {run_id}{via} to be COMPLETED; the "
                                        "cluster has no such run")
        elif run.status != "COMPLETED":
            yield _start_violation(wid, f"run {run.run_id} is {run.status} at quiescence, "
                                        "expected COMPLETED")
        else:
            yield from (_start_violation(wid, f"run {run.run_id} completed but {problem}")
                        for problem in _result_problems(ev, start, run))


def _start_violation(workflow_id: str, detail: str) -> Violation:
    return Violation(invariant="acked_start_completes", subject=workflow_id, detail=detail)


def _result_problems(ev: _Evidence, start: StartAck, run: RunRecord) -> Iterator[str]:
    plan, wid = start.plan, start.plan.workflow_id
    activities = _result_part(run, "activities")
    if not isinstance(activities, list) or len(activities) != plan.activity_count:
        yield (f"its result has activities {_show(activities)}, expected a list of "
               f"{plan.activity_count} tokens")
    else:
        wrong = [i for i, token in enumerate(activities) if not ev.produced(wid, i, token)]
        if wrong:
            yield (f"its result's tokens at indexes {_quote(wrong)} were not produced by an "
                   "execution of that activity index")
    received = _result_part(run, "signals")
    pairs = {signal_pair(s) for s in received} if isinstance(received, list) else set()
    if not isinstance(received, list) or len(received) < plan.signals:
        yield f"its result has signals {_show(received)}, expected at least {plan.signals}"
    missing = sorted(p for p in ev.acked_signals.get(wid, {}).values() if p not in pairs)
    if missing:
        yield f"acknowledged signals {_quote(missing)} are not in its result"


def _no_lost_ack(ev: _Evidence) -> Iterator[Violation]:
    name = "no_lost_ack"
    for start in ev.obs.starts:
        if ev.run_of(start) is None:
            yield Violation(invariant=name, subject=start.plan.workflow_id, detail=(
                f"start acknowledged with run {start.run_id} at {start.acked_at_s:.1f} s; "
                "expected that run in the cluster, it has none"))
    for signal in ev.obs.signals:
        delivered = {s.request_id for run in ev.by_id.get(signal.workflow_id, [])
                     for s in signal_events(run.events)}
        if signal.request_id not in delivered:
            yield Violation(invariant=name, subject=signal.workflow_id, detail=(
                f"signal {signal.sender}#{signal.seq} (request {signal.request_id}) acknowledged "
                f"at {signal.acked_at_s:.1f} s; expected a WorkflowExecutionSignaled with that "
                "request id, no history has one"))
    for told in ev.obs.client_results:
        found = ev.runs.get((told.workflow_id, told.run_id))
        run = found.record if found is not None else None
        if run is None or run.status != "COMPLETED" or run.result != told.result:
            seen = "no such run" if run is None else f"{run.status} with {_show(run.result)}"
            yield Violation(invariant=name, subject=told.workflow_id, detail=(
                f"the client was told at {told.at_s:.1f} s that run {told.run_id} completed "
                f"with {_show(told.result)}; the cluster has {seen}"))


# -- one run's history and state ------------------------------------------------------------------


def _histories_well_formed(ev: _Evidence) -> Iterator[Violation]:
    for run in ev.all_runs:
        record = run.record
        for problem in history_problems(run.events, status=record.status):
            yield Violation(invariant="history_well_formed",
                            subject=f"{record.workflow_id}/{record.run_id}", detail=problem)


def _activity_results_produced(ev: _Evidence) -> Iterator[Violation]:
    name = "activity_result_produced"
    for decoded in ev.all_runs:
        run, wid = decoded.record, decoded.record.workflow_id
        for done in activity_completions(decoded.events):
            index = plan_index(done.activity_id)
            if index is None or not ev.produced(wid, index, done.result):
                yield Violation(invariant=name, subject=wid, detail=(
                    f"run {run.run_id} event {done.event_id}: activity {done.activity_id!r} "
                    f"completed with {_show(done.result)}, expected a token an execution of "
                    "that activity index logged"))
        activities = _result_part(run, "activities")
        for index, token in enumerate(activities if isinstance(activities, list) else []):
            if run.status == "COMPLETED" and not ev.produced(wid, index, token):
                yield Violation(invariant=name, subject=wid, detail=(
                    f"run {run.run_id}'s result has {_show(token)} for activity {index}, "
                    "expected a token an execution of that activity index logged"))
    for start in ev.obs.starts:
        final, _ = ev.last_of_chain(start)
        wid = start.plan.workflow_id
        never = [i for i in range(start.plan.activity_count) if not ev.tokens.get((wid, i))]
        if final is not None and final.status == "COMPLETED" and never:
            yield Violation(invariant=name, subject=wid, detail=(
                f"run {final.run_id} completed, but activity indexes {_quote(never)} of "
                f"{start.plan.activity_count} have no execution in the log, expected each to "
                "have run at least once"))


def plan_index(activity_id: str | None) -> int | None:
    """The plan index an activity id names. Workload convention: the activity id is
    `str(index)` ("0", "1", ...), so anything else ("07", "x", None) names no index."""
    if activity_id is None or not activity_id.isdigit() or str(int(activity_id)) != activity_id:
        return None
    return int(activity_id)


def _signals_exactly_once(ev: _Evidence) -> Iterator[Violation]:
    name = "signals_exactly_once"
    for decoded in ev.all_runs:
        run = decoded.record
        wid, acked = run.workflow_id, ev.acked_signals.get(run.workflow_id, {})
        delivered = signal_events(decoded.events)
        counts = Counter(s.request_id for s in delivered if s.request_id is not None)
        for request_id, n in sorted(counts.items()):
            if n > 1:
                kind = "acknowledged" if request_id in acked else "unacknowledged"
                yield Violation(invariant=name, subject=wid, detail=(
                    f"run {run.run_id}: {kind} signal request {request_id} delivered {n} "
                    "times, expected once"))
        for s in delivered:
            want = acked.get(s.request_id) if s.request_id is not None else None
            if want is not None and signal_pair(s.input) != want:
                yield Violation(invariant=name, subject=wid, detail=(
                    f"run {run.run_id} event {s.event_id}: signal request {s.request_id} has "
                    f"input {_show(s.input)}, expected {list(want)}"))
        history_pairs = [signal_pair(s.input) for s in delivered]
        for problem in order_problems([p for p in history_pairs if p is not None]):
            yield Violation(invariant=name, subject=wid,
                            detail=f"run {run.run_id} history: {problem}")
        received = _result_part(run, "signals")
        if run.status != "COMPLETED" or not isinstance(received, list):
            continue
        result_pairs = [signal_pair(s) for s in received]
        for problem in order_problems([p for p in result_pairs if p is not None]):
            yield Violation(invariant=name, subject=wid,
                            detail=f"run {run.run_id} result: {problem}")
        if result_pairs != history_pairs[:len(result_pairs)]:
            yield Violation(invariant=name, subject=wid, detail=(
                f"run {run.run_id}: result's signals {_quote(received)} are not the first "
                f"{len(received)} signals of its history ({_quote(history_pairs)}), expected "
                "the order the history delivered them"))


def _one_open_run(ev: _Evidence) -> Iterator[Violation]:
    for workflow_id, runs in sorted(ev.by_id.items()):
        open_runs = sorted({r.record.run_id for r in runs if r.record.status == "RUNNING"})
        if len(open_runs) > 1:
            yield Violation(invariant="one_open_run", subject=workflow_id, detail=(
                f"{len(open_runs)} RUNNING runs ({_quote(open_runs)}), expected at most one"))


def _messages_exactly_once(ev: _Evidence) -> Iterator[Violation]:
    return message_checks.message_problems(((r.record, r.events) for r in ev.all_runs),
                                           ev.obs.digests)


def _no_stuck_workflow(ev: _Evidence) -> Iterator[Violation]:
    for run in ev.obs.runs:
        if run.status == "RUNNING" and not (run.pending_workflow_task
                                            or run.pending_activity_count > 0
                                            or run.pending_timer_count > 0):
            yield Violation(invariant="no_stuck_workflow",
                            subject=f"{run.workflow_id}/{run.run_id}", detail=(
                                f"RUNNING at quiescence with {len(run.history)} events and no "
                                "pending workflow task, activity or timer (0, 0, 0), expected "
                                "closed or something pending to move it"))


# -- the cluster's own agreement ------------------------------------------------------------------


def _replicas_agree(ev: _Evidence) -> Iterator[Violation]:
    by_shard: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for digest in ev.obs.digests:
        by_shard[digest.shard].append((digest.applied_index, digest.node, digest.digest))
    for shard, readings in sorted(by_shard.items()):
        readings.sort()
        if len({index for index, _, _ in readings}) > 1:
            yield Violation(invariant="replicas_agree", subject=f"shard {shard}", detail=(
                "replicas at different applied indexes after convergence ("
                + ", ".join(f"{node}={index}" for index, node, _ in readings[:LISTED_MAX])
                + "), expected one index"))
        for index in sorted({index for index, _, _ in readings}):
            at_index = [(node, digest) for i, node, digest in readings if i == index]
            if len({digest for _, digest in at_index}) > 1:
                yield Violation(invariant="replicas_agree", subject=f"shard {shard}", detail=(
                    f"different digests at applied index {index} ("
                    + ", ".join(f"{node}={digest[:12]}" for node, digest in at_index[:LISTED_MAX])
                    + "), expected one"))


def _one_leader_per_term(ev: _Evidence) -> Iterator[Violation]:
    first_claim: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    for sample in sorted(ev.obs.leader_samples, key=lambda s: s.at_s):
        first_claim[(sample.shard, sample.term)].setdefault(sample.node, sample.at_s)
    for (shard, term), claims in sorted(first_claim.items()):
        if len(claims) > 1:
            yield Violation(invariant="one_leader_per_term", subject=f"shard {shard}", detail=(
                f"term {term} has {len(claims)} leaders ("
                + ", ".join(f"{node} from {at_s:.1f} s"
                            for node, at_s in sorted(claims.items())[:LISTED_MAX])
                + "), expected at most one"))


def _replication_restored(ev: _Evidence) -> Iterator[Violation]:
    if ev.obs.placement is not None:  # None: the run read no final status (older evidence)
        for subject, detail in placement_problems(ev.obs.placement):
            yield Violation(invariant="replication_restored", subject=subject, detail=detail)


def _membership_completes(ev: _Evidence) -> Iterator[Violation]:
    for failure in ev.obs.membership_failures:
        yield Violation(invariant="membership_completes", subject="cluster", detail=failure)
