"""A stream's grants on the node (api/task_stream_handler.py), without a cluster.

Goal: a grant whose poll comes back empty at once (the matcher parks at most
POLLERS_PER_QUEUE_MAX polls per queue and answers more at once) polls again at most every
GRANT_POLL_S_MIN, never in a loop that starves the node; grants beyond GRANTS_OUTSTANDING_MAX
are refused (the handler then closes the stream).
Method: a StreamSession over stand-ins for the socket, the gateway and the poller; the poller
answers every poll empty at once and counts them.
"""

from __future__ import annotations

import asyncio

from raftflow.api.poll_types import PolledTask, Poller
from raftflow.api.task_stream_handler import GRANT_POLL_S_MIN, StreamPeer, StreamSession
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.task_stream import GRANTS_OUTSTANDING_MAX, Grant


class _EmptyPoller:
    """Every poll answers nothing at once, as a full matcher does."""

    def __init__(self) -> None:
        self.polls = 0

    async def poll_local(self, *_args: object) -> PolledTask | None:
        self.polls += 1
        await asyncio.sleep(0)  # yields, so a spinning grant shows as a count, not a hang
        return None

    poll_cluster = poll_local


class _Directory:
    node_id = "n1"

    def public_address(self, node_id: str) -> str:
        return f"http://{node_id}"


class _Gateway:
    directory = _Directory()


def _session(poller: _EmptyPoller) -> StreamSession:
    peer = StreamPeer(namespace="default", task_queue="q", worker=Poller(identity="w"),
                      principal=None, forward_headers={})
    return StreamSession(None, _Gateway(), poller, peer)  # type: ignore[arg-type]


def test_an_empty_poll_is_not_repeated_at_once() -> None:
    poller = _EmptyPoller()
    watched_s = 1.2

    async def main() -> None:
        session = _session(poller)
        assert session._grant(Grant(kind=TaskKind.ACTIVITY, count=2))
        assert session._grant(Grant(kind=TaskKind.WORKFLOW, count=1, anywhere=True))
        await asyncio.sleep(watched_s)
        for polls in session._polls.values():
            for poll in polls:
                poll.cancel()
            await asyncio.gather(*polls, return_exceptions=True)

    asyncio.run(main())
    # Three grants, each polling at most once per GRANT_POLL_S_MIN (and at once at first).
    assert 3 <= poller.polls <= 3 * (int(watched_s / GRANT_POLL_S_MIN) + 1), poller.polls


def test_grants_beyond_the_bound_are_refused() -> None:
    poller = _EmptyPoller()

    async def main() -> None:
        session = _session(poller)
        assert session._grant(Grant(kind=TaskKind.ACTIVITY, count=GRANTS_OUTSTANDING_MAX))
        assert not session._grant(Grant(kind=TaskKind.ACTIVITY, count=1))
        assert session._grant(Grant(kind=TaskKind.WORKFLOW, count=1))  # per kind
        for polls in session._polls.values():
            for poll in polls:
                poll.cancel()
            await asyncio.gather(*polls, return_exceptions=True)

    asyncio.run(main())
