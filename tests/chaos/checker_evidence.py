"""Clean chaos evidence built by hand, and the ways the checker tests doctor it.

Goal: one place that knows the engine's history shape, so each checker test can say only what
it breaks. Method: `_world(plans)` builds clean evidence (task boundaries, ActivityTaskStarted
written right before the activity's close, buffered signals, one close event last); the
`_edit_*`, `_set_result` and `_insert_copy_before_close` helpers doctor one piece of it, and
`_found` / `_details` reduce the checker's answer to (invariant, subject) pairs and details.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

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
