"""`--log-format json`: one JSON object per line, naming the workflow and shard it concerns.

Goal: a node started with `--log-format json` writes only parseable JSON lines; a line about a
shard's leadership carries `shard` and `term`; the line about a terminate carries the
namespace, workflow id, run id, shard and term of that workflow; the formatter takes fields
from a record's `extra` and from the request being served, the record's own winning.
Method: the formatter on hand-built records; then a real one-node cluster (a process, real
HTTP, the SDK client) with the flag, whose log file is read after it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from pathlib import Path

import pytest

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config
from raftflow.observability.json_logs import (
    JsonFormatter,
    RequestFields,
    bind_request,
    shard_fields,
    unbind_request,
)
from raftflow.sdk import Client


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("raftflow.test", logging.WARNING, __file__, 1, message, (), None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_formatter_writes_context_fields_and_leaves_out_the_missing() -> None:
    formatter = JsonFormatter("n1")
    plain = json.loads(formatter.format(_record("hello")))
    assert plain["message"] == "hello" and plain["level"] == "warning"
    assert plain["logger"] == "raftflow.test" and plain["node"] == "n1"
    assert plain["time"].endswith("+00:00")
    assert not {"namespace", "workflow_id", "run_id", "shard", "term"} & plain.keys()

    token = bind_request(RequestFields(namespace="ns", workflow_id="wf-1", run_id="r-1"))
    try:
        line = json.loads(formatter.format(_record("x", **shard_fields(3, 7), run_id="r-2")))
    finally:
        unbind_request(token)
    assert (line["namespace"], line["workflow_id"]) == ("ns", "wf-1")
    assert line["run_id"] == "r-2"  # the record's own field wins over the request's
    assert (line["shard"], line["term"]) == (3, 7)
    after = json.loads(formatter.format(_record("y")))
    assert "namespace" not in after  # unbound: the request's fields are gone


def test_formatter_keeps_one_line_with_an_exception() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord("raftflow.test", logging.ERROR, __file__, 1, "failed %s",
                                   ("a\nb",), exc_info=__import__("sys").exc_info())
    text = JsonFormatter("n1").format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "failed a\nb" and "ValueError: bad" in line["exception"]


@pytest.fixture(scope="module")
def json_node(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalCluster, Path]:
    data_dir: Path = tmp_path_factory.mktemp("json-logs")
    config = load_or_create_dev_config(data_dir, nodes=1, shards=2,
                                       http_port=free_port_block(1, random.Random()))
    cluster = LocalCluster(config, data_dir,
                           node_args={"node-1": ["--log-format", "json"]})
    return cluster, data_dir


def test_a_json_node_names_the_workflow_and_shard_in_its_lines(
        json_node: tuple[LocalCluster, Path]) -> None:
    cluster, data_dir = json_node
    cluster.start()
    try:
        cluster.wait_ready()
        address = cluster.address("node-1")

        async def scenario() -> tuple[str, str]:
            client = await Client.connect(address)
            try:
                handle = await client.start_workflow("Never", id="logged-wf", task_queue="none")
                run_id = (await handle.describe()).run_id
                await client.get_workflow_handle("logged-wf", run_id=run_id).terminate("done")
                return client.namespace, run_id
            finally:
                await client.close()

        namespace, run_id = asyncio.run(scenario())
    finally:
        cluster.stop()
    text = (data_dir / "node-1.log").read_text()
    lines = [json.loads(raw) for raw in text.splitlines() if raw.strip()]
    assert lines and all(line["node"] == "node-1" for line in lines)
    leaders = [line for line in lines if line["message"].startswith("shard ")
               and " leader at term " in line["message"]]
    assert {line["shard"] for line in leaders} == {0, 1}
    assert all(line["term"] >= 1 for line in leaders)
    terminated = [line for line in lines if "TerminateWorkflow of workflow" in line["message"]]
    assert len(terminated) == 1, terminated
    line = terminated[0]
    assert line["namespace"] == namespace and line["workflow_id"] == "logged-wf"
    assert line["run_id"] == run_id
    assert line["shard"] in (0, 1) and line["term"] >= 1
    assert line["shard"] in {leader["shard"] for leader in leaders}


def test_dev_hands_the_log_and_trace_flags_to_its_nodes() -> None:
    import argparse

    from raftflow.cluster.observability_flags import (
        add_observability_arguments,
        observability_flags_of,
        observability_of,
    )
    parser = argparse.ArgumentParser()
    add_observability_arguments(parser)
    assert observability_flags_of(parser.parse_args([])) == []
    args = parser.parse_args(["--log-format", "json", "--log-level", "debug",
                              "--otel-exporter", "console"])
    assert observability_flags_of(args) == ["--log-level", "debug", "--log-format", "json",
                                            "--otel-exporter", "console"]
    config = observability_of(args)
    assert config.json_logs and config.tracing and config.otel_exporter == "console"
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-format", "xml"])


def test_the_cluster_map_group_is_no_shard() -> None:
    assert shard_fields(-1, 4) == {}  # META_GROUP_ID: its lines carry no shard field
    assert shard_fields(0) == {"shard": 0}
