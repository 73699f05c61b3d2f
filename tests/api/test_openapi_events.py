"""Goal: the OpenAPI document describes every history event exactly as the gateway renders it:
each event type's attributes with their types, payloads as any JSON value, no tag inside the
attributes; and a wrong event does not pass.

Method: every event of the recorded histories (tests/data/histories, from a real cluster, and
the 0.1 upgrade fixture's histories) is validated with jsonschema_rs (schemathesis's validator) against the document's
`HistoryEventAnswer` schema; doctored events (wrong field type, missing required field, an
event type with another type's attributes) must fail.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from raftflow.api.openapi import openapi_document
from tests.protocol.recorded_histories import recorded_events


def _validator() -> Any:
    # The document's own refs (#/components/schemas/...) resolve inside this root schema.
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$ref": "#/components/schemas/HistoryEventAnswer",
              "components": openapi_document()["components"]}
    return jsonschema_rs.Draft202012Validator(schema)


def test_every_recorded_event_matches_the_document() -> None:
    validator = _validator()
    events = recorded_events()
    assert len(events) > 100
    for event in events:
        errors = list(validator.iter_errors(event))
        assert not errors, (event, [e.message for e in errors][:3])


def _first(event_type: str) -> dict[str, Any]:
    return next(e for e in recorded_events() if e["event_type"] == event_type)


@pytest.mark.parametrize("doctor", [
    lambda e: {**e, "attributes": {**e["attributes"], "scheduled_event_id": "seven"}},
    lambda e: {**e, "attributes": {k: v for k, v in e["attributes"].items() if k != "failure"}},
    lambda e: {**e, "event_type": "TimerFired"},
    lambda e: {**e, "attributes": {**e["attributes"], "retry_state": "Whenever"}},
])
def test_a_wrong_event_does_not_match(doctor: Any) -> None:
    event = doctor(_first("ActivityTaskFailed"))
    assert list(_validator().iter_errors(event))
