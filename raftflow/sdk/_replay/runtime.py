"""Theory of operation: the state of one workflow run between activations.

`Runtime` owns the workflow instance, its `WorkflowLoop`, the operations in flight (activities
by scheduled event id, timers by started event id, conditions, patches) and the commands the
code produced that history has not confirmed yet (`pending`, in production order). The runner
calls `activate(started_event, inputs, ...)` once per workflow task: inputs (activity results,
fired timers, signals, cancel requests) are applied in history order, each waking its waiters
through the loop's FIFO queue, then the loop runs until the code waits on something durable.

Every command-producing operation goes through `emit`; every history event that a command
wrote is checked by the runner against the head of `pending` (`pop_pending`). Two
cancellations never reach the server: cancelling an activity or timer whose command is still
unsent just withdraws the command, in replay exactly as the first time.

`workflow.py` reaches the runtime through the running loop (`current()`), so the public API
works only inside workflow code run by this machinery.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from raftflow.protocol.commands import StartChildWorkflowExecution, WorkflowCommand
from raftflow.protocol.events import (
    ActivityTaskScheduledEventAttributes,
    EventAttributes,
    HistoryEvent,
    MarkerRecordedEventAttributes,
    TimerStartedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from raftflow.protocol.events_children import (
    StartChildWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.events_external import (
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.updates import WorkflowUpdateResponse
from raftflow.sdk import errors
from raftflow.sdk._replay import commands, limits
from raftflow.sdk._replay.definition import WorkflowDefinition
from raftflow.sdk._replay.loop import WorkflowLoop


@dataclass(frozen=True, slots=True, kw_only=True)
class RunIds:
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str


class OpFuture(asyncio.Future[Any]):
    """A future whose cancellation (e.g. its awaiting task was cancelled) tells the runtime."""

    def __init__(self, loop: WorkflowLoop, on_cancel: Callable[[], None]) -> None:
        super().__init__(loop=loop)
        self._on_cancel = on_cancel

    def cancel(self, msg: Any | None = None) -> bool:
        if not self.done():
            self._on_cancel()
        return super().cancel(msg)


@dataclass(slots=True, eq=False)
class Activity:
    activity_id: str
    activity_type: str
    future: OpFuture | None = None
    scheduled_event_id: int = 0  # known once ActivityTaskScheduled is matched


@dataclass(slots=True, eq=False)
class Timer:
    timer_id: str
    fire: Callable[[], None]
    started_event_id: int = 0  # known once TimerStarted is matched
    done: bool = False


@dataclass(slots=True, eq=False)
class External:
    """A signal or cancel request sent to another workflow, waiting for its outcome event."""

    future: OpFuture | None = None
    initiated_event_id: int = 0  # known once its ...Initiated event is matched


@dataclass(slots=True, eq=False)
class Child:
    """A child workflow started by this run: `started` resolves with its run id (or fails),
    `result` with its result (or fails)."""

    workflow_id: str
    workflow_type: str
    started: OpFuture | None = None
    result: asyncio.Future[Any] | None = None
    run_id: str = ""
    initiated_event_id: int = 0  # known once its Initiated event is matched


@dataclass(slots=True, eq=False)
class Pending:
    """A produced command waiting for its history event; `sent` once returned to the worker."""

    command: WorkflowCommand
    op: Activity | Timer | External | Child | None = None
    sent: bool = False


@dataclass(slots=True)
class _Counters:
    activity: int = 0
    timer: int = 0


@dataclass(slots=True)
class RunState:
    started: WorkflowExecutionStartedEventAttributes | None = None
    now: datetime = datetime.fromtimestamp(0, UTC)  # replaced before any code runs
    history_length: int = 0
    replaying: bool = False
    cancel_requested: bool = False
    closed: bool = False
    in_query: bool = False


class Runtime:
    """One run's workflow state; see the module docstring."""

    def __init__(self, definition: WorkflowDefinition, ids: RunIds) -> None:
        self.definition = definition
        self.ids = ids
        # AbstractEventLoop's stubs mark every method abstract; at runtime they only raise
        # NotImplementedError, and workflow code never reaches the IO ones.
        self.loop = WorkflowLoop(  # type: ignore[abstract]
            clock=lambda: self.state.now.timestamp(), timers=self)
        self.state = RunState()
        self.instance: object | None = None
        self.main: asyncio.Task[Any] | None = None
        self.pending: list[Pending] = []
        self.activities: dict[int, Activity] = {}
        self.timers: dict[int, Timer] = {}
        self.externals: dict[int, External] = {}  # by initiated event id
        self.children: dict[int, Child] = {}  # by initiated event id
        self.conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.patches: dict[str, bool] = {}
        self.recorded: list[HistoryEvent] = []  # command events of the task being replayed
        self.task_failure: BaseException | None = None
        # The live task's answers to its updates (accepted or rejected), for the completion.
        self.update_responses: list[WorkflowUpdateResponse] = []
        self.delivered_updates: set[str] = set()  # ids whose handler started (or rejected)
        self.counters = _Counters()
        seed = hashlib.sha256(ids.run_id.encode()).digest()
        self.random = random.Random(int.from_bytes(seed[:8], "big"))

    # -- commands ------------------------------------------------------------------------

    def emit(self, command: WorkflowCommand,
             op: Activity | Timer | External | Child | None = None) -> Pending:
        if self.state.in_query:
            raise errors.QueryFailedError(
                f"a query handler may not issue {type(command).__name__}")
        if self.state.closed:
            raise errors.WorkflowTaskError("the workflow already closed")
        unsent = sum(1 for p in self.pending if not p.sent)
        if unsent >= limits.COMMANDS_PER_ACTIVATION_MAX:
            raise errors.WorkflowTaskError(
                f"more than COMMANDS_PER_ACTIVATION_MAX={limits.COMMANDS_PER_ACTIVATION_MAX} "
                "commands in one workflow task")
        pending = Pending(command, op)
        self.pending.append(pending)
        return pending

    def _withdraw(self, op: Activity | Timer | External | Child) -> bool:
        """Drop the unsent command of `op`; False if it was already sent."""
        for index, pending in enumerate(self.pending):
            if pending.op is op and not pending.sent:
                del self.pending[index]
                return True
        return False

    def _code_running(self) -> bool:
        # Cancellations count only while workflow code runs. A runner dropped from a cache
        # gets its coroutines closed by the garbage collector later, whose `finally` blocks
        # cancel timers: those must not touch anything.
        return self.loop.is_running() and not self.state.in_query

    def pop_pending(self) -> Pending | None:
        return self.pending.pop(0) if self.pending else None

    def take_unsent(self) -> list[WorkflowCommand]:
        out = [p.command for p in self.pending if not p.sent]
        for pending in self.pending:
            pending.sent = True
        return out

    # -- operations used by workflow.py ---------------------------------------------------

    def schedule_activity(self, activity_type: str, activity_id: str | None,
                          build: Callable[[str], WorkflowCommand]) -> OpFuture:
        self.counters.activity += 1
        op = Activity(activity_id or str(self.counters.activity), activity_type)
        op.future = OpFuture(self.loop, lambda: self._cancel_activity(op))
        self.emit(build(op.activity_id), op)
        return op.future

    def _cancel_activity(self, op: Activity) -> None:
        if not self._code_running() or self.state.closed or self._withdraw(op):
            return
        assert op.scheduled_event_id > 0, op
        self.emit(commands.request_cancel_activity(op.scheduled_event_id))

    def send_external(self, command: WorkflowCommand) -> OpFuture:
        """Signal or ask to cancel another workflow; the future resolves with the outcome.
        Cancelling it before the command was sent withdraws the command; once sent, the
        message goes out regardless (as in Temporal) and only the wait is abandoned."""
        op = External()
        op.future = OpFuture(self.loop, lambda: self._abandon(op))
        self.emit(command, op)
        return op.future

    def _abandon(self, op: External | Child) -> None:
        if self._code_running() and not self.state.closed:
            self._withdraw(op)

    def start_child(self, command: StartChildWorkflowExecution) -> Child:
        """Start a child; cancelling the start before it was sent withdraws it."""
        op = Child(command.workflow_id, command.workflow_type)
        op.started = OpFuture(self.loop, lambda: self._abandon(op))
        op.result = self.loop.create_future()
        self.emit(command, op)
        return op

    def start_timer(self, duration_ms: int, fire: Callable[[], None]) -> object:
        self.counters.timer += 1
        timer = Timer(str(self.counters.timer), fire)
        self.emit(commands.start_timer(timer.timer_id, duration_ms), timer)
        return timer

    def cancel_timer(self, timer: object) -> None:
        assert isinstance(timer, Timer), timer
        if timer.done or self.state.closed or not self._code_running():
            return
        timer.done = True
        if self._withdraw(timer):
            return
        self.timers.pop(timer.started_event_id, None)
        self.emit(commands.cancel_timer(timer.timer_id))

    def add_condition(self, fn: Callable[[], bool]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        self.conditions.append((fn, future))
        return future

    def check_conditions(self) -> bool:
        """Resolve the waiters whose condition now holds; True if any was resolved."""
        resolved = False
        undo = self.loop.enter()
        try:
            for fn, future in list(self.conditions):
                if not future.done():
                    try:
                        holds = fn()
                    except Exception as error:  # the waiter gets the error, as if it raised
                        future.set_exception(error)
                        resolved = True
                        continue
                    if not holds:
                        continue
                    future.set_result(None)
                    resolved = True
                self.conditions.remove((fn, future))
        finally:
            undo()
        return resolved

    def patched(self, patch_id: str, *, deprecated: bool) -> bool:
        if patch_id in self.patches:
            return self.patches[patch_id]
        if self.state.replaying:
            present = any(is_patch_marker(e.attributes, patch_id) for e in self.recorded)
        else:
            present = True
        if present:
            self.emit(commands.record_marker(limits.PATCH_MARKER_NAME, {"id": patch_id}))
        self.patches[patch_id] = present or deprecated
        return self.patches[patch_id]

    # -- confirmation of commands by history -----------------------------------------------

    def bind(self, event: HistoryEvent, pending: Pending) -> None:
        """History confirmed `pending`: learn the event id its later events will name."""
        op = pending.op
        match op, event.attributes:
            case Activity(), ActivityTaskScheduledEventAttributes():
                op.scheduled_event_id = event.event_id
                self.activities[event.event_id] = op
            case Timer(), TimerStartedEventAttributes():
                op.started_event_id = event.event_id
                self.timers[event.event_id] = op
            case External(), (SignalExternalWorkflowExecutionInitiatedEventAttributes()
                              | RequestCancelExternalWorkflowExecutionInitiatedEventAttributes()):
                op.initiated_event_id = event.event_id
                self.externals[event.event_id] = op
            case Child(), StartChildWorkflowExecutionInitiatedEventAttributes():
                op.initiated_event_id = event.event_id
                self.children[event.event_id] = op
            case _:
                assert op is None, (op, event)


def is_patch_marker(attributes: EventAttributes, patch_id: str) -> bool:
    if not isinstance(attributes, MarkerRecordedEventAttributes):
        return False
    details = payload_json(attributes.details)
    return (attributes.marker_name == limits.PATCH_MARKER_NAME
            and isinstance(details, dict) and details.get("id") == patch_id)
