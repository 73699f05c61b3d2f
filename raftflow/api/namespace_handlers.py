"""Namespace endpoints: create, describe, list, update, register a search attribute, and one
shard's copy of the settings.

Theory of operation. A namespace lives in the cluster map (cluster/namespace_specs.py), so a
create, an update or a search attribute registration is a command to the meta group and runs
on its leader (forwarded there in one hop, like every membership call). Before it answers, the
leader hands the new settings to every shard (`ConfigureNamespace`, through each shard's
leader): a workflow started after the answer closes with the namespace's retention and may
carry the attribute. An update of only the description or the rate limits, which shards do not
hold, answers once the map has it. A shard that cannot be reached makes the call a 503; the map keeps the change, a retry (same settings: idempotent) hands it out again, and each
node also hands the map's settings to the shards it leads whenever their copy differs
(node/namespace_sync.py). Reads run on the meta leader, so they see every acknowledged change.

Calls under `/api/v1/namespaces/{namespace}/...` on a namespace the map does not hold are
answered 404 `namespace_not_found` by `namespace_middleware`, before any handler runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from raftflow.api import validation as v
from raftflow.api.membership_handlers import execute_map_command, json_answer, on_meta_leader
from raftflow.api.routing import FORWARDED_HEADER, Relayed
from raftflow.api.workflow_handlers import GATEWAY_KEY, acked
from raftflow.cluster.cluster_map import ClusterMap
from raftflow.cluster.map_replica import MapReplica
from raftflow.cluster.namespace_specs import (
    AddSearchAttribute,
    CreateNamespace,
    Namespace,
    UpdateNamespace,
    all_namespaces,
    namespace_in,
)
from raftflow.protocol.commands import ConfigureNamespace
from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.protocol.namespaces import (
    AddSearchAttributeRequest,
    CreateNamespaceRequest,
    NamespaceInfo,
    NamespaceList,
    UpdateNamespaceRequest,
)
from raftflow.shards.actor import ShardActor
from raftflow.shards.core.limits import DEFAULT_RETENTION_MS

NAMESPACES = "/api/v1/namespaces"
NAMESPACE = NAMESPACES + "/{namespace}"
SEARCH_ATTRIBUTES = NAMESPACE + "/search-attributes"
SHARD_CONFIGURE = NAMESPACE + "/shards/{shard}/configure"  # internal: one shard's copy
NAMESPACE_KNOWN = NAMESPACE + "/known"  # internal: does the map's leader have it

# How long a node waits for its map to reach the epoch of a change (the meta leader committed
# it; a follower's replica applies it a heartbeat later).
MAP_WAIT_S = 2.0
_MAP_POLL_S = 0.02
# How long a create or update keeps handing the settings to a shard whose leader is changing
# before it answers 503 (the change stays in the map; node/namespace_sync.py finishes it).
HAND_OUT_S = 10.0
_HAND_OUT_PAUSE_S = 0.1
_RETRIED = (ErrorCode.NOT_LEADER, ErrorCode.TIMEOUT, ErrorCode.OVERLOADED)


class MapFollower(Protocol):
    """What these endpoints need of the node: the map it follows."""

    @property
    def cluster_map(self) -> ClusterMap: ...


FOLLOWER_KEY: web.AppKey[MapFollower] = web.AppKey("map_follower", MapFollower)


def _info(namespace: Namespace) -> NamespaceInfo:
    return NamespaceInfo(name=namespace.name, retention_ms=namespace.retention_ms,
                         description=namespace.description,
                         search_attributes=dict(namespace.search_attributes),
                         start_rate_per_s=namespace.start_rate_per_s,
                         poll_rate_per_s=namespace.poll_rate_per_s)


def _not_found(name: str) -> RaftflowError:
    return RaftflowError(ErrorCode.NAMESPACE_NOT_FOUND, f"namespace {name} not found",
                         "namespace")


async def list_namespaces(request: web.Request) -> web.StreamResponse:
    async def read(replica: MapReplica) -> web.StreamResponse:
        current = replica.map
        assert current is not None
        return json_answer(NamespaceList(
            namespaces=tuple(_info(n) for n in all_namespaces(current.namespaces))))

    return await on_meta_leader(request, read)


async def describe_namespace(request: web.Request) -> web.StreamResponse:
    name = v.check_path_id("namespace", request.match_info["namespace"])

    async def read(replica: MapReplica) -> web.StreamResponse:
        current = replica.map
        assert current is not None
        found = namespace_in(current.namespaces, name)
        if found is None:
            raise _not_found(name)
        return json_answer(_info(found))

    return await on_meta_leader(request, read)


async def create_namespace(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), CreateNamespaceRequest)
    if "\n" in body.name:
        raise RaftflowError(ErrorCode.INVALID_ARGUMENT, "name: letters, digits, '.', '_' and "
                            "'-' only, starting with a letter or digit", "name")
    retention_ms = DEFAULT_RETENTION_MS if body.retention_ms is None else body.retention_ms

    async def create(replica: MapReplica) -> web.StreamResponse:
        before = replica.map
        assert before is not None
        existed = namespace_in(before.namespaces, body.name) is not None
        epoch = await execute_map_command(replica, CreateNamespace(
            request_id=uuid.uuid4().hex, name=body.name, retention_ms=retention_ms,
            description=body.description, start_rate_per_s=body.start_rate_per_s,
            poll_rate_per_s=body.poll_rate_per_s))
        created = await _hand_to_shards(request, replica, body.name, epoch)
        return json_answer(_info(created), status=200 if existed else 201)

    return await on_meta_leader(request, create)


async def update_namespace(request: web.Request) -> web.StreamResponse:
    name = v.check_path_id("namespace", request.match_info["namespace"])
    body = v.decode_body(await request.read(), UpdateNamespaceRequest)

    async def update(replica: MapReplica) -> web.StreamResponse:
        epoch = await execute_map_command(replica, UpdateNamespace(
            request_id=uuid.uuid4().hex, name=name, retention_ms=body.retention_ms,
            description=body.description, start_rate_per_s=body.start_rate_per_s,
            poll_rate_per_s=body.poll_rate_per_s))
        if body.retention_ms is None:
            # Shards hold only the retention and the attribute registry (ConfigureNamespace):
            # a description or a rate lives in the map alone, so no shard is written.
            return json_answer(_info(_in_map(replica, name, epoch)))
        return json_answer(_info(await _hand_to_shards(request, replica, name, epoch)))

    return await on_meta_leader(request, update)


async def add_search_attribute(request: web.Request) -> web.StreamResponse:
    """Register a search attribute; answers the namespace once every shard has it."""
    name = v.check_path_id("namespace", request.match_info["namespace"])
    body = v.decode_body(await request.read(), AddSearchAttributeRequest)

    async def add(replica: MapReplica) -> web.StreamResponse:
        epoch = await execute_map_command(replica, AddSearchAttribute(
            request_id=uuid.uuid4().hex, namespace=name, name=body.name,
            attribute_type=body.type))
        return json_answer(_info(await _hand_to_shards(request, replica, name, epoch)))

    return await on_meta_leader(request, add)


def _in_map(replica: MapReplica, name: str, epoch: int) -> Namespace:
    """The namespace in the leader's map, which has applied the change of `epoch`."""
    current = replica.map
    assert current is not None and current.epoch >= epoch
    found = namespace_in(current.namespaces, name)
    assert found is not None, name
    return found


async def _hand_to_shards(request: web.Request, replica: MapReplica, name: str,
                          epoch: int) -> Namespace:
    """Give every shard the namespace's settings as of map epoch `epoch` (or later)."""
    current = replica.map
    assert current is not None
    found = _in_map(replica, name, epoch)
    gateway = request.app[GATEWAY_KEY]

    async def one(shard: int) -> None:
        path_qs = (f"{NAMESPACES}/{quote(name, safe='')}/shards/{shard}/configure"
                   f"?epoch={epoch}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HAND_OUT_S
        while True:
            # Idempotent (a set of settings), so a hand-out that met a leader change is
            # simply sent again, to whichever node leads the shard by then.
            try:
                answer = await gateway.on_leader(request, shard, _configure(request, name, epoch),
                                                 path_qs=path_qs)
                status = answer.status if isinstance(answer, Relayed) else 200
            except RaftflowError as error:
                if error.code not in _RETRIED or loop.time() >= deadline:
                    raise
                status = 503
            if status == 200:
                return
            if status not in (503, 504) or loop.time() >= deadline:
                raise RaftflowError(ErrorCode.NOT_LEADER, f"namespace {name} is in the cluster "
                                    f"map but shard {shard} did not take it yet (HTTP {status}); "
                                    "retry the same call")
            await asyncio.sleep(_HAND_OUT_PAUSE_S)

    await asyncio.gather(*(one(shard) for shard in range(current.shard_count)))
    return found


def _configure(request: web.Request, name: str,
               epoch: int) -> Callable[[ShardActor], Awaitable[None]]:
    follower = request.app[FOLLOWER_KEY]
    gateway = request.app[GATEWAY_KEY]

    async def work(actor: ShardActor) -> None:
        current = await _map_at(follower, epoch)
        found = namespace_in(current.namespaces, name)
        if found is None:
            raise _not_found(name)
        acked(await actor.execute(ConfigureNamespace(
            now_ms=gateway.now_ms(), namespace=name, retention_ms=found.retention_ms,
            search_attributes=dict(found.search_attributes))))

    return work


async def configure_shard(request: web.Request) -> web.StreamResponse:
    """Internal: hand one shard the namespace's settings of map epoch >= `epoch`."""
    name = v.check_path_id("namespace", request.match_info["namespace"])
    gateway = request.app[GATEWAY_KEY]
    shard = v.parse_query_int("shard", request.match_info["shard"], default=0, minimum=0,
                              maximum=gateway.directory.shard_count - 1)
    epoch = v.parse_query_int("epoch", request.query.get("epoch"), default=0, minimum=0,
                              maximum=2**62)
    answer = await gateway.on_leader(request, shard, _configure(request, name, epoch))
    if isinstance(answer, Relayed):
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    return web.json_response({})


async def _map_at(follower: MapFollower, epoch: int) -> ClusterMap:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAP_WAIT_S
    while follower.cluster_map.epoch < epoch:
        if loop.time() >= deadline:
            raise RaftflowError(ErrorCode.NOT_LEADER, f"this node's cluster map is behind "
                                f"epoch {epoch}; retry")
        await asyncio.sleep(_MAP_POLL_S)
    return follower.cluster_map


async def namespace_known(request: web.Request) -> web.StreamResponse:
    """Internal: 200 if the cluster map's leader has the namespace, else 404 (any method: the
    middleware relays the call it checks, whatever its method, to this route)."""
    name = v.check_path_id("namespace", request.match_info["namespace"])
    return await on_meta_leader(request, _leader_knows(name))


@web.middleware
async def namespace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """404 `namespace_not_found` for a call under a namespace the cluster does not have.

    This node's map answers at once when it has the namespace. A miss may be a namespace
    created a moment ago that this node's map has not reached yet, so a miss is confirmed by
    the map's leader (one hop): an acknowledged create is never answered 404."""
    name = request.match_info.get("namespace")
    route = request.match_info.route.resource
    canonical = route.canonical if route is not None else ""
    if (name is None or canonical in (NAMESPACE, SHARD_CONFIGURE, NAMESPACE_KNOWN)
            or request.headers.get(FORWARDED_HEADER)):
        return await handler(request)  # a forwarded call was checked by the node it came to
    v.check_path_id("namespace", name)  # a malformed name is a 400 naming the field
    if request.app[FOLLOWER_KEY].cluster_map.namespace(name) is None:
        known = await on_meta_leader(request, _leader_knows(name),
                                     path_qs=f"{NAMESPACES}/{quote(name, safe='')}/known")
        if known.status != 200:
            return known
    return await handler(request)


def _leader_knows(name: str) -> Callable[[MapReplica], Awaitable[web.StreamResponse]]:
    async def check(replica: MapReplica) -> web.StreamResponse:
        current = replica.map
        assert current is not None
        if current.namespace(name) is None:
            raise _not_found(name)
        return web.json_response({})
    return check
