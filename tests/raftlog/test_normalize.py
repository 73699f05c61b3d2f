"""AppendEntries normalisation (raftlog/normalize.py), table-driven.

Goal: only a real term conflict may truncate a follower's log. Method: build a follower log as a
list of (index, term), feed messages shaped like pysyncobj's, apply what pysyncobj would do with
the normalised message (a tiny model of syncobj.py's handler), and compare logs and replies.
"""

from __future__ import annotations

from typing import Any

import pytest

from raftflow.raftlog.normalize import normalize_append_entries


def _entries(*pairs: tuple[int, int]) -> list[tuple[bytes, int, int]]:
    return [(b"d%d" % i, i, t) for i, t in pairs]


def _pysyncobj_model(log: list[tuple[bytes, int, int]], m: dict[str, Any]) -> tuple[list[Any], int | None]:
    """What pysyncobj 0.3.17 does with an AppendEntries to a log: (new log, acked index)."""
    if "prevLogIdx" not in m:
        return log, None
    first = log[0][1]
    prev = m["prevLogIdx"]
    prev_entries = log[prev - first:] if prev >= first else []
    if not prev_entries or prev_entries[0][2] != m["prevLogTerm"]:
        return log, None
    new_log = log[: prev - first + 1] if len(prev_entries) > 1 else list(log)
    new_log += [tuple(e) for e in m["entries"]]
    acked = m["entries"][-1][1] if m["entries"] else prev
    return new_log, acked


def _run(log: list[Any], message: dict[str, Any], normalize: bool) -> tuple[list[Any], int | None]:
    if not normalize:
        return _pysyncobj_model(log, message)
    by_index = {e[1]: e[2] for e in log}
    n = normalize_append_entries(message, current_term=2, commit_index=0,
                                 first_index=log[0][1],
                                 last_index=log[-1][1], term_at=by_index.get)
    new_log, acked = _pysyncobj_model(log, n.message)
    if n.reply is not None:
        assert acked is None
        acked = n.reply["next_node_idx"] - 1
    return new_log, acked


def _ae(prev: int, prev_term: int, entries: list[Any], commit: int = 0) -> dict[str, Any]:
    return {"type": "append_entries", "term": 2, "commit_index": commit,
            "prevLogIdx": prev, "prevLogTerm": prev_term, "entries": entries}


FOLLOWER = _entries((1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2))

CASES = [
    # name, message, expected log indexes/terms after, expected acked index
    ("stale duplicate of present entries keeps the tail", _ae(2, 1, _entries((3, 1), (4, 2))),
     [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)], 4),
    ("stale heartbeat below the end keeps the tail", _ae(3, 1, []),
     [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)], 3),
    ("overlap then new entries appends", _ae(4, 2, _entries((5, 2), (6, 2), (7, 2))),
     [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2), (7, 2)], 7),
    ("real conflict truncates from the conflict only", _ae(3, 1, _entries((4, 2), (5, 3))),
     [(1, 0), (2, 1), (3, 1), (4, 2), (5, 3)], 5),
    ("mismatched prev term is refused untouched", _ae(3, 2, _entries((4, 2))),
     [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)], None),
    ("exact match up to the end", _ae(4, 2, _entries((5, 2), (6, 2))),
     [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)], 6),
]


@pytest.mark.parametrize(("name", "message", "expected", "acked"), CASES, ids=[c[0] for c in CASES])
def test_normalised_append_entries(name: str, message: dict[str, Any], expected: list[Any],
                                   acked: int | None) -> None:
    log, got_acked = _run(list(FOLLOWER), message, normalize=True)
    assert [(e[1], e[2]) for e in log] == expected
    assert got_acked == acked


def test_unnormalised_pysyncobj_drops_acknowledged_entries() -> None:
    # The bug the normaliser closes: a stale duplicate makes pysyncobj cut entries 5 and 6,
    # which this follower had acknowledged.
    log, acked = _run(list(FOLLOWER), _ae(2, 1, _entries((3, 1), (4, 2))), normalize=False)
    assert log[-1][1] == 4 and acked == 4


def test_redundant_message_caps_commit_index_at_what_it_vouches_for() -> None:
    by_index = {e[1]: e[2] for e in FOLLOWER}
    n = normalize_append_entries(_ae(2, 1, _entries((3, 1)), commit=6), current_term=2,
                                 commit_index=0, first_index=1, last_index=6,
                                 term_at=by_index.get)
    assert "prevLogIdx" not in n.message
    assert n.message["commit_index"] == 3  # entries 4-6 were not vouched for by this message
    assert n.reply == {"type": "next_node_idx", "next_node_idx": 4, "reset": False, "success": True}


def test_stale_term_and_other_messages_pass_through() -> None:
    by_index = {e[1]: e[2] for e in FOLLOWER}
    old = dict(_ae(2, 1, []), term=1)
    for message in (old, {"type": "request_vote", "term": 3}):
        n = normalize_append_entries(message, current_term=2, commit_index=0, first_index=1,
                                     last_index=6, term_at=by_index.get)
        assert n.message is message and n.reply is None


def test_snapshot_chunk_does_not_advance_the_commit_index() -> None:
    # A snapshot chunk vouches for no entry here: entries 4-6 (term 2) might be an old term's
    # uncommitted tail, and pysyncobj would commit min(leader commit, 6) of them.
    by_index = {e[1]: e[2] for e in FOLLOWER}
    chunk = {"type": "append_entries", "term": 3, "commit_index": 9,
             "serialized": (b"part", True, False)}
    n = normalize_append_entries(chunk, current_term=2, commit_index=3, first_index=1,
                                 last_index=6, term_at=by_index.get)
    assert n.message["commit_index"] == 3 and n.message["serialized"] == chunk["serialized"]
    assert n.reply is None
    behind = dict(chunk, commit_index=2)  # a lower leader commit passes as it is
    assert normalize_append_entries(behind, current_term=2, commit_index=3, first_index=1,
                                    last_index=6, term_at=by_index.get).message is behind
