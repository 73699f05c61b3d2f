"""Goal: the shipped dashboard and alerts work against what real nodes export: every panel
query and every alert expression evaluates in a real Prometheus scraping a loaded cluster
(data or a valid empty result, never an error), every raftflow metric they name is one the
nodes export, and the panels operators look at first show data.

Method: a real 3-node cluster (`raftflow node` processes, loopback, temp dir) and a real
Prometheus (Debian's package; its own temp dir and free port) scraping every node each
second, with alerts.yml loaded as its rule file. An SDK worker runs workflows that complete,
retry an activity, sleep on a durable timer and fail; more are started on a task queue nobody
polls (a backlog); then workflows keep running while the test queries. Once Prometheus has
scraped the workflows' closes, each query goes through its HTTP API (`/api/v1/query`). Both
processes are stopped by PID in a `finally`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk.client import Client
from raftflow.sdk.errors import WorkflowFailureError
from raftflow.sdk.worker import Worker
from tests.live_cluster import running
from tests.metrics.prometheus_tools import (
    PROMETHEUS_DIR,
    alert_expressions,
    metric_families,
    panel_queries,
    tool,
)
from tests.ports import free_port
from tests.sdk_io.workflows import ACTIVITIES, WORKFLOWS, Failing, Order

pytestmark = [pytest.mark.xdist_group("heavy"), pytest.mark.timeout(240)]

SCRAPE_INTERVAL = "1s"
READY_TIMEOUT_S = 30.0
DATA_TIMEOUT_S = 60.0
RESULT_TIMEOUT_S = 30.0
LOAD_READY_TIMEOUT_S = 90.0
# Panels that must show data after the load, in one query at least (the rest may be empty:
# no snapshot was due, no move ran, nothing timed out).
MUST_SHOW_DATA = ("Nodes up", "Groups without a leader", "Leaders per node",
                  "Workflows started", "Workflows closed by outcome", "Workflow failure ratio",
                  "Activity failures, retries and timeouts", "Timer firing delay", "Backlog",
                  "Pollers", "Schedule-to-start p95", "Tasks handed out",
                  "Apply rate", "WAL fsync latency", "WAL written", "HTTP latency p99")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(tmp_path_factory, "metrics-cluster", shards=4) as local:
        yield local


def _prometheus_config(cluster: LocalCluster) -> dict[str, Any]:
    targets = [urllib.parse.urlsplit(cluster.address(n)).netloc for n in cluster.node_ids]
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(PROMETHEUS_DIR / "alerts.yml")],
        "scrape_configs": [{"job_name": "raftflow", "metrics_path": "/metrics",
                            "static_configs": [{"targets": targets}]}],
    }


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: dict[str, Any] = json.loads(answer.read())
        return body


def _query(base: str, expr: str) -> dict[str, Any]:
    try:
        return _get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except urllib.error.HTTPError as error:  # 400/422: a bad query, with Prometheus' reason
        body: dict[str, Any] = json.loads(error.read())
        return body


@pytest.fixture(scope="module")
def prometheus(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(_prometheus_config(cluster)))
    port = free_port()
    log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 (closed in the finally)
    process = subprocess.Popen(
        [tool("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert process.poll() is None, (directory / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not get ready"
            time.sleep(0.2)
        yield base
    finally:
        process.kill()  # our own process, by its PID
        process.wait(timeout=10)
        log.close()


class Load:
    """Runs workflows in a thread of its own while the test queries Prometheus.

    First a fixed mix: workflows that complete (a retried activity, a durable timer) and one
    that fails, then starts on a task queue nobody polls (a backlog); `ready` is set. Then a
    steady stream of workflows that complete, one after the other, until `stop`.
    """

    def __init__(self, cluster: LocalCluster) -> None:
        self._addresses = [cluster.address(n) for n in cluster.node_ids]
        self.ready = threading.Event()
        self._stop = threading.Event()
        self.completed = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        if not self.ready.wait(LOAD_READY_TIMEOUT_S):
            self._stop.set()
            raise AssertionError(f"the load's first workflows did not finish: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(LOAD_READY_TIMEOUT_S)
        assert not self._thread.is_alive(), "the load did not stop"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # handed to the test's thread in __exit__
            self.error = error

    async def _main(self) -> None:
        queue = f"q-{uuid.uuid4().hex[:8]}"
        async with await Client.connect(self._addresses) as client, Worker(
                client, task_queue=queue, workflows=WORKFLOWS, activities=ACTIVITIES):
            orders = [await client.start_workflow(Order.run, f"o-{i}", id=f"order-{i}",
                                                  task_queue=queue) for i in range(4)]
            failing = await client.start_workflow(Failing.run, "f", id="failing",
                                                  task_queue=queue)
            for handle in orders:
                await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
            try:
                await asyncio.wait_for(failing.result(), RESULT_TIMEOUT_S)
                raise AssertionError("the Failing workflow did not fail")
            except WorkflowFailureError:
                pass
            for i in range(3):  # nobody polls this queue: its tasks wait
                await client.start_workflow(Order.run, f"w-{i}", id=f"waiting-{i}",
                                            task_queue="nobody-polls")
            self.ready.set()
            while not self._stop.is_set():
                handle = await client.start_workflow(
                    Order.run, "steady", id=f"steady-{self.completed}", task_queue=queue)
                await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
                self.completed += 1


def _raftflow_samples(cluster: LocalCluster) -> str:
    """Every node's own raftflow samples (no HTTP histograms), to tell a node that did not
    count from a Prometheus that did not scrape."""
    lines = []
    for node_id in cluster.node_ids:
        with urllib.request.urlopen(f"{cluster.address(node_id)}/metrics", timeout=10) as answer:
            lines += [f"{node_id} {line}" for line in answer.read().decode().splitlines()
                      if line.startswith("raftflow_") and "_bucket" not in line
                      and "_created" not in line and "raftflow_http" not in line]
    return "\n".join(lines)


def _wait_until(condition: Callable[[], bool], why: str) -> None:
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, why
        time.sleep(0.2)


def _wait_for_data(base: str, expr: str) -> None:
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while not _query(base, expr).get("data", {}).get("result"):
        assert time.monotonic() < deadline, f"Prometheus never had data for {expr}"
        time.sleep(0.5)


def _evaluate_all(base: str) -> tuple[list[str], set[str]]:
    """(queries Prometheus refused, with why; titles with data in at least one query)."""
    errors, with_data = [], set()
    for title, expr in [*panel_queries(), *alert_expressions()]:
        answer = _query(base, expr)
        if answer.get("status") != "success":
            errors.append(f"{title}: {expr}: {answer.get('error')}")
        elif answer["data"]["result"]:
            with_data.add(title)
    return errors, with_data


def test_every_panel_and_alert_query_evaluates_on_a_loaded_cluster(
        cluster: LocalCluster, prometheus: str) -> None:
    with Load(cluster) as load:
        _wait_until(lambda: load.completed > 0, "no workflow of the steady load completed")
        _evaluate_under_load(cluster, prometheus)
        running = load.completed
        _wait_until(lambda: load.completed > running, "the load stopped during the queries")
    rules = _get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in rules for rule in group["rules"]}
    assert loaded == {name: "ok" for name, _ in alert_expressions()}


def _evaluate_under_load(cluster: LocalCluster, prometheus: str) -> None:
    _wait_for_data(prometheus, 'raftflow_workflows_closed_total{outcome="failed"}')
    _wait_for_data(prometheus, 'raftflow_task_queue_backlog{task_queue="nobody-polls"}')
    # A rate() needs two scrapes of a series in its window: wait until the panels that must
    # show data do; an error fails at once (it would not go away).
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        errors, with_data = _evaluate_all(prometheus)
        assert errors == [], "queries Prometheus refused:\n" + "\n".join(errors)
        missing = [t for t in MUST_SHOW_DATA if t not in with_data]
        if not missing:
            break
        assert time.monotonic() < deadline, (
            f"panels without data: {missing}; the nodes export:\n{_raftflow_samples(cluster)}")
        time.sleep(1)


def test_the_panels_and_alerts_read_only_metrics_the_nodes_export(
        cluster: LocalCluster) -> None:
    exported = set()
    for node_id in cluster.node_ids:
        with urllib.request.urlopen(f"{cluster.address(node_id)}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        exported |= {family for line in text.splitlines() if line.startswith("# TYPE ")
                     for family in metric_families(line.split()[2])}
    named = {family for _, expr in [*panel_queries(), *alert_expressions()]
             for family in metric_families(expr)}
    assert named, "no raftflow metric found in the queries"
    assert sorted(named - exported) == []
