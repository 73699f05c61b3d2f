"""The OpenAPI schema of a history event, generated from the protocol's event structs.

Theory of operation. An event's JSON is an envelope (`event_id`, `event_type`, `timestamp`)
around the attributes of its type, rendered by `protocol.history_json` from the typed struct:
every field, no tag (the envelope's `event_type` names the type), payloads as JSON values. So
the schema is `msgspec.json.schema_components` of the attribute structs, with edits that
follow that rendering exactly: the tag property is dropped from each attributes schema, every
other field is required and no other is allowed (every field is always written), and a payload
field (`bytes` in the engine, a base64 string in msgspec's schema) becomes "any JSON value". The envelope is one object schema per event type, `event_type` fixed to its name.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec

from raftflow.protocol.events import EventAttributes

Schema = dict[str, Any]

ENVELOPE = "HistoryEventAnswer"  # the name the routes' answers use for an event
_PAYLOAD = {"description": "A payload: any JSON value (null when empty)."}
_ATTRIBUTE_TYPES: tuple[type[msgspec.Struct], ...] = typing.get_args(EventAttributes)


def event_schemas(ref_template: str) -> dict[str, Schema]:
    """Components: one schema per attribute struct (and the structs and enums they use), and
    `ENVELOPE` as one object schema per event type."""
    _, components = msgspec.json.schema_components(_ATTRIBUTE_TYPES, ref_template=ref_template)
    for schema in components.values():
        _payloads_as_json(schema)
        if schema.get("type") == "object":
            # Rendering writes every field of the struct and nothing else.
            schema["additionalProperties"] = False
    envelopes = []
    for cls in _ATTRIBUTE_TYPES:
        tag_field = cls.__struct_config__.tag_field
        assert tag_field is not None, cls
        attributes = components[cls.__name__]
        attributes["properties"].pop(tag_field)
        attributes["required"] = list(attributes["properties"])
        envelopes.append({
            "type": "object",
            "properties": {
                "event_id": {"type": "integer", "minimum": 1},
                "event_type": {"const": cls.__struct_config__.tag},
                "timestamp": {"type": "string", "format": "date-time"},
                "attributes": {"$ref": ref_template.format(name=cls.__name__)},
            },
            "required": ["event_id", "event_type", "timestamp", "attributes"],
        })
    components[ENVELOPE] = {"title": ENVELOPE, "description": "One history event.",
                            "oneOf": envelopes}
    return components


def _payloads_as_json(schema: Schema) -> None:
    for name, field in list(schema.get("properties", {}).items()):
        if field.get("contentEncoding") == "base64":
            schema["properties"][name] = dict(_PAYLOAD)
        elif isinstance(field.get("default"), tuple):  # a tuple default is a JSON array
            field["default"] = list(field["default"])
