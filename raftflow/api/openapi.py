"""The OpenAPI 3.1 description of raftflow's HTTP API, served at `/api/v1/openapi.json`.

`openapi_document()` builds a fresh dict on each call (no shared mutable state); the gateway
serialises it once at startup. User payloads (`input`, `result`, `details`) are any JSON value.
Worker task tokens are opaque strings: workers echo them back unchanged. A long poll that finds
no task within its wait answers 204 with no body, and the worker simply polls again.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from raftflow.api.validation import (
    ID_LENGTH_MAX,
    NAME_LENGTH_MAX,
    PAYLOAD_BYTES_MAX,
    QUERY_LIMIT_MAX,
)
from raftflow.protocol.commands import IdReusePolicy
from raftflow.protocol.results import WorkflowStatus
from raftflow.shards.core.limits import EAGER_ACTIVITIES_MAX

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"

Schema = dict[str, object]

_ERROR_STATUSES: Mapping[int, str] = MappingProxyType({
    400: "invalid_argument or limit_exceeded", 404: "not_found",
    409: "workflow_already_started, workflow_not_running or stale_task",
    413: "payload_too_large", 503: "overloaded or not_leader (with Retry-After)",
    504: "timeout: the change may still be applied; retry with the same request_id",
})


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: tuple[str, ...], **properties: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": properties}


def _string(max_length: int = NAME_LENGTH_MAX, **extra: object) -> Schema:
    return {"type": "string", "maxLength": max_length, **extra}


def _id() -> Schema:
    return _string(ID_LENGTH_MAX, minLength=1)


def _any_json() -> Schema:
    return {"description": f"Any JSON value, at most {PAYLOAD_BYTES_MAX} bytes encoded."}


def _count() -> Schema:
    return {"type": "integer", "minimum": 0}


def _time() -> Schema:
    return {"type": "string", "format": "date-time"}


def _token() -> Schema:
    return {"type": "string", "description": "Opaque task token; echo it back unchanged."}


def _client_schemas() -> dict[str, Schema]:
    any_json = _any_json()
    event = _object(("event_id", "event_type", "timestamp", "attributes"),
                    event_id={"type": "integer", "minimum": 1}, event_type=_string(),
                    timestamp=_time(),
                    attributes={"type": "object"})
    description = _object(
        ("workflow_id", "run_id", "workflow_type", "task_queue", "status", "history_length"),
        workflow_id=_id(), run_id=_id(), workflow_type=_string(), task_queue=_string(),
        status={"type": "string", "enum": [status.value.upper() for status in WorkflowStatus]},
        history_length=_count(), start_time=_time(),
        close_time={**_time(), "type": ["string", "null"]},
        pending_activity_count=_count(), pending_timer_count=_count(),
        workflow_task_pending={"type": "boolean"},
        continued_execution_run_id={"type": ["string", "null"]},
        result={**any_json, "description": "Present when status is COMPLETED."},
        failure={"type": "object", "description": "Present when the run failed."},
        reason={"type": "string", "description": "Present when the run was terminated."})
    return {
        "Error": _object(("error",), error=_object(
            ("code", "message"), code=_string(64), message={"type": "string"},
            field={"type": ["string", "null"]})),
        "StartWorkflowRequest": _object(
            ("workflow_id", "workflow_type", "task_queue"), workflow_id=_id(),
            workflow_type=_string(minLength=1), task_queue=_string(minLength=1), input=any_json,
            request_id={**_id(), "description": "Idempotency key: a retry gets the first answer."},
            id_reuse_policy={"type": "string",
                             "enum": [policy.value for policy in IdReusePolicy]},
            execution_timeout_ms=_count(), run_timeout_ms=_count(), task_timeout_ms=_count(),
            eager_task_queue={**_string(), "description": (
                "Eager start: when this is the task_queue, the first workflow task is started "
                "for the caller's worker (eager_identity) and returned in workflow_task.")},
            eager_identity=_string()),
        "StartWorkflowResponse": _object(("workflow_id", "run_id"), workflow_id=_id(),
                                         run_id=_id(), workflow_task=_ref("WorkflowTask")),
        "WorkflowDescription": description,
        "WorkflowList": _object(("workflows",), workflows={"type": "array",
                                                           "items": _ref("WorkflowDescription")}),
        "HistoryEvent": event,
        "HistoryPage": _object(("events",), events={"type": "array", "items": _ref("HistoryEvent")},
                               next_page_token={"type": ["string", "null"]}),
        "SignalRequest": _object(("signal_name",), signal_name=_string(minLength=1),
                                 input=any_json, request_id=_id(), run_id=_id()),
        "TerminateRequest": _object((), reason=_string(10_000), request_id=_id(), run_id=_id()),
        "CancelRequest": _object((), reason=_string(10_000), request_id=_id(), run_id=_id()),
        "QueryRequest": _object(("query_type",), query_type=_string(minLength=1), args=any_json,
                                run_id=_id(), timeout_ms=_count()),
        "QueryResponse": _object(("result",), result=any_json),
        "QueryAnswer": _object(("query_id",), query_id=_string(), result=any_json,
                               error=_object((), message=_string(32_768), type=_string())),
        "Empty": {"type": "object"},
        "ClusterStatus": _object(
            ("nodes", "shards"),
            nodes={"type": "array", "items": _object(
                ("id", "address", "alive"), id=_id(), address=_string(),
                pid={"type": ["integer", "null"]}, alive={"type": "boolean"})},
            shards={"type": "array", "items": _object(
                ("shard", "leader", "replicas"), shard=_count(),
                leader={"type": ["string", "null"]},
                replicas={"type": "array", "items": {"type": "string"}}, term=_count(),
                commit_index=_count())}),
    }


def _worker_schemas() -> dict[str, Schema]:
    any_json = _any_json()
    failure = _object(("message",), message=_string(32_768), type=_string(),
                      non_retryable={"type": "boolean"}, details=any_json)
    return {
        "PollRequest": _object(
            ("identity",), identity=_string(),
            wait_ms={**_count(), "description": "Long-poll wait, capped by the server."},
            sticky_queue={**_string(), "description": (
                "This worker's sticky queue: a workflow task of a run whose last task this "
                "worker completed carries only the events it has not seen.")}),
        "WorkflowTask": _object(
            ("task_token", "workflow_id", "run_id", "workflow_type", "history"),
            task_token=_token(), namespace=_id(), workflow_id=_id(), run_id=_id(),
            workflow_type=_string(), task_queue=_string(), attempt=_count(),
            scheduled_event_id=_count(), started_event_id=_count(),
            previous_started_event_id={"type": ["integer", "null"]},
            history={"type": "array", "items": _ref("HistoryEvent")}),
        "ActivityTask": _object(
            ("task_token", "workflow_id", "run_id", "activity_id", "activity_type", "attempt"),
            task_token=_token(), namespace=_id(), workflow_id=_id(), run_id=_id(),
            workflow_type=_string(), activity_id=_id(), activity_type=_string(),
            task_queue=_string(), input=any_json, attempt={"type": "integer", "minimum": 1},
            heartbeat_details=any_json, scheduled_time=_time(),
            current_attempt_scheduled_time=_time(), started_time=_time(),
            schedule_to_close_timeout_ms={"type": ["integer", "null"]},
            start_to_close_timeout_ms={"type": ["integer", "null"]},
            heartbeat_timeout_ms={"type": ["integer", "null"]}),
        "Failure": failure,
        "CompleteWorkflowTaskRequest": _object(
            ("task_token", "commands"), task_token=_token(), identity=_string(),
            sticky_queue={**_string(), "description": "This worker keeps the run replayed."},
            eager_task_queue={**_string(), "description": (
                "Activities scheduled on this queue are started for this worker in the same "
                "commit and returned in activity_tasks.")},
            eager_activities_max={"type": "integer", "minimum": 0,
                                  "maximum": EAGER_ACTIVITIES_MAX},
            commands={"type": "array", "items": _object(
                ("command_type",), command_type={"type": "string", "enum": [
                    "ScheduleActivityTask", "RequestCancelActivityTask", "StartTimer",
                    "CancelTimer", "CompleteWorkflowExecution", "FailWorkflowExecution",
                    "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution",
                    "RecordMarker"]},
                attributes={"type": "object"})}),
        "FailWorkflowTaskRequest": _object(("task_token", "cause"), task_token=_token(),
                                           cause=_string(), failure=_ref("Failure"),
                                           identity=_string()),
        "CompleteActivityTaskRequest": _object(
            ("task_token",), task_token=_token(), result=any_json, identity=_string(),
            eager_task_queue={**_string(), "description": (
                "If the completion schedules the run's next workflow task on this queue, it "
                "is started for this worker and returned in workflow_task.")},
            sticky_queue=_string()),
        "CompleteWorkflowTaskResponse": _object(
            (), activity_tasks={"type": "array", "items": _ref("ActivityTask")}),
        "CompleteActivityTaskResponse": _object((), workflow_task=_ref("WorkflowTask")),
        "FailActivityTaskRequest": _object(("task_token", "failure"), task_token=_token(),
                                           failure=_ref("Failure"), identity=_string()),
        "ActivityTaskCanceledRequest": _object(("task_token",), task_token=_token(),
                                               details=any_json, identity=_string()),
        "HeartbeatRequest": _object(("task_token",), task_token=_token(), details=any_json),
        "HeartbeatResponse": _object(("cancel_requested",),
                                     cancel_requested={"type": "boolean"}),
    }


def _operation(summary: str, ok_status: int, ok_schema: str | None, *,
               body: str | None = None, errors: tuple[int, ...] = (400, 503, 504),
               parameters: tuple[Schema, ...] = ()) -> Schema:
    responses: dict[str, Schema] = {}
    if ok_schema is None:
        responses[str(ok_status)] = {"description": "OK"}
    else:
        responses[str(ok_status)] = {"description": "OK", "content": {
            "application/json": {"schema": _ref(ok_schema)}}}
    for status in errors:
        responses[str(status)] = {"description": _ERROR_STATUSES[status], "content": {
            "application/json": {"schema": _ref("Error")}}}
    operation: Schema = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(body)}}}
    if parameters:
        operation["parameters"] = list(parameters)
    return operation


def _path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": _id()}


def _query_param(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _result_operation(ns: Schema, wf: Schema) -> Schema:
    operation = _operation(
        "Wait for a run to close (long poll); the description once closed", 200,
        "WorkflowDescription", errors=(400, 404, 503, 504), parameters=(
            ns, wf, _query_param("run_id", {"type": "string"}, "this run, not the latest"),
            _query_param("wait_ms", {"type": "integer", "minimum": 0, "maximum": 60_000},
                         "how long to wait (default 30000)")))
    responses = operation["responses"]
    assert isinstance(responses, dict)
    responses["204"] = {"description": "Still running after wait_ms; ask again."}
    return operation


def _paths() -> dict[str, Schema]:
    ns, wf, tq = _path_param("ns"), _path_param("workflow_id"), _path_param("tq")
    workflows = "/api/v1/namespaces/{ns}/workflows"
    one = workflows + "/{workflow_id}"
    queues = "/api/v1/namespaces/{ns}/task-queues/{tq}"
    conflict = (400, 404, 409, 413, 503, 504)
    task_errors = (400, 404, 409, 413, 503, 504)
    poll_204 = {"description": "No task arrived within the wait; poll again."}

    def poll(kind: str, schema: str) -> Schema:
        operation = _operation(f"Long-poll for a {kind} task", 200, schema, body="PollRequest",
                               errors=(400, 503), parameters=(ns, tq))
        responses = operation["responses"]
        assert isinstance(responses, dict)
        responses["204"] = poll_204
        return {"post": operation}

    def respond(summary: str, body: str, ok_schema: str = "Empty") -> Schema:
        return {"post": _operation(summary, 200, ok_schema, body=body, errors=task_errors)}

    return {
        "/healthz": {"get": _operation("Liveness of this node", 200, None, errors=())},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
            "description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/api/v1/openapi.json": {"get": _operation("This document", 200, None, errors=())},
        "/api/v1/cluster/status": {"get": _operation("Nodes, shards, leaders and terms", 200,
                                                     "ClusterStatus", errors=(503,))},
        "/api/v1/node/digests": {"get": _operation(
            "This node's replicas: applied index and state digest (costly; for checks)", 200,
            None, errors=())},
        workflows: {
            "post": _operation("Start a workflow (idempotent by request_id)", 201,
                               "StartWorkflowResponse", body="StartWorkflowRequest",
                               errors=conflict, parameters=(ns,)),
            "get": _operation("List workflows", 200, "WorkflowList", parameters=(
                ns, _query_param("status", {"type": "string"}, "only runs in this status"),
                _query_param("limit", {"type": "integer", "minimum": 1,
                                       "maximum": QUERY_LIMIT_MAX}, "at most this many"))),
        },
        one: {"get": _operation("Describe a workflow's latest run", 200, "WorkflowDescription",
                                errors=(400, 404, 503, 504), parameters=(ns, wf))},
        one + "/history": {"get": _operation(
            "One page of a workflow's history", 200, "HistoryPage",
            errors=(400, 404, 503, 504), parameters=(
                ns, wf, _query_param("next_page_token", {"type": "string"},
                                     "from the previous page")))},
        one + "/signal": {"post": _operation("Signal a workflow (idempotent by request_id)", 200,
                                             "Empty", body="SignalRequest", errors=conflict,
                                             parameters=(ns, wf))},
        one + "/cancel": {"post": _operation("Request cancellation (the workflow decides how)",
                                             200, "Empty", body="CancelRequest", errors=conflict,
                                             parameters=(ns, wf))},
        one + "/result": {"get": _result_operation(ns, wf)},
        one + "/query": {"post": _operation(
            "Query a workflow through a worker of its task queue (not logged)", 200,
            "QueryResponse", body="QueryRequest", errors=(400, 404, 503, 504),
            parameters=(ns, wf))},
        "/api/v1/tasks/query/respond": respond("Answer a query task", "QueryAnswer"),
        one + "/terminate": {"post": _operation("Terminate a workflow", 200, "Empty",
                                                body="TerminateRequest", errors=conflict,
                                                parameters=(ns, wf))},
        queues + "/workflow-tasks/poll": poll("workflow", "WorkflowTask"),
        queues + "/activity-tasks/poll": poll("activity", "ActivityTask"),
        "/api/v1/tasks/workflow/complete": respond("Complete a workflow task with commands",
                                                   "CompleteWorkflowTaskRequest",
                                                   "CompleteWorkflowTaskResponse"),
        "/api/v1/tasks/workflow/fail": respond("Fail a workflow task",
                                               "FailWorkflowTaskRequest"),
        "/api/v1/tasks/activity/complete": respond("Complete an activity task",
                                                   "CompleteActivityTaskRequest",
                                                   "CompleteActivityTaskResponse"),
        "/api/v1/tasks/activity/fail": respond("Fail an activity task (retried by policy)",
                                               "FailActivityTaskRequest"),
        "/api/v1/tasks/activity/canceled": respond("Report an activity canceled",
                                                   "ActivityTaskCanceledRequest"),
        "/api/v1/tasks/activity/heartbeat": respond("Heartbeat an activity; learn of cancel",
                                                    "HeartbeatRequest", "HeartbeatResponse"),
    }


def openapi_document() -> dict[str, object]:
    """A new OpenAPI 3.1 document describing every endpoint of `/api/v1`."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "raftflow", "version": API_VERSION,
                 "description": "Durable workflows on Raft-replicated shards. Every error "
                                "answers {\"error\": {\"code\", \"message\", \"field\"}}."},
        "paths": _paths(),
        "components": {"schemas": {**_client_schemas(), **_worker_schemas()}},
    }
