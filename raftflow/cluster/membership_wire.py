"""Bodies and answers of the membership endpoints (join, drain, remove, rebalance, map).

They live beside the cluster map because they carry it; the OpenAPI document is generated from
these structs like every other route's. Request bodies refuse unknown fields (a typo in an
operator's call must not pass silently); answers accept them (a newer server may add one).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from raftflow.cluster.cluster_map import ADDRESS_LENGTH_MAX, ClusterMap
from raftflow.cluster.config import ID_LENGTH_MAX
from raftflow.cluster.placement_plan import PlannedMove

NodeIdField = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH_MAX,
                                          pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
AddressField = Annotated[str, msgspec.Meta(min_length=1, max_length=ADDRESS_LENGTH_MAX)]
ProofField = Annotated[str, msgspec.Meta(min_length=64, max_length=64, pattern=r"^[0-9a-f]+$")]


class JoinRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A node asks to be admitted; `proof` is join_proof.join_proof over the other fields."""

    node_id: NodeIdField
    http_address: AddressField  # "http://host:port", as clients and peers reach it
    raft_address: AddressField  # "host:port" of its Raft listener
    proof: ProofField


class JoinAnswer(msgspec.Struct, frozen=True, kw_only=True):
    cluster_id: str
    shard_count: int
    map: ClusterMap  # the map with the new member in it (state "joining")


class MembershipAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A membership command applied (or already applied: repeated commands change nothing)."""

    node_id: str
    epoch: int


class RebalancePlan(msgspec.Struct, frozen=True, kw_only=True):
    epoch: int
    moves_in_progress: int
    planned: list[PlannedMove]  # moves the rebalancer starts next (at most the concurrency bound)
    started: bool  # whether this call started them (false for a dry run)
