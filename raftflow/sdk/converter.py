"""Payload codecs: transform every payload the SDK sends and receives, e.g. to encrypt it so the
server only ever stores ciphertext (Temporal's `PayloadCodec`).

    client = await Client.connect(addresses, payload_codec=AesGcmCodec(keys, encrypt_with="k1"))

Theory of operation. A `Payload` is one user value as a codec sees it: `metadata` (names to
bytes; `encoding` says how `data` reads) and `data`. The SDK writes each value as a
`json/plain` payload, its compact JSON text, and hands the payloads of one field (a workflow's
arguments, an activity's result, a failure's details) to `codec.encode` in one list. Each
encoded payload goes on the wire as a JSON envelope, `{"_raftflow_payload": {"metadata":
{name: base64}, "data": base64}}`, where the plain value used to be: a field holding arguments
becomes a list of envelopes, one per argument, a field holding one value becomes one envelope.
Received envelopes go to `codec.decode` (one list per field) and must come back `json/plain`.
Values without an envelope (a workflow started with plain JSON over HTTP or the CLI) pass
through as they are. Without a codec nothing changes on the wire, and an envelope received
raises `PayloadCodecError` rather than reaching user code as a dict.

What the codec sees: workflow inputs and results, signal arguments, activity inputs and
results, query arguments and results, heartbeat details, failure details, continue-as-new
inputs, markers. What it does not: ids, type names, task queues, search attributes, failure
messages and types, timeouts (the server routes, indexes and retries by them). docs/security.md.

Workflow code never awaits a codec: a worker decodes a task's history before the workflow code
replays it, and encodes the commands after the code ran, so a codec may do IO (a key service)
without touching determinism.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from raftflow.sdk.errors import PayloadCodecError

__all__ = ["ENCODING_JSON_PLAIN", "METADATA_ENCODING", "Payload", "PayloadCodec",
           "PayloadCodecError"]

# The metadata entry naming how `data` reads, and the one encoding the SDK writes and reads:
# the compact UTF-8 JSON text of one value (Temporal's names).
METADATA_ENCODING = "encoding"
ENCODING_JSON_PLAIN = b"json/plain"


@dataclass(frozen=True, slots=True)
class Payload:
    """One value as a payload codec sees it. Frozen: `metadata` is kept as a read-only copy,
    so a codec that later changes the mapping it passed changes no payload.

    Raises TypeError for a metadata name that is not `str`, or a value or `data` that is not
    bytes: the envelope carries bytes as base64 and names as JSON strings.
    """

    metadata: Mapping[str, bytes]
    data: bytes

    def __post_init__(self) -> None:
        metadata = MappingProxyType(dict(self.metadata))
        for name, value in metadata.items():
            if not isinstance(name, str) or not isinstance(value, bytes):
                raise TypeError(f"payload metadata maps str to bytes, got {name!r}: "
                                f"{type(value).__name__}")
        if not isinstance(self.data, bytes):
            raise TypeError(f"payload data is bytes, got {type(self.data).__name__}")
        object.__setattr__(self, "metadata", metadata)

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.metadata.items())), self.data))

    @property
    def encoding(self) -> bytes | None:
        """The `encoding` metadata entry, if any."""
        return self.metadata.get(METADATA_ENCODING)


class PayloadCodec(ABC):
    """Transforms lists of payloads on their way to the server (`encode`) and back (`decode`).

    Contract, checked by the SDK (a breach raises `PayloadCodecError`): both return as many
    payloads as they were given, in the same order, each a `Payload`; `decode(encode(ps))`
    gives `ps` back. `decode` receives only payloads this or another codec encoded (values
    without an envelope never reach it) and may return a payload unchanged if it is not its
    own (e.g. another codec's encoding); the SDK then refuses any that is not `json/plain`.
    An exception out of either is wrapped in `PayloadCodecError` naming the field.
    Both are awaited on the client's event loop: IO is fine, long CPU work blocks the loop.
    """

    @abstractmethod
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encode each payload (same length, same order)."""

    @abstractmethod
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decode each payload `encode` produced (same length, same order)."""
