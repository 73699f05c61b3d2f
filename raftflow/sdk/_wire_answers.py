"""The SDK's HTTP edge for the client's answers: each answer the client reads becomes the
gateway's own answer struct here, once, where it arrives.

Theory of operation. The gateway renders every answer into a `protocol.http_answers` struct
(the OpenAPI document is generated from the same structs), so the client reads them back into
those structs (`decode_answer`): a start's `StartWorkflowAnswer`, a description's
`WorkflowDescription` (its `result` a `Payload`, its `failure` the protocol's `Failure`), a list,
a history page, a query's answer, a heartbeat's, the cluster's status. Past this module the
client reads struct fields, never a dict, and coerces nothing.

An answer that is not its route's shape raises `MalformedAnswerError` naming the route and the
field (msgspec's path, `$.run_id`). Two answers carry more than their struct is read for here:
a start's eager `workflow_task` stays JSON for the worker (`_wire_tasks.eager_workflow_task`),
which decodes it like a polled task, so a malformed task fails that task, not the start that
already happened; a history page's events become protocol events (`page_events`), so replay
matches event classes, and a malformed event is a `MalformedHistoryError` as for any history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from raftflow.protocol import http_answers
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import event_from_answer
from raftflow.protocol.payload import json_dec_hook
from raftflow.sdk._http import Answer
from raftflow.sdk._workflow_execution import WorkflowExecution
from raftflow.sdk.errors import MalformedAnswerError, MalformedHistoryError

_Struct = TypeVar("_Struct", bound=msgspec.Struct)


def decode_answer(answer: Answer, cls: type[_Struct], route: str) -> _Struct:
    """`answer`'s body as `cls` (payload fields as `Payload`, as the gateway rendered them).
    Raises `MalformedAnswerError` naming `route` (`"GET /api/v1/..."`)."""
    return _convert(answer.body, cls, route, answer.status)


def decode_start(answer: Answer, route: str) -> http_answers.StartWorkflowAnswer:
    """A start's answer without its eager task, which the worker reads from the JSON
    (`_wire_tasks.eager_workflow_task`): the run exists once the server answered, whatever
    the task looks like."""
    body = answer.body
    if isinstance(body, Mapping) and "workflow_task" in body:
        body = {k: v for k, v in body.items() if k != "workflow_task"}
    return _convert(body, http_answers.StartWorkflowAnswer, route, answer.status)


def decode_execution(answer: Answer, route: str) -> WorkflowExecution:
    """A description's answer as the public `WorkflowExecution`."""
    description = decode_answer(answer, http_answers.WorkflowDescription, route)
    return _execution(description, route, answer.status)


def decode_executions(answer: Answer, route: str) -> list[WorkflowExecution]:
    """A list's answer (`WorkflowList`) as public `WorkflowExecution`s, in its order."""
    listed = decode_answer(answer, http_answers.WorkflowList, route)
    return [_execution(d, route, answer.status) for d in listed.workflows]


def page_events(page: http_answers.HistoryPage, source: str) -> list[HistoryEvent]:
    """A history page's events as protocol events. Raises `MalformedHistoryError` naming
    `source` and the event."""
    events: list[HistoryEvent] = []
    for answer in page.events:
        try:
            events.append(event_from_answer(answer))
        except msgspec.ValidationError as error:  # the one error event_from_answer raises
            raise MalformedHistoryError(
                f"{source}: event {answer.event_id} ({answer.event_type.value!r}) is "
                f"malformed: {error!r}") from error
    return events


def _convert(body: Any, cls: type[_Struct], route: str, status: int) -> _Struct:
    try:
        return msgspec.convert(body, cls, dec_hook=json_dec_hook)
    except msgspec.ValidationError as error:
        raise MalformedAnswerError(route, str(error), status) from error


def _execution(description: http_answers.WorkflowDescription, route: str,
               status: int) -> WorkflowExecution:
    # The struct holds times as text: parsing them here refuses a malformed one at the edge,
    # like any other field.
    try:
        return WorkflowExecution.from_description(description)
    except ValueError as error:
        raise MalformedAnswerError(route, f"{error} (workflow {description.workflow_id!r})",
                                   status) from error
