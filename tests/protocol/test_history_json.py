"""Goal: the HTTP JSON of a history reads back into the typed events it was rendered from, for
every event the engine has written in the recorded histories, and a malformed event is refused
at the edge.

Method: the golden histories (tests/data/histories, recorded from a real cluster) and the
histories of the 0.1 upgrade fixture are read with `event_from_json` and rendered again with
`event_json`; the JSON must be equal (JSON objects are unordered; the golden files are
stored with sorted keys). Hand-made bad events must raise
`msgspec.ValidationError`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftflow.protocol.commands import Failure
from raftflow.protocol.events import (
    ActivityTaskFailedEventAttributes,
    HistoryEvent,
    TimerFiredEventAttributes,
)
from raftflow.protocol.history_json import (
    event_from_json,
    event_json,
    payload_from_json,
    payload_json,
    time_ms_from_timestamp,
    timestamp,
)
from tests.protocol.recorded_histories import recorded_events


def test_every_recorded_event_reads_back_and_renders_the_same() -> None:
    events = recorded_events()
    assert len(events) > 100
    seen_types = set()
    for body in events:
        typed = event_from_json(body)
        assert isinstance(typed, HistoryEvent)
        assert typed.event_type.value == body["event_type"]
        rendered = event_json(typed)
        assert rendered == body
        seen_types.add(typed.event_type)
    assert len(seen_types) >= 15


def test_typed_fields_are_typed() -> None:
    failed = next(event_from_json(e) for e in recorded_events()
                  if e["event_type"] == "ActivityTaskFailed")
    assert isinstance(failed.attributes, ActivityTaskFailedEventAttributes)
    assert failed.attributes.failure is not None and failed.attributes.failure.message


def test_fields_a_newer_server_adds_are_ignored_at_every_depth() -> None:
    """`Failure` refuses unknown fields (it is a request body too), so a reader of histories
    must drop what its structs do not declare, nested ones included, or an older SDK would
    refuse a newer server's history."""
    body = next(e for e in recorded_events() if e["event_type"] == "ActivityTaskFailed")
    newer = {**body, "attributes": {**body["attributes"], "added_later": [1],
                                    "failure": {**body["attributes"]["failure"],
                                                "stack_trace": "..."}}}
    assert event_from_json(newer) == event_from_json(body)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):  # the strict struct
        msgspec.convert({"message": "m", "stack_trace": "..."}, type=Failure)


@pytest.mark.parametrize("time_ms", [0, 1, 999, 1_000, 1_733_450_000_123, 4_102_444_800_999])
def test_timestamps_round_trip_to_the_millisecond(time_ms: int) -> None:
    assert time_ms_from_timestamp(timestamp(time_ms)) == time_ms


@given(st.integers(min_value=0, max_value=253_402_300_799_999))  # up to 9999-12-31
def test_timestamps_are_exact_rfc3339_utc_with_milliseconds(time_ms: int) -> None:
    """Against exact integer datetime arithmetic (the formatter caches whole seconds)."""
    exact = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=time_ms)
    assert timestamp(time_ms) == exact.isoformat(timespec="milliseconds")


@pytest.mark.parametrize("value", [None, 0, "é", [1, {"a": None}], {"b": [True, 1.5]}])
def test_payloads_round_trip(value: object) -> None:
    assert payload_json(payload_from_json(value)) == value


@pytest.mark.parametrize("body", [
    {"event_id": 1, "event_type": "NoSuchEvent", "timestamp": "2026-01-01T00:00:00.000+00:00",
     "attributes": {}},
    {"event_id": 1, "event_type": "TimerFired", "timestamp": "2026-01-01T00:00:00.000+00:00",
     "attributes": {"timer_id": 7, "started_event_id": 3}},
    {"event_id": "one", "event_type": "TimerFired",
     "timestamp": "2026-01-01T00:00:00.000+00:00", "attributes": {}},
    {"event_id": 1, "event_type": "TimerFired", "timestamp": 5, "attributes": {}},
])
def test_malformed_events_are_refused_at_the_edge(body: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        event_from_json(body)


def test_a_rendered_timer_event_reads_back_equal() -> None:
    event = HistoryEvent(event_id=4, time_ms=1_733_450_000_123, attributes=TimerFiredEventAttributes(
        timer_id="t", started_event_id=3))
    assert event_from_json(event_json(event)) == event


@pytest.mark.parametrize("body", [
    "not an object",
    {"event_type": "TimerFired", "timestamp": "2026-01-01T00:00:00.000+00:00", "attributes": {}},
    {"event_id": 1, "event_type": "TimerFired", "timestamp": "2026-01-01T00:00:00.000",
     "attributes": {}},
    {"event_id": 1, "event_type": "TimerFired", "timestamp": "yesterday", "attributes": {}},
])
def test_every_malformed_event_raises_one_error_type(body: object) -> None:
    with pytest.raises(msgspec.ValidationError):
        event_from_json(body)
