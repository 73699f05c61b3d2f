"""A stand-in for the worker's TaskExchange that records what the worker answers, as the
server would receive it (encoded by the transport's own `encode_body`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from raftflow.sdk._http import Answer, Body, encode_body

Post = tuple[str, dict[str, object]]


class RecordingExchange:
    identity = "test-worker"
    sticky_queue = "sticky-test"

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.posts: list[Post] = []
        self.structs: list[object] = []  # the bodies as the worker built them
        self.headers: list[Mapping[str, str] | None] = []  # each post's extra headers

    async def post(self, path: str, body: Body,
                   headers: Mapping[str, str] | None = None) -> Answer:
        self.structs.append(body)
        self.headers.append(headers)
        sent = json.loads(encode_body(body))
        assert isinstance(sent, dict), sent
        self.posts.append((path, sent))
        return Answer(status=200, body={})

    async def post_to(self, address: str, path: str, body: Body,
                      headers: Mapping[str, str] | None = None) -> Answer:
        return await self.post(path, body, headers)


async def no_history(workflow_id: str, run_id: str) -> list[Any]:
    raise AssertionError("the task carries the whole history")
