"""Theory of operation: workflow updates inside a run (`protocol/updates.py` has the whole path).

A workflow task carries the updates admitted before it started. When the task is live, each is
validated here after the task's inputs were applied: no handler of that name, or a validator
that raises, rejects it (a `WorkflowUpdateResponse` with the failure; nothing is recorded in
history); otherwise it is accepted and its handler starts on the workflow loop. On replay the
same updates come from the WorkflowExecutionUpdateAccepted events that followed the task (the
runner collects them), and their handlers start at the same point, with no validator: the
decision is history. A handler's end is the command `CompleteWorkflowUpdate` (its result, or
the failure of an `ApplicationError` or a definition's failure exception type); any other
exception fails the workflow task, as a signal handler's would.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from raftflow.protocol.commands import CompleteWorkflowUpdate, Failure
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.payload import EMPTY
from raftflow.protocol.updates import WorkflowUpdateRequest, WorkflowUpdateResponse
from raftflow.sdk import errors
from raftflow.sdk._replay import commands
from raftflow.sdk._replay.runtime import Runtime


def input_args(data: bytes) -> list[object]:
    value = payload_json(data)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def failure(error: BaseException) -> Failure:
    """The failure a caller gets (lenient: details JSON cannot carry are dropped)."""
    return errors.failure_of(error)


def deliver(rt: Runtime, requests: Sequence[WorkflowUpdateRequest], *, validate: bool) -> None:
    """Start the handlers of the task's updates; when live (`validate`), validate each first
    and record the answers in `rt.update_responses`."""
    for request in requests:
        rt.delivered_updates.add(request.update_id)
        handler = _handler(rt, request.name)
        if validate:
            rejection = _validate(rt, request, handler)
            rt.update_responses.append(WorkflowUpdateResponse(update_id=request.update_id,
                                                              rejection=rejection))
            if rejection is not None:
                continue
        elif handler is None:
            raise errors.WorkflowTaskError(
                f"history accepted update {request.name!r} ({request.update_id}) but workflow "
                f"{rt.definition.name} has no such update handler")
        assert handler is not None
        task = rt.loop.create_task(_call(handler, input_args(request.input)),
                                   name=f"update {request.name} ({request.update_id})")
        task.add_done_callback(functools.partial(_on_done, rt, request.update_id))


def deliver_late(rt: Runtime, request: WorkflowUpdateRequest) -> None:
    """History shows an update accepted by a task this runtime ran live without it (the
    task's events were fed before its updates were known, e.g. one event at a time): start
    its handler now and run the loop until the code waits again."""
    undo = rt.loop.enter()
    try:
        deliver(rt, [request], validate=False)
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
        raise errors.WorkflowTaskError(f"update handler failed: {failure!r}") from failure


def _handler(rt: Runtime, name: str) -> Callable[..., Any] | None:
    method = rt.definition.updates.get(name)
    if method is None or rt.instance is None:
        return None
    handler: Callable[..., Any] = getattr(rt.instance, method)
    return handler


def _validate(rt: Runtime, request: WorkflowUpdateRequest,
              handler: Callable[..., Any] | None) -> Failure | None:
    if handler is None or rt.state.closed:
        known = sorted(rt.definition.updates)
        return Failure(message=f"workflow {rt.definition.name} has no update {request.name!r} "
                       f"(known: {known})" if not rt.state.closed else "the workflow closed",
                       type="InvalidUpdate", non_retryable=True)
    method = rt.definition.validators.get(request.name)
    if method is None:
        return None
    rt.state.in_query = True  # a validator reads state; it may issue no command
    try:
        getattr(rt.instance, method)(*input_args(request.input))
    except Exception as error:  # noqa: BLE001 - any raise rejects the update
        return failure(error)
    finally:
        rt.state.in_query = False
    return None


async def _call(handler: Callable[..., Any], args: list[object]) -> object:
    result = handler(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _on_done(rt: Runtime, update_id: str, task: asyncio.Task[Any]) -> None:
    if rt.state.closed or rt.task_failure is not None:
        return  # the run closed first: its caller learns the workflow is not running
    error: BaseException | None = (asyncio.CancelledError() if task.cancelled()
                                   else task.exception())
    if error is None:
        try:
            result = commands.payload(task.result(), f"result of update {update_id}")
        except TypeError as encode_error:
            rt.task_failure = encode_error
            return
        rt.emit(CompleteWorkflowUpdate(update_id=update_id, result=result))
        return
    failing = (errors.FailureError, asyncio.CancelledError,
               *rt.definition.failure_exception_types)
    if not isinstance(error, failing):
        rt.task_failure = error
        return
    rt.emit(CompleteWorkflowUpdate(update_id=update_id, result=EMPTY, failure=failure(error)))
