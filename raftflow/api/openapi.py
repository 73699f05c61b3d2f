"""The OpenAPI 3.1 description of raftflow's HTTP API, generated from the types it decodes and
encodes, served at `/api/v1/openapi.json`.

Theory of operation. `ROUTES` says, for each public route, which struct its body decodes into
(`protocol.http_bodies`), which struct each success status answers (`protocol.http_answers`),
and every error status it can answer (each with the one error body). The schemas themselves are
`msgspec.json.schema_components` of those structs, so a bound or a field changed in a struct is
changed in the document too: nothing here repeats a field. `openapi_document()` builds a fresh
dict on each call (no shared mutable state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import msgspec

from raftflow.api import openapi_events
from raftflow.api.handouts import HANDOUT_PATH, HandoutRequest
from raftflow.api.poll_fanout import POLL_END_PATH
from raftflow.api.validation import QUERY_LIMIT_MAX
from raftflow.api.workflow_handlers import HISTORY_PAGE_SIZE_MAX, HISTORY_PAGE_TOKEN
from raftflow.cluster.cluster_map import ClusterMap
from raftflow.cluster.membership_wire import (
    JoinAnswer,
    JoinRequest,
    MembershipAnswer,
    RebalancePlan,
)
from raftflow.cluster.node_credential import NODE_CREDENTIAL_HEADER
from raftflow.protocol import http_answers as answers
from raftflow.protocol import http_bodies as bodies
from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.protocol.namespaces import (
    AddSearchAttributeRequest,
    CreateNamespaceRequest,
    NamespaceInfo,
    NamespaceList,
    UpdateNamespaceRequest,
)
from raftflow.protocol.results import WorkflowStatus
from raftflow.visibility.limits import QUERY_CHARS_MAX
from raftflow.visibility.paging import PAGE_TOKEN_LENGTH_MAX

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
REF_TEMPLATE = "#/components/schemas/{name}"

Schema = dict[str, Any]

ERROR_STATUSES: Mapping[int, str] = MappingProxyType({
    400: ("invalid_argument, limit_exceeded, query_failed or invalid_task_token (a task token "
          "no node of this cluster handed out, or one altered or expired): the field and rule "
          "are named"),
    404: ("not_found or namespace_not_found: no such workflow, run, task or query, or a "
          "namespace the cluster does not have"),
    401: ("unauthenticated (auth on): no credentials, or a token or node credential this node "
          "does not accept; WWW-Authenticate: Bearer"),
    403: ("permission_denied: the caller's roles do not allow this call (auth on), or a join "
          "request's proof was not made with the cluster secret"),
    409: ("workflow_already_started, workflow_not_running, stale_task, unhandled_command, "
          "namespace_already_exists (with other settings), search_attribute_conflict (the "
          "name is registered with another type) or failed_precondition (a membership "
          "change the cluster map does not allow now)"),
    413: "payload_too_large: the body or a payload field is above its limit",
    429: ("rate_limited: the namespace's rate limit (starts and signals, or polls) is spent "
          "on this node for now; nothing changed: retry after Retry-After seconds"),
    503: "overloaded or not_leader: retry after Retry-After seconds",
    504: "timeout: the change may still be applied; retry with the same request_id",
})
# With auth on (docs/security.md) every route but these needs credentials: a bearer token
# (API key or JWT) or, between nodes, the node credential. /metrics needs them only with
# --protect-metrics.
_OPEN_PATHS = frozenset({"/healthz", "/api/v1/openapi.json"})
_OPTIONAL_AUTH_PATHS = frozenset({"/metrics"})
# Clients use bearer tokens; the node credential is the nodes' own (it is accepted on every
# route, but a client never holds it), so only the internal routes list it.
_SECURITY: list[Schema] = [{"bearerAuth": []}]
_INTERNAL_SECURITY: list[Schema] = [{"bearerAuth": []}, {"nodeCredential": []}]
_SECURITY_SCHEMES: Schema = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": (
        "An API key of the node's --auth-tokens file or a JWT (HS256, RS256, ES256) whose "
        "'roles' claim lists admin, metrics, writer:NS, worker:NS or reader:NS")},
    "nodeCredential": {"type": "apiKey", "in": "header", "name": NODE_CREDENTIAL_HEADER,
                       "description": "Between the nodes of one cluster (HMAC of its secret)"},
}
_READ = (400, 404, 503, 504)
_WRITE = (400, 404, 409, 413, 503, 504)
_LIMITED_WRITE = (*_WRITE, 429)  # starts and signals spend the namespace's rate limit

# One struct per answer; a poll of workflow tasks may also hand out a query task.
_WORKFLOW_POLL = "WorkflowPollAnswer"
_HANDOUT = "HandoutAnswer"
_UNIONS: Mapping[str, tuple[type[msgspec.Struct], ...]] = MappingProxyType({
    _WORKFLOW_POLL: (answers.WorkflowTask, answers.QueryTask),
    _HANDOUT: (answers.WorkflowTask, answers.ActivityTask),
})
# Ok answers that are not JSON structs: no body (204), the document itself, Prometheus text.
NO_BODY, DOCUMENT, PROMETHEUS = "none", "document", "prometheus"
Body = type[msgspec.Struct] | str


class Audience(StrEnum):
    PUBLIC = "public"
    # Called by other nodes of the cluster, not by clients: documented so that every route
    # is, and marked `x-internal` so that client generators and docs can leave it out.
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    method: str
    path: str
    summary: str
    ok: Mapping[int, Body]
    request: type[msgspec.Struct] | None = None
    errors: tuple[int, ...] = ()
    query: tuple[Schema, ...] = ()
    audience: Audience = Audience.PUBLIC


def _id(name: str, description: str = "") -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": ID_LENGTH_MAX}}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


_RUN_ID = _query("run_id", {"type": "string", "maxLength": ID_LENGTH_MAX},
                 "this run rather than the latest")
NAMESPACES = "/api/v1/namespaces"
NAMESPACE = NAMESPACES + "/{ns}"
WF = NAMESPACE + "/workflows"
_VISIBILITY_QUERY = _query("query", {"type": "string", "maxLength": QUERY_CHARS_MAX}, (
    "e.g. WorkflowType = 'Order' AND ExecutionStatus = 'Running' ORDER BY StartTime DESC; "
    "fields WorkflowId, WorkflowType, ExecutionStatus, StartTime, CloseTime, TaskQueue; "
    "empty: every run"))
ONE = WF + "/{workflow_id}"
TQ = "/api/v1/namespaces/{ns}/task-queues/{tq}"


def _task(path: str, summary: str, request: type[msgspec.Struct],
          ok: type[msgspec.Struct] = answers.Empty) -> Route:
    return Route(method="post", path=path, summary=summary, request=request, ok={200: ok},
                 errors=_WRITE)


def _poll(kind: str, ok: Body) -> Route:
    return Route(method="post", path=f"{TQ}/{kind}-tasks/poll",
                 summary=f"Long-poll for a {kind} task (204: none arrived within wait_ms)",
                 request=bodies.PollRequest, ok={200: ok, 204: NO_BODY},
                 errors=(400, 413, 429, 503))


ROUTES: tuple[Route, ...] = (
    Route(method="get", path="/healthz", summary="Liveness of this node", ok={200: answers.Health}),
    Route(method="get", path="/metrics", summary="Prometheus metrics", ok={200: PROMETHEUS}),
    Route(method="get", path="/api/v1/openapi.json", summary="This document",
          ok={200: DOCUMENT}),
    Route(method="get", path="/api/v1/cluster/status", summary=(
        "Nodes, shards, leaders and terms, as every node sees them"),
        ok={200: answers.ClusterStatus}),
    Route(method="get", path="/api/v1/cluster/map", summary=(
        "The cluster map this node follows: members, placement, moves, epoch"),
        ok={200: ClusterMap}),
    Route(method="post", path="/api/v1/cluster/join", summary=(
        "Admit a node (`raftflow node --join`); proven by an HMAC of the cluster secret"),
        request=JoinRequest, ok={200: JoinAnswer}, errors=(400, 403, 409, 413, 503, 504)),
    Route(method="post", path="/api/v1/cluster/nodes/{node_id}/drain", summary=(
        "Drain a node: its leaders, then its replicas, move to the other nodes"),
        ok={200: MembershipAnswer}, errors=(400, 404, 409, 503, 504)),
    Route(method="post", path="/api/v1/cluster/nodes/{node_id}/remove", summary=(
        "Remove a drained node (force: a dead one, whose replicas are rebuilt elsewhere)"),
        ok={200: MembershipAnswer}, errors=(400, 404, 409, 503, 504), query=(
            _query("force", {"type": "string", "enum": ["true", "false", "1", "0"]},
                   "remove the node whatever it still holds (default false)"),)),
    Route(method="post", path="/api/v1/cluster/rebalance", summary=(
        "The replica moves the rebalancer starts next; started now unless dry_run"),
        ok={200: RebalancePlan}, errors=(400, 409, 503, 504), query=(
            _query("dry_run", {"type": "string", "enum": ["true", "false", "1", "0"]},
                   "only show the moves (default false)"),)),
    Route(method="get", path="/api/v1/node/status", summary="This node's own replicas",
          ok={200: answers.NodeStatus}),
    Route(method="get", path="/api/v1/node/digests", summary=(
        "This node's replicas: applied index and state digest (costly; for checks)"),
        ok={200: answers.NodeDigests}),
    Route(method="get", path=NAMESPACES, summary="Every namespace, by name (default included)",
          ok={200: NamespaceList}, errors=(503, 504)),
    Route(method="post", path=NAMESPACES, summary=(
        "Create a namespace (200: it existed with the same settings)"),
          request=CreateNamespaceRequest, ok={201: NamespaceInfo, 200: NamespaceInfo},
          errors=(400, 409, 413, 503, 504)),
    Route(method="get", path=NAMESPACE, summary="Describe a namespace",
          ok={200: NamespaceInfo}, errors=(400, 404, 503, 504)),
    Route(method="patch", path=NAMESPACE, summary=(
        "Change a namespace's retention, description or rate limits"),
          request=UpdateNamespaceRequest, ok={200: NamespaceInfo},
          errors=(400, 404, 413, 503, 504)),
    Route(method="post", path=NAMESPACE + "/search-attributes", summary=(
        "Register a custom search attribute (the same name and type again: a no-op); "
        "answers once every shard has it"),
          request=AddSearchAttributeRequest, ok={200: NamespaceInfo},
          errors=(400, 404, 409, 413, 503, 504)),
    Route(method="post", path=WF, summary="Start a workflow (idempotent by request_id)",
          request=bodies.StartWorkflowRequest,
          ok={201: answers.StartWorkflowAnswer, 200: answers.StartWorkflowAnswer},
          errors=_LIMITED_WRITE),
    Route(method="get", path=WF, summary=(
        "List runs a visibility query selects (Temporal's list filter), a page at a time"),
          ok={200: answers.WorkflowList}, errors=(400, 503, 504), query=(
              _VISIBILITY_QUERY,
              _query("page_size", {"type": "integer", "minimum": 1, "maximum": QUERY_LIMIT_MAX},
                     "runs per page (default 100)"),
              _query("next_page_token", {"type": "string", "maxLength": PAGE_TOKEN_LENGTH_MAX},
                     "from the previous page (empty: the first page)"),
              _query("status", {"type": "string", "enum": [
                  s.value.upper() for s in WorkflowStatus] + [""]},
                  "also: only runs in this status (empty: every status)"),
              _query("limit", {"type": "integer", "minimum": 1, "maximum": QUERY_LIMIT_MAX},
                     "page_size's older name"))),
    Route(method="get", path=NAMESPACE + "/workflow-count", summary=(
        "Count the runs a visibility query selects"),
          ok={200: answers.WorkflowCount}, errors=(400, 503, 504), query=(_VISIBILITY_QUERY,)),
    Route(method="get", path=ONE, summary="Describe a workflow's run",
          ok={200: answers.WorkflowDescription}, errors=_READ, query=(_RUN_ID,)),
    Route(method="get", path=ONE + "/history", summary="One page of a run's history",
          ok={200: answers.HistoryPage}, errors=_READ, query=(
              _RUN_ID,
              _query("next_page_token", {"type": "string",
                                         "pattern": f"^{HISTORY_PAGE_TOKEN.pattern}$"},
                     "from the previous page (empty: the first page)"),
              _query("page_size", {"type": "integer", "minimum": 1,
                                   "maximum": HISTORY_PAGE_SIZE_MAX},
                     "events per page (default 1000)"))),
    Route(method="post", path=ONE + "/signal", summary="Signal a run (idempotent by request_id)",
          request=bodies.SignalWorkflowRequest, ok={200: answers.Empty}, errors=_LIMITED_WRITE),
    Route(method="post", path=ONE + "/signal-with-start", summary=(
        "Signal a workflow, starting it first if no run is open (atomic; 201: started, 200: "
        "an open run was signalled; idempotent by request_id)"),
          request=bodies.SignalWithStartWorkflowRequest,
          ok={201: answers.StartWorkflowAnswer, 200: answers.StartWorkflowAnswer},
          errors=_LIMITED_WRITE),
    Route(method="post", path=ONE + "/cancel", summary=(
        "Request cancellation (the workflow decides how)"),
        request=bodies.CancelWorkflowRequest, ok={200: answers.Empty}, errors=_WRITE),
    Route(method="post", path=ONE + "/terminate", summary="Terminate a run",
          request=bodies.TerminateWorkflowRequest, ok={200: answers.Empty}, errors=_WRITE),
    Route(method="get", path=ONE + "/result", summary=(
        "Wait for a run to close (long poll): its description once closed, 204 if still "
        "running after wait_ms"),
        ok={200: answers.WorkflowDescription, 204: NO_BODY}, errors=_READ, query=(
            _RUN_ID,
            _query("wait_ms", {"type": "integer", "minimum": 0, "maximum": bodies.WAIT_MS_MAX},
                   "how long to wait, in milliseconds (default 30000)"))),
    Route(method="post", path=ONE + "/query", summary=(
        "Query a run through a worker of its task queue (not logged; 504 when no worker "
        "answers within timeout_ms)"),
        request=bodies.QueryWorkflowRequest, ok={200: answers.QueryWorkflowAnswer},
        errors=(400, 404, 413, 503, 504)),
    _task("/api/v1/tasks/query/respond", "Answer a query task", bodies.QueryAnswerRequest),
    _poll("workflow", _WORKFLOW_POLL),
    _poll("activity", answers.ActivityTask),
    _task("/api/v1/tasks/workflow/complete", "Complete a workflow task with commands",
          bodies.CompleteWorkflowTaskRequest, answers.CompleteWorkflowTaskAnswer),
    _task("/api/v1/tasks/workflow/fail", "Fail a workflow task (it is retried)",
          bodies.FailWorkflowTaskRequest),
    _task("/api/v1/tasks/activity/complete", "Complete an activity task",
          bodies.CompleteActivityTaskRequest, answers.CompleteActivityTaskAnswer),
    _task("/api/v1/tasks/activity/fail", "Fail an activity task (retried by its policy)",
          bodies.FailActivityTaskRequest),
    _task("/api/v1/tasks/activity/canceled", "Report an activity canceled",
          bodies.ActivityTaskCanceledRequest),
    _task("/api/v1/tasks/activity/heartbeat", "Heartbeat an activity; learn of cancellation",
          bodies.HeartbeatRequest, answers.HeartbeatAnswer),
    Route(method="post", path=HANDOUT_PATH, summary=(
        "Internal: apply again, on the shard's leader, a task hand-out another node saw fail "
        "in doubt (same request id: the started task if it committed, else 409 stale_task)"),
        request=HandoutRequest, ok={200: _HANDOUT}, errors=(400, 404, 409, 413, 503, 504),
        audience=Audience.INTERNAL),
    Route(method="post", path=POLL_END_PATH, summary=(
        "Internal: a gateway poll has its answer; its legs waiting on this node answer now"),
        request=bodies.EndPollsRequest, ok={204: NO_BODY}, errors=(400, 413),
        audience=Audience.INTERNAL),
)


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def _ok(status: int, body: Body) -> Schema:
    description = "No content" if status == 204 else "OK"
    if body == NO_BODY:
        return {"description": description}
    if body == PROMETHEUS:
        return {"description": description,
                "content": {"text/plain": {"schema": {"type": "string"}}}}
    if body == DOCUMENT:
        return {"description": description, "content": _json({"type": "object"})}
    name = body if isinstance(body, str) else body.__name__
    return {"description": description, "content": _json(_ref(name))}


def _parameters(route: Route) -> list[Schema]:
    path_ids = [_id("ns", "namespace")] if "{ns}" in route.path else []
    if "{workflow_id}" in route.path:
        path_ids.append(_id("workflow_id"))
    if "{tq}" in route.path:
        path_ids.append(_id("tq", "task queue"))
    if "{node_id}" in route.path:
        path_ids.append(_id("node_id", "a member's node id"))
    return path_ids + list(route.query)


def _operation(route: Route, secured: bool) -> Schema:
    responses = {str(status): _ok(status, body) for status, body in sorted(route.ok.items())}
    # Every call under a namespace may find it unknown: 404 namespace_not_found.
    errors = route.errors if "{ns}" not in route.path else tuple(sorted({*route.errors, 404}))
    if secured and route.path not in _OPEN_PATHS:
        errors = tuple(sorted({*errors, 401, 403}))
    for status in errors:
        responses[str(status)] = {"description": ERROR_STATUSES[status],
                                  "content": _json(_ref("ErrorAnswer"))}
    operation: Schema = {"summary": route.summary, "responses": responses}
    if not secured:
        pass  # auth off: nothing to present
    elif route.path in _OPEN_PATHS:
        operation["security"] = []
    elif route.path in _OPTIONAL_AUTH_PATHS:
        operation["security"] = [{}, *_SECURITY]
    elif route.audience is Audience.INTERNAL:
        operation["security"] = list(_INTERNAL_SECURITY)
    else:
        operation["security"] = list(_SECURITY)
    if route.audience is Audience.INTERNAL:
        operation["x-internal"] = True
    if route.request is not None:
        # A body of optional fields may be left out (the gateway reads it as `{}`).
        required = any(f.required for f in msgspec.structs.fields(route.request))
        operation["requestBody"] = {"required": required, "content": _json(_ref(
            route.request.__name__))}
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    return operation


def _components() -> dict[str, Schema]:
    types: set[type[msgspec.Struct]] = {answers.ErrorAnswer}
    for route in ROUTES:
        if route.request is not None:
            types.add(route.request)
        types.update(body for body in route.ok.values() if not isinstance(body, str))
    for members in _UNIONS.values():
        types.update(members)
    _, generated = msgspec.json.schema_components(
        sorted(types, key=lambda t: t.__name__), ref_template=REF_TEMPLATE)
    # As JSON has them: msgspec keeps a tuple default (`()`) as a tuple.
    components: dict[str, Schema] = msgspec.json.decode(msgspec.json.encode(generated))
    for name, members in _UNIONS.items():
        components[name] = {"anyOf": [_ref(m.__name__) for m in members]}
    # Events: the answers' generic event struct is described by the typed attribute structs.
    assert openapi_events.ENVELOPE in components
    components.update(openapi_events.event_schemas(REF_TEMPLATE))
    return components


def openapi_document(*, secured: bool = False) -> dict[str, object]:
    """A new OpenAPI 3.1 document describing every public route of the gateway; `secured`:
    as a node with auth on serves it (security schemes, 401 and 403 on every route that needs
    credentials)."""
    paths: dict[str, dict[str, Schema]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route, secured)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "raftflow", "version": API_VERSION,
                 "description": "Durable workflows on Raft-replicated shards. Every error "
                                "answers {\"error\": {\"code\", \"message\", \"field\"}}."},
        "paths": paths,
        "components": {"schemas": _components(),
                       **({"securitySchemes": _SECURITY_SCHEMES} if secured else {})},
    }
