"""`--log-format json`: one JSON object per log line, with the workflow and shard it concerns.

Theory of operation. A line names what it concerns through fields, never through its text:
`namespace`, `workflow_id`, `run_id`, `shard` and `term` come either from the record itself
(`log.info(..., extra=shard_fields(shard, term))`, for lines a shard actor or the Raft host
writes) or from the request being served (`bind_request`, set by the gateway's middleware for
a call addressed to a workflow; asyncio gives every request its own context, so the fields
never leak between calls). The formatter merges both, the record's own winning, and leaves a
field out when nothing set it. Text logs (the default) never read either: the middleware is
installed only with JSON logs, so the default costs nothing per request.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TextIO

# The fields a line may carry about what it concerns, in the order they are written.
CONTEXT_FIELDS: Final = ("namespace", "workflow_id", "run_id", "shard", "term")
LOG_FORMATS: Final = ("text", "json")
# A message is cut to this many characters: one line must stay one readable line, whatever a
# caller logged (a payload in an exception message, say).
MESSAGE_CHARS_MAX: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class RequestFields:
    """What the request being served is about (empty strings: not named by the call)."""

    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""


_request: ContextVar[RequestFields | None] = ContextVar("raftflow_log_request", default=None)


def bind_request(fields: RequestFields) -> Token[RequestFields | None]:
    """Name what the current request concerns for every line logged while it is served."""
    return _request.set(fields)


def unbind_request(token: Token[RequestFields | None]) -> None:
    _request.reset(token)


def shard_fields(shard: int, term: int | None = None) -> dict[str, int]:
    """`extra=` for a line about one shard (and the Raft term it is in, when known). A group
    id below 0 is the cluster map's Raft group, not a shard: no fields (its lines say so)."""
    if shard < 0:
        return {}
    return {"shard": shard} if term is None else {"shard": shard, "term": term}


class JsonFormatter(logging.Formatter):
    """time (RFC 3339, UTC, ms), level, logger, node, message, the context fields, exception."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self._node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "node": self._node_id,
            "message": record.getMessage()[:MESSAGE_CHARS_MAX],
        }
        request = _request.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None and request is not None:
                value = getattr(request, name, "") or None
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # default=str: an `extra` value JSON cannot hold is written as its text, never dropped.
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(*, level: str, log_format: str, node_id: str,
                      stream: TextIO = sys.stderr) -> None:
    """The node's root logger: text lines as before, or JSON lines (`JsonFormatter`)."""
    assert log_format in LOG_FORMATS, log_format
    if log_format == "text":
        logging.basicConfig(level=level.upper(), stream=stream,
                            format=f"%(asctime)s {node_id} %(levelname)s %(name)s: %(message)s")
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(node_id))
    logging.basicConfig(level=level.upper(), handlers=[handler])
