"""The SDK's HTTP edge for payloads: the user's values on their way out through the client's
payload codec, and back in through it, where they cross the wire.

Theory of operation. Inside the SDK a payload is the plain JSON text of the user's value
(`protocol.payload.Payload`), as before codecs existed: replay compares and reads it, user code
gets its value. `WirePayloads` stands at the edge with the client's codec (or none):
- `encode(plain, shape)` gives what goes on the wire: with no codec the plain payload itself
  (the wire is unchanged), else envelopes (`_payload_envelope`): one for a `VALUE` field (a
  result), one per element for an `ARGS` field (arguments, details), so an arguments field is
  still a JSON list and the server's and the worker's reading of it holds.
- `decode(wire)` gives the plain payload back: an envelope, or a list's envelope elements, go
  through `codec.decode` in one call per field; anything else is returned as it is (a value a
  plain HTTP client sent). Without a codec an envelope raises `PayloadCodecError`: user code
  never sees an envelope as if it were its data.
One codec call per field, never one per task: a field's payloads are one list (Temporal's
`Payloads`), and a task's fields are independent of each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import msgspec

from raftflow.protocol.commands import Failure
from raftflow.protocol.history_json import JsonValue, payload_from_json, payload_json
from raftflow.protocol.payload import Payload
from raftflow.sdk import converter
from raftflow.sdk._payload_envelope import (
    envelope_json,
    is_envelope,
    may_hold_envelope,
    payload_of_envelope,
    plain_payload,
    value_of_plain,
)
from raftflow.sdk._replay.commands import payload
from raftflow.sdk.errors import PayloadCodecError


class PayloadShape(Enum):
    """How a payload field's plain value maps to envelopes."""

    VALUE = "value"  # one value (a result, a marker's details): one envelope
    ARGS = "args"  # a JSON list of values (arguments, details): a list of envelopes, one each


class WirePayloads:
    """One client's payloads at the wire, through its codec (None: no codec, wire unchanged).

    Guarantees: `decode(encode(p, shape))` is `p`'s JSON value for every plain payload `p` and
    shape; order is kept; nothing goes to the codec for an empty payload or an empty list.
    Every failure is a `PayloadCodecError` naming the field (`what`).
    """

    __slots__ = ("_codec",)

    def __init__(self, codec: converter.PayloadCodec | None) -> None:
        self._codec = codec

    @property
    def codec(self) -> converter.PayloadCodec | None:
        return self._codec

    async def encode(self, plain: bytes, shape: PayloadShape, what: str) -> Payload:
        """The wire form of a plain payload (the JSON text `_replay.commands.payload` wrote)."""
        if self.codec is None or not plain:
            return Payload(plain)  # no codec, or no value: nothing to hide, the wire is as ever
        value = payload_json(plain)
        if shape is PayloadShape.ARGS and isinstance(value, list):
            return Payload(payload_from_json(await self._encode_values(value, what)))
        [wire] = await self._encode_values([value], what)
        return Payload(payload_from_json(wire))

    async def encode_args(self, values: Sequence[object], what: str) -> list[Any]:
        """Arguments sent as a JSON list, not a payload (a query's `args`): with no codec the
        values as given, else their envelopes. Raises TypeError for a value JSON cannot carry
        (with a codec: without one the transport's encoder refuses it, as before)."""
        if self.codec is None:
            return list(values)
        plain = payload_json(payload(list(values), what))
        assert isinstance(plain, list), plain
        return await self._encode_values(plain, what)

    async def encode_failure(self, failure: Failure, what: str) -> Failure:
        """A failure with its details encoded (`ARGS`: the details are a list); its message and
        type stay plain, as the server and retry policies read them."""
        if self.codec is None or not failure.details:
            return failure
        details = await self.encode(failure.details, PayloadShape.ARGS, what)
        return msgspec.structs.replace(failure, details=details)

    async def decode(self, wire: bytes, what: str) -> Payload:
        """The plain payload of a received one (as it was when it holds no envelope)."""
        if not may_hold_envelope(wire):
            return Payload(wire)
        return Payload(payload_from_json(await self.decode_json(payload_json(wire), what)))

    async def decode_json(self, value: JsonValue, what: str) -> JsonValue:
        """The plain value of a received JSON value: an envelope decoded, a list's envelope
        elements decoded in place; anything else as it is."""
        if is_envelope(value):
            [plain] = await self._decode_envelopes([value], what)
            return plain
        if not isinstance(value, list):
            return value
        positions = [i for i, element in enumerate(value) if is_envelope(element)]
        if not positions:
            return value
        decoded = await self._decode_envelopes([value[i] for i in positions], what)
        plain = list(value)
        for position, element in zip(positions, decoded, strict=True):
            plain[position] = element
        return plain

    async def decode_args(self, values: list[Any], what: str) -> list[Any]:
        """`decode_json` of a list (a query task's `args`), typed as the list it stays."""
        decoded = await self.decode_json(values, what)
        assert isinstance(decoded, list), decoded
        return decoded

    async def decode_failure(self, failure: Failure, what: str) -> Failure:
        if not may_hold_envelope(failure.details):
            return failure
        return msgspec.structs.replace(failure, details=await self.decode(failure.details, what))

    async def _encode_values(self, values: list[JsonValue], what: str) -> list[Any]:
        codec = self.codec
        assert codec is not None
        if not values:
            return []
        plain = [plain_payload(v) for v in values]
        try:
            encoded = await codec.encode(plain)
        except PayloadCodecError as error:  # the codec's own words, named by the field
            raise PayloadCodecError(f"{what}: {error}") from error
        except Exception as error:
            raise PayloadCodecError(f"{what}: the payload codec failed to encode it: "
                                    f"{error!r}") from error
        return [envelope_json(p) for p in _checked(encoded, len(plain), "encode", what)]

    async def _decode_envelopes(self, envelopes: list[JsonValue], what: str) -> list[JsonValue]:
        codec = self.codec
        if codec is None:
            raise PayloadCodecError(
                f"{what} was encoded by a payload codec (it is a '_raftflow_payload' "
                f"envelope), but this client has none: connect with Client.connect(..., "
                f"payload_codec=...) using the codec that encoded it")
        encoded = [payload_of_envelope(e, what) for e in envelopes]
        try:
            decoded = await codec.decode(encoded)
        except PayloadCodecError as error:  # e.g. the AES-GCM codec's "wrong key"
            raise PayloadCodecError(f"{what}: {error}") from error
        except Exception as error:
            raise PayloadCodecError(f"{what}: the payload codec failed to decode it: "
                                    f"{error!r}") from error
        return [value_of_plain(p, what) for p in _checked(decoded, len(encoded), "decode", what)]


# The edge of a client without a codec (stateless, so one serves every such client).
NO_CODEC = WirePayloads(None)


def _checked(payloads: object, count: int, method: str, what: str,
             ) -> list[converter.Payload]:
    """A codec's answer, if it kept the contract: a list of `count` payloads."""
    if not isinstance(payloads, list | tuple) or len(payloads) != count:
        size = len(payloads) if isinstance(payloads, list | tuple) else type(payloads).__name__
        raise PayloadCodecError(f"{what}: the payload codec's {method} returned {size} "
                                f"payloads for {count}; it must return one per payload, in order")
    for item in payloads:
        if not isinstance(item, converter.Payload):
            raise PayloadCodecError(f"{what}: the payload codec's {method} returned a "
                                    f"{type(item).__name__}, not a raftflow.sdk.converter.Payload")
    return list(payloads)
