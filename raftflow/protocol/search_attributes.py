"""Custom search attributes: their types, limits, wire forms and the one rule that types them.

Theory of operation. A namespace registers attribute names with a type (`AttributeType`) in the
cluster map; each shard keeps a copy (`ConfigureNamespace`). A client (start) or workflow code
(`UpsertWorkflowSearchAttributes`) gives values in their JSON form (`JsonAttributeValue`):
keyword a string, int an integer, double a number, bool true/false, datetime an RFC 3339
string. `typed_attributes` turns them into `SearchAttribute`s against a registry, or names the
first value it refuses; the gateway calls it for an early 400 and the shard core calls it again
on apply, against its own copy of the registry, which is authoritative. It is pure and
deterministic (no clock, no locale), so every replica types the same log entry the same way.

A run keeps its attributes as a tuple sorted by name, each carrying its type: storage picks the
SQL column by type and describe renders a datetime as RFC 3339 without asking the registry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import msgspec

from raftflow.protocol.rfc3339 import format_rfc3339_ms, parse_rfc3339_ms


class AttributeType(StrEnum):
    """Type of a search attribute; the value is the name a namespace registers it with."""

    KEYWORD = "keyword"
    INT = "int"
    DOUBLE = "double"
    BOOL = "bool"
    DATETIME = "datetime"


# Registered attributes per namespace. Every shard holds each namespace's registry and every
# query on a custom attribute is an SQL subquery; Temporal's default is in the same range.
SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX = 64
# Attributes one run may carry: they are rows of the visibility table written at close and a
# field of the run's state kept in memory while it is open.
SEARCH_ATTRIBUTES_PER_RUN_MAX = 32
# Characters of a keyword value: keywords are exact-match identifiers (customer ids, states),
# not text; Temporal caps a keyword near this size too.
SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX = 1_024
# Characters of an attribute name (query identifiers are short; the map holds every name).
SEARCH_ATTRIBUTE_NAME_LENGTH_MAX = 64
# SQLite's INTEGER is 64-bit: int attributes (and datetimes in ms) must fit it.
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
assert SEARCH_ATTRIBUTES_PER_RUN_MAX <= SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX

# A value as JSON (and msgpack) carries it; which Python type is allowed depends on the type.
JsonAttributeValue = str | int | float | bool
# A stored value: keyword str, int int, double float, bool bool, datetime int ms since the
# epoch (UTC). The same union as the JSON form, typed by `SearchAttribute.type`.
AttributeValue = str | int | float | bool


class SearchAttribute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One typed attribute of a run (in its state, its history events and storage)."""

    name: str
    type: AttributeType
    value: AttributeValue


class UpsertWorkflowSearchAttributes(msgspec.Struct, frozen=True, kw_only=True,
                                     forbid_unknown_fields=True,
                                     tag="UpsertWorkflowSearchAttributes", tag_field="type"):
    """Workflow command (Temporal's): set these attributes on the run, keeping the others.
    Values are in their JSON form; the shard types them against the namespace's registry."""

    search_attributes: dict[str, JsonAttributeValue]


@dataclass(frozen=True, slots=True)
class AttributeProblem:
    """Why one given value was refused: `field` names it (`search_attributes.CustomerId`)."""

    field: str
    message: str


def typed_attributes(registry: Mapping[str, AttributeType],
                     given: Mapping[str, JsonAttributeValue],
                     ) -> tuple[SearchAttribute, ...] | AttributeProblem:
    """`given` typed against `registry`, sorted by name; or the first problem, by name order.

    The rules: each name is registered; each value has its type's JSON form; keywords are at
    most SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX characters of valid Unicode, ints fit 64 bits,
    doubles are finite, datetimes are RFC 3339 at millisecond precision; at most
    SEARCH_ATTRIBUTES_PER_RUN_MAX values.
    """
    if len(given) > SEARCH_ATTRIBUTES_PER_RUN_MAX:
        return AttributeProblem("search_attributes", (
            f"{len(given)} search attributes, more than SEARCH_ATTRIBUTES_PER_RUN_MAX="
            f"{SEARCH_ATTRIBUTES_PER_RUN_MAX}"))
    typed: list[SearchAttribute] = []
    for name in sorted(given):
        field = f"search_attributes.{name}"
        attribute_type = registry.get(name)
        if attribute_type is None:
            return AttributeProblem(field, f"{field}: search attribute {name!r} is not "
                                    "registered in this namespace (register it with POST "
                                    "/api/v1/namespaces/{namespace}/search-attributes)")
        value = _typed_value(attribute_type, given[name])
        if isinstance(value, _Refused):
            return AttributeProblem(field, f"{field}: {value.message}")
        typed.append(SearchAttribute(name=name, type=attribute_type, value=value))
    assert len(typed) == len(given)
    return tuple(typed)


def unencodable(given: Mapping[str, JsonAttributeValue]) -> AttributeProblem | None:
    """The first value no log entry can hold (an integer beyond 64 bits: msgpack has none),
    whatever the registry says; the gateway refuses it before proposing anything."""
    for name in sorted(given):
        raw = given[name]
        if isinstance(raw, int) and not isinstance(raw, bool) and not _INT_MIN <= raw <= _INT_MAX:
            field = f"search_attributes.{name}"
            return AttributeProblem(field, f"{field}: an integer must fit in 64 bits")
    return None


def merged(current: tuple[SearchAttribute, ...],
           update: tuple[SearchAttribute, ...]) -> tuple[SearchAttribute, ...]:
    """`current` with `update`'s attributes set (an upsert), sorted by name."""
    by_name = {a.name: a for a in current}
    by_name.update((a.name, a) for a in update)
    result = tuple(by_name[name] for name in sorted(by_name))
    assert len(result) >= max(len(current), len(update))
    return result


def json_value(attribute: SearchAttribute) -> JsonAttributeValue:
    """The JSON form of a stored value (a datetime back to RFC 3339, UTC, milliseconds)."""
    if attribute.type is AttributeType.DATETIME:
        assert isinstance(attribute.value, int) and not isinstance(attribute.value, bool)
        return format_rfc3339_ms(attribute.value)
    return attribute.value


def json_map(attributes: tuple[SearchAttribute, ...]) -> dict[str, JsonAttributeValue]:
    return {a.name: json_value(a) for a in attributes}


@dataclass(frozen=True, slots=True)
class _Refused:
    message: str


def _typed_value(attribute_type: AttributeType,
                 raw: JsonAttributeValue) -> AttributeValue | _Refused:
    is_integer = isinstance(raw, int) and not isinstance(raw, bool)
    match attribute_type:
        case AttributeType.KEYWORD:
            if not isinstance(raw, str):
                return _Refused("a keyword attribute takes a JSON string")
            return _keyword(raw)
        case AttributeType.INT:
            if not is_integer:
                return _Refused("an int attribute takes a JSON integer")
            assert isinstance(raw, int)
            if not _INT_MIN <= raw <= _INT_MAX:
                return _Refused("an int attribute must fit in 64 bits")
            return raw
        case AttributeType.DOUBLE:
            if not (is_integer or isinstance(raw, float)):
                return _Refused("a double attribute takes a JSON number")
            assert isinstance(raw, int | float)
            if is_integer and not _INT_MIN <= raw <= _INT_MAX or not math.isfinite(raw):
                return _Refused("a double attribute must be a finite number")
            return float(raw)
        case AttributeType.BOOL:
            return raw if isinstance(raw, bool) else _Refused(
                "a bool attribute takes JSON true or false")
        case AttributeType.DATETIME:
            if not isinstance(raw, str):
                return _Refused("a datetime attribute takes an RFC 3339 string")
            try:
                return parse_rfc3339_ms(raw)
            except ValueError as error:
                return _Refused(f"a datetime attribute takes an RFC 3339 string: {error}")


def _keyword(raw: str) -> str | _Refused:
    if len(raw) > SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX:
        return _Refused(f"a keyword has at most SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX="
                        f"{SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX} characters")
    try:
        raw.encode("utf-8")  # a lone surrogate cannot be stored (SQLite text is UTF-8)
    except UnicodeEncodeError:
        return _Refused("a keyword must be valid Unicode (no lone surrogates)")
    return raw
