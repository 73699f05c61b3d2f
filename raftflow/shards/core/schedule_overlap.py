"""What a schedule does with a due action, and when one of its actions closes. Pure.

Theory of operation. A schedule's actions are runs it started and has not seen close
(`running`, their workflow ids) and actions waiting for those to close (`buffered`). Two
decisions change them, each a function from the old `ActionsState` to an `OverlapStep`:

`take_due(state, due)`: for each due action in order, by its overlap policy (Temporal's):
- scheduled actions are not taken while the schedule is paused or its limited actions are used
  up (they are dropped: a paused schedule lets its times pass); triggered and backfilled ones
  are, and do not use up `remaining_actions` (as in Temporal);
- ALLOW_ALL starts it; otherwise, with nothing running and nothing buffered, it starts;
- SKIP drops it (counted in `skipped`) while something runs;
- BUFFER_ONE buffers it if nothing is buffered yet, else drops it;
- BUFFER_ALL buffers it (at most SCHEDULE_BUFFERED_ACTIONS_MAX; beyond, dropped);
- CANCEL_OTHER / TERMINATE_OTHER ask the running runs to cancel / terminate and buffer it in
  place of any buffered action (only the latest matters; of a burst due at once only the last
  is considered); it starts once they closed, so at most one action runs under every policy
  but ALLOW_ALL.

`on_closed(state, workflow_id, outcome, pause_on_failure)`: the run leaves `running`; a failed
or timed-out run pauses the schedule when `pause_on_failure`; then, while nothing runs, the
first buffered action starts (or is dropped if it is scheduled and the schedule is paused or
out of actions). A close of a run the schedule does not track changes nothing (a retried or
stale notice).

The step lists what to do (start, cancel, terminate) and the new state; the core commits the
state and turns the orders into outbox messages in the same apply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from raftflow.protocol.schedules import SCHEDULE_BUFFERED_ACTIONS_MAX, OverlapPolicy


class ActionOrigin(StrEnum):
    SCHEDULED = "scheduled"  # from the spec's times
    TRIGGERED = "triggered"  # "trigger now"
    BACKFILL = "backfill"


class ActionOutcome(StrEnum):
    """How an action's run closed (its workflow's close status)."""

    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    CONTINUED_AS_NEW = "continued_as_new"


# Outcomes that pause a schedule with `pause_on_failure` (Temporal's: failures and timeouts;
# a cancel or terminate was asked for by someone).
_FAILURES = frozenset({ActionOutcome.FAILED, ActionOutcome.TIMED_OUT})
_REPLACING = frozenset({OverlapPolicy.CANCEL_OTHER, OverlapPolicy.TERMINATE_OTHER})


@dataclass(frozen=True, slots=True)
class PendingAction:
    """An action due or buffered. `workflow_id` is `action_workflow_id(prefix, nominal_ms)`."""

    nominal_ms: int
    actual_ms: int
    workflow_id: str
    overlap: OverlapPolicy
    origin: ActionOrigin = ActionOrigin.SCHEDULED


@dataclass(frozen=True, slots=True)
class ActionsState:
    running: tuple[str, ...] = ()
    buffered: tuple[PendingAction, ...] = ()
    paused: bool = False
    limited_actions: bool = False
    remaining_actions: int = 0


@dataclass(frozen=True, slots=True)
class OverlapStep:
    """What one decision produced. `state` replaces the schedule's; `start` are the actions to
    start now, in order; `cancel` / `terminate` the running workflow ids to stop; `skipped`
    counts actions dropped by SKIP / BUFFER_ONE / a full buffer, `not_taken` those dropped
    because the schedule was paused or out of actions; `paused_by_failure` is set when this
    step paused the schedule (the core writes a note saying why)."""

    state: ActionsState
    start: tuple[PendingAction, ...] = ()
    cancel: tuple[str, ...] = ()
    terminate: tuple[str, ...] = ()
    skipped: int = 0
    not_taken: int = 0
    paused_by_failure: bool = False


class _Step:
    """The step being built: a mutable scratchpad, frozen into an OverlapStep at the end."""

    def __init__(self, state: ActionsState) -> None:
        self.running = list(state.running)
        self.buffered = list(state.buffered)
        self.paused = state.paused
        self.limited = state.limited_actions
        self.remaining = state.remaining_actions
        self.start: list[PendingAction] = []
        self.cancel: list[str] = []
        self.terminate: list[str] = []
        self.skipped = 0
        self.not_taken = 0
        self.paused_by_failure = False

    def may_take(self, action: PendingAction) -> bool:
        if action.origin is not ActionOrigin.SCHEDULED:
            return True
        return not self.paused and (not self.limited or self.remaining > 0)

    def do_start(self, action: PendingAction) -> None:
        assert action.workflow_id not in self.running, action
        if action.origin is ActionOrigin.SCHEDULED and self.limited:
            assert self.remaining > 0
            self.remaining -= 1
        self.running.append(action.workflow_id)
        self.start.append(action)

    def stop_running(self, orders: list[str]) -> None:
        orders.extend(w for w in self.running if w not in orders)

    def frozen(self) -> OverlapStep:
        state = ActionsState(running=tuple(self.running), buffered=tuple(self.buffered),
                             paused=self.paused, limited_actions=self.limited,
                             remaining_actions=self.remaining)
        assert len(state.buffered) <= SCHEDULE_BUFFERED_ACTIONS_MAX
        assert state.remaining_actions >= 0
        return OverlapStep(state=state, start=tuple(self.start), cancel=tuple(self.cancel),
                           terminate=tuple(self.terminate), skipped=self.skipped,
                           not_taken=self.not_taken, paused_by_failure=self.paused_by_failure)


def take_due(state: ActionsState, due: tuple[PendingAction, ...]) -> OverlapStep:
    """Decide each due action in order (the module docstring's rules)."""
    step = _Step(state)
    for action in _collapsed(step, due):
        _take_one(step, action)
    result = step.frozen()
    assert len(result.start) + result.skipped + result.not_taken <= len(due) + len(state.buffered)
    return result


def _collapsed(step: _Step, due: tuple[PendingAction, ...]) -> list[PendingAction]:
    """`due` with each run of consecutive CANCEL_OTHER (or TERMINATE_OTHER) actions cut to its
    last: each would stop the one before it, so starting the earlier ones is wasted work."""
    kept: list[PendingAction] = []
    for action in due:
        if (kept and action.overlap in _REPLACING and kept[-1].overlap is action.overlap
                and step.may_take(kept[-1])):
            kept[-1] = action
            step.skipped += 1
        else:
            kept.append(action)
    return kept


def _take_one(step: _Step, action: PendingAction) -> None:
    if not step.may_take(action):
        step.not_taken += 1
        return
    if action.workflow_id in step.running or any(
            b.workflow_id == action.workflow_id for b in step.buffered):
        step.skipped += 1  # the same action again (a trigger in the same second): one run
        return
    policy = action.overlap
    if policy is OverlapPolicy.ALLOW_ALL or (not step.running and not step.buffered):
        step.do_start(action)
    elif policy is OverlapPolicy.SKIP:
        step.skipped += 1
    elif policy is OverlapPolicy.BUFFER_ONE:
        if step.buffered:
            step.skipped += 1
        else:
            step.buffered.append(action)
    elif policy is OverlapPolicy.BUFFER_ALL:
        if len(step.buffered) >= SCHEDULE_BUFFERED_ACTIONS_MAX:
            step.skipped += 1
        else:
            step.buffered.append(action)
    else:
        assert policy in (OverlapPolicy.CANCEL_OTHER, OverlapPolicy.TERMINATE_OTHER), policy
        step.skipped += len(step.buffered)
        step.buffered = [action]
        step.stop_running(step.cancel if policy is OverlapPolicy.CANCEL_OTHER
                          else step.terminate)
        if not step.running:  # only buffered actions were in the way: start it now
            _start_buffered(step)


def on_closed(state: ActionsState, workflow_id: str, outcome: ActionOutcome, *,
              pause_on_failure: bool) -> OverlapStep:
    """The run `workflow_id` closed with `outcome` (the module docstring's rules)."""
    if workflow_id not in state.running:
        return OverlapStep(state=state)
    step = _Step(state)
    step.running.remove(workflow_id)
    if pause_on_failure and outcome in _FAILURES and not step.paused:
        step.paused = True
        step.paused_by_failure = True
    _start_buffered(step)
    result = step.frozen()
    assert workflow_id not in result.state.running
    return result


def _start_buffered(step: _Step) -> None:
    """While nothing runs, start the first buffered action (drop those that may not run)."""
    while not step.running and step.buffered:
        action = step.buffered.pop(0)
        if step.may_take(action):
            step.do_start(action)
        else:
            step.not_taken += 1


def with_state(state: ActionsState, *, paused: bool | None = None,
               limited_actions: bool | None = None,
               remaining_actions: int | None = None) -> ActionsState:
    """`state` after a user's update (pause, unpause, new action budget); buffered actions stay
    and start as runs close (call `resume` after an unpause to start one now)."""
    return replace(state,
                   paused=state.paused if paused is None else paused,
                   limited_actions=(state.limited_actions if limited_actions is None
                                    else limited_actions),
                   remaining_actions=(state.remaining_actions if remaining_actions is None
                                      else remaining_actions))


def resume(state: ActionsState) -> OverlapStep:
    """Start a buffered action if nothing runs (after an unpause or a larger action budget)."""
    step = _Step(state)
    _start_buffered(step)
    return step.frozen()
