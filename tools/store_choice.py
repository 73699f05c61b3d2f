"""Measure SQLite, LMDB and RocksDB as the on-disk store of one raftflow shard replica.

Standalone: nothing in `raftflow/` imports this or `store_choice_stores.py` (the three store
adapters), and lmdb/rocksdict are NOT project dependencies (imported lazily; a missing one is
reported and its store skipped). Run it from its own venv, alone on the machine (5-10 minutes
on 2 cores):

    python3 -m venv /tmp/storechoice && /tmp/storechoice/bin/pip install lmdb rocksdict msgspec
    /tmp/storechoice/bin/python tools/store_choice.py --dir /tmp/store_choice --out raw.json

A fresh worker process per store x history layout (`events`: a row per event, `blob`: a blob
per run) x repeat fills one shard store with closed workflows (run row with indexed columns and
a ~600-byte msgpack state, 17 events of ~150 bytes, 5 request-id rows of ~80+40 bytes), one
transaction per 50 workflows without fsync (SQLite WAL + synchronous=NORMAL, LMDB sync=False,
RocksDB WAL unsynced) and a durable sync per 5,000. At 12,500 runs (200,000 / 16 shards) and
62,500 it measures write CPU (`time.process_time`, all threads) and wall per workflow, disk and
VmRSS growth per run, request-id lookups (hit/miss), run reads, history pages (events
1..1000), visibility count (type + status) and list pages (start DESC, 100 a page, page
token), earliest delete_at, and consistent copies of the live store (checkpoints). Then it
deletes half in expiry order (500 a batch) and compacts. A new process opens the 12,500-run
checkpoint: cold open and first query (page cache warm: dropping it needs root). Prints the
medians over repeats as Markdown tables; --out keeps every repeat as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from store_choice_stores import (
    ENCODE,
    EVENTS_PER_RUN,
    NAMESPACE,
    PAGE_RUNS,
    KvStore,
    RequestKey,
    SqliteStore,
    Workflow,
    open_store,
    seconds,
)

BATCH_WORKFLOWS = 50  # one store transaction per flush of this many closed workflows
SYNC_EVERY_WORKFLOWS = 5_000  # one durable sync per this many
DELETE_BATCH_RUNS = 500
STAGES_RUNS = (12_500, 62_500)  # 200,000 runs / 16 shards, and 5x that
LIST_PAGES = 10
LOOKUPS_HIT, LOOKUPS_MISS = 1_000, 9_000  # 10 % hits, as on the command path
POINT_READS = 1_000
WORKFLOW_TYPES = tuple(f"OrderWorkflow{i}" for i in range(10))
COUNT_TYPE, COUNT_STATUS = WORKFLOW_TYPES[3], "Completed"
RETENTION_MS = 3 * 86_400_000
STORE_MODULES = {"sqlite": "sqlite3", "lmdb": "lmdb", "rocksdb": "rocksdict"}


def make_workflow(rng: random.Random, index: int) -> Workflow:
    run_id, workflow_id = rng.randbytes(16), f"order-{index:09d}-{rng.randbytes(4).hex()}"
    start_ms = 1_700_000_000_000 + index * 40 + rng.randrange(2_000)
    close_ms = start_ms + rng.randrange(1_000, 600_000)  # expiry order != insertion order
    wtype = rng.choice(WORKFLOW_TYPES)
    status = rng.choices(("Completed", "Failed", "TimedOut"), (90, 5, 5))[0]
    state = ENCODE({"workflow_id": workflow_id, "workflow_type": wtype, "task_queue": "orders",
                    "status": status, "next_event_id": EVENTS_PER_RUN + 1,
                    "input": rng.randbytes(64).hex(), "result": rng.randbytes(40).hex(),
                    "activities": [{"activity_id": str(i), "activity_type": "ChargeCard",
                                    "attempt": 1, "scheduled_event_id": 5 + i} for i in range(3)],
                    "memo": {"customer": f"customer-{rng.randrange(10**6)}", "region": "eu"}})
    events = tuple(ENCODE({"event_id": n, "event_type": "ActivityTaskCompleted",
                           "time_ms": start_ms + 10 * n, "attributes": {
                               "scheduled_event_id": n - 1, "identity": "worker-1@host-7",
                               "result": rng.randbytes(12).hex()}})
                   for n in range(1, EVENTS_PER_RUN + 1))
    requests = tuple((kind, NAMESPACE, workflow_id, str(uuid.UUID(bytes=rng.randbytes(16))))
                     for kind in ("start", "signal", "signal", "complete", "complete"))
    return Workflow(run_id, workflow_id, wtype, status, start_ms, close_ms, close_ms + RETENTION_MS,
                    state, events, requests, rng.randbytes(20) + run_id)


def disk_bytes(path: Path) -> int:
    """Allocated bytes (as du counts them), so a sparse file counts what it uses."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def rss_bytes(field: str = "VmRSS") -> int:
    """VmRSS, or RssAnon: VmRSS also counts mapped file pages (LMDB's whole map)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) * 1024


def us_per_call(call: Callable[[Any], object], items: Sequence[Any]) -> float:
    return seconds(lambda: [call(item) for item in items]) / len(items) * 1e6


def measure_reads(store: SqliteStore | KvStore, rng: random.Random,
                  samples: list[tuple[bytes, RequestKey]]) -> dict[str, float]:
    hits = [rng.choice(samples)[1] for _ in range(LOOKUPS_HIT)]
    misses = [("signal", NAMESPACE, f"order-{rng.randrange(10**9):09d}-x",
               str(uuid.UUID(bytes=rng.randbytes(16)))) for _ in range(LOOKUPS_MISS)]
    runs = [rng.choice(samples)[0] for _ in range(POINT_READS)]
    assert store.lookup_request(hits[0]) is not None and store.lookup_request(misses[0]) is None
    assert len(store.history_page(runs[0], 1, 1000)) == EVENTS_PER_RUN
    result = {"lookup hit µs": us_per_call(store.lookup_request, hits),
              "lookup miss µs": us_per_call(store.lookup_request, misses),
              "run read µs": us_per_call(store.read_run, runs),
              "history page µs": us_per_call(lambda r: store.history_page(r, 1, 1000), runs),
              "count ms": us_per_call(lambda t: store.count(t, COUNT_STATUS), [COUNT_TYPE] * 5)
              / 1e3, "count result": store.count(COUNT_TYPE, COUNT_STATUS)}
    token: bytes | None = None
    started = time.perf_counter()
    for _ in range(LIST_PAGES):
        rows, token = store.list_page(token)
        assert len(rows) == PAGE_RUNS and rows[0][4] >= rows[-1][4]
    result["list page ms"] = (time.perf_counter() - started) / LIST_PAGES * 1e3
    result["earliest delete_at µs"] = us_per_call(lambda _: store.earliest_delete_at(), [0] * 100)
    return result


def run_worker(name: str, layout: str, root: Path) -> dict[str, Any]:
    rng, rss_before, live = random.Random(13), rss_bytes(), root / "live"
    anon_before = rss_bytes("RssAnon")
    store = open_store(name, layout, live)
    samples: list[tuple[bytes, RequestKey]] = []  # (run_id, request) of every 50th workflow
    report: dict[str, Any] = {}
    written = 0
    for target in STAGES_RUNS:
        cpu_s, wall_s, first = 0.0, 0.0, written
        while written < target:
            batch = [make_workflow(rng, written + i) for i in range(BATCH_WORKFLOWS)]
            durable = (written + BATCH_WORKFLOWS) % SYNC_EVERY_WORKFLOWS == 0
            cpu_started = time.process_time()
            wall_s += seconds(lambda: store.write(batch, durable=durable))  # noqa: B023
            cpu_s += time.process_time() - cpu_started
            samples.append((batch[0].run_id, batch[0].requests[1]))
            written += BATCH_WORKFLOWS
        store.settle()
        stage: dict[str, Any] = {"write CPU µs/wf": cpu_s / (written - first) * 1e6,
                                 "write wall µs/wf": wall_s / (written - first) * 1e6,
                                 "disk B/run": disk_bytes(live) / written,
                                 "RSS growth B/run": (rss_bytes() - rss_before) / written,
                                 "RssAnon growth B/run": (rss_bytes("RssAnon") - anon_before)
                                 / written}
        stage.update(measure_reads(store, rng, samples))
        for method, (spent_s, copy) in store.checkpoint(root / f"checkpoint-{target}").items():
            stage[f"checkpoint {method} s"] = spent_s
            stage[f"checkpoint {method} MB"] = disk_bytes(copy) / 1e6
            stage.setdefault("checkpoint path", str(copy))
        report[str(target)] = stage
    final: dict[str, Any] = {"earliest delete_at before µs": us_per_call(
        lambda _: store.earliest_delete_at(), [0] * 100)}
    deleted, cpu_started, wall_started = 0, time.process_time(), time.perf_counter()
    while deleted < written // 2:
        deleted += store.delete_expired(DELETE_BATCH_RUNS)
    final["delete CPU µs/run"] = (time.process_time() - cpu_started) / deleted * 1e6
    final["delete wall µs/run"] = (time.perf_counter() - wall_started) / deleted * 1e6
    final["earliest delete_at after µs"] = us_per_call(
        lambda _: store.earliest_delete_at(), [0] * 100)
    store.settle()
    final["disk B/retained run after delete"] = disk_bytes(live) / (written - deleted)
    compacted: list[Path] = []
    final["compact s"] = seconds(lambda: compacted.append(store.compact(root / "compacted")))
    final["disk B/retained run after compact"] = disk_bytes(compacted[0]) / (written - deleted)
    store.close()
    report["after delete"] = final
    return report


def run_opener(name: str, layout: str, path: Path) -> dict[str, Any]:
    stores: list[SqliteStore | KvStore] = []
    open_s = seconds(lambda: stores.append(open_store(name, layout, path)))
    query_s = seconds(lambda: (stores[0].lookup_request(("start", NAMESPACE, "x", "y")),
                               stores[0].list_page(None)))
    count = stores[0].count(COUNT_TYPE, COUNT_STATUS)
    stores[0].close()
    return {"cold open ms": open_s * 1e3, "first query ms": query_s * 1e3, "count result": count}


def call_self(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def markdown(results: dict[str, list[dict[str, Any]]]) -> str:
    """One table per section: metrics as rows, store/layout as columns, medians of repeats."""
    columns, lines = list(results), []
    for section in dict.fromkeys(s for runs in results.values() for s in runs[0]):
        metrics = dict.fromkeys(m for runs in results.values() for m in runs[0].get(section, {})
                                if m != "checkpoint path")
        lines += [f"\n### {section}\n", "| metric | " + " | ".join(columns) + " |",
                  "|---" * (len(columns) + 1) + "|"]
        for metric in metrics:
            cells = [statistics.median(r[section][metric] for r in results[c])
                     if metric in results[c][0].get(section, {}) else None for c in columns]
            shown = ("-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.3g}" for v in cells)
            lines.append(f"| {metric} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/store_choice"))
    parser.add_argument("--out", type=Path, help="also write the raw results here as JSON")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", default=",".join(STORE_MODULES))
    parser.add_argument("--layouts", default="events,blob")
    parser.add_argument("--worker", nargs=3, metavar=("STORE", "LAYOUT", "ROOT"))
    parser.add_argument("--open", nargs=3, metavar=("STORE", "LAYOUT", "PATH"))
    args = parser.parse_args()
    if args.worker or args.open:
        name, layout, path = args.worker or args.open
        print(json.dumps((run_worker if args.worker else run_opener)(name, layout, Path(path))))
        return
    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.stores.split(","):
        if importlib.util.find_spec(STORE_MODULES[name]) is None:
            print(f"skipping {name}: pip install {STORE_MODULES[name]}", file=sys.stderr)
            continue
        for layout in args.layouts.split(","):
            for repeat in range(args.repeats):
                root = args.dir / f"{name}-{layout}-{repeat}"
                shutil.rmtree(root, ignore_errors=True)
                report = call_self("--worker", name, layout, str(root))
                first = report[str(STAGES_RUNS[0])]
                report["cold open"] = call_self("--open", name, layout, first["checkpoint path"])
                # The copy was taken from a live store: it must hold exactly what it held then.
                assert report["cold open"]["count result"] == first["count result"], report
                results.setdefault(f"{name}/{layout}", []).append(report)
                shutil.rmtree(root)
                print(f"done {name}/{layout} #{repeat}", file=sys.stderr, flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
