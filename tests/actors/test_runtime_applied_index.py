"""The actor runtime keeps the log index and the machine's applied index moving together.

Goal: show that `ActorRuntime.apply_entry` refuses an entry applied twice or out of order, that
it catches a state machine whose `applied_index` does not advance by exactly one per command,
and that a restored snapshot resets both to the snapshot's log index and applied count.
Method: the generic runtime over a tiny counting `StateMachine` (no shard core, which also shows
the runtime needs none), fed entries by hand; no log is bound, so nothing is proposed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from raftflow.actors.runtime import ActorRuntime
from raftflow.protocol.codec import encode_command, encode_proposal_parts
from raftflow.protocol.commands import Barrier, Command
from raftflow.protocol.effects import Effect
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Ack, Result


@dataclass(frozen=True, slots=True)
class Applied:
    result: Result
    events: tuple[HistoryEvent, ...] = ()
    effects: tuple[Effect, ...] = ()


class CountingMachine:
    """State = how many commands were applied; `step` lets a test break the count."""

    def __init__(self, step: int = 1) -> None:
        self.count = 0
        self.step = step

    @property
    def state(self) -> int:
        return self.count

    @property
    def applied_index(self) -> int:
        return self.count

    @property
    def stored_through_index(self) -> int:
        return 0  # no store of its own

    def apply(self, command: Command) -> Applied:
        self.count += self.step
        return Applied(result=Ack())

    def entry_applied(self, index: int) -> None:
        pass

    def pending_effects(self) -> Sequence[Effect]:
        return ()

    def earliest_timer_ms(self) -> int | None:
        return None

    def take_snapshot(self) -> bytes:
        return str(self.count).encode()

    def transfer_snapshot(self) -> bytes | None:
        return None

    def restore_snapshot(self, data: bytes, index: int) -> None:
        self.count = int(data)

    def discard(self) -> None:
        pass


class IgnoringSink:
    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        raise AssertionError("no effects expected")

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        raise AssertionError("no leadership expected")


class ZeroClock:
    def now_ms(self) -> int:
        return 0


def _runtime(machine: CountingMachine) -> ActorRuntime[int]:
    return ActorRuntime(shard=0, machine=machine, node_id="a", incarnation=1,
                        sink=IgnoringSink(), clock=ZeroClock())


def _entry(commands: int) -> bytes:
    """A proposal from another node (so no future of ours is waiting on it)."""
    barrier = encode_command(Barrier(now_ms=0, leader_node="b", term=1))
    return encode_proposal_parts(proposer="b", incarnation=1, seq=1,
                                 encoded_commands=[barrier] * commands)


def test_each_entry_advances_the_machine_by_its_commands_and_indexes_only_rise() -> None:
    machine = CountingMachine()
    runtime = _runtime(machine)
    runtime.apply_entry(1, _entry(2))
    runtime.apply_entry(3, _entry(1))  # a gap: Raft's own entries never reach the consumer
    assert machine.applied_index == 3 and runtime.stats.applied_entries == 2
    with pytest.raises(AssertionError):
        runtime.apply_entry(3, _entry(1))  # the same entry again
    with pytest.raises(AssertionError):
        runtime.apply_entry(2, _entry(1))  # an older one
    assert machine.applied_index == 3  # refused before anything was applied


@pytest.mark.parametrize("step", [0, 2])
def test_a_machine_whose_applied_index_does_not_follow_its_commands_is_caught(step: int) -> None:
    runtime = _runtime(CountingMachine(step=step))
    with pytest.raises(AssertionError):
        runtime.apply_entry(1, _entry(2))


def test_a_restored_snapshot_sets_both_the_log_index_and_the_applied_count() -> None:
    source = CountingMachine()
    source_runtime = _runtime(source)
    for index in range(1, 6):
        source_runtime.apply_entry(index, _entry(2))
    snapshot = source_runtime.take_snapshot()

    machine = CountingMachine()
    runtime = _runtime(machine)
    runtime.restore_snapshot(snapshot, 5)
    assert machine.applied_index == 10
    with pytest.raises(AssertionError):
        runtime.apply_entry(5, _entry(1))  # covered by the snapshot already
    runtime.apply_entry(6, _entry(3))
    assert machine.applied_index == 13


def test_a_snapshot_with_applied_commands_must_cover_some_log_index() -> None:
    runtime = _runtime(CountingMachine())
    with pytest.raises(AssertionError):
        runtime.restore_snapshot(b"4", 0)


class StoredMachine(CountingMachine):
    """A machine whose own store already holds the log up to `stored` (count = 2 per entry)."""

    def __init__(self, stored: int) -> None:
        super().__init__()
        self.stored = stored
        self.count = 2 * stored
        self.entries: list[int] = []

    @property
    def stored_through_index(self) -> int:
        return self.stored

    def entry_applied(self, index: int) -> None:
        self.entries.append(index)

    def restore_snapshot(self, data: bytes, index: int) -> None:
        pass  # a manifest: the store holds the state already (up to `stored` >= index)


def test_entries_the_store_holds_are_skipped_after_a_restart_and_a_manifest_restore() -> None:
    machine = StoredMachine(stored=7)
    runtime = _runtime(machine)
    runtime.restore_snapshot(b"manifest", 4)  # the snapshot is older than the store
    for index in range(5, 8):
        runtime.apply_entry(index, _entry(2))  # replayed by Raft: already in the store
    assert machine.applied_index == 14 and machine.entries == []
    runtime.apply_entry(8, _entry(2))
    assert machine.applied_index == 16 and machine.entries == [8]
    with pytest.raises(AssertionError):
        runtime.apply_entry(8, _entry(2))  # past the store, the exactly-once check holds


def test_without_a_restore_the_store_index_still_bounds_the_replay() -> None:
    machine = StoredMachine(stored=3)
    runtime = _runtime(machine)
    runtime.apply_entry(2, _entry(2))  # no snapshot yet: Raft replays from its first entry
    runtime.apply_entry(4, _entry(1))
    assert machine.applied_index == 7 and machine.entries == [4]
