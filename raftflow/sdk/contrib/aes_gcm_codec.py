"""A payload codec that encrypts every payload with AES-GCM, so the server stores ciphertext.

    keys = {"2026-06": load_key_from_your_kms("2026-06")}  # 16, 24 or 32 bytes each
    codec = AesGcmCodec(keys, encrypt_with="2026-06")
    client = await Client.connect(addresses, payload_codec=codec)  # its workers use it too

Theory of operation. `encode` seals each payload whole (its metadata and data, so its
`json/plain` encoding survives the trip) under the key named `encrypt_with`, with a fresh random
12-byte nonce. The sealed payload's metadata says `encoding: binary/encrypted` and names the key
(`encryption-key-id`); its data is nonce, ciphertext and the 16-byte tag. The metadata is the
associated data, so it is authenticated too: a payload whose key id or encoding was altered fails
like tampered data, instead of being tried under another key. `decode` picks the key by the id
in the metadata, so after a rotation (a new `encrypt_with`, the old key kept in `keys`) old
payloads still decrypt; a wrong or missing key and tampered or truncated data raise
`PayloadCodecError` saying which. Payloads not `binary/encrypted` are returned as they are (the
codec contract: not its own).

Key management is the application's: where keys live, who may read them, when they rotate.
Random 96-bit nonces are safe for about 2**32 encryptions under one key (NIST SP 800-38D §8.3):
rotate well before that. Encryption runs on the event loop: AES-GCM seals a payload of the
largest size the server takes (2 MiB) in about 2 ms here, a fraction of the JSON and base64
work around it (about 20 ms for such a payload all told).

Importing this module has no side effect; it needs `cryptography` (a raftflow dependency).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from raftflow.sdk.converter import METADATA_ENCODING, Payload, PayloadCodec, PayloadCodecError

__all__ = ["ENCODING_ENCRYPTED", "METADATA_KEY_ID", "AesGcmCodec"]

ENCODING_ENCRYPTED = b"binary/encrypted"
METADATA_KEY_ID = "encryption-key-id"
NONCE_BYTES = 12  # GCM's native nonce size: no extra hashing of the nonce (SP 800-38D §8.2)
TAG_BYTES = 16  # the full tag; cryptography's AESGCM always writes 16 bytes
KEY_BYTES_ALLOWED = (16, 24, 32)  # AES-128, AES-192, AES-256
KEY_ID_CHARS_MAX = 64  # travels in every encrypted payload's metadata: keep it short


class _Sealed(msgspec.Struct, frozen=True, array_like=True):
    """What is encrypted: the whole plain payload, so its metadata comes back with it."""

    metadata: dict[str, bytes]
    data: bytes


_SEALED_DECODER = msgspec.msgpack.Decoder(_Sealed)


def _associated_data(metadata: Mapping[str, bytes]) -> bytes:
    # Sorted: the same metadata gives the same bytes whatever order a mapping kept it in.
    return msgspec.msgpack.encode(sorted(metadata.items()))


class AesGcmCodec(PayloadCodec):
    """Encrypts payloads with AES-GCM under `keys[encrypt_with]`; decrypts with the key the
    payload names. Raises ValueError at construction for an empty or over-long key id, a key
    of another length than 16, 24 or 32 bytes, or an `encrypt_with` not in `keys`."""

    def __init__(self, keys: Mapping[str, bytes], *, encrypt_with: str) -> None:
        if encrypt_with not in keys:
            raise ValueError(f"encrypt_with {encrypt_with!r} is not one of the keys "
                             f"({sorted(keys)})")
        for key_id, key in keys.items():
            if not key_id or len(key_id) > KEY_ID_CHARS_MAX:
                raise ValueError(f"a key id is 1 to {KEY_ID_CHARS_MAX} characters: {key_id!r}")
            if len(key) not in KEY_BYTES_ALLOWED:
                raise ValueError(f"key {key_id!r} is {len(key)} bytes; AES-GCM takes "
                                 f"{', '.join(map(str, KEY_BYTES_ALLOWED))}")
        self._ciphers = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self._encrypt_with = encrypt_with

    @staticmethod
    def new_key() -> bytes:
        """A fresh random AES-256 key (32 bytes from the OS's CSPRNG)."""
        return AESGCM.generate_key(bit_length=256)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) if p.encoding == ENCODING_ENCRYPTED else p for p in payloads]

    def _seal(self, payload: Payload) -> Payload:
        metadata = {METADATA_ENCODING: ENCODING_ENCRYPTED,
                    METADATA_KEY_ID: self._encrypt_with.encode()}
        nonce = os.urandom(NONCE_BYTES)  # fresh per payload: a repeated nonce breaks GCM
        plain = msgspec.msgpack.encode(_Sealed(metadata=dict(payload.metadata),
                                               data=payload.data))
        sealed = self._ciphers[self._encrypt_with].encrypt(nonce, plain,
                                                           _associated_data(metadata))
        assert len(sealed) == len(plain) + TAG_BYTES, (len(sealed), len(plain))
        return Payload(metadata, nonce + sealed)

    def _open(self, payload: Payload) -> Payload:
        raw_key_id = payload.metadata.get(METADATA_KEY_ID)
        if raw_key_id is None:
            raise PayloadCodecError(f"an encrypted payload names no key ({METADATA_KEY_ID!r} "
                                    f"missing from its metadata)")
        key_id = raw_key_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadCodecError(f"the payload was encrypted with key {key_id!r}, which this "
                                    f"codec does not hold (it holds {sorted(self._ciphers)})")
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise PayloadCodecError(f"an encrypted payload of {len(payload.data)} bytes is "
                                    f"truncated (at least {NONCE_BYTES + TAG_BYTES})")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, _associated_data(payload.metadata))
        except InvalidTag:
            raise PayloadCodecError(
                f"an encrypted payload failed authentication under key {key_id!r}: the key is "
                f"not the one it was encrypted with, or the payload was altered") from None
        try:
            inner = _SEALED_DECODER.decode(plain)
        except msgspec.DecodeError as error:  # authentic but not ours: another sealing format
            raise PayloadCodecError(f"a decrypted payload is not a sealed payload: "
                                    f"{error}") from error
        return Payload(inner.metadata, inner.data)
