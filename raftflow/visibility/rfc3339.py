"""RFC 3339 timestamps for queries: the one implementation lives in `raftflow.protocol.rfc3339`
(search attribute values are datetimes too, and the shard core may import only protocol)."""

from __future__ import annotations

from raftflow.protocol.rfc3339 import (
    DATETIME_MS_MAX,
    DATETIME_MS_MIN,
    format_rfc3339_ms,
    parse_rfc3339_ms,
)

__all__ = ["DATETIME_MS_MAX", "DATETIME_MS_MIN", "format_rfc3339_ms", "parse_rfc3339_ms"]
