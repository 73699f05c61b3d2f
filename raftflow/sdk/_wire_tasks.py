"""The SDK's HTTP edge for tasks: a polled or eagerly started task's JSON becomes typed values
here, once.

Theory of operation. A task reaches a worker four ways: a workflow-task poll (a workflow task,
or a query task: only a query task has `query_id`), an activity-task poll, an eager workflow
task (in the answer to a start or to an activity completion) and eager activity tasks (in the
answer to a workflow-task completion). Each enters its runner's `handle`, whose first act is
one of the decoders below; past it the worker reads struct fields, never a dict. The shapes are
the gateway's own answer structs (`protocol.http_answers`: it renders into them and the OpenAPI
document is generated from them); a workflow or query task's events are then read into protocol
events (`history_json.event_from_answer`), so replay matches event classes.

Anything else raises `MalformedTaskError` naming the task and what is wrong, carrying what
could still be read (token, query id, attempt): the runner fails such a task at once (the
server retries it) instead of leaving it to time out, or drops it when it has no token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from raftflow.protocol import http_answers
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import event_from_answer, time_ms_from_timestamp
from raftflow.sdk.errors import MalformedTaskError

_Answer = TypeVar("_Answer", http_answers.WorkflowTask, http_answers.QueryTask,
                  http_answers.ActivityTask)


@dataclass(frozen=True, slots=True)
class TypedWorkflowTask:
    """A workflow task to replay: `answer` holds the poll answer's fields (its `history` is
    the JSON form of `events`), `events` the same events typed, which is what replay reads."""

    answer: http_answers.WorkflowTask
    events: list[HistoryEvent]


@dataclass(frozen=True, slots=True)
class TypedQueryTask:
    """A query task: `answer` holds its fields, `events` the run's history typed."""

    answer: http_answers.QueryTask
    events: list[HistoryEvent]


def decode_workflow_poll(body: object) -> TypedWorkflowTask | TypedQueryTask:
    """A workflow-task poll's answer, or an eagerly started workflow task: a query task when it
    carries `query_id` (the one field that tells them apart), else a workflow task. Raises
    `MalformedTaskError`."""
    if isinstance(body, Mapping) and "query_id" in body:
        query = _convert(body, http_answers.QueryTask, "query task")
        return TypedQueryTask(query, _events(query.history, body,
                                             f"query of run {query.run_id}"))
    task = _convert(body, http_answers.WorkflowTask, "workflow task")
    return TypedWorkflowTask(task, _events(task.history, body,
                                           f"workflow task of run {task.run_id}"))


def decode_activity_task(body: object) -> http_answers.ActivityTask:
    """An activity-task poll's answer, or an eagerly started activity task. Besides the
    struct's own checks: `input` is the list of the activity's arguments (or null: none) and
    every time is ISO 8601 with a zone. Raises `MalformedTaskError`."""
    task = _convert(body, http_answers.ActivityTask, "activity task")
    if task.input is not None and not isinstance(task.input, list):
        raise _malformed(f"activity task of run {task.run_id}: input is a list of arguments, "
                         f"not {type(task.input).__name__}", body)
    for name, text in (("scheduled_time", task.scheduled_time),
                       ("current_attempt_scheduled_time", task.current_attempt_scheduled_time),
                       ("started_time", task.started_time)):
        try:
            time_ms_from_timestamp(text)
        except msgspec.ValidationError as error:
            raise _malformed(f"activity task of run {task.run_id}: {name}: {error}",
                             body) from error
    return task


def eager_activity_tasks(answer: object) -> list[object]:
    """The activity tasks started for this worker in a workflow-task completion's answer
    (`CompleteWorkflowTaskAnswer.activity_tasks`), each still JSON: one malformed task is
    refused on its own by `decode_activity_task`, and does not cost the others."""
    tasks = answer.get("activity_tasks") if isinstance(answer, Mapping) else None
    return list(tasks) if isinstance(tasks, list) else []


def eager_workflow_task(answer: object) -> object | None:
    """The workflow task started for this worker in a start's or an activity completion's
    answer (`workflow_task`), still JSON (decoded by `decode_workflow_poll` like a polled
    one); None if the server started none."""
    return answer.get("workflow_task") if isinstance(answer, Mapping) else None


def written_events(answer: object) -> list[HistoryEvent]:
    """The events a completion wrote to the run, typed (`events` of a workflow-task
    completion's answer, or of an activity completion's that completed the workflow task it
    carried); [] when there are none. Raises `MalformedTaskError`."""
    listed = answer.get("events") if isinstance(answer, Mapping) else None
    if not listed:
        return []
    try:
        answers = msgspec.convert(listed, list[http_answers.HistoryEventAnswer])
    except msgspec.ValidationError as error:
        raise _malformed(f"events of a completion's answer are malformed: {error}",
                         answer) from error
    return _events(answers, answer, "a completion's answer")


def folded_task_completed(answer: object) -> bool:
    """True if an activity completion's answer says the workflow task it carried completed
    with it (`workflow_task_completed`)."""
    return isinstance(answer, Mapping) and answer.get("workflow_task_completed") is True


def describe_task(body: object) -> str:
    """`workflow_id/run_id` of a task's JSON, for a log line only (read leniently: it also
    names a task that could not be decoded)."""
    fields = body if isinstance(body, Mapping) else {}
    return f"{fields.get('workflow_id')}/{fields.get('run_id')}"


def _convert(body: object, cls: type[_Answer], what: str) -> _Answer:
    try:
        return msgspec.convert(body, cls)
    except msgspec.ValidationError as error:
        raise _malformed(f"{what} of {describe_task(body)} is malformed: {error}",
                         body) from error


def _events(answers: list[http_answers.HistoryEventAnswer], body: object,
            source: str) -> list[HistoryEvent]:
    events: list[HistoryEvent] = []
    for answer in answers:
        try:
            events.append(event_from_answer(answer))
        except msgspec.ValidationError as error:  # the one error event_from_answer raises
            raise _malformed(f"{source}: event {answer.event_id} "
                             f"({answer.event_type.value!r}) is malformed: {error!r}",
                             body) from error
    return events


def _malformed(message: str, body: object) -> MalformedTaskError:
    """The error for a task that did not decode, with what of it is still readable: the
    worker needs the token (or query id) to answer the task rather than drop it."""
    fields = body if isinstance(body, Mapping) else {}
    token, query_id, attempt = (fields.get("task_token"), fields.get("query_id"),
                                fields.get("attempt"))
    readable_attempt = (attempt if isinstance(attempt, int) and not isinstance(attempt, bool)
                        and attempt >= 1 else 1)
    return MalformedTaskError(
        message, task_token=token if isinstance(token, str) and token else None,
        query_id=query_id if isinstance(query_id, str) and query_id else None,
        attempt=readable_attempt)
