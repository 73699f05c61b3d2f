"""The cluster map: who the members are, which nodes hold each Raft group, and the cluster's
namespaces (namespace_specs.py) (pure values).

Theory of operation. The map is the replicated state of a small metadata Raft group, the meta
group (`META_GROUP_ID`, at most `META_VOTERS_MAX` voters). Every node follows it; routing and
replica placement read it. It changes only by applying a `MapCommand` (map_machine.py), the
same command in the same order on every replica, so every replica holds the same map; every
change bumps `epoch`, which orders maps: a request routed on an older epoch is re-routed.

A group (a shard, or the meta group) lists its desired `voters`, the first being the preferred
leader, and at most one move: StartMove names a `learner` (the new replica, catching up,
non-voting) and/or a voter `leaving`; PromoteLearner makes the learner a voter and records it
as `promoted` until FinishMove, which removes `leaving` and ends the move. Until then the
promoted node does not campaign: the group's leader may not have added it yet. So a group
grows before it shrinks and never drops below its replication factor during a move.

Wire contract: like protocol/commands.py, every type is a frozen msgspec Struct encoded as a map
of its field names; union members carry their class name under `type`; fields are only ever
added with a default. Unknown fields are refused: a replica that cannot understand a command
written by newer code must stop rather than diverge. The map travels as msgpack in the meta log
and its snapshots (`encode_map`), and as JSON (msgspec.json) to operators.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import msgspec

from raftflow.cluster.config import NODES_MAX
from raftflow.cluster.namespace_specs import (
    AddSearchAttribute,
    CreateNamespace,
    Namespace,
    UpdateNamespace,
    namespace_in,
)
from raftflow.cluster.ring import place_replicas

# The meta group's id among a node's Raft groups; shard ids are 0..shard_count-1.
META_GROUP_ID = -1
# Raft with 5 voters survives 2 failures; more voters only slow every map change down.
META_VOTERS_MAX = 5
# Replicas per shard once the cluster has that many active members (the "min(3, N)").
REPLICATION_FACTOR_MAX = 3
# Retries of a map command come within seconds; 256 answers cover far more than that window.
REQUEST_ANSWERS_MAX = 256
REQUEST_ID_LENGTH_MAX = 128
# Removed ids stay refused for rejoining; a cluster removes few nodes in its life, and the
# oldest ids are the least likely to come back.
REMOVED_IDS_MAX = 1024
ADDRESS_LENGTH_MAX = 300
assert META_VOTERS_MAX <= NODES_MAX and REPLICATION_FACTOR_MAX <= META_VOTERS_MAX


class MemberState(StrEnum):
    JOINING = "joining"  # admitted; holds no replica until active
    ACTIVE = "active"  # counts for placement
    DRAINING = "draining"  # its replicas move away; then it may be removed


class Member(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    http_address: str  # "http://host:port"
    raft_host: str
    raft_port: int
    state: MemberState
    joined_epoch: int  # epoch of its admission; members are ordered by (joined_epoch, id)


class GroupReplicas(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    voters: tuple[str, ...]  # desired voters, the first is the preferred leader
    learner: str | None = None  # a move's new replica, catching up, non-voting
    leaving: str | None = None  # a move's old replica, a voter until FinishMove
    promoted: str | None = None  # a move's new replica, a voter since PromoteLearner

    @property
    def moving(self) -> bool:
        """Whether a move is in progress (started and not finished or aborted)."""
        return self.learner is not None or self.leaving is not None or self.promoted is not None

    def holds(self, node_id: str) -> bool:
        return node_id in self.voters or node_id == self.learner


# --- Commands (proposed to the meta group's log) ---------------------------------------------


class AdmitMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                  tag="AdmitMember", tag_field="type"):
    request_id: str
    node_id: str
    http_address: str
    raft_host: str
    raft_port: int


class ActivateMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                     tag="ActivateMember", tag_field="type"):
    request_id: str
    node_id: str


class DrainMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                  tag="DrainMember", tag_field="type"):
    request_id: str
    node_id: str


class RemoveMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                   tag="RemoveMember", tag_field="type"):
    request_id: str
    node_id: str
    force: bool = False  # remove a dead member whatever it still holds


class StartMove(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                tag="StartMove", tag_field="type"):
    request_id: str
    group: int  # a shard id, or META_GROUP_ID
    add: str | None  # becomes the learner
    remove: str | None  # becomes the leaving voter


class PromoteLearner(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                     tag="PromoteLearner", tag_field="type"):
    request_id: str
    group: int


class FinishMove(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                 tag="FinishMove", tag_field="type"):
    request_id: str
    group: int


class AbortMove(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                tag="AbortMove", tag_field="type"):
    request_id: str
    group: int


# Namespace commands live with the namespace types (namespace_specs.py).
MapCommand = (AdmitMember | ActivateMember | DrainMember | RemoveMember | StartMove
              | PromoteLearner | FinishMove | AbortMove | CreateNamespace | UpdateNamespace
              | AddSearchAttribute)


# --- Results ----------------------------------------------------------------------------------


class RefusalCode(StrEnum):
    INVALID = "invalid"  # the command itself is malformed (bad id, unknown group)
    CONFLICT = "conflict"  # the map's state does not allow it (id taken, move in progress)
    NOT_FOUND = "not_found"  # no such member
    UNSAFE = "unsafe"  # it would put data at risk (below the replication factor)
    NAMESPACE_EXISTS = "namespace_exists"  # created before with other settings: update it
    NAMESPACE_NOT_FOUND = "namespace_not_found"  # no such namespace
    # The attribute is registered with another type (a type never changes).
    SEARCH_ATTRIBUTE_CONFLICT = "search_attribute_conflict"


class MapApplied(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                 tag="MapApplied", tag_field="type"):
    epoch: int  # the map's epoch after the command (unchanged by an idempotent repeat)


class MapRefused(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                 tag="MapRefused", tag_field="type"):
    code: RefusalCode
    message: str  # for the operator, as is: names the node, group or namespace and the rule


MapResult = MapApplied | MapRefused


class MapAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    request_id: str
    result: MapResult


class ClusterMap(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    cluster_id: str
    shard_count: int
    epoch: int
    members: tuple[Member, ...]  # ordered by (joined_epoch, id)
    removed: tuple[str, ...]  # ids removed for good, oldest first, at most REMOVED_IDS_MAX
    shards: tuple[GroupReplicas, ...]  # index = shard id
    meta: GroupReplicas
    # The last answers by request id, oldest first: a retried command gets its first answer.
    answers: tuple[MapAnswer, ...] = ()
    # Namespaces by name; `default` is implicit (DEFAULT_NAMESPACE_SPEC) until it is updated.
    # The last field, with a default: a map written before namespaces existed still decodes.
    namespaces: tuple[Namespace, ...] = ()

    def member(self, node_id: str) -> Member | None:
        return next((m for m in self.members if m.id == node_id), None)

    def active_ids(self) -> tuple[str, ...]:
        """Active members' ids, ordered by (joined_epoch, id)."""
        return tuple(m.id for m in self.members if m.state == MemberState.ACTIVE)

    def group(self, group: int) -> GroupReplicas:
        assert group == META_GROUP_ID or 0 <= group < self.shard_count, group
        return self.meta if group == META_GROUP_ID else self.shards[group]

    def groups(self) -> dict[int, GroupReplicas]:
        """Every group by id: the meta group first, then the shards in id order."""
        return {META_GROUP_ID: self.meta, **dict(enumerate(self.shards))}

    def groups_holding(self, node_id: str) -> tuple[int, ...]:
        """The groups that list `node_id` as voter (leaving included) or learner."""
        return tuple(g for g, replicas in self.groups().items() if replicas.holds(node_id))

    def moves_in_progress(self) -> int:
        return sum(1 for replicas in self.groups().values() if replicas.moving)

    def namespace(self, name: str) -> Namespace | None:
        """The namespace called `name`, `default` included even when it is implicit."""
        return namespace_in(self.namespaces, name)


# A node of a `--peers` or dev cluster as genesis needs it: (id, http_address, raft_host,
# raft_port), in the order of the cluster configuration.
GenesisNode = tuple[str, str, str, int]


def genesis_map(cluster_id: str, shard_count: int, nodes: Sequence[GenesisNode]) -> ClusterMap:
    """The map every founding node computes identically from its cluster.json.

    Shards are placed by `ring.place_replicas(ids, shard_count, 3)`, exactly as nodes placed
    them before the map existed, so existing data directories stay valid; the meta voters are
    the first META_VOTERS_MAX ids in configuration order. Guarantees: the result depends only on
    the arguments (not on which node computes it).
    """
    ids = [node_id for node_id, _, _, _ in nodes]
    assert ids and len(set(ids)) == len(ids), f"genesis needs distinct node ids, got {ids}"
    assert len(ids) <= NODES_MAX, len(ids)
    placement = place_replicas(ids, shard_count, REPLICATION_FACTOR_MAX)
    members = tuple(
        Member(id=node_id, http_address=http_address, raft_host=raft_host, raft_port=raft_port,
               state=MemberState.ACTIVE, joined_epoch=0)
        for node_id, http_address, raft_host, raft_port in sorted(nodes)
    )
    genesis = ClusterMap(
        cluster_id=cluster_id, shard_count=shard_count, epoch=0, members=members, removed=(),
        shards=tuple(GroupReplicas(voters=placement[shard]) for shard in range(shard_count)),
        meta=GroupReplicas(voters=tuple(ids[:META_VOTERS_MAX])),
    )
    assert len(genesis.shards) == shard_count and not genesis.moves_in_progress()
    return genesis


# --- Codec (msgpack: the meta log and its snapshots) ------------------------------------------

_ENCODER = msgspec.msgpack.Encoder()
_COMMAND_DECODER: msgspec.msgpack.Decoder[MapCommand] = msgspec.msgpack.Decoder(MapCommand)
_MAP_DECODER = msgspec.msgpack.Decoder(ClusterMap)


def encode_map_command(command: MapCommand) -> bytes:
    return _ENCODER.encode(command)


def decode_map_command(data: bytes) -> MapCommand:
    """Raises msgspec.ValidationError (a ValueError) on bytes that are not a map command."""
    return _COMMAND_DECODER.decode(data)


def encode_map(cluster_map: ClusterMap) -> bytes:
    return _ENCODER.encode(cluster_map)


def decode_map(data: bytes) -> ClusterMap:
    """Raises msgspec.ValidationError (a ValueError) on bytes that are not a cluster map."""
    return _MAP_DECODER.decode(data)
