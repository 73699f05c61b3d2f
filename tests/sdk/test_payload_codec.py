"""Goal: the payload codec hook keeps its promises at the wire. With a codec every payload
crosses as envelopes (one per value, one per argument of an arguments field, in order) and
comes back as the same JSON value; without one the wire is byte for byte what it was, and an
envelope received is refused with an error naming the field instead of reaching user code.
The AES-GCM codec round-trips, never repeats a ciphertext, and refuses a wrong key, an unknown
key, tampered data and tampered metadata, each with a clear `PayloadCodecError`.

Method: `WirePayloads` (the SDK's one edge for payloads) driven directly, with hypothesis over
JSON values and both field shapes, through a reversible test codec that records its calls
and through the AES-GCM codec; contract breaches of a codec are simulated by small codecs that
break one rule each.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.protocol.history_json import payload_json
from raftflow.sdk import Payload, PayloadCodec, PayloadCodecError
from raftflow.sdk._payload_envelope import ENVELOPE_KEY, envelope_json, payload_of_envelope
from raftflow.sdk._replay.commands import payload
from raftflow.sdk._wire_payloads import NO_CODEC, PayloadShape, WirePayloads
from raftflow.sdk.contrib.aes_gcm_codec import METADATA_KEY_ID, AesGcmCodec

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(1, 33))
MARKER = "plaintext-marker-7f3a"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8).filter(lambda k: k != ENVELOPE_KEY), inner, max_size=4),
    max_leaves=12)


class ReversingCodec(PayloadCodec):
    """Reversible and visibly not plain: data reversed, the inner encoding kept aside."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(("encode", len(payloads)))
        return [Payload({"encoding": b"test/reversed", "inner": p.encoding or b""},
                        p.data[::-1]) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(("decode", len(payloads)))
        return [Payload({"encoding": p.metadata["inner"]}, p.data[::-1]) for p in payloads]


def _aes(keys: dict[str, bytes] | None = None, encrypt_with: str = "k1") -> AesGcmCodec:
    return AesGcmCodec(keys or {"k1": KEY_1}, encrypt_with=encrypt_with)


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# -- the envelope ------------------------------------------------------------------------------

@given(st.dictionaries(st.text(max_size=10), st.binary(max_size=20), max_size=4),
       st.binary(max_size=100))
def test_an_envelope_is_json_and_reads_back_as_the_same_payload(
        metadata: dict[str, bytes], data: bytes) -> None:
    encoded = Payload(metadata, data)
    envelope = envelope_json(encoded)
    assert list(envelope) == [ENVELOPE_KEY]
    assert payload_of_envelope(json.loads(json.dumps(envelope)), "f") == encoded


@pytest.mark.parametrize("broken", [
    {ENVELOPE_KEY: {"metadata": {}, "data": "AA==", "extra": 1}},
    {ENVELOPE_KEY: {"metadata": {}, "data": "not base64!"}},
    {ENVELOPE_KEY: {"metadata": {"encoding": 3}, "data": ""}},
    {ENVELOPE_KEY: {"metadata": {}, "data": ""}, "other": 1},
])
def test_an_object_with_the_marker_key_that_is_not_an_envelope_is_refused(
        broken: dict[str, Any]) -> None:
    codec_side = WirePayloads(ReversingCodec())
    with pytest.raises(PayloadCodecError, match="input of signal s: malformed payload envelope"):
        _run(codec_side.decode_json(broken, "input of signal s"))


def test_a_payload_value_is_frozen_typed_and_hashable() -> None:
    metadata = {"encoding": b"json/plain"}
    value = Payload(metadata, b"1")
    metadata["encoding"] = b"changed"
    assert value.metadata["encoding"] == b"json/plain" and value.encoding == b"json/plain"
    with pytest.raises(TypeError):
        value.metadata["x"] = b"y"  # type: ignore[index]
    assert hash(value) == hash(Payload({"encoding": b"json/plain"}, b"1"))
    with pytest.raises(TypeError, match="str to bytes"):
        Payload({"encoding": "json/plain"}, b"1")  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="data is bytes"):
        Payload({}, "1")  # type: ignore[arg-type]


# -- WirePayloads: shapes, order, no-codec path ------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(value=json_values, shape=st.sampled_from(PayloadShape))
def test_decode_of_encode_gives_the_json_value_back(value: Any, shape: PayloadShape) -> None:
    for codec in (ReversingCodec(), _aes()):
        wire = WirePayloads(codec)
        plain = payload(value, "v")
        encoded = _run(wire.encode(plain, shape, "v"))
        assert payload_json(_run(wire.decode(encoded, "v"))) == payload_json(plain)


def test_an_arguments_field_is_a_list_of_envelopes_in_order_from_one_codec_call() -> None:
    codec = ReversingCodec()
    wire = WirePayloads(codec)
    encoded = _run(wire.encode(payload(["a", 2, None, [3]], "args"), PayloadShape.ARGS, "args"))
    on_wire = json.loads(encoded)
    assert isinstance(on_wire, list) and len(on_wire) == 4
    assert all(list(element) == [ENVELOPE_KEY] for element in on_wire)
    datas = [payload_of_envelope(e, "args").data for e in on_wire]
    assert datas == [b'"a"'[::-1], b"2", b"null"[::-1], b"[3]"[::-1]]
    assert _run(wire.decode_json(on_wire, "args")) == ["a", 2, None, [3]]
    assert codec.calls == [("encode", 4), ("decode", 4)]


def test_a_value_field_is_one_envelope_even_when_the_value_is_a_list() -> None:
    wire = WirePayloads(ReversingCodec())
    encoded = _run(wire.encode(payload([1, 2], "r"), PayloadShape.VALUE, "r"))
    assert list(json.loads(encoded)) == [ENVELOPE_KEY]
    assert payload_json(_run(wire.decode(encoded, "r"))) == [1, 2]


def test_no_value_and_no_arguments_never_reach_the_codec() -> None:
    codec = ReversingCodec()
    wire = WirePayloads(codec)
    assert _run(wire.encode(b"", PayloadShape.VALUE, "r")) == b""
    assert _run(wire.encode(b"[]", PayloadShape.ARGS, "a")) == b"[]"
    assert codec.calls == []


@given(value=json_values, shape=st.sampled_from(PayloadShape))
def test_without_a_codec_the_wire_is_unchanged_byte_for_byte(value: Any,
                                                              shape: PayloadShape) -> None:
    plain = payload(value, "v")
    assert _run(NO_CODEC.encode(plain, shape, "v")) == plain
    assert _run(NO_CODEC.decode(plain, "v")) == plain
    assert _run(NO_CODEC.encode_args([value, 1], "a")) == [value, 1]


def test_plain_values_reach_a_codec_client_as_they_are() -> None:
    codec = ReversingCodec()
    wire = WirePayloads(codec)
    started_over_http = payload({"order": "o-1", "note": ENVELOPE_KEY}, "input")
    assert _run(wire.decode(started_over_http, "input")) == started_over_http
    assert _run(wire.decode_json([1, {"a": 2}], "input")) == [1, {"a": 2}]
    assert codec.calls == []


def test_an_envelope_without_a_codec_is_refused_naming_the_field() -> None:
    encoded = _run(WirePayloads(_aes()).encode(payload(MARKER, "r"), PayloadShape.VALUE, "r"))
    with pytest.raises(PayloadCodecError, match=r"result of workflow 'w' was encoded by a "
                                                r"payload codec.*payload_codec="):
        _run(NO_CODEC.decode(encoded, "result of workflow 'w'"))
    with pytest.raises(PayloadCodecError, match="input of activity a"):
        _run(NO_CODEC.decode_json([1, json.loads(encoded)], "input of activity a"))


class _Dropping(ReversingCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return (await super().encode(payloads))[1:]


class _NotPayloads(ReversingCodec):
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [p.data for p in payloads]  # type: ignore[misc]


class _Raising(ReversingCodec):
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        raise ConnectionError("key service unreachable")


class _Undecoded(ReversingCodec):
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)  # hands them back still encoded


@pytest.mark.parametrize(("codec", "message"), [
    (_Dropping(), "encode returned 1 payloads for 2"),
    (_NotPayloads(), "returned a bytes, not a raftflow.sdk.converter.Payload"),
    (_Raising(), "failed to decode it: ConnectionError"),
    (_Undecoded(), "encoding b'test/reversed', expected b'json/plain'"),
])
def test_a_codec_that_breaks_its_contract_is_named_in_a_codec_error(
        codec: ReversingCodec, message: str) -> None:
    wire = WirePayloads(codec)
    with pytest.raises(PayloadCodecError, match=message):
        encoded = _run(wire.encode(payload([1, 2], "a"), PayloadShape.ARGS, "a"))
        _run(wire.decode(encoded, "a"))  # only the encode of `_Dropping` fails


# -- the AES-GCM codec -------------------------------------------------------------------------

def test_aes_gcm_round_trips_and_never_repeats_a_ciphertext() -> None:
    codec = _aes()
    plain = [Payload({"encoding": b"json/plain"}, MARKER.encode())] * 2
    sealed = _run(codec.encode(plain))
    assert sealed[0].data != sealed[1].data  # a fresh nonce per payload
    assert all(MARKER.encode() not in p.data for p in sealed)
    assert sealed[0].metadata == {"encoding": b"binary/encrypted", METADATA_KEY_ID: b"k1"}
    assert _run(codec.decode(sealed)) == plain


def test_aes_gcm_decrypts_with_the_key_a_payload_names_after_rotation() -> None:
    old = _run(_aes().encode([Payload({"encoding": b"json/plain"}, b"1")]))
    rotated = _aes({"k1": KEY_1, "k2": KEY_2}, encrypt_with="k2")
    new = _run(rotated.encode([Payload({"encoding": b"json/plain"}, b"2")]))
    assert new[0].metadata[METADATA_KEY_ID] == b"k2"
    assert [p.data for p in _run(rotated.decode(old + new))] == [b"1", b"2"]


def _sealed() -> Payload:
    sealed: list[Payload] = _run(_aes({"k1": KEY_1, "k2": KEY_2}).encode(
        [Payload({"encoding": b"json/plain"}, b'"secret"')]))
    return sealed[0]


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


@pytest.mark.parametrize(("codec", "tampered", "message"), [
    (_aes({"k1": KEY_2}), _sealed(), "failed authentication under key 'k1'"),
    (_aes(), Payload(_sealed().metadata, _flip(_sealed().data, 20)), "failed authentication"),
    (_aes(), Payload(_sealed().metadata, _flip(_sealed().data, 3)), "failed authentication"),
    (_aes({"k1": KEY_1, "k2": KEY_2}),
     Payload({**_sealed().metadata, METADATA_KEY_ID: b"k2"}, _sealed().data),
     "failed authentication under key 'k2'"),
    (_aes(), Payload({**_sealed().metadata, METADATA_KEY_ID: b"k9"}, _sealed().data),
     "encrypted with key 'k9', which this codec does not hold"),
    (_aes(), Payload({"encoding": b"binary/encrypted"}, _sealed().data), "names no key"),
    (_aes(), Payload(_sealed().metadata, _sealed().data[:20]), "truncated"),
])
def test_aes_gcm_refuses_wrong_keys_and_tampering(codec: AesGcmCodec, tampered: Payload,
                                                  message: str) -> None:
    with pytest.raises(PayloadCodecError, match=message):
        _run(codec.decode([tampered]))


def test_aes_gcm_passes_payloads_that_are_not_its_own() -> None:
    other = Payload({"encoding": b"json/plain"}, b"1")
    assert _run(_aes().decode([other])) == [other]


@pytest.mark.parametrize(("keys", "encrypt_with", "message"), [
    ({"k1": KEY_1}, "k2", "not one of the keys"),
    ({"k1": b"short"}, "k1", "is 5 bytes"),
    ({"": KEY_1}, "", "1 to 64 characters"),
])
def test_aes_gcm_refuses_bad_keys_at_construction(keys: dict[str, bytes], encrypt_with: str,
                                                  message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AesGcmCodec(keys, encrypt_with=encrypt_with)


def test_a_wrong_key_at_the_wire_names_the_field_and_the_key() -> None:
    encoded = _run(WirePayloads(_aes()).encode(payload(["x"], "a"), PayloadShape.ARGS, "a"))
    with pytest.raises(PayloadCodecError, match="input of signal s: .*under key 'k1'"):
        _run(WirePayloads(_aes({"k1": KEY_2})).decode(encoded, "input of signal s"))
