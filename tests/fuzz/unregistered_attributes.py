"""Schemathesis hook of `make fuzz`: a generated start carries no custom search attributes.

A start's `search_attributes` may name only attributes the namespace registered, a rule of
the cluster's state that JSON Schema cannot state: a schema-valid map of made-up names is
rightly answered 400 naming `search_attributes.<name>`. So a start whose map is schema-valid
is sent without it, and the start route keeps its strict check that a valid body is accepted.
A map the schema refuses (a value that is an object, too many entries) is sent as generated,
so negative cases still test the refusal. tests/integration/test_search_attributes_e2e.py
covers registered and unregistered attributes at start.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from raftflow.protocol.search_attributes import SEARCH_ATTRIBUTES_PER_RUN_MAX

_START = "/api/v1/namespaces/{ns}/workflows"


def _schema_valid(values: object) -> bool:
    return (isinstance(values, dict) and len(values) <= SEARCH_ATTRIBUTES_PER_RUN_MAX
            and all(isinstance(v, str | int | float | bool) for v in values.values()))


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.operation.path != _START or case.operation.method.upper() != "POST":
        return
    body = case.body
    if isinstance(body, dict) and _schema_valid(body.get("search_attributes")):
        del body["search_attributes"]
