"""The load: C concurrent clients, each starting one workflow at a time over HTTP.

Clients spread requests over all nodes round-robin. Every start has a fresh workflow id and
request id; a 503 or 429 is retried with the *same* request id after the server's Retry-After
(bounded attempts), which is safe because starts are idempotent by request id (DESIGN §4 I5).
A start's latency runs from its first send to its final answer, retries included. Only 2xx
answers count as acknowledged; any other final answer is an error, keyed by status.

Measurement window: throughput counts acknowledgements that arrive inside the window;
latency percentiles cover starts sent inside the window (they may finish just after it).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from raftflow.cluster.ring import shard_for

ATTEMPTS_MAX = 8  # 1 send + 7 retries; with Retry-After ~1 s that bounds a start to ~8 s
RETRY_AFTER_S_DEFAULT = 1.0  # when a 503/429 carries no usable Retry-After
RETRY_AFTER_S_MAX = 5.0  # never wait longer than this on one retry, whatever the server says
CONNECTION_RETRY_S = 0.1  # a refused or reset connection: try the next node soon
REQUEST_TIMEOUT_S = 30.0
LATENCY_SAMPLES_MAX = 20_000_000  # ~160 MB of floats; far above any run on one machine
RETRYABLE_STATUSES = frozenset({429, 503})
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(slots=True)
class Recorder:
    """Everything the clients observed; mutated only from the event loop."""

    window_start_s: float
    window_end_s: float
    acked_total: int = 0
    acked_in_window: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0

    def record(self, started_s: float, finished_s: float, outcome: str) -> None:
        assert finished_s >= started_s
        if outcome != "ok":
            self.errors[outcome] += 1
            return
        self.acked_total += 1
        if self.window_start_s <= finished_s <= self.window_end_s:
            self.acked_in_window += 1
        in_window = self.window_start_s <= started_s < self.window_end_s
        if in_window and len(self.latencies_ms) < LATENCY_SAMPLES_MAX:
            self.latencies_ms.append((finished_s - started_s) * 1000.0)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    assert 0.0 < fraction <= 1.0
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _retry_after_s(header: str | None) -> float:
    try:
        seconds = float(header) if header is not None else RETRY_AFTER_S_DEFAULT
    except ValueError:  # an HTTP-date; the engine sends seconds, so do not parse dates
        seconds = RETRY_AFTER_S_DEFAULT
    return min(max(seconds, 0.0), RETRY_AFTER_S_MAX)


def _starts_url(address: str, namespace: str) -> str:
    return f"{address.rstrip('/')}/api/v1/namespaces/{namespace}/workflows"


def _error_key(status: int, body: bytes) -> str:
    """`"503 not_leader"`: the status and the engine's error code, when the body has one."""
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return str(status)
    return f"{status} {code}"


class StartLoad:
    """Runs `concurrency` clients until `stop()`; results land in `recorder`."""

    def __init__(self, session: aiohttp.ClientSession, addresses: list[str], *, namespace: str,
                 concurrency: int, run_tag: str, recorder: Recorder,
                 shard_leaders: list[str] | None = None, retry: bool = True) -> None:
        """`shard_leaders[s]` is the address of shard s's leader: send each start there
        first (no forwarding hop) instead of round-robin; retries still go round-robin.
        `retry` False: a 429 or 503 is the start's final answer and the client sends its next
        start at once, ignoring Retry-After (a misbehaving client, for the noisy-neighbour
        bench)."""
        assert addresses and concurrency >= 1
        self._session = session
        self._namespace = namespace
        self._urls = [_starts_url(a, namespace) for a in addresses]
        self._leader_urls = [_starts_url(a, namespace) for a in shard_leaders or []]
        self._concurrency = concurrency
        self._run_tag = run_tag
        self._next_node = 0
        self._attempts = ATTEMPTS_MAX if retry else 1
        self._stopping = asyncio.Event()
        self.recorder = recorder

    def stop(self) -> None:
        """Clients finish their current start (retries included) and send no new one."""
        self._stopping.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as clients:
            for index in range(self._concurrency):
                clients.create_task(self._client(index))

    async def _client(self, index: int) -> None:
        sequence = 0
        while not self._stopping.is_set():
            node = self._next_node
            self._next_node = (node + 1) % len(self._urls)
            workflow_id = f"bench-{self._run_tag}-{index}-{sequence}"
            body = json.dumps({"workflow_id": workflow_id, "workflow_type": "BenchWorkflow",
                               "task_queue": "bench", "input": {"n": sequence},
                               "request_id": f"{workflow_id}-r"}).encode()
            sequence += 1
            first_url = self._urls[node]
            if self._leader_urls:
                shard = shard_for(self._namespace, workflow_id, len(self._leader_urls))
                first_url = self._leader_urls[shard]
            self.recorder.in_flight += 1
            started_s = time.perf_counter()
            try:
                outcome = await self._start(first_url, node, body)
            finally:
                self.recorder.in_flight -= 1
            self.recorder.record(started_s, time.perf_counter(), outcome)

    async def _start(self, first_url: str, node: int, body: bytes) -> str:
        """Send one start until a final answer; return "ok" or the final error's key."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        outcome = "unreached"
        for attempt in range(self._attempts):
            url = first_url if attempt == 0 else self._urls[node % len(self._urls)]
            try:
                async with self._session.post(url, data=body, headers=JSON_HEADERS,
                                              timeout=timeout) as answer:
                    status = answer.status
                    retry_after = answer.headers.get("Retry-After")
                    raw = await answer.read()
            except TimeoutError:
                return "timeout"  # the start may or may not have happened: an error
            except aiohttp.ClientConnectionError:
                outcome = "connection"
                if attempt + 1 < self._attempts:
                    self.recorder.retries[outcome] += 1
                    node += 1  # this node may be down; the same request id is safe elsewhere
                    await asyncio.sleep(CONNECTION_RETRY_S)
                continue
            if 200 <= status < 300:
                return "ok"
            outcome = _error_key(status, raw)
            if status not in RETRYABLE_STATUSES:
                return outcome
            if attempt + 1 < self._attempts:
                self.recorder.retries[outcome] += 1
                await asyncio.sleep(_retry_after_s(retry_after))
        return outcome
