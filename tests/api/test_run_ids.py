"""Goal: new run ids are UUIDv7 (RFC 9562) as 32 hex digits, ordered by their start time, so
the shard store's b-trees keyed by run id grow at one edge (raftflow/api/run_ids.py)."""

from __future__ import annotations

import uuid

from raftflow.api.run_ids import new_run_id


def test_a_run_id_is_a_version_7_uuid_carrying_its_millisecond() -> None:
    now_ms = 1_780_000_000_123
    run_id = new_run_id(now_ms)
    assert len(run_id) == 32 and run_id == run_id.lower()
    parsed = uuid.UUID(hex=run_id)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == now_ms


def test_run_ids_sort_by_time_and_do_not_repeat() -> None:
    ids = [new_run_id(1_780_000_000_000 + ms) for ms in range(0, 5_000, 7) for _ in range(3)]
    by_ms = [run_id[:12] for run_id in ids]
    assert by_ms == sorted(by_ms)
    assert len(set(ids)) == len(ids)
