"""Membership endpoints: the cluster map, join, drain, remove, rebalance.

Every change is a command to the meta group (cluster/map_machine.py), so it runs on the meta
group's leader: a node that does not lead it forwards the call there in one hop, exactly as the
gateway forwards a shard's call to the shard's leader (routing.py). The map's refusals come back
as 4xx with the machine's own message, which names the node and the rule.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec
from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.api.errors import error_for_code
from raftflow.api.routing import FORWARDED_HEADER, Relayed
from raftflow.api.validation import check_path_id, decode_body
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.cluster.cluster_map import (
    META_GROUP_ID,
    AdmitMember,
    ClusterMap,
    DrainMember,
    MapApplied,
    MapCommand,
    MapRefused,
    RefusalCode,
    RemoveMember,
)
from raftflow.cluster.join_proof import proof_matches
from raftflow.cluster.map_replica import MapReplica
from raftflow.cluster.membership_wire import (
    JoinAnswer,
    JoinRequest,
    MembershipAnswer,
    RebalancePlan,
)
from raftflow.cluster.placement_plan import next_moves
from raftflow.protocol.errors import ErrorCode, RaftflowError

log = logging.getLogger(__name__)

_REFUSAL_CODES = {
    RefusalCode.INVALID: ErrorCode.INVALID_ARGUMENT,
    RefusalCode.NOT_FOUND: ErrorCode.NOT_FOUND,
    RefusalCode.CONFLICT: ErrorCode.FAILED_PRECONDITION,
    RefusalCode.UNSAFE: ErrorCode.FAILED_PRECONDITION,
    RefusalCode.NAMESPACE_EXISTS: ErrorCode.NAMESPACE_ALREADY_EXISTS,
    RefusalCode.NAMESPACE_NOT_FOUND: ErrorCode.NAMESPACE_NOT_FOUND,
    RefusalCode.SEARCH_ATTRIBUTE_CONFLICT: ErrorCode.SEARCH_ATTRIBUTE_CONFLICT,
}
assert set(_REFUSAL_CODES) == set(RefusalCode)


class MembershipNode(Protocol):
    """What the membership endpoints need of the node runtime."""

    @property
    def node_id(self) -> str: ...

    @property
    def cluster_secret(self) -> str: ...

    @property
    def cluster_map(self) -> ClusterMap: ...

    @property
    def map_replica(self) -> MapReplica | None: ...

    def meta_leader(self) -> str | None: ...

    def http_address(self, node_id: str) -> str | None: ...


MEMBERSHIP_KEY: web.AppKey[MembershipNode] = web.AppKey("membership", MembershipNode)


def json_answer(body: msgspec.Struct, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status,
                        content_type="application/json")


async def cluster_map(request: web.Request) -> web.StreamResponse:
    """The map this node follows (other nodes fetch it from here when it is newer than theirs)."""
    return json_answer(request.app[MEMBERSHIP_KEY].cluster_map)


async def on_meta_leader(request: web.Request,
                         run: Callable[[MapReplica], Awaitable[web.StreamResponse]], *,
                         path_qs: str | None = None) -> web.StreamResponse:
    """`run` on this node's meta replica if it leads the meta group, else the call relayed to
    the leader (at `path_qs` if given: a route of its own, with this call's method and body)."""
    node = request.app[MEMBERSHIP_KEY]
    replica = node.map_replica
    if replica is not None and replica.is_leader() and replica.map is not None:
        return await run(replica)
    if request.headers.get(FORWARDED_HEADER):
        raise NotLeaderError(META_GROUP_ID, "forwarded call reached a non-leader")
    leader = node.meta_leader()
    address = None if leader is None else node.http_address(leader)
    if leader is None or leader == node.node_id or address is None:
        raise NotLeaderError(META_GROUP_ID, "no leader of the cluster map known yet")
    relayed: Relayed = await request.app[GATEWAY_KEY].relay(request, address, path_qs=path_qs)
    return web.Response(status=relayed.status, body=relayed.body, headers=relayed.headers)


async def execute_map_command(replica: MapReplica, command: MapCommand) -> int:
    """Run `command` on the map; its epoch after, or the refusal as a 4xx error."""
    result = await replica.execute(command)
    if isinstance(result, MapRefused):
        raise error_for_code(_REFUSAL_CODES[result.code], result.message)
    assert isinstance(result, MapApplied)
    return result.epoch


async def join(request: web.Request) -> web.StreamResponse:
    node = request.app[MEMBERSHIP_KEY]
    body = decode_body(await request.read(), JoinRequest)
    if not proof_matches(node.cluster_secret, body.proof, body.node_id, body.http_address,
                         body.raft_address):
        log.warning("refused a join request from %s (node id %r): its proof was not made "
                    "with this cluster's secret", request.remote, body.node_id)
        raise RaftflowError(ErrorCode.PERMISSION_DENIED,
                            "the join proof does not match this cluster's secret", "proof")
    raft_host, sep, raft_port = body.raft_address.rpartition(":")
    if not (sep and raft_host and raft_port.isdigit() and 1 <= int(raft_port) <= 65535):
        raise error_for_code(ErrorCode.INVALID_ARGUMENT,
                             "raft_address must look like host:port", "raft_address")
    if not body.http_address.startswith(("http://", "https://")):
        raise error_for_code(ErrorCode.INVALID_ARGUMENT,
                             "http_address must start with http:// or https://", "http_address")

    async def admit(replica: MapReplica) -> web.StreamResponse:
        # The same join (same node, addresses and proof) carries the same request id, so a
        # retry after a lost answer gets the first answer.
        command = AdmitMember(request_id=f"join:{body.node_id}:{body.proof[:32]}",
                              node_id=body.node_id, http_address=body.http_address,
                              raft_host=raft_host.strip("[]"), raft_port=int(raft_port))
        await execute_map_command(replica, command)
        current = replica.map
        assert current is not None
        log.info("admitted node %s (%s) at map epoch %d", body.node_id, body.http_address,
                 current.epoch)
        return json_answer(JoinAnswer(cluster_id=current.cluster_id, shard_count=current.shard_count,
                                map=current))

    return await on_meta_leader(request, admit)


async def drain_node(request: web.Request) -> web.StreamResponse:
    node_id = check_path_id("node_id", request.match_info["node_id"])

    async def drain(replica: MapReplica) -> web.StreamResponse:
        epoch = await execute_map_command(replica, DrainMember(request_id=uuid.uuid4().hex,
                                                    node_id=node_id))
        return json_answer(MembershipAnswer(node_id=node_id, epoch=epoch))

    return await on_meta_leader(request, drain)


async def remove_node(request: web.Request) -> web.StreamResponse:
    node_id = check_path_id("node_id", request.match_info["node_id"])
    force = _flag(request, "force")

    async def remove(replica: MapReplica) -> web.StreamResponse:
        epoch = await execute_map_command(replica, RemoveMember(request_id=uuid.uuid4().hex,
                                                     node_id=node_id, force=force))
        return json_answer(MembershipAnswer(node_id=node_id, epoch=epoch))

    return await on_meta_leader(request, remove)


async def rebalance(request: web.Request) -> web.StreamResponse:
    dry_run = _flag(request, "dry_run")

    async def plan(replica: MapReplica) -> web.StreamResponse:
        current = replica.map
        assert current is not None
        planned = next_moves(current)
        if not dry_run:
            for move in planned:
                await execute_map_command(replica, move.start_move(uuid.uuid4().hex))
        after = replica.map
        assert after is not None
        return json_answer(RebalancePlan(epoch=after.epoch, moves_in_progress=after.moves_in_progress(),
                                   planned=planned, started=not dry_run))

    return await on_meta_leader(request, plan)


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise error_for_code(ErrorCode.INVALID_ARGUMENT, f"{name} must be true or false", name)
    return raw in ("true", "1")
