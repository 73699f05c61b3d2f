"""Python values of search attributes -> their JSON form on the wire (start, upsert).

`str`, `int`, `float` and `bool` travel as they are (the server types them against the
namespace's registry: an int is accepted for a double); a timezone-aware `datetime` becomes
an RFC 3339 string in UTC at millisecond precision (finer digits are dropped: the server
stores milliseconds). Anything else is local misuse, a TypeError naming the attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from raftflow.protocol.rfc3339 import format_rfc3339_ms
from raftflow.protocol.search_attributes import JsonAttributeValue

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def json_attributes(values: Mapping[str, object]) -> dict[str, JsonAttributeValue]:
    """The wire form of `values`, by name. Raises TypeError for a value of no attribute type."""
    return {name: _json_value(name, value) for name, value in values.items()}


def _json_value(name: str, value: object) -> JsonAttributeValue:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError(f"search attribute {name}: a datetime needs a timezone "
                            "(datetime.now(UTC), not datetime.now())")
        return format_rfc3339_ms((value - _EPOCH) // _ONE_MS)
    if isinstance(value, str | bool | int | float):
        return value
    raise TypeError(f"search attribute {name}: {type(value).__name__} is not a search "
                    "attribute value (str, int, float, bool or datetime)")
