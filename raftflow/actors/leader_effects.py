"""The leader's hands: acts on the orders of applied commands, and keeps the durable-timer wake-up.

Theory of operation. Effects are hints, state is truth (STYLE "Layering"): only a *ready*
leader acts, i.e. a replica that leads and whose own barrier of the current term has applied.
At that moment `become_ready` gets every order rebuilt from state, so nothing a previous leader
scheduled is forgotten (I4); after it, each applied entry's effects come incrementally.
`ArmTimer` orders never leave the actor: it keeps one wake-up, at the earliest time it has seen,
and then proposes `FireTimers` with its clock reading; each answer re-arms the next. Every
other order goes to the node's `EffectSink` (the task matcher).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

from raftflow.actors.clock import WallClock
from raftflow.actors.errors import NotLeaderError
from raftflow.actors.stats import ActorObserver, NoObserver
from raftflow.protocol.commands import Command, FireTimers
from raftflow.protocol.effects import ArmTimer, Effect
from raftflow.protocol.results import Result

# How soon a timer wake-up is retried when the mailbox was full or the proposal failed.
TIMER_RETRY_S = 0.1


class EffectSink(Protocol):
    """The node-level receiver of a leader's orders (task matcher, result waiters)."""

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None: ...

    def on_leadership(self, shard: int, is_leader: bool) -> None: ...


class LeaderEffects:
    """Runs one shard replica's leader-only effects. One event loop, no locks."""

    def __init__(self, *, shard: int, sink: EffectSink, clock: WallClock,
                 submit: Callable[[Command], asyncio.Future[Result]],
                 observer: ActorObserver | None = None) -> None:
        self._shard = shard
        self._observer: ActorObserver = observer or NoObserver()
        self._sink = sink
        self._clock = clock
        self._submit = submit  # the actor's own `submit`: raises NotLeaderError or when full
        self.ready = False
        self._timer_at_ms: int | None = None
        self._timer: asyncio.TimerHandle | None = None

    def stand_down(self) -> None:
        """Leadership changed, either way: act on nothing until the next own barrier applies."""
        self.ready = False
        self._cancel_timer()

    def report_follower(self) -> None:
        self._sink.on_leadership(self._shard, False)

    def become_ready(self, pending: Sequence[Effect]) -> None:
        """Our barrier applied: every earlier entry has applied here, `pending` is complete."""
        assert not self.ready
        self.ready = True
        self._sink.on_leadership(self._shard, True)
        self.act(pending)

    def act(self, effects: Sequence[Effect]) -> None:
        assert self.ready
        if not effects:
            return
        orders: list[Effect] = []
        for effect in effects:
            if isinstance(effect, ArmTimer):
                self.arm(effect.fire_at_ms)
            else:
                orders.append(effect)
        if orders:
            self._sink.on_effects(self._shard, orders)

    def arm(self, fire_at_ms: int) -> None:
        """Wake up at `fire_at_ms` unless an earlier wake-up is already set."""
        if self._timer_at_ms is not None and self._timer_at_ms <= fire_at_ms:
            return
        self._cancel_timer()
        self._timer_at_ms = fire_at_ms
        delay_s = max(0.0, (fire_at_ms - self._clock.now_ms()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._fire_timers)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at_ms = None

    def _fire_timers(self) -> None:
        due_ms = self._timer_at_ms
        assert due_ms is not None
        self._timer = None
        self._timer_at_ms = None
        if not self.ready:
            return
        try:
            future = self._submit(FireTimers(now_ms=self._clock.now_ms()))
        except NotLeaderError:
            return
        except Exception:  # mailbox full: try again shortly, the timers stay in state
            self._arm_retry()
            return
        future.add_done_callback(partial(self._after_fire, due_ms))

    def _after_fire(self, due_ms: int, future: asyncio.Future[Result]) -> None:
        if future.cancelled():
            return
        if future.exception() is None:
            # From when the earliest timer was due to its FireTimers applied and synced: the
            # latest any timer of this wake-up fired (one due later waited less).
            self._observer.record_timer_delay(
                self._shard, max(0, self._clock.now_ms() - due_ms) / 1000)
            return
        if self.ready:  # failed without losing leadership: wake up again soon
            self._arm_retry()

    def _arm_retry(self) -> None:
        self.arm(self._clock.now_ms() + int(TIMER_RETRY_S * 1000))
