"""The OpenAPI 3.1 description of raftflow's HTTP API, generated from the types it decodes and
encodes, served at `/api/v1/openapi.json`.

Theory of operation. `openapi_routes.ROUTES` says, for each public route, which struct its body
decodes into (`protocol.http_bodies`), which struct each success status answers
(`protocol.http_answers`), and every error status it can answer (each with the one error body).
The schemas themselves are `msgspec.json.schema_components` of those structs, so a bound or a
field changed in a struct is changed in the document too: nothing here repeats a field.
`openapi_document()` builds a fresh dict on each call (no shared mutable state).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import msgspec

from raftflow.api import openapi_events
from raftflow.api.openapi_routes import (
    DOCUMENT,
    NO_BODY,
    PROMETHEUS,
    ROUTES,
    UI_FILE,
    UNIONS,
    Audience,
    Body,
    Route,
    Schema,
    path_id,
)
from raftflow.cluster.node_credential import NODE_CREDENTIAL_HEADER
from raftflow.protocol import http_answers as answers

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
REF_TEMPLATE = "#/components/schemas/{name}"


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
_OPEN_PATHS = frozenset({"/healthz", "/api/v1/openapi.json", "/ui", "/ui/", "/ui/{file}"})
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


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def _ok(status: int, body: Body) -> Schema:
    description = {204: "No content", 101: "Switching protocols (WebSocket)"}.get(status, "OK")
    if body == NO_BODY:
        return {"description": description}
    if body == PROMETHEUS:
        return {"description": description,
                "content": {"text/plain": {"schema": {"type": "string"}}}}
    if body == DOCUMENT:
        return {"description": description, "content": _json({"type": "object"})}
    if body == UI_FILE:
        return {"description": description, "content": {
            media: {"schema": {"type": "string"}}
            for media in ("text/html", "text/css", "text/javascript")}}
    name = body if isinstance(body, str) else body.__name__
    return {"description": description, "content": _json(_ref(name))}


def _parameters(route: Route) -> list[Schema]:
    path_ids = [path_id("ns", "namespace")] if "{ns}" in route.path else []
    if "{workflow_id}" in route.path:
        path_ids.append(path_id("workflow_id"))
    if "{schedule_id}" in route.path:
        path_ids.append(path_id("schedule_id"))
    if "{tq}" in route.path:
        path_ids.append(path_id("tq", "task queue"))
    if "{node_id}" in route.path:
        path_ids.append(path_id("node_id", "a member's node id"))
    if "{job_id}" in route.path:
        path_ids.append(path_id("job_id", "a batch job's id"))
    if "{shard}" in route.path:
        path_ids.append({"name": "shard", "in": "path", "required": True,
                         "description": "a shard number", "schema": {"type": "integer",
                                                                      "minimum": 0}})
    if "{file}" in route.path:
        path_ids.append(path_id("file", "a file name of the UI, e.g. app.js"))
    if "{update_id}" in route.path:
        path_ids.append(path_id("update_id", "a workflow update's id"))
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
    for members in UNIONS.values():
        types.update(members)
    _, generated = msgspec.json.schema_components(
        sorted(types, key=lambda t: t.__name__), ref_template=REF_TEMPLATE)
    # As JSON has them: msgspec keeps a tuple default (`()`) as a tuple.
    components: dict[str, Schema] = msgspec.json.decode(msgspec.json.encode(generated))
    for name, members in UNIONS.items():
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
