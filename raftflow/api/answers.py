"""Typed answers of the workflow, query and task handlers, and their one rendering to HTTP.

A handler parses its call, routes it (`Gateway.on_leader`), and computes an `Answer`: a small
frozen value, or the protocol result the shard gave. `respond` alone turns an answer into the
status, headers and JSON the client sees, so no dict travels between functions before it is
rendered and each answer has exactly one shape on the wire (docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import msgspec
from aiohttp import web

from raftflow.api.poll_types import PolledTask
from raftflow.api.render import (
    activity_task_answer,
    description_answer,
    event_answer,
    workflow_task_answer,
)
from raftflow.api.routing import SERVED_BY_HEADER, Gateway, Relayed
from raftflow.api.task_tokens import TaskTokens
from raftflow.protocol import http_answers as wire
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import JsonValue
from raftflow.protocol.payload import json_enc_hook
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    HeartbeatResult,
    MessagesDelivered,
    WorkflowDescription,
    WorkflowStartedResult,
    WorkflowTaskCompletedResult,
)
from raftflow.protocol.shard_keys import SHARD_HEADER, shard_header

JsonObject = dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class Started:
    """A start's answer: 201 when this call created the run, 200 when a retry found it."""

    workflow_id: str
    result: WorkflowStartedResult


@dataclass(frozen=True, slots=True)
class Described:
    """One run's description (describe, and a closed run's result)."""

    description: WorkflowDescription


@dataclass(frozen=True, slots=True)
class HistoryPage:
    events: tuple[HistoryEvent, ...]
    next_event_id: int | None  # the next page's first event; None at the current end


@dataclass(frozen=True, slots=True)
class NoContent:
    """204: nothing yet (a poll's wait ended with no task, a run still running after wait_ms)."""


@dataclass(frozen=True, slots=True)
class QueryAnswered:
    result: JsonValue  # what the worker's query handler returned


# A task completion's or heartbeat's result is the shard's own result value.
TaskOutcome = Ack | WorkflowTaskCompletedResult | ActivityTaskCompletedResult | HeartbeatResult

Answer = (
    Relayed
    | MessagesDelivered
    | Started
    | Described
    | HistoryPage
    | NoContent
    | QueryAnswered
    | PolledTask
    | TaskOutcome
)


def _json(body: msgspec.Struct, status: int = 200,
          headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(body, enc_hook=json_enc_hook),
                        headers=headers, content_type="application/json")


def respond(answer: Answer, tokens: TaskTokens | None = None) -> web.StreamResponse:
    """The HTTP response for `answer`: the only place handler answers become JSON, each as the
    `http_answers` struct the OpenAPI document describes for it. An answer that may carry a
    task (a start's, a completion's: eager tasks) needs `tokens` to sign its token."""
    match answer:
        case Relayed():
            return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
        case MessagesDelivered():
            return _json(wire.DeliverMessagesAnswer(outcomes=list(answer.outcomes)))
        case Started():
            result = answer.result
            task = result.workflow_task
            return _json(wire.StartWorkflowAnswer(
                workflow_id=answer.workflow_id, run_id=result.run_id,
                workflow_task=msgspec.UNSET if task is None
                else workflow_task_answer(task, _signer(tokens))),
                status=201 if result.created else 200)
        case Described():
            return _json(description_answer(answer.description))
        case HistoryPage():
            token = None if answer.next_event_id is None else str(answer.next_event_id)
            return _json(wire.HistoryPage(events=[event_answer(e) for e in answer.events],
                                          next_page_token=token))
        case NoContent():
            return web.Response(status=204)
        case QueryAnswered():
            return _json(wire.QueryWorkflowAnswer(result=answer.result))
        case PolledTask():
            # The node that claimed the task leads its shard: the completion goes there.
            headers = {SERVED_BY_HEADER: answer.served_by} if answer.served_by else None
            return web.Response(body=msgspec.json.encode(answer.payload), headers=headers,
                                content_type="application/json")
        case _:
            return _json(_task_outcome(answer, tokens))


def respond_for_workflow(gateway: Gateway, namespace: str, workflow_id: str, answer: Answer,
                         tokens: TaskTokens | None = None) -> web.StreamResponse:
    """`respond`, naming the workflow's shard and the cluster's shard count: a client computes
    the shard of its next workflows itself and sends their calls to the node that answered
    for that shard, its leader, with no forwarding hop (protocol/shard_keys.py)."""
    response = respond(answer, tokens)
    response.headers[SHARD_HEADER] = shard_header(gateway.shard_of(namespace, workflow_id),
                                                  gateway.directory.shard_count)
    return response


def _events(events: tuple[HistoryEvent, ...]) -> list[wire.HistoryEventAnswer] | msgspec.UnsetType:
    return [event_answer(e) for e in events] if events else msgspec.UNSET


def _signer(tokens: TaskTokens | None) -> TaskTokens:
    assert tokens is not None, "an answer with a task is rendered with the node's tokens"
    return tokens


def _task_outcome(outcome: TaskOutcome, tokens: TaskTokens | None) -> msgspec.Struct:
    # Tasks started eagerly for this worker in the same commit ride on the answer.
    match outcome:
        case WorkflowTaskCompletedResult():
            return wire.CompleteWorkflowTaskAnswer(
                activity_tasks=[activity_task_answer(t, _signer(tokens))
                                for t in outcome.activity_tasks],
                events=_events(outcome.events))
        case ActivityTaskCompletedResult() if outcome.workflow_task_completed:
            return wire.CompleteActivityTaskAnswer(
                workflow_task_completed=True,
                activity_tasks=[activity_task_answer(t, _signer(tokens))
                                for t in outcome.activity_tasks],
                events=_events(outcome.events))
        case ActivityTaskCompletedResult():
            task = outcome.workflow_task
            return wire.CompleteActivityTaskAnswer(
                workflow_task=msgspec.UNSET if task is None
                else workflow_task_answer(task, _signer(tokens)))
        case HeartbeatResult():
            return wire.HeartbeatAnswer(cancel_requested=outcome.cancel_requested)
        case Ack():
            return wire.Empty()
        case _:
            assert_never(outcome)
