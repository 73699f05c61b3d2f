"""Reader for values written by release 0.1, which packed every struct as a msgpack array.

Theory of operation. 0.1 wrote each struct as `[ClassName, field_1, ..., field_n]` in field
declaration order; a value written before trailing fields were appended lacks them (they take
their defaults). The current layout is a map of field names (`codec.py`). `from_legacy` decodes
the old bytes without a type (arrays become lists), rewrites the value into the current map
layout by walking the TARGET type (`msgspec.inspect`), and lets `msgspec.convert` build and
validate the typed value. The data never decides what a value is: a list of strings that starts
with a class name is still a list of strings when the target says so; only where the target is
a union of structs does the leading class name pick the member, as it did in 0.1.

`is_legacy` tells the layouts apart from the first byte: every 0.1 value is an array, every
current one a map, so routing costs nothing for current entries.

Malformed input raises `msgspec.ValidationError`, like the typed decoders.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import msgspec
from msgspec import inspect

from raftflow.protocol.payload import msgpack_dec_hook

# 0.1 layouts that differ from the current fields, by class name: an event held its type and a
# free-form attribute map, now one typed attributes struct tagged with that type. The map's
# values were already maps (failures, retry policies) and scalars, the current layout of those
# fields, so the map only gains its tag and `convert` validates it against the attributes type.
_EVENT_LAYOUTS: dict[str, tuple[str, ...]] = {
    "HistoryEvent": ("event_id", "event_type", "time_ms", "attributes"),
    "BufferedEvent": ("event_type", "time_ms", "attributes"),
}
# 0.1's placeholder for "the id of the event written just before this one" (see `_event`).
_PREVIOUS_EVENT_ID_0_1 = -1
_ARRAY_HEADERS = frozenset(range(0x90, 0xA0)) | {0xDC, 0xDD}  # fixarray, array16, array32
_UNTYPED_DECODER = msgspec.msgpack.Decoder()


def is_legacy(data: bytes) -> bool:
    """True for a value 0.1 wrote (an array); False for a current one (a map)."""
    return bool(data) and data[0] in _ARRAY_HEADERS


def from_legacy(data: bytes, target: object) -> object:
    """Decode bytes 0.1 wrote for a `target` value (a struct or a union of structs); the
    result is validated against `target` by `msgspec.convert`."""
    raw = _UNTYPED_DECODER.decode(data)
    return msgspec.convert(_rewrite(raw, _type_info(target)), target, strict=True,
                           dec_hook=msgpack_dec_hook)


@functools.cache
def _type_info(target: object) -> inspect.Type:
    return inspect.type_info(target)


def _rewrite(value: object, info: inspect.Type) -> object:
    """The current builtin layout of `value`, an 0.1 value of type `info`."""
    match info:
        case inspect.StructType():
            return _struct(value, info)
        case inspect.UnionType():
            return _union_member(value, info)
        case inspect.ListType() | inspect.VarTupleType() | inspect.SetType() \
                | inspect.FrozenSetType():
            return [_rewrite(item, info.item_type) for item in _array(value)]
        case inspect.TupleType():
            items = _array(value)
            if len(items) != len(info.item_types):
                raise msgspec.ValidationError(f"expected {len(info.item_types)} items")
            # A tuple, not a list: tuples are dict keys here (e.g. `RequestKey`).
            return tuple(_rewrite(item, t) for item, t in zip(items, info.item_types, strict=True))
        case inspect.DictType():
            if not isinstance(value, dict):
                raise msgspec.ValidationError("expected a map")
            return {_rewrite(k, info.key_type): _rewrite(v, info.value_type)
                    for k, v in value.items()}
        case _:
            return value  # scalars, enums, `object`: `convert` validates them


def _array(value: object) -> list[object] | tuple[object, ...]:
    # Untyped msgpack decoding gives lists, and tuples for arrays used as map keys.
    if not isinstance(value, list | tuple):
        raise msgspec.ValidationError("expected an array")
    return value


def _struct(value: object, info: inspect.StructType) -> dict[str, object]:
    items = _array(value)
    if not items or items[0] != info.cls.__name__:
        raise msgspec.ValidationError(f"expected a 0.1 {info.cls.__name__}")
    fields = items[1:]
    if info.cls.__name__ in _EVENT_LAYOUTS:
        return _event(fields, info)
    if len(fields) > len(info.fields):
        raise msgspec.ValidationError(f"too many fields for {info.cls.__name__}")
    # Missing trailing fields are left out of the map, so they take their defaults (or fail
    # validation when they have none).
    layout = {field.encode_name: _rewrite(item, field.type)
              for field, item in zip(info.fields, fields, strict=False)}
    if info.tag_field is not None:
        layout[info.tag_field] = info.tag
    return layout


def _event(fields: Sequence[object], info: inspect.StructType) -> dict[str, object]:
    old_names = _EVENT_LAYOUTS[info.cls.__name__]
    if len(fields) != len(old_names):
        raise msgspec.ValidationError(f"expected a 0.1 {info.cls.__name__}")
    old = dict(zip(old_names, fields, strict=True))
    attributes, event_type = old.pop("attributes"), old.pop("event_type")
    if not isinstance(attributes, dict) or not isinstance(event_type, str):
        raise msgspec.ValidationError(f"expected a 0.1 {info.cls.__name__}")
    (field,) = (f for f in info.fields if f.name == "attributes")
    assert isinstance(field.type, inspect.UnionType), field.type
    tag_fields = {t.tag_field for t in field.type.types if isinstance(t, inspect.StructType)}
    assert len(tag_fields) == 1, tag_fields
    if attributes.get("started_event_id") == _PREVIOUS_EVENT_ID_0_1:
        # 0.1 marked a buffered activity close whose ActivityTaskStarted id was not known yet
        # with -1; the current core leaves it 0 and derives it when the pair is written.
        attributes = {**attributes, "started_event_id": 0}
    return {**old, "attributes": {**attributes, tag_fields.pop(): event_type}}


def _union_member(value: object, info: inspect.UnionType) -> object:
    if value is None:
        return None
    structs = {t.cls.__name__: t for t in info.types if isinstance(t, inspect.StructType)}
    if not structs:
        return value  # e.g. `int | None`
    # 0.1 wrote every struct as an array headed by its class name: that name picks the member.
    items = _array(value)
    member = structs.get(items[0]) if items and isinstance(items[0], str) else None
    if member is None:
        raise msgspec.ValidationError("not a 0.1 value of this union")
    return _struct(items, member)
