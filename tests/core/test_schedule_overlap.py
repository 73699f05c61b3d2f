"""Goal: a schedule's overlap decisions follow the rules of `schedule_overlap.py` for every
policy: what starts, what is buffered, skipped, cancelled or terminated, when the running action
closes, and how `remaining_actions`, pause and `pause_on_failure` change that.

Method: decision tables comparing the whole step (orders and new state), and a hypothesis walk
of random due/close sequences checking the invariants (at most one run unless ALLOW_ALL, the
buffer bound, no action started twice, remaining actions never below zero).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.protocol.schedules import OverlapPolicy
from raftflow.shards.core.schedule_overlap import (
    ActionOrigin,
    ActionOutcome,
    ActionsState,
    OverlapStep,
    PendingAction,
    on_closed,
    resume,
    take_due,
    with_state,
)

P = OverlapPolicy


def action(n: int, policy: OverlapPolicy = P.SKIP,
           origin: ActionOrigin = ActionOrigin.SCHEDULED) -> PendingAction:
    return PendingAction(nominal_ms=n * 1000, actual_ms=n * 1000, workflow_id=f"w{n}",
                         overlap=policy, origin=origin)


def ids(step: OverlapStep) -> tuple[list[str], list[str]]:
    """(started, buffered) workflow ids."""
    return ([a.workflow_id for a in step.start],
            [a.workflow_id for a in step.state.buffered])


# Three actions due at once, nothing running: the first starts; the others by policy.
@pytest.mark.parametrize(("policy", "started", "buffered", "skipped", "cancel", "terminate"), [
    (P.SKIP, ["w1"], [], 2, [], []),
    (P.BUFFER_ONE, ["w1"], ["w2"], 1, [], []),
    (P.BUFFER_ALL, ["w1"], ["w2", "w3"], 0, [], []),
    (P.CANCEL_OTHER, ["w3"], [], 2, [], []),  # each would stop the one before: the last
    (P.TERMINATE_OTHER, ["w3"], [], 2, [], []),
    (P.ALLOW_ALL, ["w1", "w2", "w3"], [], 0, [], []),
])
def test_a_burst_of_due_actions(policy: OverlapPolicy, started: list[str], buffered: list[str],
                                skipped: int, cancel: list[str], terminate: list[str]) -> None:
    step = take_due(ActionsState(), (action(1, policy), action(2, policy), action(3, policy)))
    assert ids(step) == (started, buffered)
    assert step.skipped == skipped
    assert list(step.cancel) == cancel and list(step.terminate) == terminate
    assert step.state.running == tuple(started)


# One action due while w0 runs.
@pytest.mark.parametrize(("policy", "started", "buffered", "skipped", "cancel", "terminate"), [
    (P.SKIP, [], [], 1, [], []),
    (P.BUFFER_ONE, [], ["w1"], 0, [], []),
    (P.BUFFER_ALL, [], ["w1"], 0, [], []),
    (P.CANCEL_OTHER, [], ["w1"], 0, ["w0"], []),
    (P.TERMINATE_OTHER, [], ["w1"], 0, [], ["w0"]),
    (P.ALLOW_ALL, ["w1"], [], 0, [], []),
])
def test_an_action_due_while_one_runs(policy: OverlapPolicy, started: list[str],
                                      buffered: list[str], skipped: int, cancel: list[str],
                                      terminate: list[str]) -> None:
    step = take_due(ActionsState(running=("w0",)), (action(1, policy),))
    assert ids(step) == (started, buffered) and step.skipped == skipped
    assert list(step.cancel) == cancel and list(step.terminate) == terminate


@pytest.mark.parametrize("policy", [P.BUFFER_ONE, P.BUFFER_ALL, P.CANCEL_OTHER,
                                    P.TERMINATE_OTHER])
def test_the_buffered_action_starts_when_the_running_one_closes(policy: OverlapPolicy) -> None:
    waiting = take_due(ActionsState(running=("w0",)), (action(1, policy),)).state
    step = on_closed(waiting, "w0", ActionOutcome.COMPLETED, pause_on_failure=False)
    assert ids(step) == (["w1"], []) and step.state.running == ("w1",)


def test_buffer_all_starts_one_at_a_time() -> None:
    state = take_due(ActionsState(running=("w0",)),
                     tuple(action(n, P.BUFFER_ALL) for n in (1, 2, 3))).state
    started = []
    for closing in ("w0", "w1", "w2", "w3"):
        step = on_closed(state, closing, ActionOutcome.COMPLETED, pause_on_failure=False)
        started += [a.workflow_id for a in step.start]
        state = step.state
    assert started == ["w1", "w2", "w3"] and state == ActionsState()


def test_a_close_the_schedule_does_not_track_changes_nothing() -> None:
    state = ActionsState(running=("w1",), buffered=(action(2, P.BUFFER_ONE),))
    step = on_closed(state, "w9", ActionOutcome.FAILED, pause_on_failure=True)
    assert step == OverlapStep(state=state)


def test_remaining_actions_count_down_scheduled_actions_only() -> None:
    state = ActionsState(limited_actions=True, remaining_actions=2)
    step = take_due(state, (action(1, P.ALLOW_ALL), action(2, P.ALLOW_ALL),
                            action(3, P.ALLOW_ALL),
                            action(4, P.ALLOW_ALL, ActionOrigin.TRIGGERED),
                            action(5, P.ALLOW_ALL, ActionOrigin.BACKFILL)))
    assert ids(step)[0] == ["w1", "w2", "w4", "w5"]
    assert step.not_taken == 1 and step.state.remaining_actions == 0


def test_a_paused_schedule_takes_only_manual_actions() -> None:
    paused = ActionsState(paused=True)
    step = take_due(paused, (action(1), action(2, origin=ActionOrigin.TRIGGERED)))
    assert ids(step) == (["w2"], []) and step.not_taken == 1


def test_pause_on_failure_pauses_and_drops_the_buffered_scheduled_action() -> None:
    state = ActionsState(running=("w0",), buffered=(action(1, P.BUFFER_ONE),))
    step = on_closed(state, "w0", ActionOutcome.FAILED, pause_on_failure=True)
    assert step.paused_by_failure and step.state.paused
    assert step.start == () and step.not_taken == 1 and step.state.buffered == ()


@pytest.mark.parametrize(("outcome", "pauses"), [
    (ActionOutcome.COMPLETED, False), (ActionOutcome.FAILED, True),
    (ActionOutcome.TIMED_OUT, True), (ActionOutcome.CANCELED, False),
    (ActionOutcome.TERMINATED, False), (ActionOutcome.CONTINUED_AS_NEW, False),
])
def test_which_outcomes_pause(outcome: ActionOutcome, pauses: bool) -> None:
    step = on_closed(ActionsState(running=("w0",)), "w0", outcome, pause_on_failure=True)
    assert step.state.paused is pauses and step.paused_by_failure is pauses
    assert not on_closed(ActionsState(running=("w0",)), "w0", outcome,
                         pause_on_failure=False).state.paused


def test_unpause_then_resume_starts_a_buffered_action() -> None:
    state = ActionsState(paused=True, buffered=(action(1, P.BUFFER_ALL),))
    assert resume(state).start == ()  # still paused: dropped, not started
    step = resume(with_state(state, paused=False))
    assert ids(step) == (["w1"], [])


def test_a_burst_while_one_runs_stops_it_once_and_waits_with_the_last() -> None:
    step = take_due(ActionsState(running=("w0",)),
                    (action(1, P.TERMINATE_OTHER), action(2, P.TERMINATE_OTHER)))
    assert ids(step) == ([], ["w2"]) and step.terminate == ("w0",) and step.skipped == 1


def test_the_same_action_twice_runs_once() -> None:
    step = take_due(ActionsState(), (action(1, P.ALLOW_ALL), action(1, P.ALLOW_ALL)))
    assert ids(step) == (["w1"], []) and step.skipped == 1


# --- Invariants under random sequences ------------------------------------------------------------

events = st.lists(st.one_of(
    st.tuples(st.just("due"), st.sampled_from(list(P)), st.sampled_from(list(ActionOrigin))),
    st.tuples(st.just("close"), st.integers(0, 3), st.sampled_from(list(ActionOutcome))),
    st.tuples(st.just("pause"), st.booleans(), st.just(None)),
), max_size=40)


@settings(max_examples=300, deadline=None)
@given(sequence=events, limited=st.booleans(), budget=st.integers(0, 5),
       pause_on_failure=st.booleans())
def test_invariants_hold_for_any_sequence(sequence: list[tuple[str, object, object]],
                                          limited: bool, budget: int,
                                          pause_on_failure: bool) -> None:
    state = ActionsState(limited_actions=limited, remaining_actions=budget)
    started: list[str] = []
    for n, (kind, first, second) in enumerate(sequence):
        if kind == "due":
            assert isinstance(first, OverlapPolicy) and isinstance(second, ActionOrigin)
            step = take_due(state, (action(n, first, second),))
        elif kind == "close":
            assert isinstance(first, int) and isinstance(second, ActionOutcome)
            if not state.running:
                continue
            closing = state.running[first % len(state.running)]
            step = on_closed(state, closing, second, pause_on_failure=pause_on_failure)
        else:
            step = resume(with_state(state, paused=bool(first)))
        started += [a.workflow_id for a in step.start]
        before = state
        state = step.state
        assert state.remaining_actions >= 0
        assert not limited or before.remaining_actions - state.remaining_actions == sum(
            a.origin is ActionOrigin.SCHEDULED for a in step.start)
        assert set(step.cancel) | set(step.terminate) <= set(before.running)
        allow_all = any(a.overlap is P.ALLOW_ALL for a in step.start)
        assert allow_all or len(state.running) <= max(1, len(before.running))
        assert not (state.buffered and not state.running) or all(
            a.origin is ActionOrigin.SCHEDULED for a in state.buffered)
    assert len(started) == len(set(started))
