"""Workflow authoring: `@workflow.defn` classes and the calls workflow code makes.

Workflow code must be deterministic: given the same history it must make the same calls in the
same order. Use `workflow.now()`, `workflow.random()`, `workflow.uuid4()` and
`workflow.sleep()` instead of the clock, `random`, `uuid` and `time.sleep`; do IO only in
activities. `asyncio.gather`, `asyncio.wait_for`, `asyncio.sleep` and task cancellation work
(on a deterministic loop of the SDK: timers are durable server timers).

    @workflow.defn
    class Order:
        @workflow.run
        async def run(self, order_id: str) -> str:
            await workflow.execute_activity(charge, order_id,
                                            start_to_close_timeout=timedelta(seconds=10))
            return "done"
"""

from __future__ import annotations

import asyncio
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, ParamSpec, Protocol, TypeVar, cast, overload

from raftflow.protocol.commands import IdReusePolicy, ParentClosePolicy, ScheduleActivityTask
from raftflow.protocol.limits import CONTINUE_AS_NEW_SUGGESTED_EVENTS
from raftflow.sdk import _child_workflows, errors
from raftflow.sdk import activity as _activity
from raftflow.sdk._child_workflows import ChildWorkflowHandle
from raftflow.sdk._external import ExternalWorkflowHandle
from raftflow.sdk._replay import commands as _commands
from raftflow.sdk._replay import definition as _definition
from raftflow.sdk._replay.loop import WorkflowLoop
from raftflow.sdk._replay.runtime import Runtime
from raftflow.sdk.retry import RetryPolicy, duration_ms

__all__ = ["ChildWorkflowHandle", "ExternalWorkflowHandle", "ParentClosePolicy", "WorkflowInfo",
           "continue_as_new", "execute_child_workflow", "start_child_workflow", "defn", "deprecate_patch", "execute_activity",
           "info", "is_replaying", "now", "patched", "query", "random", "run", "signal",
           "sleep", "update", "UpdateMethod", "upsert_search_attributes", "uuid4",
           "wait_condition", "get_external_workflow_handle"]

ClassT = TypeVar("ClassT", bound=type)
CallableT = TypeVar("CallableT", bound=Callable[..., Any])
ReturnT = TypeVar("ReturnT")
_P = ParamSpec("_P")
_R_co = TypeVar("_R_co", covariant=True)


# -- definition ------------------------------------------------------------------------------

@overload
def defn(cls: ClassT, /) -> ClassT: ...
@overload
def defn(*, name: str | None = None,
         failure_exception_types: tuple[type[BaseException], ...] = (),
         ) -> Callable[[ClassT], ClassT]: ...
def defn(cls: ClassT | None = None, /, *, name: str | None = None,
         failure_exception_types: tuple[type[BaseException], ...] = (),
         ) -> ClassT | Callable[[ClassT], ClassT]:
    """Mark a class as a workflow; its type name is `name` or the class name.

    An exception escaping the run method fails the workflow (FailWorkflowExecution) when it is
    an `ApplicationError`/`ActivityError` or an instance of `failure_exception_types`; any
    other exception (a bug) fails only the workflow task, which the server retries, so a fixed
    deployment can resume the run. That is Temporal's rule; pass `(Exception,)` to fail the
    workflow on any exception instead.
    """

    def mark(target: ClassT) -> ClassT:
        _definition.define(target, name, failure_exception_types)
        return target

    return mark if cls is None else mark(cls)


def run(fn: CallableT) -> CallableT:
    """Mark the `async def` entry method; its arguments are the workflow's input list."""
    _definition.mark_run(fn)
    return fn


@overload
def signal(fn: CallableT, /) -> CallableT: ...
@overload
def signal(*, name: str | None = None) -> Callable[[CallableT], CallableT]: ...
def signal(fn: CallableT | None = None, /, *,
           name: str | None = None) -> CallableT | Callable[[CallableT], CallableT]:
    """Mark a signal handler (`def` or `async def`). Signals are delivered in history order,
    exactly once per WorkflowExecutionSignaled event; the signal's input list is its args."""

    def mark(target: CallableT) -> CallableT:
        _definition.mark_signal(target, name)
        return target

    return mark if fn is None else mark(fn)


@overload
def query(fn: CallableT, /) -> CallableT: ...
@overload
def query(*, name: str | None = None) -> Callable[[CallableT], CallableT]: ...
def query(fn: CallableT | None = None, /, *,
          name: str | None = None) -> CallableT | Callable[[CallableT], CallableT]:
    """Mark a query handler: a plain `def` that reads state and returns a JSON value."""

    def mark(target: CallableT) -> CallableT:
        _definition.mark_query(target, name)
        return target

    return mark if fn is None else mark(fn)


class UpdateMethod(Protocol[_P, _R_co]):
    """What `@workflow.update` makes of a method: the method, plus `.validator`, the decorator
    of its validator (a plain `def` with the same parameters, returning None)."""

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...

    def validator(self, fn: Callable[_P, None], /) -> Callable[_P, None]: ...


@overload
def update(fn: Callable[_P, _R_co], /) -> UpdateMethod[_P, _R_co]: ...
@overload
def update(*, name: str | None = None,
           ) -> Callable[[Callable[_P, _R_co]], UpdateMethod[_P, _R_co]]: ...
def update(fn: Callable[_P, _R_co] | None = None, /, *, name: str | None = None,
           ) -> UpdateMethod[_P, _R_co] | Callable[[Callable[_P, _R_co]], UpdateMethod[_P, _R_co]]:
    """Mark an update handler (`def` or `async def`, Temporal's workflow update): a caller's
    `handle.execute_update` runs it in the workflow and gets its return value, or the failure
    if it raises an `ApplicationError` (any other exception fails the workflow task). An
    optional validator, a plain `def` taking the same arguments, is declared with
    `@<handler>.validator`: it runs before the update is accepted (never on replay) and
    rejects the update by raising; a rejected update leaves no event in history."""

    def mark(target: Callable[_P, _R_co]) -> UpdateMethod[_P, _R_co]:
        _definition.mark_update(target, name)  # gives it `.validator`
        return cast(UpdateMethod[_P, _R_co], target)

    return mark if fn is None else mark(fn)


# -- inside workflow code -----------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowInfo:
    """The run's identity and where it is in its history."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    attempt: int
    history_length: int  # id of the current task's WorkflowTaskStarted event
    continued_run_id: str | None
    first_execution_run_id: str | None
    # The history reached CONTINUE_AS_NEW_SUGGESTED_EVENTS (a fifth of HISTORY_EVENTS_MAX, as
    # Temporal): a long-lived loop should `continue_as_new` before the limit terminates the run.
    # Deterministic: it depends only on the history replayed so far.
    continue_as_new_suggested: bool
    # The chain's retry policy, if its start gave one (`attempt` counts its attempts).
    retry_policy: RetryPolicy | None = None


def _runtime() -> Runtime:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if not isinstance(loop, WorkflowLoop) or not isinstance(loop.timer_port, Runtime):
        raise RuntimeError("not in workflow code: raftflow.sdk.workflow functions work only "
                           "inside a @workflow.defn class run by a Worker")
    return loop.timer_port


def now() -> datetime:
    """Workflow time: the time history recorded for the current workflow task (UTC)."""
    return _runtime().state.now


def random() -> _random.Random:
    """A random generator seeded from the run id: same numbers on every replay."""
    rt = _runtime()
    if rt.state.in_query:  # a draw would shift every later draw of the run
        raise errors.QueryFailedError("a query handler may not draw random numbers")
    return rt.random


def uuid4() -> _uuid.UUID:
    """A version-4 UUID drawn from `random()`: same value on every replay."""
    return _uuid.UUID(int=random().getrandbits(128), version=4)


def is_replaying() -> bool:
    """True while the code re-runs a task history already recorded (e.g. to skip logging)."""
    return _runtime().state.replaying


def info() -> WorkflowInfo:
    rt = _runtime()
    started = rt.state.started
    assert started is not None, "workflow code runs only after WorkflowExecutionStarted"
    return WorkflowInfo(namespace=rt.ids.namespace, workflow_id=rt.ids.workflow_id,
                        run_id=rt.ids.run_id, workflow_type=rt.ids.workflow_type,
                        task_queue=rt.ids.task_queue, attempt=started.attempt,
                        history_length=rt.state.history_length,
                        continued_run_id=started.continued_execution_run_id or None,
                        first_execution_run_id=started.first_execution_run_id or None,
                        continue_as_new_suggested=(
                            rt.state.history_length >= CONTINUE_AS_NEW_SUGGESTED_EVENTS),
                        retry_policy=(None if started.retry_policy is None
                                      else RetryPolicy.from_protocol(started.retry_policy)))


def _optional_ms(value: timedelta | None) -> int | None:
    return None if value is None else duration_ms(value)


@overload
async def execute_activity(activity: Callable[..., Awaitable[ReturnT]], *positional: Any,
                           args: Sequence[Any] = (),
                           start_to_close_timeout: timedelta | None = None,
                           schedule_to_close_timeout: timedelta | None = None,
                           schedule_to_start_timeout: timedelta | None = None,
                           heartbeat_timeout: timedelta | None = None,
                           retry_policy: RetryPolicy | None = None,
                           task_queue: str | None = None,
                           activity_id: str | None = None) -> ReturnT: ...
@overload
async def execute_activity(activity: Callable[..., ReturnT], *positional: Any,
                           args: Sequence[Any] = (),
                           start_to_close_timeout: timedelta | None = None,
                           schedule_to_close_timeout: timedelta | None = None,
                           schedule_to_start_timeout: timedelta | None = None,
                           heartbeat_timeout: timedelta | None = None,
                           retry_policy: RetryPolicy | None = None,
                           task_queue: str | None = None,
                           activity_id: str | None = None) -> ReturnT: ...
@overload
async def execute_activity(activity: str, *positional: Any, args: Sequence[Any] = (),
                           start_to_close_timeout: timedelta | None = None,
                           schedule_to_close_timeout: timedelta | None = None,
                           schedule_to_start_timeout: timedelta | None = None,
                           heartbeat_timeout: timedelta | None = None,
                           retry_policy: RetryPolicy | None = None,
                           task_queue: str | None = None,
                           activity_id: str | None = None) -> Any: ...
async def execute_activity(activity: Callable[..., Any] | str, *positional: Any,
                           args: Sequence[Any] = (),
                           start_to_close_timeout: timedelta | None = None,
                           schedule_to_close_timeout: timedelta | None = None,
                           schedule_to_start_timeout: timedelta | None = None,
                           heartbeat_timeout: timedelta | None = None,
                           retry_policy: RetryPolicy | None = None,
                           task_queue: str | None = None,
                           activity_id: str | None = None) -> Any:
    """Run an activity with its arguments (positionally or as `args=[...]`) and return its
    result (a JSON value).

    One of `start_to_close_timeout` / `schedule_to_close_timeout` is required. The server
    retries failed attempts per `retry_policy`; when it gives up, this raises `ActivityError`
    whose `cause` is the last `ApplicationError` or a `TimeoutError`. Cancelling the awaiting
    task asks the server to cancel the activity and raises `CancelledError` at once.
    """
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError("execute_activity needs start_to_close_timeout or "
                         "schedule_to_close_timeout")
    activity_type = (activity if isinstance(activity, str)
                     else _activity.definition_of(activity).name)
    policy = None if retry_policy is None else retry_policy.to_protocol()
    values = _commands.arguments(positional, args)

    def build(assigned_id: str) -> ScheduleActivityTask:
        return _commands.schedule_activity(
            activity_id=assigned_id, activity_type=activity_type, args=values,
            task_queue=task_queue,
            start_to_close_timeout_ms=_optional_ms(start_to_close_timeout),
            schedule_to_close_timeout_ms=_optional_ms(schedule_to_close_timeout),
            schedule_to_start_timeout_ms=_optional_ms(schedule_to_start_timeout),
            heartbeat_timeout_ms=_optional_ms(heartbeat_timeout), retry_policy=policy)

    return await _runtime().schedule_activity(activity_type, activity_id, build)


async def sleep(duration: float | timedelta) -> None:
    """Wait on a durable timer (StartTimer); survives worker and server restarts."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    _runtime()
    await asyncio.sleep(seconds)


async def wait_condition(fn: Callable[[], bool], *,
                         timeout: float | timedelta | None = None) -> None:
    """Wait until `fn()` is true; it is re-checked whenever the workflow made progress.

    With `timeout`, raises `asyncio.TimeoutError` when a durable timer fires first.
    """
    rt = _runtime()
    if fn():
        return
    future = rt.add_condition(fn)
    if timeout is None:
        await future
        return
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    await asyncio.wait_for(future, seconds)


def continue_as_new(*positional: Any, args: Sequence[Any] = (),
                    workflow: type | Callable[..., Any] | str | None = None,
                    task_queue: str | None = None, run_timeout: timedelta | None = None,
                    task_timeout: timedelta | None = None) -> NoReturn:
    """End this run and start a new one of the same workflow id with these arguments
    (positionally or as `args=[...]`; fresh history)."""
    _runtime()
    raise errors.ContinueAsNewError(
        tuple(_commands.arguments(positional, args)), workflow_type=None if workflow is None else _definition.workflow_type_of(workflow),
        task_queue=task_queue, run_timeout_ms=_optional_ms(run_timeout),
        task_timeout_ms=_optional_ms(task_timeout))


def patched(patch_id: str) -> bool:
    """True if this run should take the new code path of `patch_id`.

    A run that reaches this call for the first time on new code records a marker and gets
    True; a run replaying history recorded by old code gets False (no marker there), and keeps
    that answer for the rest of the run. Remove the old path once no such run is open.
    """
    return _runtime().patched(patch_id, deprecated=False)


def upsert_search_attributes(values: Mapping[str, object]) -> None:
    """Set custom search attributes on this run, keeping the ones not named (Temporal's call).

    Values are `str`, `int`, `float`, `bool` or a timezone-aware `datetime`, for names the
    namespace registered with that type. Recorded in history (UpsertWorkflowSearchAttributes),
    so replay repeats it; visibility queries see the values once the workflow task completes.
    A name the namespace does not have, or a value of the wrong type, makes the server refuse
    the workflow task's completion (the task is retried, as for any invalid command).
    """
    _runtime().emit(_commands.upsert_search_attributes(values))


def deprecate_patch(patch_id: str) -> None:
    """Step two of removing a patch: the old path is gone, accept histories with or without
    the marker of `patch_id`."""
    _runtime().patched(patch_id, deprecated=True)


def get_external_workflow_handle(workflow_id: str, *,
                                 run_id: str | None = None) -> ExternalWorkflowHandle:
    """A handle to signal or cancel another workflow of this namespace (Temporal's name); no
    run id targets its open run."""
    return ExternalWorkflowHandle(_runtime(), workflow_id, run_id)


async def start_child_workflow(
        workflow: type | Callable[..., Any] | str, arg: Any = _child_workflows._UNSET, *,
        args: Sequence[Any] = (), id: str | None = None, task_queue: str | None = None,
        execution_timeout: timedelta | None = None, run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None, id_reuse_policy: IdReusePolicy | None = None,
        parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
        retry_policy: RetryPolicy | None = None,
) -> ChildWorkflowHandle:
    """Start a child workflow (temporalio's arguments; `id` defaults to a deterministic
    `workflow.uuid4()`) and return its handle once it runs. Raises
    `WorkflowAlreadyStartedError` if its id is taken under `id_reuse_policy`. With a
    `retry_policy` the child's failed attempts are retried in the child's chain; the parent
    sees the last one's outcome."""
    return await _child_workflows.start_child_workflow(
        _runtime(), workflow, arg, args=args, id=id or str(uuid4()), task_queue=task_queue,
        execution_timeout=execution_timeout, run_timeout=run_timeout, task_timeout=task_timeout,
        id_reuse_policy=id_reuse_policy, parent_close_policy=parent_close_policy,
        retry_policy=retry_policy)


async def execute_child_workflow(
        workflow: type | Callable[..., Any] | str, arg: Any = _child_workflows._UNSET, *,
        args: Sequence[Any] = (), id: str | None = None, task_queue: str | None = None,
        execution_timeout: timedelta | None = None, run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None, id_reuse_policy: IdReusePolicy | None = None,
        parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
        retry_policy: RetryPolicy | None = None,
) -> Any:
    """Start a child workflow and wait for its result (`ChildWorkflowError` if it fails)."""
    handle = await start_child_workflow(
        workflow, arg, args=args, id=id, task_queue=task_queue,
        execution_timeout=execution_timeout, run_timeout=run_timeout, task_timeout=task_timeout,
        id_reuse_policy=id_reuse_policy, parent_close_policy=parent_close_policy,
        retry_policy=retry_policy)
    return await handle.result()
