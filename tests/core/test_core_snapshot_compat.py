"""Goal: shard snapshots of older formats restore: release 0.1's (format 1, arrays) and format 2
(maps, with closed runs and request ids still inside the state); a replica restored from one
agrees with a replica that applied the same log on the current code.

Method: `tests/data/protocol-v0.1/` holds snapshots that 0.1 wrote of the state the seeded random
walk of `test_core_random_walk.py` (seed 2) reaches, and the sha256 of its snapshot every 25
steps. Format 2 snapshots are derived from them: the 0.1 state decoded into the format-2 layout
(`snapshot_v2.ShardState`) and packed as `[2, state]`, byte for byte what the release before
format 3 wrote of these states (checked against that code when format 3 came). Both are restored
with the current code, which writes format 4 from then on; the same walk is replayed on the
current code, and at each kept step the restored state must equal the walked one (DESIGN §4 I2
across releases: a replica upgraded mid-log agrees with one that was not): the open part by
`==`, the whole state (archive included) by digest, except for what the old formats cannot
carry (`_assert_same_archive`). Digests are sha256 of current bytes, so they differ from 0.1's by
design: the recorded ones now only pin the fixture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import pytest

from raftflow.protocol import legacy_arrays
from raftflow.protocol.codec import ENCODER
from raftflow.protocol.events import EventAttributes, EventType
from raftflow.shards.core import snapshot, snapshot_v2
from raftflow.shards.core.archive import RememberedRequest
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.invariants import check_invariants
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.state import ShardState
from tests.core.core_driver import all_runs
from tests.core.test_core_random_walk import Walk

DATA = Path(__file__).parent.parent / "data" / "protocol-v0.1"
META = json.loads((DATA / "walk-snapshots.json").read_text())
KEPT: list[int] = META["kept_steps"]
FORMATS = (snapshot.LEGACY_ARRAYS_FORMAT_VERSION, snapshot.OPEN_RUNS_MAPS_FORMAT_VERSION)

# The command kind (first part of a request key) of each event that records a client request id.
_REQUEST_KIND_OF_EVENT = {
    EventType.WORKFLOW_EXECUTION_STARTED: "start",
    EventType.WORKFLOW_EXECUTION_SIGNALED: "signal",
    EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED: "cancel",
    EventType.WORKFLOW_EXECUTION_TERMINATED: "terminate",
}


def _old_snapshot(step: int, version: int = snapshot.LEGACY_ARRAYS_FORMAT_VERSION) -> bytes:
    data = (DATA / f"walk-seed{META['seed']}-step{step}.snapshot").read_bytes()
    if version == snapshot.LEGACY_ARRAYS_FORMAT_VERSION:
        return data
    assert version == snapshot.OPEN_RUNS_MAPS_FORMAT_VERSION, version
    _, raw_state = msgspec.msgpack.Decoder(list[msgspec.Raw]).decode(data)
    old = legacy_arrays.from_legacy(bytes(raw_state), snapshot_v2.ShardState)
    return ENCODER.encode((version, old))


def _archive(state: ShardState) -> MemoryArchive:
    assert isinstance(state.archive, MemoryArchive)
    return state.archive


@pytest.mark.parametrize("version", FORMATS)
@pytest.mark.parametrize("step", KEPT)
def test_an_old_snapshot_restores_and_round_trips_in_the_current_format(step: int,
                                                                        version: int) -> None:
    assert hashlib.sha256(_old_snapshot(step)).hexdigest() == META["sha256_by_step"][str(step)]
    old = _old_snapshot(step, version)
    assert old[:2] == bytes((0x92, version))
    state = snapshot.from_bytes(old)
    check_invariants(state)
    data = snapshot.to_bytes(state)
    # [4, state, 3 tables, spilled chunks]
    assert data[:2] == bytes((0x96, snapshot.SNAPSHOT_FORMAT_VERSION))
    again = snapshot.from_bytes(data)
    assert again == state and snapshot.to_bytes(again) == data
    assert state_digest(again) == state_digest(state)
    assert _archive(again).contents() == _archive(state).contents()
    # The derived heap is rebuilt on decode, not read from the snapshot.
    assert sorted(state.timer_heap) == sorted((at, *key) for key, at in state.timers.items())


@pytest.mark.parametrize("step", KEPT)
def test_formats_1_and_2_of_one_state_restore_to_the_same_state(step: int) -> None:
    states = [snapshot.from_bytes(_old_snapshot(step, version)) for version in FORMATS]
    assert states[0] == states[1]
    assert state_digest(states[0]) == state_digest(states[1])


def test_the_fixture_holds_the_shapes_worth_checking() -> None:
    state = snapshot.from_bytes(_old_snapshot(KEPT[0]))
    runs, latest, requests = _archive(state).contents()
    executions = state.executions.values()
    assert any(e.buffered for e in executions)
    assert any(e.task_started() for e in executions)
    assert len({a.phase for e in executions for a in e.activities.values()}) >= 2
    assert state.timers and requests and runs and latest
    assert len({e.status for e in all_runs(state)}) >= 5
    # A workflow id with an open run and a retained closed one: the archive's latest pointer
    # must still name the closed run (the open one is in `open_runs`).
    assert {key for key, _ in latest} & set(state.open_runs)


def test_a_replica_restored_from_an_old_format_agrees_with_the_same_walk() -> None:
    walk = Walk(META["seed"])
    for step in range(1, max(KEPT) + 1):
        walk.step()
        if step in KEPT:
            for version in FORMATS:
                restored = snapshot.from_bytes(_old_snapshot(step, version))
                assert restored == walk.state, f"open part diverged at step {step}"
                _assert_same_archive(restored, walk.state)


def _assert_same_archive(restored: ShardState, walked: ShardState) -> None:
    """The whole state digests alike, except request-id expiry times the old format cannot tell.

    Formats 1 and 2 kept no time per request id, so the upgrade takes the time of the first
    event naming it in that workflow id (`snapshot_v2._request_times`), keyed by (namespace,
    workflow_id, request_id) only. That is exact when the events naming the id are all of the
    request's own kind. It is not when one id was used by two kinds of request on one workflow
    id (seed 2, step 600: "c29" was a cancel at 388.7 s and a signal at 962.3 s, so the signal
    gets the cancel's time) or by none (a cancel of a run already asked to cancel writes no
    event); those, and only those, are excluded: everything else must be byte-identical.
    """
    runs, latest, requests = _archive(restored).contents()
    walked_runs, walked_latest, walked_requests = _archive(walked).contents()
    assert runs == walked_runs and latest == walked_latest
    assert [(r.key, r.result) for r in requests] == [(r.key, r.result) for r in walked_requests]
    kinds = _request_kinds(restored)
    exact = {r.key for r in requests if kinds.get(r.key[1:]) == {r.key[0]}}
    assert len(exact) >= len(requests) * 9 // 10, "the check lost its substance"
    walked_expiry = {r.key: r.expires_at_ms for r in walked_requests}
    for request in requests:
        if request.key in exact:
            assert request.expires_at_ms == walked_expiry[request.key], request.key
    # Give the excluded rows the walked times; then the whole state must digest alike.
    patched = [RememberedRequest(key=r.key, result=r.result,
                                 expires_at_ms=walked_expiry[r.key]) for r in requests]
    twin = snapshot.open_part_from_bytes(snapshot.open_part_bytes(restored))
    twin.archive = MemoryArchive.of(runs, latest, patched)
    assert state_digest(twin) == state_digest(walked)


def _request_kinds(state: ShardState) -> dict[tuple[str, str, str], set[str]]:
    """(namespace, workflow_id, request_id) -> the kinds of request that events name it for."""
    kinds: dict[tuple[str, str, str], set[str]] = {}
    for execution in all_runs(state):
        named: list[tuple[EventType, EventAttributes]] = [
            *((e.event_type, e.attributes) for e in execution.history),
            *((b.event_type, b.attributes) for b in execution.buffered)]
        for event_type, attributes in named:
            kind = _REQUEST_KIND_OF_EVENT.get(event_type)
            request_id = getattr(attributes, "request_id", "")
            if kind is None or not request_id:
                continue
            if getattr(attributes, "reason", "") == "terminate_if_running":
                kind = "start"  # a start with TERMINATE_IF_RUNNING names its id on the old run
            kinds.setdefault((execution.namespace, execution.workflow_id, request_id),
                             set()).add(kind)
    return kinds


def test_the_timer_heap_is_neither_packed_nor_compared() -> None:
    state = snapshot.from_bytes(_old_snapshot(KEPT[0]))
    twin = snapshot.from_bytes(snapshot.to_bytes(state))
    twin.timer_heap.append((0, "stale", "user", 1))  # lazy deletion leaves such entries
    assert twin == state
    assert snapshot.to_bytes(twin) == snapshot.to_bytes(state)
    assert ShardState.empty(1).timer_heap == []


@pytest.mark.parametrize("step", KEPT)
def test_a_format_3_snapshot_restores_with_no_spilled_chunks(step: int) -> None:
    """Format 3 is format 4 without the spilled chunks (no run spilled before format 4); its
    runs decode with `spilled_events` 0, which the encoding of those states still holds."""
    state = snapshot.from_bytes(_old_snapshot(step))
    runs, latest, requests = _archive(state).contents()
    assert not _archive(state).spilled_contents()
    old = ENCODER.encode((snapshot.UNSPILLED_FORMAT_VERSION, state, runs, latest, requests))
    restored = snapshot.from_bytes(old)
    assert restored == state and state_digest(restored) == state_digest(state)
    assert snapshot.to_bytes(restored)[:2] == bytes((0x96, snapshot.SNAPSHOT_FORMAT_VERSION))
