"""Bounds the HTTP edge enforces on types the log also carries, kept out of log decoding.

Theory of operation. A workflow command, a failure and a retry policy are one type on both wires
(`payload.py`). Their bounds (an id of 1 to `ID_LENGTH_MAX` characters, a duration of at least
1 ms...) must refuse a bad request at the gateway, with a 400 naming the field, and the OpenAPI
document must state them. But they must not be msgspec constraints: msgspec checks those on
every decode, log and snapshot included, and a value the core once accepted must always decode
(release 0.1 took a failure message of any length; a tighter bound would stop every replica at
that entry). So a bound is declared once, on the field's type, as `rule(...)`, a `msgspec.Meta`
whose `extra_json_schema` documents it and whose `extra` carries it for `first_violation`, which
the gateway runs on what it decoded. Decoding the log never looks at it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import msgspec
import msgspec.inspect as mi

_KEY = "edge_rule"


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    min_length: int | None = None
    max_length: int | None = None
    ge: int | float | None = None
    le: int | float | None = None
    # A regular expression a non-empty string must match whole ("" means "not given").
    pattern: str | None = None

    def broken_by(self, value: object) -> str | None:
        """What `value` breaks, worded for a client, or None."""
        if isinstance(value, str):
            if self.pattern is not None and value and re.fullmatch(self.pattern, value) is None:
                return f"must be empty or match {self.pattern}"
            if self.min_length is not None and len(value) < self.min_length:
                return f"must be string of length >= {self.min_length}"
            if self.max_length is not None and len(value) > self.max_length:
                return f"must be string of length <= {self.max_length}"
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if self.ge is not None and value < self.ge:
                return f"must be >= {self.ge}"
            if self.le is not None and value > self.le:
                return f"must be <= {self.le}"
        return None


def rule(*, min_length: int | None = None, max_length: int | None = None,
         ge: int | float | None = None, le: int | float | None = None,
         pattern: str | None = None, description: str | None = None) -> msgspec.Meta:
    """A field type's edge bound: `Annotated[str, rule(min_length=1)]`."""
    schema: dict[str, object] = {key: value for key, value in (
        ("minLength", min_length), ("maxLength", max_length), ("minimum", ge),
        ("maximum", le)) if value is not None}
    if pattern is not None:  # "" (not given) passes too, in the document as at the edge
        schema["pattern"] = f"^$|^(?:{pattern})$"
    return msgspec.Meta(description=description, extra_json_schema=schema, extra={
        _KEY: Rule(min_length=min_length, max_length=max_length, ge=ge, le=le,
                   pattern=pattern)})


# A check of one value: None, or (where below the value it broke, as `.name` / `[i]` path
# steps, and the rule). Paths are built only on a refusal: the gateway runs these on every
# task completion, and almost every body passes.
_Check = Callable[[Any], "tuple[str, str] | None"]


def first_violation(value: msgspec.Struct, path: str = "") -> tuple[str, str] | None:
    """The first edge bound `value` breaks, as (field path, rule), or None. `path` prefixes
    field names (`commands[2]` gives `commands[2].timer_id`)."""
    found = _struct_check(value)
    if found is None:
        return None
    where, broken = found
    return (path + where if path else where.removeprefix(".")), broken


def _struct_check(value: Any) -> tuple[str, str] | None:
    if not isinstance(value, msgspec.Struct):
        return None
    for name, check in _plan(type(value)):
        found = check(getattr(value, name))
        if found is not None:
            return f".{name}{found[0]}", found[1]
    return None


@functools.cache
def _plan(cls: type[msgspec.Struct]) -> tuple[tuple[str, _Check], ...]:
    """The checks of `cls`'s fields that carry a rule or hold structs that may (worked out once
    per class)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType), cls
    plan = []
    for field in info.fields:
        check = _check_of(field.type)
        if check is not None:
            plan.append((field.name, check))
    return tuple(plan)


def _check_of(kind: mi.Type) -> _Check | None:
    if isinstance(kind, mi.Metadata):
        inner = _check_of(kind.type)
        found = (kind.extra or {}).get(_KEY)
        if found is None:
            return inner
        assert inner is None, f"a rule on a type that holds rules: {kind}"
        return _rule_check(found)
    if isinstance(kind, mi.StructType):
        return _struct_check
    if isinstance(kind, mi.UnionType):
        # A struct check follows the value's own class, so one serves every struct member;
        # each check skips values that are not its kind (None, the other members).
        checks = list(dict.fromkeys(
            c for c in (_check_of(member) for member in kind.types) if c is not None))
        if len(checks) <= 1:
            return checks[0] if checks else None
        return lambda value: next((f for f in (c(value) for c in checks) if f is not None),
                                  None)
    if isinstance(kind, mi.ListType | mi.VarTupleType):
        item = _check_of(kind.item_type)
        if item is None:
            return None
        return lambda values: _first_item(item, values)
    return None


def _rule_check(found: Rule) -> _Check:
    # The common case is a value inside its bounds: one comparison chain, then the slow path.
    low = found.min_length if found.min_length is not None else found.ge
    high = found.max_length if found.max_length is not None else found.le
    lengths = found.min_length is not None or found.max_length is not None
    low = -math.inf if low is None else low
    high = math.inf if high is None else high
    shape = None if found.pattern is None else re.compile(found.pattern)

    def check(value: Any) -> tuple[str, str] | None:
        if value is None or (low <= (len(value) if lengths else value) <= high and (
                shape is None or not value or shape.fullmatch(value) is not None)):
            return None
        broken = found.broken_by(value)
        return None if broken is None else ("", broken)
    return check


def _first_item(item: _Check, values: Any) -> tuple[str, str] | None:
    for index, value in enumerate(values):
        found = item(value)
        if found is not None:
            return f"[{index}]{found[0]}", found[1]
    return None
