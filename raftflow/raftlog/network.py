"""The node's peer network: one authenticated TCP connection per peer, shared by all groups.

pysyncobj's own transport opens a port, a poller and (with autoTick) a thread per group, binds
0.0.0.0 unless told otherwise and speaks pickle to anyone who connects (DESIGN §8). Here one
listener per node, bound to the configured address only, carries every group's messages as
msgpack frames `[group, message]`; nothing is unpickled from the wire.

Authentication: on accept the listener sends a random 16-byte nonce; the dialer must answer
`[node_id, HMAC-SHA256(secret, nonce | node_id)]` for a node id in the cluster map, or the
connection is closed before a single frame is read; on success it answers one byte, and
only then does the dialer mark the peer up. A node sends on its own outgoing connection
to each peer and only receives on accepted ones, so each direction is authenticated.

TLS (optional, `PeerTls`): with a cluster CA both ends of every link show a certificate that
CA signed (mutual TLS), so the links are encrypted and only the cluster's nodes complete a
handshake; the HMAC exchange above still runs inside, so the cluster secret stays the check of
who is a member. Peer certificates are not matched to host names: peers are dialled by the
address the cluster map gives, and the CA is the cluster's own.

Peers change at run time (`add_peer`, `remove_peer`): a removed peer's connections, both
directions, are closed at once and its later connections are refused like any unknown id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import msgpack

from raftflow.raftlog import limits

log = logging.getLogger(__name__)

_NONCE_BYTES = 16
_AUTH_OK = b"\x01"

@dataclass(frozen=True, slots=True)
class PeerTls:
    """The TLS contexts of a node's peer links: accepting and dialling."""

    server: ssl.SSLContext
    client: ssl.SSLContext


FrameHandler = Callable[[str, int, dict[str, Any]], None]
PeerHandler = Callable[[str, bool], None]


def _mac(secret: bytes, nonce: bytes, node_id: str) -> bytes:
    return hmac.new(secret, nonce + node_id.encode(), hashlib.sha256).digest()


class _Inbound(asyncio.Protocol):
    """An accepted connection: authenticate the dialer, then decode frames."""

    def __init__(self, network: PeerNetwork) -> None:
        self._network = network
        self._unpacker = msgpack.Unpacker(raw=False, max_buffer_size=limits.FRAME_BYTES_MAX)
        self._nonce = os.urandom(_NONCE_BYTES)
        self._peer: str | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they do implement it.
        self._transport = cast(asyncio.Transport, transport)
        self._network.inbound.add(self._transport)
        self._transport.write(self._nonce)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._network.inbound.discard(self._transport)
            self._network.inbound_peers.pop(self._transport, None)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        if self._peer is not None and not self._network.knows(self._peer):
            self._transport.close()  # removed while connected: nothing more from it
            return
        try:
            self._unpacker.feed(data)
            for frame in self._unpacker:
                if self._peer is None:
                    self._peer = self._network.authenticate(self._nonce, frame)
                    if self._peer is None:
                        self._transport.close()
                        return
                    self._network.inbound_peers[self._transport] = self._peer
                    self._transport.write(_AUTH_OK)
                    continue
                group, message = frame
                self._network.deliver(self._peer, group, message)
        except (msgpack.UnpackException, ValueError, TypeError) as error:
            log.warning("closing peer connection from %s: bad frame (%s)", self._peer, error)
            self._transport.close()


class _Outbound(asyncio.Protocol):
    """A connection we dialed to one peer: read the nonce, authenticate, then only write."""

    def __init__(self, network: PeerNetwork, peer: str) -> None:
        self._network = network
        self._peer = peer
        self._received = b""
        self.transport: asyncio.Transport | None = None
        self.authenticated = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.authenticated:
            return  # the listener never sends after the nonce
        already = len(self._received)
        self._received += data
        if already < _NONCE_BYTES <= len(self._received):
            self.transport.write(self._network.auth_frame(self._received[:_NONCE_BYTES]))
        if len(self._received) > _NONCE_BYTES:
            # The listener acknowledged our credentials: only now may groups send to this peer.
            assert self._received[_NONCE_BYTES:_NONCE_BYTES + 1] == _AUTH_OK
            self.authenticated = True
            self._network.on_outbound_ready(self._peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class PeerNetwork:
    """Sends and receives Raft messages for every group of this node."""

    def __init__(
        self,
        *,
        node_id: str,
        listen: tuple[str, int],
        peers: dict[str, tuple[str, int]],
        secret: bytes,
        on_frame: FrameHandler,
        on_peer: PeerHandler,
        tls: PeerTls | None = None,
    ) -> None:
        assert node_id not in peers
        self._tls = tls
        self._node_id = node_id
        self._listen = listen
        self._peers = dict(peers)
        self._secret = secret
        self._on_frame = on_frame
        self._on_peer = on_peer
        self._out: dict[str, _Outbound] = {}
        self._server: asyncio.Server | None = None
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._packer = msgpack.Packer(use_bin_type=True)
        self.inbound: set[asyncio.Transport] = set()
        self.inbound_peers: dict[asyncio.Transport, str] = {}  # authenticated inbound only

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self._listen
        self._server = await loop.create_server(
            lambda: _Inbound(self), host, port,
            ssl=None if self._tls is None else self._tls.server)
        for peer in self._peers:
            self._start_dialer(peer)

    async def stop(self) -> None:
        for task in self._dialers.values():
            task.cancel()
        for task in self._dialers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dialers.clear()
        for out in self._out.values():
            if out.transport is not None:
                out.transport.close()
        if self._server is not None:
            self._server.close()
        for transport in list(self.inbound):
            transport.close()  # Server.close() leaves accepted connections open
        if self._server is not None:
            await self._server.wait_closed()

    def add_peer(self, peer: str, address: tuple[str, int]) -> None:
        if peer == self._node_id or self._peers.get(peer) == address:
            return
        self._peers[peer] = address
        self._start_dialer(peer)

    def remove_peer(self, peer: str) -> None:
        """Forget `peer`: close its connections both ways and refuse it from now on."""
        if self._peers.pop(peer, None) is None:
            return
        dialer = self._dialers.pop(peer, None)
        if dialer is not None:
            dialer.cancel()
        out = self._out.pop(peer, None)
        if out is not None:
            if out.transport is not None:
                out.transport.close()
            if out.authenticated:
                self._on_peer(peer, False)
        for transport, inbound_peer in list(self.inbound_peers.items()):
            if inbound_peer == peer:
                transport.close()

    def knows(self, peer: str) -> bool:
        return peer in self._peers

    def is_up(self, peer: str) -> bool:
        out = self._out.get(peer)
        return out is not None and out.authenticated

    def send_batch(self, peer: str, frames: list[tuple[int, dict[str, Any]]]) -> None:
        """Write frames to a peer, or drop them if it is down or backed up (Raft resends)."""
        out = self._out.get(peer)
        if out is None or not out.authenticated or out.transport is None:
            return
        if out.transport.is_closing():
            # Lost, but its dialer has not run its cleanup yet: uvloop raises on such a write,
            # and the raise once killed the WAL round loop (a replica that never acked again).
            return
        if out.transport.get_write_buffer_size() > limits.PEER_SEND_BUFFER_BYTES_MAX:
            return
        pack = self._packer.pack
        out.transport.write(b"".join(pack([group, message]) for group, message in frames))

    # -- called by the protocols ---------------------------------------------------------------

    def authenticate(self, nonce: bytes, frame: object) -> str | None:
        if not (isinstance(frame, list) and len(frame) == 2):
            return None
        node_id, mac = frame
        if not isinstance(node_id, str) or not isinstance(mac, bytes) or node_id not in self._peers:
            log.warning("rejected a peer connection: unknown node id %r", node_id)
            return None
        if not hmac.compare_digest(mac, _mac(self._secret, nonce, node_id)):
            log.warning("rejected a peer connection from %r: bad cluster secret", node_id)
            return None
        return node_id

    def auth_frame(self, nonce: bytes) -> bytes:
        return bytes(self._packer.pack([self._node_id, _mac(self._secret, nonce, self._node_id)]))

    def deliver(self, peer: str, group: int, message: dict[str, Any]) -> None:
        self._on_frame(peer, group, message)

    def on_outbound_ready(self, peer: str) -> None:
        self._on_peer(peer, True)

    # -- dialing -------------------------------------------------------------------------------

    def _start_dialer(self, peer: str) -> None:
        old = self._dialers.pop(peer, None)
        if old is not None:
            old.cancel()
        self._dialers[peer] = asyncio.get_running_loop().create_task(self._dial_forever(peer))

    async def _dial_forever(self, peer: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            host, port = self._peers[peer]
            try:
                _, protocol = await loop.create_connection(
                    lambda: _Outbound(self, peer), host, port,
                    ssl=None if self._tls is None else self._tls.client)
            except OSError:
                await asyncio.sleep(limits.PEER_RECONNECT_S)
                continue
            self._out[peer] = protocol
            try:
                await protocol.closed
            finally:
                if protocol.transport is not None:
                    protocol.transport.close()
                # remove_peer (or a new dialer) may have taken the slot and reported it down.
                if self._out.get(peer) is protocol:
                    del self._out[peer]
                    if protocol.authenticated:
                        self._on_peer(peer, False)
            await asyncio.sleep(limits.PEER_RECONNECT_S)
