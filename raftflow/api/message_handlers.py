"""Internal route of the outbox: a source shard's courier delivers messages to this node's
shard (api/message_courier.py tells the whole trip)."""

from __future__ import annotations

from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.api import validation as v
from raftflow.api.answers import respond
from raftflow.api.errors import InvalidArgumentError
from raftflow.api.message_courier import DELIVER_BODY_BYTES_MAX
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.protocol.http_bodies import DeliverMessagesRequest
from raftflow.protocol.messages import DeliverMessages
from raftflow.protocol.results import MessagesDelivered


async def deliver_messages(request: web.Request) -> web.StreamResponse:
    """Apply messages to the shard the path names, if this node leads it. Never forwarded: the
    courier asks the leader it knows again (503 not_leader otherwise). 200: one outcome per
    message, in order; every message is idempotent by its id."""
    gateway = request.app[GATEWAY_KEY]
    try:
        shard = int(request.match_info["shard"])
    except ValueError:
        raise InvalidArgumentError("shard must be an integer", field="shard") from None
    if not 0 <= shard < gateway.directory.shard_count:
        raise InvalidArgumentError(f"no shard {shard}", field="shard")
    body = v.decode_body(await request.read(), DeliverMessagesRequest,
                         body_bytes_max=DELIVER_BODY_BYTES_MAX)
    actor = gateway.directory.actor(shard)
    if actor is None or not actor.is_leader():
        raise NotLeaderError(shard, "messages are delivered on the shard's leader only")
    result = await actor.execute(DeliverMessages(now_ms=gateway.directory.now_ms(),
                                                 entries=body.entries))
    assert isinstance(result, MessagesDelivered), result
    return respond(result)
