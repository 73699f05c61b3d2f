"""Whether a peer node's HTTP server still answers, asked while a call forwarded there waits.

A forwarded call may legitimately wait long (a commit under load, up to the actors' proposal
timeout; a workflow's result), so the time to its answer says nothing by itself. But a call
forwarded over a dead or blackholed link waits just as long for an answer that never comes:
the link accepts the connection, takes the request and never gives a byte back, and the
caller used to wait out the whole forward timeout (75 s) or its own (the SDK's 30 s).

So while a forwarded call has no answer after PEER_SILENCE_S, the gateway asks the peer
itself: `GET /healthz` on a fresh connection, through the same link (a chaos proxy's link
included), bounded by PEER_PROBE_TIMEOUT_S. A peer that answers anything is alive and the call
keeps waiting; one that does not is silent, and the call fails over (routing.py). One probe per
peer is in flight at a time, shared by every call waiting on that peer, and a peer heard from
within PEER_HEARD_FRESH_S (any relayed answer counts) is not probed at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from ssl import SSLContext
from typing import Any, TypeVar

import aiohttp

log = logging.getLogger(__name__)

T = TypeVar("T")

# A forwarded call with no answer for this long gets its peer checked. Most forwarded calls
# answer within a commit (milliseconds); checking sooner would probe healthy peers for nothing.
PEER_SILENCE_S = 1.0
# A peer heard from this recently counts as alive without a probe.
PEER_HEARD_FRESH_S = 1.0
# A live node answers /healthz from its event loop at once; GC pauses (<0.3 s, DESIGN §9) and
# a loaded loop fit well inside this. Silence for this long means the peer cannot be reached.
PEER_PROBE_TIMEOUT_S = 2.0
# Probes in flight at once (one per peer at most, so this bounds the peers probed together).
PROBE_CONNECTIONS_MAX = 16
PROBE_PATH = "/healthz"

assert PEER_SILENCE_S + PEER_HEARD_FRESH_S + PEER_PROBE_TIMEOUT_S <= 5.0, \
    "a silent peer must cost a forwarded call a few seconds at most (issue 12, item 6)"


class PeerSilentError(Exception):
    """The peer did not answer a probe within PEER_PROBE_TIMEOUT_S."""

    def __init__(self, address: str) -> None:
        super().__init__(f"node at {address} does not answer")
        self.address = address


class PeerLiveness:
    """Probes of peer nodes' HTTP servers, shared by every call waiting on the same peer.

    Probes go over their own connections (never a pooled one, which a blackholed link would
    keep open, and never queued behind the calls that wait on the same pool)."""

    def __init__(self, ssl: SSLContext | bool = True) -> None:
        self._ssl = ssl  # the node's client context when nodes serve HTTPS
        self._heard_at: dict[str, float] = {}  # address -> monotonic time of its last answer
        self._probes: dict[str, asyncio.Task[bool]] = {}
        self._session: aiohttp.ClientSession | None = None

    def heard_from(self, address: str) -> None:
        """`address` answered something just now."""
        self._heard_at[address] = time.monotonic()

    async def await_answer(self, address: str, exchange: asyncio.Future[T]) -> T:
        """`exchange`'s outcome (a call forwarded to `address`), unless `address` stops
        answering first. Does not cancel `exchange`: the caller owns it.

        Raises:
            PeerSilentError: no answer from `address` to a probe while `exchange` waited.
        """
        while True:
            done, _ = await asyncio.wait({exchange}, timeout=PEER_SILENCE_S)
            if done:
                return exchange.result()
            if time.monotonic() - self._heard_at.get(address, -PEER_HEARD_FRESH_S) \
                    < PEER_HEARD_FRESH_S:
                continue
            probe = self._probe(address)
            either: set[asyncio.Future[Any]] = {exchange, probe}
            done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if exchange in done:
                return exchange.result()
            if not probe.result():
                raise PeerSilentError(address)

    async def close(self) -> None:
        probes = list(self._probes.values())
        for probe in probes:
            probe.cancel()
        for probe in probes:
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        if self._session is not None:
            await self._session.close()

    def _probe(self, address: str) -> asyncio.Task[bool]:
        probe = self._probes.get(address)
        if probe is None:
            probe = asyncio.get_running_loop().create_task(self._ask(address))
            self._probes[address] = probe
            probe.add_done_callback(self._forget)
        return probe

    def _forget(self, probe: asyncio.Task[bool]) -> None:
        for address, known in list(self._probes.items()):
            if known is probe:
                del self._probes[address]

    async def _ask(self, address: str) -> bool:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=PROBE_CONNECTIONS_MAX, force_close=True,
                                             ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector)
        try:
            async with self._session.get(
                address + PROBE_PATH, timeout=aiohttp.ClientTimeout(total=PEER_PROBE_TIMEOUT_S),
            ) as answer:
                await answer.read()
        except (TimeoutError, aiohttp.ClientError) as error:
            log.warning("peer at %s does not answer (%s): failing over", address,
                        type(error).__name__)
            return False
        self.heard_from(address)
        return True
