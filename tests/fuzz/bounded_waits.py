"""Schemathesis hook of `make fuzz`: long polls wait a little, not up to a minute.

A task poll, a result wait, a query and an update may each wait up to 60 s by design (`wait_ms`,
`timeout_ms`; 30 s and 10 s when left out), and the fuzz cluster has no worker, so generated
values would make one run take an hour. Before each call this caps a valid wait at
`WAIT_MS_FUZZ` and gives one to a request that left it out or sent null; every other field
keeps its generated value, and an invalid wait (negative, not an integer) is sent as
generated, so the negative cases still test the refusal. A poll with no body at all gets a
body holding only the wait. Long waits themselves are covered by the integration
tests (tests/integration/test_poll_fanout.py, the SDK's result waits).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.core import NOT_SET

WAIT_MS_FUZZ = 100
# Where each route takes its wait: (part of the request, field).
_WAITS = {"/workflow-tasks/poll": ("body", "wait_ms"), "/activity-tasks/poll": ("body", "wait_ms"),
          "/result": ("query", "wait_ms"), "/query": ("body", "timeout_ms"),
          "/updates": ("body", "wait_ms"), "/updates/{update_id}": ("query", "wait_ms")}


def _bounded(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value > WAIT_MS_FUZZ:
        return WAIT_MS_FUZZ
    return value


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    for suffix, (part, field) in _WAITS.items():
        if not case.operation.path.endswith(suffix):
            continue
        values = case.body if part == "body" else case.query
        if part == "query" and values is None:
            case.query = values = {}
        if part == "body" and values is NOT_SET:
            # No body at all: a wait left out, given as to any other body that leaves it out.
            case.body, case.media_type = {}, "application/json"
            values = case.body
        if isinstance(values, dict):  # null, like a left-out wait, means the long default
            values[field] = _bounded(values.get(field) or WAIT_MS_FUZZ)
