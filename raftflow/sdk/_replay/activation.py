"""Theory of operation: one activation = one workflow task's worth of progress.

`activate` sets workflow time to the task's WorkflowTaskStarted time, applies the task's input
events in history order (each resolves a future or schedules a handler on the loop's FIFO
queue, so wake-ups happen in history order), then runs the loop until every coroutine waits on
history again, re-checking `wait_condition` predicates whenever the queue empties. When the
run coroutine ends, its outcome becomes the single close command, produced last; a signal
handler's failure closes the run the same way.

Outcome of an exception (`outcome`): ContinueAsNewError → continue-as-new; CancelledError after
a cancel request → CancelWorkflowExecution; a FailureError or an instance of the definition's
`failure_exception_types` → FailWorkflowExecution; anything else fails the workflow *task*
(the server retries it, so a fixed deployment can continue the run).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from raftflow.protocol.events import (
    ActivityTaskCanceledEventAttributes,
    ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes,
    ActivityTaskTimedOutEventAttributes,
    HistoryEvent,
    TimerFiredEventAttributes,
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from raftflow.protocol.events_children import (
    ChildWorkflowExecutionCanceledEventAttributes,
    ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes,
    ChildWorkflowExecutionStartedEventAttributes,
    ChildWorkflowExecutionTerminatedEventAttributes,
    ChildWorkflowExecutionTimedOutEventAttributes,
    StartChildWorkflowExecutionFailedEventAttributes,
)
from raftflow.protocol.events_external import (
    ExternalWorkflowExecutionCancelRequestedEventAttributes,
    ExternalWorkflowExecutionSignaledEventAttributes,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
)
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.updates import WorkflowUpdateRequest
from raftflow.sdk import errors
from raftflow.sdk._replay import commands, updates
from raftflow.sdk._replay.children import apply_child_event
from raftflow.sdk._replay.commands import CloseCommand
from raftflow.sdk._replay.runtime import Runtime

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ExternalOutcome = (ExternalWorkflowExecutionSignaledEventAttributes
                   | ExternalWorkflowExecutionCancelRequestedEventAttributes
                   | SignalExternalWorkflowExecutionFailedEventAttributes
                   | RequestCancelExternalWorkflowExecutionFailedEventAttributes)
ActivityClose = (ActivityTaskCompletedEventAttributes | ActivityTaskFailedEventAttributes
                 | ActivityTaskTimedOutEventAttributes | ActivityTaskCanceledEventAttributes)


def input_args(data: bytes) -> list[object]:
    """Positional arguments from a payload: a JSON list is the argument list (the SDK's
    convention); no payload or null means none; any other value is one argument (plain HTTP
    starts)."""
    value = payload_json(data)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def event_time(event: HistoryEvent) -> datetime:
    # Integer milliseconds onto the epoch: exact, as the ISO text this used to parse was.
    return _EPOCH + timedelta(milliseconds=event.time_ms)


def activate(rt: Runtime, started: HistoryEvent, inputs: list[HistoryEvent], *, replaying: bool,
             recorded: list[HistoryEvent],
             update_requests: Sequence[WorkflowUpdateRequest] = ()) -> None:
    """Run one workflow task. Raises WorkflowTaskError when the task must fail. The task's
    updates are delivered after its inputs (`updates.deliver`: validated only when live)."""
    assert isinstance(started.attributes, WorkflowTaskStartedEventAttributes), started
    rt.state.now = event_time(started)
    rt.state.history_length = started.event_id
    rt.state.replaying = replaying
    rt.recorded = recorded
    undo = rt.loop.enter()
    try:
        for event in inputs:
            if not rt.state.closed:
                _apply(rt, event)
        updates.deliver(rt, update_requests, validate=not replaying)
    except (AssertionError, errors.WorkflowTaskError):
        raise
    except Exception as error:  # e.g. the workflow class's __init__ raised
        raise errors.WorkflowTaskError(f"applying event {event.event_id} failed: "
                                       f"{error!r}") from error
    finally:
        undo()

    def stop() -> bool:
        return rt.state.closed or rt.task_failure is not None

    while not stop():
        rt.loop.drain(stop)
        if stop() or not rt.check_conditions():
            break
    if rt.task_failure is not None:
        failure, rt.task_failure = rt.task_failure, None
        if isinstance(failure, errors.WorkflowTaskError):
            raise failure
        raise errors.WorkflowTaskError(f"workflow task failed: {failure!r}") from failure


def _apply(rt: Runtime, event: HistoryEvent) -> None:
    match event.attributes:
        case WorkflowExecutionStartedEventAttributes() as started:
            _start(rt, started)
        case (ActivityTaskCompletedEventAttributes() | ActivityTaskFailedEventAttributes()
              | ActivityTaskTimedOutEventAttributes()
              | ActivityTaskCanceledEventAttributes()) as closing:
            _resolve_activity(rt, closing)
        case TimerFiredEventAttributes(started_event_id=started_event_id):
            timer = rt.timers.pop(started_event_id, None)
            if timer is not None and not timer.done:
                timer.done = True
                timer.fire()
        case WorkflowExecutionSignaledEventAttributes() as signal:
            _signal(rt, signal.signal_name, input_args(signal.input))
        case (ExternalWorkflowExecutionSignaledEventAttributes()
              | ExternalWorkflowExecutionCancelRequestedEventAttributes()
              | SignalExternalWorkflowExecutionFailedEventAttributes()
              | RequestCancelExternalWorkflowExecutionFailedEventAttributes()) as outcome:
            _resolve_external(rt, outcome)
        case (ChildWorkflowExecutionStartedEventAttributes()
              | StartChildWorkflowExecutionFailedEventAttributes()
              | ChildWorkflowExecutionCompletedEventAttributes()
              | ChildWorkflowExecutionFailedEventAttributes()
              | ChildWorkflowExecutionCanceledEventAttributes()
              | ChildWorkflowExecutionTimedOutEventAttributes()
              | ChildWorkflowExecutionTerminatedEventAttributes()) as child_event:
            apply_child_event(rt, child_event)
        case WorkflowExecutionCancelRequestedEventAttributes():
            rt.state.cancel_requested = True
            if rt.main is not None and not rt.main.done():
                rt.main.cancel()
        case _:
            pass  # ActivityTaskStarted and the like carry nothing for the code


async def _call(fn: Callable[..., Coroutine[Any, Any, object]], args: list[object]) -> object:
    # Binding errors (wrong argument count) surface inside the task, like any other error.
    return await fn(*args)


def _start(rt: Runtime, started: WorkflowExecutionStartedEventAttributes) -> None:
    assert rt.instance is None, "WorkflowExecutionStarted applied twice"
    rt.state.started = started
    rt.instance = rt.definition.cls()
    run = getattr(rt.instance, rt.definition.run_method)
    rt.main = rt.loop.create_task(_call(run, input_args(started.input)),
                                  name=f"workflow {rt.definition.name}")
    rt.main.add_done_callback(lambda task: _on_main_done(rt, task))


def _resolve_activity(rt: Runtime, closing: ActivityClose) -> None:
    scheduled_event_id = closing.scheduled_event_id
    op = rt.activities.pop(scheduled_event_id, None)
    assert op is not None, f"{closing.event_type} for unknown activity {scheduled_event_id}"
    future = op.future
    if future is None or future.done():
        return  # cancelled by the workflow already (TRY_CANCEL resolves at once)
    cause: BaseException
    retry_state = ""
    match closing:
        case ActivityTaskCompletedEventAttributes():
            future.set_result(payload_json(closing.result))
            return
        case ActivityTaskFailedEventAttributes():
            cause = errors.from_failure(closing.failure)
            retry_state = closing.retry_state.value
        case ActivityTaskTimedOutEventAttributes():
            last = closing.last_failure
            timeout_type = closing.timeout_type.value
            cause = errors.TimeoutError(
                f"activity {timeout_type} timeout", timeout_type=timeout_type,
                last_failure=None if last is None else errors.from_failure(last))
            retry_state = closing.retry_state.value
        case ActivityTaskCanceledEventAttributes():
            cause = asyncio.CancelledError()
    future.set_exception(errors.ActivityError(
        f"activity {op.activity_type} ({op.activity_id}) failed: {cause}", cause=cause,
        activity_id=op.activity_id, activity_type=op.activity_type,
        scheduled_event_id=scheduled_event_id, retry_state=retry_state))


def _resolve_external(rt: Runtime, outcome: ExternalOutcome) -> None:
    op = rt.externals.pop(outcome.initiated_event_id, None)
    assert op is not None, f"{outcome.event_type} for unknown event {outcome.initiated_event_id}"
    future = op.future
    if future is None or future.done():
        return  # the code stopped waiting
    if isinstance(outcome, ExternalWorkflowExecutionSignaledEventAttributes
                  | ExternalWorkflowExecutionCancelRequestedEventAttributes):
        future.set_result(None)
        return
    what = ("signal" if isinstance(outcome, SignalExternalWorkflowExecutionFailedEventAttributes)
            else "cancel request")
    future.set_exception(errors.ApplicationError(
        f"{what} to workflow {outcome.workflow_id} failed: {outcome.cause}"
        + (f" ({outcome.detail})" if outcome.detail else ""), type=outcome.cause,
        non_retryable=True))


def _signal(rt: Runtime, name: str, args: list[object]) -> None:
    method = rt.definition.signals.get(name)
    if method is None:
        if not rt.state.replaying:
            log.warning("workflow %s (%s) has no handler for signal %r; dropped",
                        rt.ids.workflow_id, rt.definition.name, name)
        return
    handler = getattr(rt.instance, method)
    if inspect.iscoroutinefunction(handler):
        task = rt.loop.create_task(_call(handler, args), name=f"signal {name}")
        task.add_done_callback(lambda done: _on_handler_done(rt, done))
    else:
        rt.loop.call_soon(_run_sync_handler, rt, handler, args)


def _run_sync_handler(rt: Runtime, handler: Callable[..., object], args: list[object]) -> None:
    try:
        handler(*args)
    except BaseException as error:  # noqa: BLE001 - classified by outcome(), never dropped
        _close_or_fail(rt, error)


def _on_handler_done(rt: Runtime, task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        error = task.exception()
        assert error is not None
        _close_or_fail(rt, error)


def _on_main_done(rt: Runtime, task: asyncio.Task[Any]) -> None:
    error: BaseException | None = (asyncio.CancelledError() if task.cancelled()
                                   else task.exception())
    if error is None:
        try:
            _close(rt, commands.complete(task.result()))
            return
        except TypeError as encode_error:
            error = encode_error
    _close_or_fail(rt, error)


def _close_or_fail(rt: Runtime, error: BaseException) -> None:
    if rt.state.closed or rt.task_failure is not None:
        return
    command = outcome(rt, error)
    if command is None:
        rt.task_failure = error
    else:
        _close(rt, command)


def _close(rt: Runtime, command: CloseCommand) -> None:
    if rt.state.closed or rt.task_failure is not None:
        return
    rt.emit(command)
    rt.state.closed = True


def outcome(rt: Runtime, error: BaseException) -> CloseCommand | None:
    """The close command an exception out of workflow code means; None to fail the task."""
    if isinstance(error, errors.ContinueAsNewError):
        return commands.continue_as_new(error)
    if isinstance(error, asyncio.CancelledError) and rt.state.cancel_requested:
        return commands.cancel()
    if isinstance(error, errors.WorkflowTaskError | errors.QueryFailedError):
        return None
    failing = (errors.FailureError, asyncio.CancelledError,
               *rt.definition.failure_exception_types)
    if isinstance(error, failing):
        return commands.fail(error)
    return None
