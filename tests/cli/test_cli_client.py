"""Goal: the `raftflow` client subcommands speak the HTTP API correctly, print readable text by
default and exactly one JSON object with `--json`, and turn API errors into
`error: <code>: <message>` on stderr with exit status 1.

Method: a tiny fake aiohttp server (tests/cli/fake_node.py: its own event loop on a background
thread, bound to 127.0.0.1 on a free port) records each request and answers canned bodies,
including a paged history and error bodies; `main(argv)` runs in-process and pytest captures its
output. The server subcommands are checked with stand-in `node.serve`/`cluster.dev` modules in
`sys.modules`. The commands that wait for a run are in test_cli_workflow.py.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import types

import pytest

from raftflow.cli import build_parser, main, node_cluster_config
from tests.cli.fake_node import Fake, run


def test_cluster_status_table_and_json(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "cluster", "status")
    assert code == 0
    assert "n1,n2" in out and "COMMIT" in out and "127.0.0.1:8080" in out
    code, out, _ = run(fake, capsys, "cluster", "status", "--json")
    assert json.loads(out)["shards"][0]["commit_index"] == 42
    assert out.count("\n") == 1


def test_start_sends_the_documented_body(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "start", "-w", "order 1/a", "-t", "Checkout",
                       "-q", "orders", "-i", '{"items": [1]}', "--request-id", "r-1",
                       "-n", "shop")
    assert (code, out) == (0, "started workflow order 1/a run run-1\n")
    method, path, _, body = fake.requests[-1]
    assert (method, path) == ("POST", "/api/v1/namespaces/shop/workflows")
    assert body == {"workflow_id": "order 1/a", "workflow_type": "Checkout",
                    "task_queue": "orders", "input": {"items": [1]}, "request_id": "r-1"}


def test_signal_with_start_sends_the_documented_body(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "signal-with-start", "-w", "inbox 1",
                       "-t", "Inbox", "-q", "mail", "-i", '["x"]', "--signal-name", "add",
                       "--signal-input", '"hello"', "--request-id", "r-9", "-n", "shop",
                       "--search-attribute", "CustomerId=c1")
    assert code == 0
    assert out == ("signalled workflow inbox 1 run run-7 with add (started if no run was "
                   "open)\n")
    method, path, _, body = fake.requests[-1]
    assert (method, path) == ("POST", "/api/v1/namespaces/shop/workflows/inbox 1/"
                                      "signal-with-start")  # the fake records it decoded
    assert body == {"workflow_type": "Inbox", "task_queue": "mail", "input": ["x"],
                    "signal_name": "add", "signal_input": "hello", "request_id": "r-9",
                    "search_attributes": {"CustomerId": "c1"}}
    code, out, _ = run(fake, capsys, "workflow", "signal-with-start", "-w", "a", "-t", "T",
                       "-q", "q", "--signal-name", "s", "--json")
    assert code == 0 and json.loads(out) == {"workflow_id": "a", "run_id": "run-7"}


def test_start_without_request_id_sends_a_fresh_one(
    fake: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        run(fake, capsys, "workflow", "start", "-w", "a", "-t", "T", "-q", "q", "--json")
    ids = {req[3]["request_id"] for req in fake.requests}  # type: ignore[index]
    assert len(ids) == 2


def test_describe_quotes_the_workflow_id(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "describe", "-w", "order 1/a")
    assert code == 0
    assert "status:         running" in out
    assert fake.requests[-1][1] == "/api/v1/namespaces/default/workflows/order 1/a"
    code, out, _ = run(fake, capsys, "workflow", "describe", "-w", "x", "--json")
    assert json.loads(out)["history_length"] == 5


def test_show_follows_next_page_token(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "show", "-w", "wf", "--json")
    assert code == 0
    assert [e["event_id"] for e in json.loads(out)["events"]] == [1, 2, 3, 4, 5]
    assert [req[2] for req in fake.requests] == [{}, {"next_page_token": "p2"},
                                                 {"next_page_token": "p3"}]
    code, out, _ = run(fake, capsys, "workflow", "show", "-w", "wf")
    assert [line.split()[0] for line in out.splitlines()] == ["ID", "1", "2", "3", "4", "5"]


def test_signal_terminate_and_list(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "signal", "-w", "wf", "--name", "approve",
                       "-i", "true", "--request-id", "s-1")
    assert (code, out) == (0, "signalled workflow wf with approve\n")
    assert fake.requests[-1][3] == {"signal_name": "approve", "input": True, "request_id": "s-1"}
    code, out, _ = run(fake, capsys, "workflow", "terminate", "-w", "wf", "--reason", "stop")
    assert (code, out) == (0, "terminated workflow wf\n")
    assert fake.requests[-1][1:] == ("/api/v1/namespaces/default/workflows/wf/terminate", {},
                                     {"reason": "stop"})
    code, out, _ = run(fake, capsys, "workflow", "list", "--status", "running", "--limit", "5")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["a", "b"]
    assert out.splitlines()[1].split() == ["a", "r", "T", "q", "running", "2026-12-06T10:00:00Z"]
    # Every page, each asking for what is left of --limit.
    assert [r[2] for r in fake.requests[-2:]] == [
        {"status": "running", "page_size": "5"},
        {"status": "running", "page_size": "4", "next_page_token": "p2"}]
    code, out, _ = run(fake, capsys, "workflow", "list", "-q", "WorkflowType = 'T'", "--json",
                       "--limit", "1")
    assert code == 0 and [w["workflow_id"] for w in json.loads(out)["workflows"]] == ["a"]
    assert fake.requests[-1][2] == {"query": "WorkflowType = 'T'", "page_size": "1"}
    code, out, _ = run(fake, capsys, "workflow", "count", "-q", "ExecutionStatus = 'Running'")
    assert (code, out) == (0, "7\n")
    assert fake.requests[-1][1:3] == ("/api/v1/namespaces/default/workflow-count",
                                      {"query": "ExecutionStatus = 'Running'"})


def test_cancel_and_terminate_send_the_given_request_id(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "cancel", "-w", "wf", "--request-id", "c-1")
    assert (code, out) == (0, "requested cancellation of workflow wf\n")
    assert fake.requests[-1][1:] == ("/api/v1/namespaces/default/workflows/wf/cancel", {},
                                     {"reason": "", "request_id": "c-1"})
    code, _, _ = run(fake, capsys, "workflow", "terminate", "-w", "wf", "--reason", "stop",
                     "--request-id", "t-1")
    assert code == 0
    assert fake.requests[-1][3] == {"reason": "stop", "request_id": "t-1"}


@pytest.mark.parametrize(
    ("argv", "stderr"),
    [
        (("workflow", "start", "-w", "dup", "-t", "T", "-q", "q"),
         "error: workflow_already_started: workflow 'dup' is running\n"),
        (("workflow", "describe", "-w", "missing"), "error: not_found: no workflow 'missing'\n"),
        (("workflow", "describe", "-w", "busy", "--json"), "error: overloaded: try later\n"),
        (("workflow", "describe", "-w", "broken"), "error: http_500: Internal Server Error\n"),
    ],
)
def test_api_errors_go_to_stderr_with_exit_1(
    fake: Fake, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], stderr: str
) -> None:
    assert run(fake, capsys, *argv) == (1, "", stderr)


def test_unreachable_node_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["cluster", "status", "--address", f"http://127.0.0.1:{port}"]) == 1
    expected = f"error: unavailable: cannot reach http://127.0.0.1:{port}"
    assert capsys.readouterr().err.startswith(expected)


def test_bad_json_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["workflow", "start", "-w", "a", "-t", "T", "-q", "q", "-i", "{oops"])
    assert caught.value.code == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_server_subcommands_call_the_lead_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    node_main = types.ModuleType("raftflow.node.serve")

    def run_node(args: object) -> int:
        seen.append(args)
        return 3

    node_main.run_node = run_node  # type: ignore[attr-defined]
    dev = types.ModuleType("raftflow.cluster.dev")

    async def run_dev(args: object) -> None:
        seen.append(args)

    dev.run_dev = run_dev  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "raftflow.node.serve", node_main)
    monkeypatch.setitem(sys.modules, "raftflow.cluster.dev", dev)
    peers = "n1=127.0.0.1:8080:9080"
    assert main(["node", "--id", "n1", "--data-dir", "d", "--peers", peers, "--cluster-id", "c",
                 "--secret", "s"]) == 3
    assert main(["dev", "--nodes", "1"]) == 0
    node_args, dev_args = seen
    assert isinstance(node_args, argparse.Namespace)
    config = node_cluster_config(node_args)
    assert (config.cluster_id, config.shard_count, config.nodes[0].raft_port) == ("c", 16, 9080)
    assert isinstance(dev_args, argparse.Namespace)
    assert (dev_args.nodes, dev_args.http_port, dev_args.shards, dev_args.data_dir) == (
        1, 8080, 16, "data")


def test_node_requires_config_or_peers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["node", "--id", "n1", "--data-dir", "d"])
    assert "--config" in capsys.readouterr().err
