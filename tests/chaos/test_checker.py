"""The checker accepts clean and real evidence and reports each kind of doctored violation.

Goal: every invariant of `checker.INVARIANTS` fires on the violation it names, with the right
subject and a detail that quotes what was expected and what was seen, and stays quiet on
evidence the engine and workload really produce.

Method: `_world(plans)` builds clean evidence by hand, in the engine's history shape (task
boundaries, ActivityTaskStarted written right before the activity's close, buffered signals,
one close event last). Each test doctors one piece and compares the exact set of
(invariant, subject) pairs reported. Real evidence is checked too: a real chaos run
(tests/data/chaos_observations.json: seed 1, a retried activity, parallel activities, a
timer, signals from two senders) and the golden histories recorded from a dev cluster
(tests/data/histories/). Hypothesis draws plans and single-event corruptions.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.chaos import checker
from raftflow.chaos.history_checks import CLOSE_EVENT_OF_STATUS, history_problems
from raftflow.chaos.observations import (
    ActivityExecution,
    ClientResult,
    LeaderSample,
    Observations,
    ReplicaDigest,
    RunRecord,
    SignalAck,
    StartAck,
    Violation,
    WorkflowPlan,
)

DATA = Path(__file__).parent.parent / "data"
REAL_RUN = DATA / "chaos_observations.json"
GOLDEN = sorted((DATA / "histories").glob("*.json"))
STATUS_OF_CLOSE = {event: status for status, event in CLOSE_EVENT_OF_STATUS.items()}
SENDERS = ("alpha", "beta")

Event = dict[str, Any]
# The plan most tests doctor: 2 sequential and 2 parallel activities, a timer, 3 signals
# (alpha#0, beta#0, alpha#1).
PLAN = WorkflowPlan(workflow_id="wf-1", sequential=2, parallel=2, timer_ms=50, signals=3)
OTHER = WorkflowPlan(workflow_id="wf-2", sequential=1, parallel=0, timer_ms=0, signals=0)
RUN = f"{PLAN.workflow_id}/run-{PLAN.workflow_id}"  # subject of run-level violations


# -- building clean evidence ----------------------------------------------------------------------


class _History:
    """Appends events in the HTTP JSON shape; ids 1..n as the engine assigns them."""

    def __init__(self, plan: WorkflowPlan) -> None:
        self.events: list[Event] = []
        self.add("WorkflowExecutionStarted", workflow_type="ChaosWorkflow", task_queue="chaos",
                 input=[plan.to_json()], workflow_id=plan.workflow_id,
                 request_id=f"start-{plan.workflow_id}", attempt=1)

    def add(self, event_type: str, **attributes: Any) -> int:
        event_id = len(self.events) + 1
        self.events.append({"event_id": event_id, "event_type": event_type,
                            "timestamp": f"2026-12-02T20:00:{event_id % 60:02d}.000+00:00",
                            "attributes": attributes})
        return event_id

    def workflow_task(self) -> int:
        scheduled = self.add("WorkflowTaskScheduled", task_queue="chaos", attempt=1)
        started = self.add("WorkflowTaskStarted", scheduled_event_id=scheduled, identity="w")
        return self.add("WorkflowTaskCompleted", scheduled_event_id=scheduled,
                        started_event_id=started, identity="w")

    def schedule(self, index: int, completed_id: int) -> int:
        return self.add("ActivityTaskScheduled", activity_id=str(index),
                        activity_type="chaos_step", workflow_task_completed_event_id=completed_id)

    def close_activity(self, scheduled_id: int, token: str) -> None:
        started = self.add("ActivityTaskStarted", scheduled_event_id=scheduled_id, attempt=1)
        self.add("ActivityTaskCompleted", scheduled_event_id=scheduled_id,
                 started_event_id=started, result=token)


def _token(workflow_id: str, index: int) -> str:
    return f"{workflow_id}/{index}/1/t{index}"


def _signal_order(plan: WorkflowPlan) -> list[tuple[str, int]]:
    """Senders take turns; seq counts per sender (as the workload sends them)."""
    sent: dict[str, int] = {}
    order = []
    for i in range(plan.signals):
        sender = SENDERS[i % len(SENDERS)]
        order.append((sender, sent.get(sender, 0)))
        sent[sender] = sent.get(sender, 0) + 1
    return order


def _request(workflow_id: str, sender: str, seq: int) -> str:
    return f"signal-{workflow_id}-{sender}-{seq}"


def _clean_history(plan: WorkflowPlan, result: dict[str, Any]) -> list[Event]:
    h, wid = _History(plan), plan.workflow_id
    completed = h.workflow_task()
    for index in range(plan.sequential):
        h.close_activity(h.schedule(index, completed), _token(wid, index))
        completed = h.workflow_task()
    parallel = range(plan.sequential, plan.activity_count)
    for scheduled, index in [(h.schedule(i, completed), i) for i in parallel]:
        h.close_activity(scheduled, _token(wid, index))
    if plan.parallel:
        completed = h.workflow_task()
    if plan.timer_ms:
        timer = h.add("TimerStarted", timer_id="1", start_to_fire_timeout_ms=plan.timer_ms,
                      workflow_task_completed_event_id=completed)
        h.add("TimerFired", timer_id="1", started_event_id=timer)
        completed = h.workflow_task()
    for sender, seq in _signal_order(plan):
        h.add("WorkflowExecutionSignaled", signal_name="deliver", input=[sender, seq],
              request_id=_request(wid, sender, seq))
    if plan.signals:
        completed = h.workflow_task()
    h.add("WorkflowExecutionCompleted", result=result, workflow_task_completed_event_id=completed)
    return h.events


def _world(plans: Sequence[WorkflowPlan] = (PLAN, OTHER)) -> Observations:
    """Clean evidence: every plan acked, run to completion, every signal acked once; one
    spare execution line (a legal retry whose result nobody saw); 3 replicas of 2 shards."""
    runs, results = [], []
    for plan in plans:
        wid = plan.workflow_id
        result = {"activities": [_token(wid, i) for i in range(plan.activity_count)],
                  "signals": [list(s) for s in _signal_order(plan)]}
        runs.append(RunRecord(workflow_id=wid, run_id=f"run-{wid}", status="COMPLETED",
                              result=result, pending_activity_count=0, pending_timer_count=0,
                              pending_workflow_task=False,
                              history=tuple(_clean_history(plan, result))))
        results.append(ClientResult(workflow_id=wid, run_id=f"run-{wid}", result=result,
                                    at_s=9.0))
    executions = [ActivityExecution(workflow_id=p.workflow_id, activity_index=i, attempt=1,
                                    token=_token(p.workflow_id, i), at_s=1.0 + i)
                  for p in plans for i in range(p.activity_count)]
    executions.append(ActivityExecution(workflow_id=plans[0].workflow_id, activity_index=0,
                                        attempt=2, token="unseen-retry", at_s=2.5))
    return Observations(
        starts=tuple(StartAck(plan=p, run_id=f"run-{p.workflow_id}",
                              request_id=f"start-{p.workflow_id}", acked_at_s=0.5)
                     for p in plans),
        signals=tuple(SignalAck(workflow_id=p.workflow_id, sender=sender, seq=seq,
                                request_id=_request(p.workflow_id, sender, seq),
                                acked_at_s=3.0 + k)
                      for p in plans for k, (sender, seq) in enumerate(_signal_order(p))),
        executions=tuple(executions), client_results=tuple(results), runs=tuple(runs),
        digests=tuple(ReplicaDigest(shard=shard, node=f"node-{n}", applied_index=40 + shard,
                                    digest=f"{shard:02d}" * 32)
                      for shard in (0, 1) for n in (1, 2, 3)),
        leader_samples=(LeaderSample(at_s=0.1, node="node-1", shard=0, term=1),
                        LeaderSample(at_s=0.2, node="node-1", shard=0, term=1),
                        LeaderSample(at_s=5.0, node="node-2", shard=0, term=2),
                        LeaderSample(at_s=0.1, node="node-3", shard=1, term=1)))


# -- doctoring ------------------------------------------------------------------------------------


def _run(obs: Observations, workflow_id: str = PLAN.workflow_id) -> RunRecord:
    return next(r for r in obs.runs if r.workflow_id == workflow_id)


def _edit_run(obs: Observations, edit: Callable[[RunRecord], RunRecord],
              workflow_id: str = PLAN.workflow_id) -> Observations:
    runs = tuple(edit(r) if r.workflow_id == workflow_id else r for r in obs.runs)
    return dataclasses.replace(obs, runs=runs)


def _edit_history(obs: Observations, edit: Callable[[list[Event]], None],
                  workflow_id: str = PLAN.workflow_id) -> Observations:
    """Apply `edit` to a deep copy of the run's history."""
    def doctored(run: RunRecord) -> RunRecord:
        history = copy.deepcopy(list(run.history))
        edit(history)
        return dataclasses.replace(run, history=tuple(history))
    return _edit_run(obs, doctored, workflow_id)


def _set_result(obs: Observations, result: Any) -> Observations:
    """The cluster and the client agree on a doctored result (so only it is at fault)."""
    obs = _edit_run(obs, lambda r: dataclasses.replace(r, result=result))
    return dataclasses.replace(obs, client_results=tuple(
        dataclasses.replace(c, result=result) if c.workflow_id == PLAN.workflow_id else c
        for c in obs.client_results))


REFERENCES = ("scheduled_event_id", "started_event_id", "workflow_task_completed_event_id")


def _renumber(history: list[Event]) -> None:
    """Ids 1..n again after an insert or removal; references follow the event they named
    (the first one carrying the old id, so a copy inserted later is never named)."""
    new_of: dict[int, int] = {}
    for position, event in enumerate(history, start=1):
        new_of.setdefault(event["event_id"], position)
    for position, event in enumerate(history, start=1):
        event["event_id"] = position
        attributes = event["attributes"]
        for key in REFERENCES:
            if attributes.get(key) in new_of:
                attributes[key] = new_of[attributes[key]]


def _first(history: list[Event], event_type: str) -> Event:
    return next(e for e in history if e["event_type"] == event_type)


def _insert_copy_before_close(event_type: str) -> Callable[[list[Event]], None]:
    """Repeat the first `event_type` event just before the close event, ids renumbered
    1..n (so only the repeat itself is wrong)."""
    def edit(history: list[Event]) -> None:
        history.insert(-1, copy.deepcopy(_first(history, event_type)))
        _renumber(history)
    return edit


def _found(violations: tuple[Violation, ...]) -> set[tuple[str, str]]:
    return {(v.invariant, v.subject) for v in violations}


def _details(violations: tuple[Violation, ...], invariant: str) -> str:
    return "\n".join(v.detail for v in violations if v.invariant == invariant)


# -- clean and real evidence ----------------------------------------------------------------------


def _real_observations() -> Observations:
    raw = json.loads(REAL_RUN.read_text())
    return Observations(
        starts=tuple(StartAck(plan=WorkflowPlan(**s["plan"]), run_id=s["run_id"],
                              request_id=s["request_id"], acked_at_s=s["acked_at_s"])
                     for s in raw["starts"]),
        signals=tuple(SignalAck(**s) for s in raw["signals"]),
        executions=tuple(ActivityExecution(**e) for e in raw["executions"]),
        client_results=tuple(ClientResult(**c) for c in raw["client_results"]),
        runs=tuple(RunRecord(**{**r, "history": tuple(r["history"])}) for r in raw["runs"]),
        digests=tuple(ReplicaDigest(**d) for d in raw["digests"]),
        leader_samples=tuple(LeaderSample(**s) for s in raw["leader_samples"]))


def test_clean_evidence_has_no_violation_and_every_invariant_is_counted() -> None:
    obs = _world()
    assert len(_run(obs).history) == 37 and len(obs.signals) == 3
    assert checker.check(obs) == ()
    counts = checker.invariant_counts(())
    assert list(counts) == [name for name, _ in checker.INVARIANTS]
    assert list(counts) == ["acked_start_completes", "no_lost_ack", "history_well_formed",
                            "activity_result_produced", "signals_exactly_once", "one_open_run",
                            "no_stuck_workflow", "replicas_agree", "one_leader_per_term"]
    assert set(counts.values()) == {0}


def test_a_real_chaos_run_has_no_violation() -> None:
    obs = _real_observations()
    # What makes it worth checking: an activity retried on the server (attempt 2 in its
    # ActivityTaskStarted, no event for attempt 1) and signals interleaved by two senders.
    assert any(e["event_type"] == "ActivityTaskStarted" and e["attributes"]["attempt"] == 2
               for run in obs.runs for e in run.history)
    assert {s.sender for s in obs.signals} == {"alpha", "beta"}
    assert checker.check(obs) == ()


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_a_recorded_golden_history_is_well_formed(path: Path) -> None:
    events = json.loads(path.read_text())["events"]
    status = STATUS_OF_CLOSE.get(events[-1]["event_type"], "RUNNING")
    assert history_problems(events, status=status) == []
    assert history_problems(events[:-1], status=status) != []  # and the check can fail


@settings(max_examples=60, deadline=None)
@given(st.lists(st.builds(WorkflowPlan, workflow_id=st.just(""),
                          sequential=st.integers(0, 3), parallel=st.integers(0, 3),
                          timer_ms=st.sampled_from([0, 10]), signals=st.integers(0, 4)),
                min_size=1, max_size=3))
def test_any_clean_workload_has_no_violation(plans: list[WorkflowPlan]) -> None:
    named = [dataclasses.replace(p, workflow_id=f"wf-{i}") for i, p in enumerate(plans)]
    assert checker.check(_world(named)) == ()


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_dropping_or_repeating_any_one_event_breaks_well_formedness(data: st.DataObject) -> None:
    obs = _world()
    position = data.draw(st.integers(0, len(_run(obs).history) - 1), label="position")
    repeat = data.draw(st.booleans(), label="repeat")

    def edit(history: list[Event]) -> None:
        if repeat:
            history.insert(position, copy.deepcopy(history[position]))
        else:
            del history[position]
    violations = checker.check(_edit_history(obs, edit))
    assert ("history_well_formed", RUN) in _found(violations)


# -- acknowledgements -----------------------------------------------------------------------------


def test_an_acked_start_with_no_run_is_a_lost_ack_and_never_completes() -> None:
    obs = _world()
    obs = dataclasses.replace(obs, runs=tuple(r for r in obs.runs if r is not _run(obs)))
    violations = checker.check(obs)
    assert _found(violations) == {("no_lost_ack", "wf-1"), ("acked_start_completes", "wf-1")}
    lost = _details(violations, "no_lost_ack")
    assert "start acknowledged with run run-wf-1 at 0.5 s" in lost
    assert "run run-wf-1 completed with" in lost and "the cluster has no such run" in lost
    assert "request signal-wf-1-beta-0" in lost  # the acked signals are gone with it
    assert "expected run run-wf-1 to be COMPLETED; the cluster has no such run" in _details(
        violations, "acked_start_completes")


def test_a_completion_the_cluster_forgot_after_telling_the_client_is_reported() -> None:
    obs = _edit_run(_world(), lambda r: dataclasses.replace(
        r, status="RUNNING", result=None, history=r.history[:-1], pending_workflow_task=True))
    violations = checker.check(obs)
    assert _found(violations) == {("no_lost_ack", "wf-1"), ("acked_start_completes", "wf-1")}
    assert "the cluster has RUNNING with None" in _details(violations, "no_lost_ack")
    assert "run run-wf-1 is RUNNING at quiescence, expected COMPLETED" in _details(
        violations, "acked_start_completes")


def test_a_client_told_a_result_the_cluster_does_not_have_is_reported() -> None:
    obs = _world()
    told = dataclasses.replace(obs.client_results[0], result={"activities": [], "signals": []})
    violations = checker.check(dataclasses.replace(
        obs, client_results=(told, *obs.client_results[1:])))
    assert _found(violations) == {("no_lost_ack", "wf-1")}
    assert "completed with {'activities': [], 'signals': []}; the cluster has COMPLETED with" \
        in _details(violations, "no_lost_ack")


def test_an_acked_signal_missing_from_the_history_is_reported() -> None:
    def drop_last_signal(history: list[Event]) -> None:
        last = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"][-1]
        history.remove(last)
        _renumber(history)
    obs = _edit_history(_world(), drop_last_signal)
    obs = _set_result(obs, {**_run(obs).result, "signals": [["alpha", 0], ["beta", 0]]})
    violations = checker.check(obs)
    assert _found(violations) == {("no_lost_ack", "wf-1"), ("acked_start_completes", "wf-1")}
    assert "signal alpha#1 (request signal-wf-1-alpha-1) acknowledged at 5.0 s" in _details(
        violations, "no_lost_ack")
    started = _details(violations, "acked_start_completes")
    assert "acknowledged signals ('alpha', 1) are not in its result" in started
    assert "expected at least 3" in started


def test_a_run_continued_as_new_is_followed_to_its_completion() -> None:
    obs = _world([PLAN])
    first = _run(obs)
    head = [copy.deepcopy(e) for e in first.history[:4]]
    head.append({"event_id": 5, "event_type": "WorkflowExecutionContinuedAsNew",
                 "timestamp": "2026-12-02T20:00:05.000+00:00",
                 "attributes": {"new_execution_run_id": "run-2"}})
    continued = dataclasses.replace(first, status="CONTINUED_AS_NEW", result=None,
                                    history=tuple(head))
    second = dataclasses.replace(first, run_id="run-2")
    obs = dataclasses.replace(obs, runs=(continued, second), client_results=tuple(
        dataclasses.replace(c, run_id="run-2") for c in obs.client_results))
    assert checker.check(obs) == ()
    broken = dataclasses.replace(obs, runs=(continued,), client_results=())
    violations = checker.check(broken)
    assert _found(violations) == {("acked_start_completes", "wf-1"), ("no_lost_ack", "wf-1")}
    assert "expected run run-2, continued from acked run run-wf-1, to be COMPLETED; the " \
        "cluster has no such run" in _details(violations, "acked_start_completes")


# -- history well-formedness ----------------------------------------------------------------------


def test_a_duplicated_event_is_reported() -> None:
    obs = _edit_history(_world(), lambda h: h.insert(2, copy.deepcopy(h[1])))
    violations = checker.check(obs)
    assert _found(violations) == {("history_well_formed", RUN)}
    detail = _details(violations, "history_well_formed")
    assert "event id 2 appears 2 times, expected once" in detail
    assert "position 3 holds event id 2, expected 3" in detail


def test_a_gap_in_event_ids_is_reported() -> None:
    def gap(history: list[Event]) -> None:
        history[-1]["event_id"] += 1
    violations = checker.check(_edit_history(_world(), gap))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert _details(violations, "history_well_formed") == (
        "event ids are not 1..37: position 37 holds event id 38, expected 37")


def test_a_close_event_that_is_not_last_is_reported() -> None:
    def swap(history: list[Event]) -> None:
        history[-2], history[-1] = history[-1], history[-2]
        _renumber(history)
    violations = checker.check(_edit_history(_world(), swap))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert _details(violations, "history_well_formed") == (
        "close event WorkflowExecutionCompleted is event 36 of 37, expected it last")


def test_two_close_events_or_one_on_an_open_run_are_reported() -> None:
    def close_twice(history: list[Event]) -> None:
        history.append({**copy.deepcopy(history[-1]), "event_id": len(history) + 1})
    violations = checker.check(_edit_history(_world(), close_twice))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "run is COMPLETED with 2 close events (WorkflowExecutionCompleted, " \
        "WorkflowExecutionCompleted), expected exactly one" in _details(
            violations, "history_well_formed")
    reopened = _edit_run(_world(), lambda r: dataclasses.replace(r, status="RUNNING",
                                                                 pending_workflow_task=True))
    detail = _details(checker.check(reopened), "history_well_formed")
    assert detail == "run is RUNNING but event 37 is close event WorkflowExecutionCompleted, " \
        "expected none"


def test_a_close_event_that_contradicts_the_status_is_reported() -> None:
    obs = _edit_run(_world(), lambda r: dataclasses.replace(r, status="FAILED"))
    violations = checker.check(obs)
    assert ("history_well_formed", RUN) in _found(violations)
    assert "run is FAILED but closed by WorkflowExecutionCompleted, expected " \
        "WorkflowExecutionFailed" in _details(violations, "history_well_formed")


def test_a_completed_activity_referring_to_an_unscheduled_event_is_reported() -> None:
    def misdirect(history: list[Event]) -> None:
        _first(history, "ActivityTaskCompleted")["attributes"]["scheduled_event_id"] = 999
    violations = checker.check(_edit_history(_world(), misdirect))
    # The completion names no activity, so its token is no activity index's either.
    assert _found(violations) == {("history_well_formed", RUN),
                                  ("activity_result_produced", "wf-1")}
    detail = _details(violations, "history_well_formed")
    assert "ActivityTaskCompleted (event 7) refers to scheduled event 999, expected an " \
        "earlier ActivityTaskScheduled" in detail
    assert "ActivityTaskStarted (event 6) for the activity scheduled at event 5 has no close " \
        "event" in detail


def test_an_activity_closed_twice_or_started_twice_is_reported() -> None:
    violations = checker.check(_edit_history(
        _world(), _insert_copy_before_close("ActivityTaskCompleted")))
    # The repeat's result is a real token: only the shape is wrong.
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "ActivityTaskCompleted (event 37) for the activity scheduled at event 5, which " \
        "already closed at event 7" in _details(violations, "history_well_formed")

    def start_twice(history: list[Event]) -> None:
        history.insert(6, copy.deepcopy(history[5]))  # a second Started, attempt 1 again
        _renumber(history)
        _first(history, "ActivityTaskCompleted")["attributes"]["started_event_id"] = 7
    violations = checker.check(_edit_history(_world(), start_twice))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "activity scheduled at event 5 started at events 6 and 7, expected at most once" \
        in _details(violations, "history_well_formed")


def test_a_close_naming_the_wrong_started_event_is_reported() -> None:
    def misname(history: list[Event]) -> None:
        _first(history, "ActivityTaskCompleted")["attributes"]["started_event_id"] = 0
    violations = checker.check(_edit_history(_world(), misname))
    assert _found(violations) == {("history_well_formed", RUN)}
    assert "ActivityTaskCompleted (event 7) has started_event_id 0, expected 6" in _details(
        violations, "history_well_formed")


def test_a_timer_fired_twice_or_for_no_timer_is_reported() -> None:
    violations = checker.check(_edit_history(_world(), _insert_copy_before_close("TimerFired")))
    assert _found(violations) == {("history_well_formed", RUN)}
    detail = _details(violations, "history_well_formed")
    assert "timer started at event 26 ended at events 27 and 37 (TimerFired), expected once" \
        in detail

    def orphan(history: list[Event]) -> None:
        _first(history, "TimerFired")["attributes"]["started_event_id"] = 3
    detail = _details(checker.check(_edit_history(_world(), orphan)), "history_well_formed")
    assert detail == "TimerFired (event 27) refers to started event 3, expected an earlier " \
        "TimerStarted"


# -- activity results -----------------------------------------------------------------------------


def test_an_activity_result_no_execution_produced_is_reported() -> None:
    obs = _world()
    token = _token("wf-1", 3)
    obs = dataclasses.replace(obs, executions=tuple(
        e for e in obs.executions if e.token != token))
    violations = checker.check(obs)
    assert _found(violations) == {("activity_result_produced", "wf-1"),
                                  ("acked_start_completes", "wf-1")}
    detail = _details(violations, "activity_result_produced")
    assert f"activity '3' completed with '{token}', expected a token" in detail
    assert f"run run-wf-1's result has '{token}' for activity 3" in detail
    assert "activity indexes 3 of 4 have no execution in the log" in detail
    assert "tokens at indexes 3 were not produced" in _details(
        violations, "acked_start_completes")


def test_a_token_of_another_activity_index_is_reported() -> None:
    obs = _world()
    swapped = list(_run(obs).result["activities"])
    swapped[0], swapped[1] = swapped[1], swapped[0]
    violations = checker.check(_set_result(obs, {**_run(obs).result, "activities": swapped}))
    assert _found(violations) == {("activity_result_produced", "wf-1"),
                                  ("acked_start_completes", "wf-1")}
    assert "result has 'wf-1/1/1/t1' for activity 0" in _details(
        violations, "activity_result_produced")
    assert "tokens at indexes 0, 1 were not produced" in _details(
        violations, "acked_start_completes")


def test_a_result_with_too_few_tokens_is_reported() -> None:
    obs = _world()
    short = {**_run(obs).result, "activities": _run(obs).result["activities"][:2]}
    violations = checker.check(_set_result(obs, short))
    assert _found(violations) == {("acked_start_completes", "wf-1")}
    assert "expected a list of 4 tokens" in _details(violations, "acked_start_completes")


# -- signals --------------------------------------------------------------------------------------


def test_a_signal_delivered_twice_is_reported() -> None:
    obs = _edit_history(_world(), _insert_copy_before_close("WorkflowExecutionSignaled"))
    violations = checker.check(obs)
    assert _found(violations) == {("signals_exactly_once", "wf-1")}
    detail = _details(violations, "signals_exactly_once")
    assert "acknowledged signal request signal-wf-1-alpha-0 delivered 2 times" in detail
    assert "history: signal alpha#0 appears 2 times" in detail


def test_signals_out_of_order_per_sender_in_history_are_reported() -> None:
    def swap_alphas(history: list[Event]) -> None:
        alphas = [e for e in history if e["event_type"] == "WorkflowExecutionSignaled"
                  and e["attributes"]["input"][0] == "alpha"]
        alphas[0]["attributes"], alphas[1]["attributes"] = (alphas[1]["attributes"],
                                                           alphas[0]["attributes"])
    violations = checker.check(_edit_history(_world(), swap_alphas))
    assert _found(violations) == {("signals_exactly_once", "wf-1")}
    detail = _details(violations, "signals_exactly_once")
    assert "run run-wf-1 history: signal alpha#0 comes after alpha#1" in detail
    assert "are not the first 3 signals of its history" in detail


def test_signals_out_of_order_or_repeated_in_the_result_are_reported() -> None:
    obs = _world()
    reordered = {**_run(obs).result, "signals": [["alpha", 1], ["beta", 0], ["alpha", 0]]}
    violations = checker.check(_set_result(obs, reordered))
    assert _found(violations) == {("signals_exactly_once", "wf-1")}
    assert "result: signal alpha#0 comes after alpha#1" in _details(
        violations, "signals_exactly_once")
    repeated = {**_run(obs).result,
                "signals": [["alpha", 0], ["beta", 0], ["alpha", 1], ["alpha", 1]]}
    detail = _details(checker.check(_set_result(obs, repeated)), "signals_exactly_once")
    assert "result: signal alpha#1 appears 2 times, expected at most once" in detail


def test_an_acked_signal_delivered_with_other_input_is_reported() -> None:
    def corrupt(history: list[Event]) -> None:
        _first(history, "WorkflowExecutionSignaled")["attributes"]["input"] = ["alpha", 7]
    obs = _edit_history(_world(), corrupt)
    violations = checker.check(_set_result(obs, {
        **_run(obs).result, "signals": [["alpha", 7], ["beta", 0], ["alpha", 1]]}))
    assert ("signals_exactly_once", "wf-1") in _found(violations)
    assert "signal request signal-wf-1-alpha-0 has input ['alpha', 7], expected " \
        "['alpha', 0]" in _details(violations, "signals_exactly_once")


def test_an_unacknowledged_signal_is_legal_once_but_not_twice() -> None:
    def extra(history: list[Event]) -> None:
        signal = copy.deepcopy(_first(history, "WorkflowExecutionSignaled"))
        signal["attributes"] = {**signal["attributes"], "input": ["gamma", 0],
                                "request_id": "never-acked"}
        history.insert(-1, signal)
        _renumber(history)
    once = _edit_history(_world(), extra)
    assert checker.check(once) == ()
    twice = _edit_history(once, extra)
    detail = _details(checker.check(twice), "signals_exactly_once")
    assert "unacknowledged signal request never-acked delivered 2 times" in detail


# -- open runs ------------------------------------------------------------------------------------


def test_an_acked_run_left_running_with_nothing_pending_is_stuck() -> None:
    obs = _edit_run(_world(), lambda r: dataclasses.replace(
        r, status="RUNNING", result=None, history=r.history[:-1]))
    obs = dataclasses.replace(obs, client_results=obs.client_results[1:])
    violations = checker.check(obs)
    assert _found(violations) == {("no_stuck_workflow", RUN), ("acked_start_completes", "wf-1")}
    assert "RUNNING at quiescence with 36 events and no pending workflow task, activity or " \
        "timer" in _details(violations, "no_stuck_workflow")


def test_two_open_runs_of_one_id_are_reported() -> None:
    obs = _world()
    fresh = dataclasses.replace(_run(obs), status="RUNNING", result=None,
                                history=_run(obs).history[:2], pending_workflow_task=True)
    extra = (dataclasses.replace(fresh, run_id="run-b"), dataclasses.replace(fresh, run_id="run-c"))
    violations = checker.check(dataclasses.replace(obs, runs=obs.runs + extra))
    assert _found(violations) == {("one_open_run", "wf-1")}
    assert _details(violations, "one_open_run") == (
        "2 RUNNING runs ('run-b', 'run-c'), expected at most one")


# -- replicas and leaders -------------------------------------------------------------------------


def test_diverging_replica_digests_are_reported() -> None:
    obs = _world()
    bad = dataclasses.replace(obs.digests[4], digest="ff" * 32)  # shard 1, node-2
    violations = checker.check(dataclasses.replace(
        obs, digests=(*obs.digests[:4], bad, *obs.digests[5:])))
    assert _found(violations) == {("replicas_agree", "shard 1")}
    assert _details(violations, "replicas_agree") == (
        "different digests at applied index 41 (node-1=010101010101, node-2=ffffffffffff, "
        "node-3=010101010101), expected one")


def test_replicas_at_different_applied_indexes_are_reported() -> None:
    obs = _world()
    behind = dataclasses.replace(obs.digests[0], applied_index=38, digest="ab" * 32)
    violations = checker.check(dataclasses.replace(obs, digests=(behind, *obs.digests[1:])))
    assert _found(violations) == {("replicas_agree", "shard 0")}
    assert _details(violations, "replicas_agree") == (
        "replicas at different applied indexes after convergence (node-1=38, node-2=40, "
        "node-3=40), expected one index")


def test_two_leaders_in_one_term_are_reported() -> None:
    obs = _world()
    usurper = LeaderSample(at_s=0.3, node="node-2", shard=0, term=1)
    violations = checker.check(dataclasses.replace(
        obs, leader_samples=(*obs.leader_samples, usurper)))
    assert _found(violations) == {("one_leader_per_term", "shard 0")}
    assert _details(violations, "one_leader_per_term") == (
        "term 1 has 2 leaders (node-1 from 0.1 s, node-2 from 0.3 s), expected at most one")


# -- the report's shape ---------------------------------------------------------------------------


def test_violations_are_sorted_deduplicated_counted_and_bounded() -> None:
    obs = _world()
    huge = {"activities": ["x" * 10_000] * 50, "signals": []}
    told = dataclasses.replace(obs.client_results[0], result=huge)
    obs = dataclasses.replace(obs, runs=(), client_results=(told, told))
    violations = checker.check(obs)
    assert list(violations) == sorted(violations)
    assert len(violations) == len(set(violations))
    lost = [v for v in violations if v.detail.startswith("the client was told")]
    assert len(lost) == 1  # two identical receipts, one violation
    assert all(len(v.detail) < 600 for v in violations)
    counts = checker.invariant_counts(violations)
    assert counts["no_lost_ack"] == 2 + 3 + 1  # 2 starts, 3 signals, 1 told result
    assert counts["acked_start_completes"] == 2
    assert sum(counts.values()) == len(violations)


def test_strange_evidence_is_reported_not_crashed_on() -> None:
    def garble(history: list[Event]) -> None:
        history[1]["event_id"] = [2]
        history[1]["attributes"] = None
        _first(history, "WorkflowExecutionSignaled")["attributes"]["input"] = [["alpha"], {}]
        _first(history, "ActivityTaskScheduled")["attributes"]["activity_id"] = "07"
    violations = checker.check(_edit_history(_world(), garble))
    assert {"history_well_formed", "activity_result_produced", "signals_exactly_once"} <= {
        v.invariant for v in violations}
    assert "position 2 holds event id [2], expected 2" in _details(
        violations, "history_well_formed")
    assert "activity '07' completed" in _details(violations, "activity_result_produced")
