"""What docs/api.md tells every client, for the integration tests' raw HTTP calls: a 503
(`not_leader` or `overloaded`: a leadership moving, a mailbox full) changed nothing and is sent
again after its Retry-After, for at most RETRY_FOR_S; any other answer is the answer.

Not a test module. The SDK and the CLI retry on their own; tests that call the API with a bare
HTTP client use these, so a leader election during a test is not a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

RETRY_FOR_S = 30.0
RETRY_AFTER_S_DEFAULT = 1.0
T = TypeVar("T")


def retry_after_s(header: str | None) -> float:
    try:
        return max(0.0, float(header)) if header else RETRY_AFTER_S_DEFAULT
    except ValueError:
        return RETRY_AFTER_S_DEFAULT


async def retrying_503(call: Callable[[], Awaitable[tuple[int, T, str | None]]],
                       ) -> tuple[int, T]:
    """`call()` answers (status, body, Retry-After header); sent again while it answers 503."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        status, body, retry_after = await call()
        if status != 503 or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(retry_after_s(retry_after))


def retrying_503_sync(call: Callable[[], tuple[int, T, str | None]]) -> tuple[int, T]:
    """`retrying_503` for a blocking client (urllib): the same rule, slept in this thread."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        status, body, retry_after = call()
        if status != 503 or time.monotonic() > deadline:
            return status, body
        time.sleep(retry_after_s(retry_after))
