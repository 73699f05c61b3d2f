"""Normalise AppendEntries before pysyncobj sees them, so only a real conflict truncates a log.

The bug (pysyncobj 0.3.17, syncobj.py:991-1006): a follower deletes every entry after
`prevLogIdx` whenever its log extends past it, conflict or not. A leader pipelines AppendEntries
and resends from `nextIndex`, so a stale or duplicated message routinely arrives after later
entries: the follower then drops entries it has already acknowledged, and a leader crash in that
window can lose a committed entry (Raft §5.3 says: delete only from the first conflict).

The fix is a pure function of the message and the follower's log:
- entries already present with the same term are skipped;
- if one differs in term, the message is rewritten to start at that entry, so pysyncobj
  truncates exactly from the first conflicting index (correct Raft);
- if every entry is already present and the log extends past them, the message is redundant:
  pysyncobj gets a heartbeat with no `prevLogIdx` (term, leader and election timer updates) and
  a commit index capped at the last entry this message vouches for (Raft's
  `min(leaderCommit, index of last new entry)`), and we answer success for that index ourselves.

A snapshot chunk (`serialized`, no `prevLogIdx`) vouches for no entry of the follower's log, yet
pysyncobj moves the commit index to `min(leaderCommit, last index)` on every AppendEntries: a
follower holding uncommitted entries of an older term after a matching prefix would apply them.
Its commit index is capped at the follower's own; the AppendEntries after the snapshot, which do
carry `prevLogIdx`, advance it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Normalized:
    """What to hand pysyncobj, and the reply to send on its behalf (if any)."""

    message: Message
    reply: Message | None = None


def normalize_append_entries(
    message: Message,
    *,
    current_term: int,
    commit_index: int,
    first_index: int,
    last_index: int,
    term_at: Callable[[int], int | None],
) -> Normalized:
    """Return the message pysyncobj should process in place of `message`."""
    if message.get("type") != "append_entries":
        return Normalized(message)
    if "prevLogIdx" not in message:
        if "serialized" in message and message["commit_index"] > commit_index:
            return Normalized(dict(message, commit_index=commit_index))
        return Normalized(message)
    if "transmission" in message or message["term"] < current_term:
        return Normalized(message)  # chunked entries are never produced (limits.py); stale term ignored
    prev_index: int = message["prevLogIdx"]
    if prev_index >= last_index:
        return Normalized(message)  # nothing after prev to truncate
    if prev_index < first_index or term_at(prev_index) != message["prevLogTerm"]:
        return Normalized(message)  # pysyncobj rejects it without touching the log
    entries: list[Any] = list(message.get("entries", ()))
    skipped = 0
    for entry in entries:
        index, term = entry[1], entry[2]
        if index > last_index:
            break
        present = term_at(index)
        if present is None:
            assert index < first_index, (index, first_index)  # compacted, hence committed
        elif present != term:
            break  # the first real conflict: truncate from here
        skipped += 1
    rest = entries[skipped:]
    vouched = entries[skipped - 1][1] if skipped else prev_index
    vouched_term = entries[skipped - 1][2] if skipped else message["prevLogTerm"]
    if rest or vouched == last_index:
        # Either a conflict or new entries right after `vouched`: pysyncobj truncates after
        # `vouched` (only conflicting entries lie there) and appends the rest.
        assert not rest or rest[0][1] == vouched + 1, (rest[0][1], vouched)
        rewritten = dict(message, prevLogIdx=vouched, prevLogTerm=vouched_term, entries=rest)
        return Normalized(rewritten)
    assert vouched < last_index
    heartbeat = {
        "type": "append_entries",
        "term": message["term"],
        "commit_index": min(message["commit_index"], vouched),
    }
    reply = {"type": "next_node_idx", "next_node_idx": vouched + 1, "reset": False, "success": True}
    return Normalized(heartbeat, reply)
