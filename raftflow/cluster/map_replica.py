"""This node's replica of the cluster map: the meta group's `LogConsumer` and its proposer.

Theory of operation. The cluster map (cluster_map.py) is the state of a small Raft group, the
meta group (`META_GROUP_ID`), whose voters are at most five members. Its log holds two kinds of
entry (`MetaEntry`):
- `GenesisEntry(map)`: the map a `--peers` cluster starts from. Every founding node computes the
  same genesis from its `cluster.json`, so whichever one a new meta leader proposes first is the
  map; a later genesis entry changes nothing. Putting genesis in the log (rather than having each
  replica start from its own computation) is what lets a node that joins later replay the log
  from index 1, or install a snapshot, and reach the same map.
- `CommandEntry(command)`: a membership or placement command (map_machine.py), applied by the
  pure `apply_map_command` on every replica identically.

`execute` proposes a command and waits for its own entry to apply here: its answer is the
machine's result for that entry, matched by the command's request id. As for shards, a failed
or timed-out proposal may still commit: the caller retries with the same request id, and the
machine answers a repeated request id with its first answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

import msgspec

from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.cluster.cluster_map import META_GROUP_ID, ClusterMap, MapCommand, MapResult
from raftflow.cluster.map_machine import apply_map_command
from raftflow.raftlog.interface import ReplicatedLog

log = logging.getLogger(__name__)

# A map command is a few hundred bytes; waiting longer than this for one means the meta group
# has no working majority: the caller is told so and may retry with the same request id.
MAP_COMMAND_TIMEOUT_S = 10.0
# Commands proposed by this node and not applied yet; beyond this the caller is refused.
MAP_COMMANDS_IN_FLIGHT_MAX = 64
# A genesis proposal that failed (leadership flapped at start) is made again after this.
GENESIS_RETRY_S = 0.5


class GenesisEntry(msgspec.Struct, frozen=True, kw_only=True, tag="genesis", tag_field="type"):
    map: ClusterMap


class CommandEntry(msgspec.Struct, frozen=True, kw_only=True, tag="command", tag_field="type"):
    command: MapCommand


MetaEntry = GenesisEntry | CommandEntry

_entry_encoder = msgspec.msgpack.Encoder()
_entry_decoder = msgspec.msgpack.Decoder(MetaEntry)
_snapshot_decoder = msgspec.msgpack.Decoder(ClusterMap | None)


class MapReplica:
    """One replica of the cluster map. Runs on the node's event loop; apply does no IO.

    Args:
        genesis: the map this node would found the cluster with (None on a node that joined:
            it learns genesis from the log or a snapshot).
        on_change: called after every entry that changed the map, with the new map.
    """

    def __init__(self, *, genesis: ClusterMap | None,
                 on_change: Callable[[ClusterMap], None]) -> None:
        self._genesis = genesis
        self._on_change = on_change
        self._map: ClusterMap | None = None
        self._log: ReplicatedLog | None = None
        self._waiting: dict[str, asyncio.Future[MapResult]] = {}
        self._term: int | None = None

    def bind(self, replicated_log: ReplicatedLog) -> None:
        assert self._log is None
        self._log = replicated_log

    @property
    def map(self) -> ClusterMap | None:
        """The map as of the last applied entry (None before genesis applied here)."""
        return self._map

    def is_leader(self) -> bool:
        return self._log is not None and self._log.is_leader()

    async def execute(self, command: MapCommand) -> MapResult:
        """Propose `command` and return the machine's answer once committed and applied here.

        Raises NotLeaderError (not leader, leadership lost, proposal dropped) or
        ProposalTimeoutError; in both cases the command may still apply later.
        """
        assert self._log is not None
        if not self._log.is_leader() or self._map is None:
            raise NotLeaderError(META_GROUP_ID, "the cluster map is led elsewhere")
        if len(self._waiting) >= MAP_COMMANDS_IN_FLIGHT_MAX:
            raise NotLeaderError(META_GROUP_ID, "too many map commands in flight")
        request_id = command.request_id
        future = self._waiting.get(request_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[request_id] = future
            self._log.propose(_entry_encoder.encode(CommandEntry(command=command)),
                              lambda reason: self._fail(request_id, reason))
        try:
            return await asyncio.wait_for(asyncio.shield(future), MAP_COMMAND_TIMEOUT_S)
        except TimeoutError:
            raise ProposalTimeoutError(META_GROUP_ID) from None
        finally:
            if future.done():
                self._waiting.pop(request_id, None)

    def _fail(self, request_id: str, reason: str) -> None:
        future = self._waiting.pop(request_id, None)
        if future is not None and not future.done():
            future.set_exception(NotLeaderError(META_GROUP_ID, reason))

    # -- LogConsumer ---------------------------------------------------------------------------

    def apply_entry(self, index: int, data: bytes) -> None:
        entry = _entry_decoder.decode(data)
        if isinstance(entry, GenesisEntry):
            if self._map is None:
                self._map = entry.map
                self._on_change(entry.map)
            return
        command = entry.command
        if self._map is None:
            # Only a bug could put a command before genesis: commands are proposed only by a
            # leader that has applied a map.
            raise AssertionError(f"map command at index {index} before genesis")
        before = self._map
        self._map, result = apply_map_command(before, command)
        future = self._waiting.get(command.request_id)
        if future is not None and not future.done():
            assert self._log is not None
            self._log.after_durable(partial(_answer, future, result))
        if self._map is not before:
            self._on_change(self._map)

    def take_snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self._map)

    def transfer_snapshot(self) -> bytes | None:
        return None  # the snapshot file holds the whole map: send it as it is

    def discard(self) -> None:
        pass  # nothing on disk but the group's own journal and snapshot

    def restore_snapshot(self, data: bytes, index: int) -> None:
        restored = _snapshot_decoder.decode(data)
        self._map = restored
        if restored is not None:
            self._on_change(restored)

    def on_leadership(self, is_leader: bool, term: int) -> None:
        self._term = term if is_leader else None
        if not is_leader:
            for request_id in list(self._waiting):
                self._fail(request_id, "leadership lost")
            return
        asyncio.get_running_loop().call_soon(self._propose_genesis, term)

    def _propose_genesis(self, term: int) -> None:
        # A new leader of a cluster whose genesis has not applied yet founds it. Proposing
        # again after a lost proposal is harmless: only the first genesis entry counts.
        if (self._term != term or self._map is not None or self._genesis is None
                or self._log is None or not self._log.is_leader()):
            return
        self._log.propose(_entry_encoder.encode(GenesisEntry(map=self._genesis)),
                          partial(self._genesis_failed, term))

    def _genesis_failed(self, term: int, reason: str) -> None:
        log.info("cluster map: genesis proposal failed (%s); proposing it again", reason)
        asyncio.get_running_loop().call_later(GENESIS_RETRY_S, self._propose_genesis, term)


def _answer(future: asyncio.Future[MapResult], result: MapResult) -> None:
    if not future.done():
        future.set_result(result)
