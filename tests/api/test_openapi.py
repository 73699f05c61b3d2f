"""Goal: the OpenAPI document is a well-formed 3.1 description of every endpoint the gateway,
the CLI and workers use, generated from the structs the gateway decodes and encodes.

Method: walk the document: required paths and methods present, every `$ref` resolves, every
operation documents its answers (every error status with the error body), required
properties are declared, it serialises to JSON; each request schema is the JSON Schema of the
body struct the route decodes, field for field and bound for bound.
"""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from raftflow.api.openapi import REF_TEMPLATE, openapi_document
from raftflow.api.openapi_routes import ROUTES
from raftflow.protocol import http_bodies

WF = "/api/v1/namespaces/{ns}/workflows"
TQ = "/api/v1/namespaces/{ns}/task-queues/{tq}"
EXPECTED = {
    ("/healthz", "get"), ("/metrics", "get"), ("/api/v1/openapi.json", "get"),
    ("/ui", "get"), ("/ui/", "get"), ("/ui/{file}", "get"),
    ("/api/v1/cluster/status", "get"), ("/api/v1/node/status", "get"),
    ("/api/v1/cluster/map", "get"), ("/api/v1/cluster/join", "post"),
    ("/api/v1/cluster/nodes/{node_id}/drain", "post"),
    ("/api/v1/cluster/nodes/{node_id}/remove", "post"), ("/api/v1/cluster/rebalance", "post"),
    ("/api/v1/node/digests", "get"), (WF, "post"), (WF, "get"),
    (WF + "/{workflow_id}", "get"), (WF + "/{workflow_id}/history", "get"),
    (WF + "/{workflow_id}/signal", "post"), (WF + "/{workflow_id}/signal-with-start", "post"),
    (WF + "/{workflow_id}/terminate", "post"),
    (WF + "/{workflow_id}/reset", "post"),
    (WF + "/{workflow_id}/cancel", "post"), (WF + "/{workflow_id}/result", "get"),
    (WF + "/{workflow_id}/query", "post"), ("/api/v1/tasks/query/respond", "post"),
    (WF + "/{workflow_id}/updates", "post"), (WF + "/{workflow_id}/updates/{update_id}", "get"),
    (TQ + "/workflow-tasks/poll", "post"), (TQ + "/activity-tasks/poll", "post"),
    (TQ + "/stream", "get"),
    ("/api/v1/tasks/workflow/complete", "post"), ("/api/v1/tasks/workflow/fail", "post"),
    ("/api/v1/tasks/activity/complete", "post"), ("/api/v1/tasks/activity/fail", "post"),
    ("/api/v1/tasks/activity/heartbeat", "post"), ("/api/v1/tasks/activity/canceled", "post"),
    ("/api/v1/tasks/handout", "post"), ("/api/v1/tasks/poll/end", "post"),
    ("/api/v1/shards/{shard}/messages", "post"),
}
INTERNAL = {("/api/v1/tasks/handout", "post"), ("/api/v1/tasks/poll/end", "post"),
            ("/api/v1/shards/{shard}/messages", "post"),
            ("/api/v1/namespaces/{ns}/shards/{shard}/schedules", "get")}
SCHEDULES = "/api/v1/namespaces/{ns}/schedules"
EXPECTED |= {(SCHEDULES, "post"), (SCHEDULES, "get"), (SCHEDULES + "/{schedule_id}", "get"),
             (SCHEDULES + "/{schedule_id}/update", "post"), (SCHEDULES + "/{schedule_id}", "delete"),
             (SCHEDULES + "/{schedule_id}/patch", "post"),
             ("/api/v1/namespaces/{ns}/shards/{shard}/schedules", "get")}
BATCHES = "/api/v1/namespaces/{ns}/batches"
EXPECTED |= {(BATCHES, "post"), (BATCHES, "get"), (BATCHES + "/{job_id}", "get"),
             (BATCHES + "/{job_id}/stop", "post")}
EXPECTED |= {("/api/v1/namespaces", "get"), ("/api/v1/namespaces", "post"),
                        ("/api/v1/namespaces/{ns}/workflow-count", "get"),
                        ("/api/v1/namespaces/{ns}", "get"), ("/api/v1/namespaces/{ns}", "patch"),
             ("/api/v1/namespaces/{ns}/search-attributes", "post")}


def _walk(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def _schemas() -> dict[str, dict[str, object]]:
    components = openapi_document()["components"]
    assert isinstance(components, dict)
    schemas = components["schemas"]
    assert isinstance(schemas, dict)
    return schemas


def test_document_lists_every_endpoint() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    assert isinstance(paths, dict)
    assert {(path, method) for path, ops in paths.items() for method in ops} == EXPECTED


def test_every_path_parameter_is_declared() -> None:
    for path, operations in openapi_document()["paths"].items():  # type: ignore[union-attr]
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_internal_routes_are_marked_and_only_they() -> None:
    paths = openapi_document()["paths"]
    assert isinstance(paths, dict)
    marked = {(path, method) for path, ops in paths.items() for method, op in ops.items()
              if op.get("x-internal") is True}
    assert marked == INTERNAL


def test_every_ref_resolves_and_every_operation_has_responses() -> None:
    document = openapi_document()
    schemas = _schemas()
    for node in _walk(document):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
        if node.get("type") == "object" and "required" in node:
            properties = node.get("properties")
            assert isinstance(properties, dict) and isinstance(node["required"], list)
            assert set(node["required"]) <= set(properties), node
    paths = document["paths"]
    assert isinstance(paths, dict)
    for operations in paths.values():
        for operation in operations.values():
            assert operation["summary"] and operation["responses"]


def test_document_is_json_and_fresh_per_call() -> None:
    first, second = openapi_document(), openapi_document()
    assert json.loads(json.dumps(first)) == first == second
    first["paths"] = {}
    assert openapi_document() == second


@pytest.mark.parametrize(
    "body", [http_bodies.StartWorkflowRequest, http_bodies.SignalWorkflowRequest,
             http_bodies.SignalWithStartWorkflowRequest,
             http_bodies.TerminateWorkflowRequest, http_bodies.CancelWorkflowRequest,
             http_bodies.CompleteWorkflowTaskRequest, http_bodies.PollRequest],
    ids=lambda body: body.__name__,
)
def test_request_schemas_are_the_body_structs(body: type[msgspec.Struct]) -> None:
    (_,), generated = msgspec.json.schema_components([body], ref_template=REF_TEMPLATE)
    documented = _schemas()[body.__name__]
    assert documented == generated[body.__name__]
    assert documented["additionalProperties"] is False  # a typo is refused, and documented so
    required = documented.get("required", [])
    assert isinstance(required, list)
    assert set(required) == {f.name for f in msgspec.structs.fields(body) if f.required}


def test_every_operation_documents_its_errors_with_the_error_body() -> None:
    paths = openapi_document()["paths"]
    assert isinstance(paths, dict)
    for route in ROUTES:
        responses = paths[route.path][route.method]["responses"]
        if "{ns}" in route.path or route.request is not None:
            assert "400" in responses, route.path  # a bad id or body names its field
        if route.request is not None:
            assert "413" in responses, route.path
            assert route.method in ("post", "patch")
        for status, answer in responses.items():
            if int(status) >= 400:
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorAnswer"}, (route.path, status)


def test_a_secured_node_declares_its_security_schemes_and_401_403() -> None:
    open_paths = {"/healthz", "/api/v1/openapi.json", "/ui", "/ui/", "/ui/{file}"}
    plain = openapi_document()
    assert "securitySchemes" not in plain["components"]  # type: ignore[operator]
    secured = openapi_document(secured=True)
    schemes = secured["components"]["securitySchemes"]  # type: ignore[index]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    for path, operations in secured["paths"].items():  # type: ignore[attr-defined]
        for method, operation in operations.items():
            if path in open_paths:
                assert operation["security"] == [], (method, path)
                assert "401" not in operation["responses"]
                continue
            assert {"bearerAuth": []} in operation["security"], (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            assert ({} in operation["security"]) == (path == "/metrics"), (method, path)
    for path, operations in plain["paths"].items():  # type: ignore[attr-defined]
        for operation in operations.values():
            assert "security" not in operation and "401" not in operation["responses"], path
