"""Sending a replica in need something other than the local snapshot file, and noticing receipt.

pysyncobj streams its snapshot file (`fullDumpFile`) in chunks to a follower whose next index
was compacted away. A consumer that keeps its state in its own store (the shard store) writes
only a small manifest into that file, which is useless to another node; it sends a copy of its
store instead. `TransferSerializer` is pysyncobj's `Serializer` with that one change: at the
start of each transmission it asks `transfer_body()` for the bytes to send (None: the file as it
is, pysyncobj's own path) and streams them from a private, already unlinked temp file, one
`logCompactionBatchSize` chunk per AppendEntries, first and last chunk flagged as pysyncobj's
receiver expects (the last chunk is empty). A new local snapshot restarts every transmission,
as pysyncobj does, so a follower never gets a copy older than the leader's log start.

On the receiving side it records that a complete transmission was installed as the snapshot
file (`received`), so the group can rewrite that file into its local form once the consumer
restored it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.serializer import Serializer

Chunk = tuple[bytes, bool, bool]  # (data, is_first, is_last), pysyncobj's transmission chunk


class TransferSerializer(Serializer):  # type: ignore[misc]
    def __init__(self, *, file_name: str, chunk_bytes: int,
                 write: Callable[[str, Any], None], read: Callable[[str], Any],
                 transfer_body: Callable[[], bytes | None]) -> None:
        super().__init__(file_name, chunk_bytes, False, write, read, None)
        self._directory = os.path.dirname(file_name) or "."
        self._chunk_bytes = chunk_bytes
        self._transfer_body = transfer_body
        self._outgoing: dict[object, tuple[IO[bytes], list[int]]] = {}
        self.received = False

    # pysyncobj's method names follow (camelCase, its spelling of "Transmisstion" included).

    def getTransmissionData(self, transmissionID: object) -> Chunk | None | bool:  # noqa: N802,N803
        outgoing = self._outgoing.get(transmissionID)
        if outgoing is None:
            body = self._transfer_body()
            if body is None:
                return super().getTransmissionData(transmissionID)  # type: ignore[no-any-return]
            outgoing = (self._spool(body), [0])
            self._outgoing[transmissionID] = outgoing
        stream, sent = outgoing
        data = stream.read(self._chunk_bytes)
        first, last = sent[0] == 0, not data
        sent[0] += len(data)
        if last:
            self._close(transmissionID)
        return data, first, last

    def cancelTransmisstion(self, transmissionID: object) -> None:  # noqa: N802,N803
        self._close(transmissionID)
        super().cancelTransmisstion(transmissionID)

    def checkSerializing(self) -> tuple[int, object]:  # noqa: N802
        state, current = super().checkSerializing()
        if state == SERIALIZER_STATE.SUCCESS:
            for transmission in list(self._outgoing):
                self._close(transmission)  # restart from the new snapshot
        return state, current

    def setTransmissionData(self, data: object) -> bool:  # noqa: N802
        done = bool(super().setTransmissionData(data))
        if done:
            self.received = True
        return done

    def _spool(self, body: bytes) -> IO[bytes]:
        stream = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 (kept open, closed by _close)
        stream.write(body)
        stream.seek(0)
        return stream

    def _close(self, transmission: object) -> None:
        outgoing = self._outgoing.pop(transmission, None)
        if outgoing is not None:
            outgoing[0].close()
