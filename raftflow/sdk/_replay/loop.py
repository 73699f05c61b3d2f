"""Theory of operation: a deterministic asyncio event loop for one workflow run.

Workflow code is ordinary `async` Python using real `asyncio.Future`s and `asyncio.Task`s
(so `asyncio.gather`, `asyncio.wait_for` and `asyncio.CancelledError` behave as users expect),
but they are bound to this loop, never to the host's. The loop has no clock and no IO: it runs
ready callbacks in FIFO order when the runner calls `drain()`, and stops when none is left.
The only ways to wake it are history events the runner applies (which resolve futures) and
`call_at`/`call_later`, which become durable timers (StartTimer commands) through the
`TimerPort` the runtime provides; `time()` is workflow time, from history. Same history in,
same callbacks in the same order out: that is the whole determinism argument.

`drain()` installs this loop as the thread's running loop for its duration and restores the
previous one (the worker calls the runner from inside its own asyncio loop).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol, TypeVar, TypeVarTuple

from raftflow.sdk._replay import limits

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

log = logging.getLogger(__name__)


class TimerPort(Protocol):
    """How the loop asks the runtime for durable timers."""

    def start_timer(self, duration_ms: int, fire: Callable[[], None]) -> object: ...

    def cancel_timer(self, timer: object) -> None: ...


class WorkflowStuckError(RuntimeError):
    """One activation ran more callbacks than CALLBACKS_PER_ACTIVATION_MAX: the workflow code
    loops without waiting on anything durable (e.g. `while True: await asyncio.sleep(0)`)."""


class _DurableTimerHandle(asyncio.TimerHandle):
    """A `call_at` handle backed by a durable timer; cancelling it cancels the timer."""

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...],
                 loop: WorkflowLoop, context: contextvars.Context | None) -> None:
        super().__init__(when, callback, args, loop, context)
        self.timer: object = None
        self.port: TimerPort | None = None

    def cancel(self) -> None:
        if not self.cancelled() and self.port is not None and self.timer is not None:
            self.port.cancel_timer(self.timer)
        super().cancel()


class WorkflowLoop(asyncio.AbstractEventLoop):
    """The event loop of one workflow run (see module docstring). Not thread-safe."""

    def __init__(self, clock: Callable[[], float], timers: TimerPort) -> None:
        self._clock = clock
        self.timer_port = timers
        self._ready: deque[tuple[asyncio.Handle, Callable[..., object], tuple[Any, ...],
                                 contextvars.Context]] = deque()
        self._running = False
        self.stop_requested = False

    # -- the parts of AbstractEventLoop that Futures, Tasks and asyncio helpers use --------

    def time(self) -> float:
        return self._clock()

    def call_soon(self, callback: Callable[[*_Ts], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        ctx = context if context is not None else contextvars.copy_context()
        handle = asyncio.Handle(callback, args, self, ctx)
        self._ready.append((handle, callback, args, ctx))
        return handle

    def call_later(self, delay: float, callback: Callable[[*_Ts], object],
                   *args: *_Ts,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[[*_Ts], object], *args: *_Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        ctx = context if context is not None else contextvars.copy_context()
        handle = _DurableTimerHandle(when, callback, args, self, ctx)
        delay_ms = round((when - self.time()) * 1000)
        if delay_ms <= 0:
            self._ready.append((handle, callback, args, ctx))
            return handle

        def fire() -> None:
            if not handle.cancelled():
                self._ready.append((handle, callback, args, ctx))

        handle.port = self.timer_port
        handle.timer = self.timer_port.start_timer(delay_ms, fire)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T], *,
                    name: str | None = None,
                    context: contextvars.Context | None = None) -> asyncio.Task[_T]:
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return False

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # Reached for "exception never retrieved" on futures the workflow abandoned (e.g. an
        # activity whose waiter was cancelled); harmless, and it repeats on every replay.
        log.debug("workflow loop: %s", context.get("message"))

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.call_exception_handler(context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """asyncio.TimerHandle.cancel calls this; durable handles cancel themselves."""

    # -- driving ---------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self._ready)

    def drain(self, after_each: Callable[[], bool]) -> None:
        """Run ready callbacks until none is left or `after_each()` returns True (stop).

        Raises WorkflowStuckError past CALLBACKS_PER_ACTIVATION_MAX; exceptions escaping a
        callback propagate (they are SDK bugs: Tasks catch user exceptions themselves).
        """
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        ran = 0
        try:
            while self._ready:
                handle, callback, args, ctx = self._ready.popleft()
                if handle.cancelled():
                    continue
                ran += 1
                if ran > limits.CALLBACKS_PER_ACTIVATION_MAX:
                    raise WorkflowStuckError(
                        f"workflow ran {ran} callbacks without waiting on history "
                        f"(CALLBACKS_PER_ACTIVATION_MAX={limits.CALLBACKS_PER_ACTIVATION_MAX})")
                ctx.run(callback, *args)
                if after_each():
                    break
        finally:
            self._running = False
            asyncio.events._set_running_loop(previous)

    def enter(self) -> Callable[[], None]:
        """Install this loop as the running loop outside `drain` (applying history events,
        checking conditions, queries); returns the undo function."""
        previous = asyncio.events._get_running_loop()
        was_running = self._running
        asyncio.events._set_running_loop(self)
        self._running = True

        def undo() -> None:
            self._running = was_running
            asyncio.events._set_running_loop(previous)

        return undo
