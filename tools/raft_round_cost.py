"""Measure the replicated log's CPU per committed entry: ticks, WAL rounds, peer frames (#17).

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, ~10 s a run:

    PYTHONPATH=. .venv/bin/python tools/raft_round_cost.py [--entries N] [--repeat R]

Three `RaftHost`s in this process on one uvloop loop (real pysyncobj groups, real loopback TCP,
real WAL with fdatasync in each host's thread, the node's GC tuning), 16 groups as a dev
cluster has, and an open loop of 400-byte entries at a fixed rate (default 1,200/s, the order
of what `raftflow bench --activities 3` commits here: 8 entries per workflow), each on a group
drawn from a seeded generator, at most 64 in flight (the bench's concurrency). An entry is
answered, as the actor answers, by `after_durable` on its leader once applied there. The
consumers only count entries, so what is measured is the log's own cost. It prints, as the
median of R runs: `time.process_time()` microseconds per committed entry (all threads of the
three hosts), and per entry the WAL rounds, the fdatasyncs and the peer writes.

Read it with care on a busy machine: at a fixed rate, how many entries share a WAL round
depends on the round's latency, so contention moves rounds per entry (and CPU per entry with
them) more than most changes do; compare rounds per entry before comparing CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass

import uvloop

from raftflow.node import gc_tuning
from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import ShardId

GROUPS = 16
IN_FLIGHT = 64
ENTRY_BYTES = 400
NODES = ("n0", "n1", "n2")
PACE_S = 0.002  # how often the load generator proposes what is due


class _Counter:
    """A consumer that counts applied entries and knows whether it leads."""

    def __init__(self) -> None:
        self.applied = 0
        self.leader = False

    def apply_entry(self, index: int, data: bytes) -> None:
        self.applied += 1

    def take_snapshot(self) -> bytes:
        return b""

    def transfer_snapshot(self) -> bytes | None:
        return None

    def restore_snapshot(self, data: bytes, index: int) -> None:
        pass

    def on_leadership(self, is_leader: bool, term: int) -> None:
        self.leader = is_leader

    def discard(self) -> None:
        pass


@dataclass
class RunCost:
    cpu_us_per_entry: float
    rounds_per_entry: float
    syncs_per_entry: float
    writes_per_entry: float


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def _run(directory: str, entries: int, rate: int, seed: int) -> RunCost:
    addresses = dict(zip(NODES, (("127.0.0.1", p) for p in _free_ports(len(NODES))),
                         strict=True))
    hosts = {n: RaftHost(node_id=n, data_dir=f"{directory}/{n}", listen=addresses[n],
                         peers={k: v for k, v in addresses.items() if k != n}, secret=b"s")
             for n in NODES}
    consumers = {(n, g): _Counter() for n in NODES for g in range(GROUPS)}
    syncs = {n: 0 for n in NODES}
    writes = {n: 0 for n in NODES}
    for n, host in hosts.items():
        await host.start()
        for g in range(GROUPS):
            host.add_group(ShardId(g), list(NODES), consumers[(n, g)])
        _count_calls(host, n, syncs, writes)
    while not all(any(consumers[(n, g)].leader for n in NODES) for g in range(GROUPS)):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # elections settle
    collector = asyncio.get_running_loop().create_task(gc_tuning.collect_forever())
    rng = random.Random(seed)
    payload = b"x" * ENTRY_BYTES
    done = asyncio.get_running_loop().create_future()
    committed = 0

    def propose() -> None:
        group = rng.randrange(GROUPS)
        leader = next(h for n, h in hosts.items() if consumers[(n, group)].leader)
        queued = waiting.setdefault((leader.node_id, group), [])
        # Applied after everything already waiting on this group: its position in the log.
        queued.append(consumers[(leader.node_id, group)].applied + len(queued) + 1)

        def failed(reason: str) -> None:
            raise AssertionError(f"proposal failed: {reason}")

        leader.groups[group].propose(payload, failed)

    waiting: dict[tuple[str, int], list[int]] = {}  # applied counts that answer a proposal

    def on_apply(node: str, group: int, consumer: _Counter) -> None:
        counts = waiting.get((node, group))
        if not counts or consumer.applied < counts[0]:
            return
        counts.pop(0)
        hosts[node].groups[group].after_durable(answered)

    def answered() -> None:
        nonlocal committed
        committed += 1
        if committed == entries:
            done.set_result(None)

    for (n, g), consumer in consumers.items():
        base = consumer.apply_entry

        def apply_entry(index: int, data: bytes, _n: str = n, _g: int = g,
                        _c: _Counter = consumer, _base=base) -> None:  # type: ignore[no-untyped-def]
            _base(index, data)
            on_apply(_n, _g, _c)

        consumer.apply_entry = apply_entry  # type: ignore[method-assign]
    rounds_before = sum(h.stats.wal_rounds for h in hosts.values())
    for n in NODES:
        syncs[n] = writes[n] = 0
    started_s = time.process_time()
    proposed = 0
    loop = asyncio.get_running_loop()
    begin_s = loop.time()
    while proposed < entries:
        due = min(entries, int((loop.time() - begin_s) * rate))
        while proposed < due and proposed - committed < IN_FLIGHT:
            propose()
            proposed += 1
        await asyncio.sleep(PACE_S)
    await done
    spent_s = time.process_time() - started_s
    rounds = sum(h.stats.wal_rounds for h in hosts.values()) - rounds_before
    cost = RunCost(cpu_us_per_entry=spent_s * 1e6 / entries, rounds_per_entry=rounds / entries,
                   syncs_per_entry=sum(syncs.values()) / entries,
                   writes_per_entry=sum(writes.values()) / entries)
    collector.cancel()
    for host in hosts.values():
        await host.stop()
    return cost


def _count_calls(host: RaftHost, node: str, syncs: dict[str, int], writes: dict[str, int]) -> None:
    write_and_sync = host.wal.write_and_sync
    send_batch = host.network.send_batch

    def counted_sync(data: bytes) -> None:
        syncs[node] += 1
        write_and_sync(data)

    def counted_send(peer: str, frames: list) -> None:  # type: ignore[type-arg]
        writes[node] += 1
        send_batch(peer, frames)

    host.wal.write_and_sync = counted_sync  # type: ignore[method-assign]
    host.network.send_batch = counted_send  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=12_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rate", type=int, default=1_200, help="entries per second")
    args = parser.parse_args()
    gc_tuning.install()  # as a node process runs (node/gc_tuning.py)
    costs = []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as directory, \
                asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            costs.append(runner.run(_run(directory, args.entries, args.rate, seed=run)))
    cpu = [c.cpu_us_per_entry for c in costs]
    print(f"{args.entries} entries, median of {args.repeat}: "
          f"{statistics.median(cpu):.1f} us CPU/entry, "
          f"{statistics.median(c.rounds_per_entry for c in costs):.2f} rounds, "
          f"{statistics.median(c.syncs_per_entry for c in costs):.2f} fdatasyncs, "
          f"{statistics.median(c.writes_per_entry for c in costs):.2f} peer writes per entry")
    print("cpu runs:", " ".join(f"{v:.1f}" for v in cpu))


if __name__ == "__main__":
    main()
