"""Typed errors of the actor runtime; each maps to one HTTP status through its ErrorCode."""

from __future__ import annotations

from raftflow.actors import limits
from raftflow.protocol.errors import ErrorCode, RaftflowError


class MailboxFullError(RaftflowError):
    """The shard's mailbox is full: retry later (HTTP 503 + Retry-After)."""

    retry_after_s = limits.RETRY_AFTER_S

    def __init__(self, shard: int) -> None:
        super().__init__(ErrorCode.OVERLOADED, f"shard {shard} is overloaded, retry later")


class NotLeaderError(RaftflowError):
    """This replica does not lead the shard (or stopped leading before the command applied)."""

    retry_after_s = limits.RETRY_AFTER_S

    def __init__(self, shard: int | None, detail: str = "") -> None:
        what = "the shard" if shard is None else f"shard {shard}"
        message = f"this node does not lead {what}" + (f" ({detail})" if detail else "")
        super().__init__(ErrorCode.NOT_LEADER, message)


class ProposalTimeoutError(RaftflowError):
    """The command was not applied in time; it may still be applied later."""

    retry_after_s = limits.RETRY_AFTER_S

    def __init__(self, shard: int) -> None:
        super().__init__(ErrorCode.TIMEOUT,
                         f"shard {shard} did not commit the command in time; its outcome is "
                         "unknown: retry with the same request_id")
