"""Typed answers of the workflow, query and task handlers, and their one rendering to HTTP.

A handler parses its call, routes it (`Gateway.on_leader`), and computes an `Answer`: a small
frozen value, or the protocol result the shard gave. `respond` alone turns an answer into the
status, headers and JSON the client sees, so no dict travels between functions before it is
rendered and each answer has exactly one shape on the wire (docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from aiohttp import web

from raftflow.api.poll_types import PolledTask
from raftflow.api.render import activity_task_json, description_json, workflow_task_json
from raftflow.api.routing import SERVED_BY_HEADER, Relayed
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import JsonValue, event_json
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    HeartbeatResult,
    WorkflowDescription,
    WorkflowStartedResult,
    WorkflowTaskCompletedResult,
)

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


@dataclass(frozen=True, slots=True)
class ShardWorkflows:
    """One shard's part of a list: its latest runs, newest first."""

    descriptions: tuple[WorkflowDescription, ...]


@dataclass(frozen=True, slots=True)
class WorkflowList:
    """A list merged from every shard. Its entries are JSON already: the parts of shards this
    node does not lead arrive rendered by their leaders."""

    workflows: tuple[JsonObject, ...]


# A task completion's or heartbeat's result is the shard's own result value.
TaskOutcome = Ack | WorkflowTaskCompletedResult | ActivityTaskCompletedResult | HeartbeatResult

Answer = (
    Relayed
    | Started
    | Described
    | HistoryPage
    | NoContent
    | QueryAnswered
    | ShardWorkflows
    | WorkflowList
    | PolledTask
    | TaskOutcome
)


def shard_workflows_json(part: ShardWorkflows) -> list[JsonObject]:
    """The `workflows` of a shard's part, as its leader sends them (and a list merges them)."""
    return [description_json(d) for d in part.descriptions]


def respond(answer: Answer) -> web.StreamResponse:
    """The HTTP response for `answer`: the only place handler answers become JSON."""
    match answer:
        case Relayed():
            return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
        case Started():
            result = answer.result
            body: JsonObject = {"workflow_id": answer.workflow_id, "run_id": result.run_id}
            if result.workflow_task is not None:
                body["workflow_task"] = workflow_task_json(result.workflow_task)
            return web.json_response(body, status=201 if result.created else 200)
        case Described():
            return web.json_response(description_json(answer.description))
        case HistoryPage():
            token = None if answer.next_event_id is None else str(answer.next_event_id)
            return web.json_response({"events": [event_json(e) for e in answer.events],
                                      "next_page_token": token})
        case NoContent():
            return web.Response(status=204)
        case QueryAnswered():
            return web.json_response({"result": answer.result})
        case ShardWorkflows():
            return web.json_response({"workflows": shard_workflows_json(answer)})
        case WorkflowList():
            return web.json_response({"workflows": list(answer.workflows)})
        case PolledTask():
            # The node that claimed the task leads its shard: the completion goes there.
            headers = {SERVED_BY_HEADER: answer.served_by} if answer.served_by else None
            return web.json_response(answer.payload, headers=headers)
        case _:
            return web.json_response(_task_outcome_json(answer))


def _task_outcome_json(outcome: TaskOutcome) -> JsonObject:
    # Tasks started eagerly for this worker in the same commit ride on the answer.
    match outcome:
        case WorkflowTaskCompletedResult():
            return {"activity_tasks": [activity_task_json(t) for t in outcome.activity_tasks]}
        case ActivityTaskCompletedResult():
            if outcome.workflow_task is None:
                return {}
            return {"workflow_task": workflow_task_json(outcome.workflow_task)}
        case HeartbeatResult():
            return {"cancel_requested": outcome.cancel_requested}
        case Ack():
            return {}
        case _:
            assert_never(outcome)
