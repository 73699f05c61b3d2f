"""Goal: the `temporal workflow`-shaped commands (`result`, `execute`, `query`, `--run-id` on
describe/show/signal/cancel/terminate, `show --follow`) send the documented requests, wait the
way they promise (repeat the result long poll until the close, follow continue-as-new, stop
following at the close event, give up at `--timeout`), print the result or the events in human
form and as JSON, and turn a run that did not complete, or a failed query, into exit status 1.

Method: the fake node of tests/cli/fake_node.py answers by workflow id (204 then 200 for a slow
run, a history that grows while it is followed, a continued run whose last event names the
next). `raftflow.cli_wait.time` is the fake's clock: a pause advances it, and so does a 204
(the node held the long poll for its `wait_ms`), so waits and timeouts are checked without a
real sleep.
"""

from __future__ import annotations

import json

import pytest

from raftflow import cli_wait
from tests.cli.fake_node import SLOW_POLLS, Fake, run

WF = "/api/v1/namespaces/default/workflows"
WAIT_MS = str(cli_wait.RESULT_POLL_WAIT_MS)


@pytest.fixture(autouse=True)
def fake_clock(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_wait, "time", fake.clock)


# --- result ---------------------------------------------------------------------------------

def test_result_prints_a_completed_runs_result(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "result", "-w", "done") == (0, '{"total": 3}\n', "")
    assert fake.requests == [("GET", f"{WF}/done/result", {"wait_ms": WAIT_MS}, None)]
    code, out, _ = run(fake, capsys, "workflow", "result", "-w", "done", "--run-id", "r9",
                       "--json")
    assert code == 0 and out.count("\n") == 1
    assert json.loads(out) == {"workflow_id": "done", "run_id": "r9", "workflow_type": "Checkout",
                               "task_queue": "orders", "history_length": 5,
                               "status": "COMPLETED", "result": {"total": 3}}
    assert fake.requests[-1][2] == {"run_id": "r9", "wait_ms": WAIT_MS}


def test_result_polls_again_while_the_run_is_open(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "result", "-w", "slow") == (0, "3\n", "")
    polls = fake.calls_to("/slow/result")
    assert [p[2] for p in polls] == [{"wait_ms": WAIT_MS}] * (SLOW_POLLS + 1)
    assert fake.clock.sleeps_s == []  # the node's long poll paces the loop, not a pause


@pytest.mark.parametrize(("workflow_id", "stderr"), [
    ("failed", "error: workflow_failed: workflow failed run run-1 failed: PaymentError: card "
               "declined\n"),
    ("terminated", "error: workflow_terminated: workflow terminated run run-1 was terminated: "
                   "no longer needed\n"),
    ("canceled", "error: workflow_canceled: workflow canceled run run-1 was canceled\n"),
    ("timed-out", "error: workflow_timed_out: workflow timed-out run run-1 timed out\n"),
    ("orphan", "error: workflow_continued_as_new: workflow orphan run run-1 continued as new, "
               "and its history names no next run\n"),
])
def test_result_of_a_run_that_did_not_complete_exits_1(
        fake: Fake, capsys: pytest.CaptureFixture[str], workflow_id: str, stderr: str) -> None:
    assert run(fake, capsys, "workflow", "result", "-w", workflow_id) == (1, "", stderr)
    code, out, err = run(fake, capsys, "workflow", "result", "-w", workflow_id, "--json")
    assert (code, err) == (1, stderr)
    assert json.loads(out)["workflow_id"] == workflow_id  # the description, for a script


def test_result_follows_continue_as_new_to_the_last_run(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "result", "-w", "chain") == (0, '"end"\n', "")
    assert [r[1:3] for r in fake.requests] == [
        (f"{WF}/chain/result", {"wait_ms": WAIT_MS}),
        # The next run is named by the closed run's last event, read alone.
        (f"{WF}/chain/history", {"run_id": "c1", "next_page_token": "7", "page_size": "1"}),
        (f"{WF}/chain/result", {"run_id": "c2", "wait_ms": WAIT_MS})]


def test_result_follows_a_retried_attempt_to_the_next(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "result", "-w", "retried") == (0, '"2nd"\n', "")
    assert [r[1:3] for r in fake.requests] == [
        (f"{WF}/retried/result", {"wait_ms": WAIT_MS}),
        (f"{WF}/retried/history", {"run_id": "r1", "next_page_token": "5", "page_size": "1"}),
        (f"{WF}/retried/result", {"run_id": "r2", "wait_ms": WAIT_MS})]


def test_result_gives_up_at_its_timeout(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "result", "-w", "forever", "--timeout", "45") == (
        1, "", "error: timeout: workflow forever is still running after --timeout 45s\n")
    # The last poll asks the node to wait only for what is left of --timeout.
    assert [r[2]["wait_ms"] for r in fake.requests] == [WAIT_MS, "15000"]


def test_result_asks_again_while_a_leader_moves(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "result", "-w", "flaky") == (0, "2\n", "")
    assert fake.clock.sleeps_s == [cli_wait.RETRY_PAUSE_S]
    # Anything else is an answer, not a moving leader: reported at once.
    assert run(fake, capsys, "workflow", "result", "-w", "missing") == (
        1, "", "error: not_found: no workflow 'missing'\n")
    assert len(fake.calls_to("/missing/result")) == 1
    assert fake.clock.sleeps_s == [cli_wait.RETRY_PAUSE_S]


def test_execute_starts_then_waits_for_that_run(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "execute", "-w", "done", "-t", "Checkout",
                       "-q", "orders", "-i", "[1]", "--request-id", "e-1")
    assert (code, out) == (0, 'started workflow done run run-1\n{"total": 3}\n')
    assert fake.requests == [
        ("POST", WF, {}, {"workflow_id": "done", "workflow_type": "Checkout",
                          "task_queue": "orders", "input": [1], "request_id": "e-1"}),
        ("GET", f"{WF}/done/result", {"run_id": "run-1", "wait_ms": WAIT_MS}, None)]
    code, out, _ = run(fake, capsys, "workflow", "execute", "-w", "done", "-t", "T", "-q", "q",
                       "--json")
    assert code == 0 and out.count("\n") == 1 and json.loads(out)["result"] == {"total": 3}
    code, out, err = run(fake, capsys, "workflow", "execute", "-w", "failed", "-t", "T",
                         "-q", "q")
    assert (code, out) == (1, "started workflow failed run run-1\n")
    assert err.startswith("error: workflow_failed: ")


# --- query ----------------------------------------------------------------------------------

def test_query_sends_type_args_and_run_id(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "query", "-w", "wf", "--type", "total",
                       "-i", '[1, "x"]', "--run-id", "r2")
    assert (code, out) == (0, '{"total": 3}\n')
    assert fake.requests[-1] == ("POST", f"{WF}/wf/query", {},
                                 {"query_type": "total", "args": [1, "x"], "run_id": "r2"})
    code, out, _ = run(fake, capsys, "workflow", "query", "-w", "wf", "--type", "total",
                       "--json")
    assert (code, json.loads(out)) == (0, {"result": {"total": 3}})
    assert fake.requests[-1][3] == {"query_type": "total"}


def test_a_failed_query_exits_1(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "query", "-w", "wf", "--type", "boom") == (
        1, "", "error: query_failed: the query failed in the worker: boom\n")


def test_query_args_must_be_a_json_list(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run(fake, capsys, "workflow", "query", "-w", "wf", "--type", "t", "-i", '{"a": 1}')
    assert caught.value.code == 2
    assert "not a JSON list" in capsys.readouterr().err
    assert fake.requests == []


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "soon"])
def test_timeout_must_be_a_positive_number(
        fake: Fake, capsys: pytest.CaptureFixture[str], seconds: str) -> None:
    with pytest.raises(SystemExit) as caught:
        run(fake, capsys, "workflow", "result", "-w", "done", "--timeout", seconds)
    assert caught.value.code == 2
    assert "--timeout" in capsys.readouterr().err
    assert fake.requests == []


# --- --run-id -------------------------------------------------------------------------------

def test_run_id_is_passed_through(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, capsys, "workflow", "describe", "-w", "wf", "--run-id", "r2")[0] == 0
    assert fake.requests[-1][1:3] == (f"{WF}/wf", {"run_id": "r2"})
    code, out, _ = run(fake, capsys, "workflow", "show", "-w", "wf", "-r", "r2", "--json")
    assert code == 0 and len(json.loads(out)["events"]) == 5
    assert [r[2] for r in fake.calls_to("/history")] == [
        {"run_id": "r2"}, {"run_id": "r2", "next_page_token": "p2"},
        {"run_id": "r2", "next_page_token": "p3"}]
    for argv, body in [
            (("signal", "--name", "go", "--request-id", "s-1"),
             {"signal_name": "go", "input": None, "request_id": "s-1", "run_id": "r2"}),
            (("cancel", "--reason", "late", "--request-id", "c-1"),
             {"reason": "late", "request_id": "c-1", "run_id": "r2"}),
            (("terminate",), {"reason": "", "run_id": "r2"})]:
        assert run(fake, capsys, "workflow", argv[0], "-w", "wf", "--run-id", "r2",
                   *argv[1:])[0] == 0
        assert fake.requests[-1][1:] == (f"{WF}/wf/{argv[0]}", {}, body)


# --- show --follow --------------------------------------------------------------------------

def test_show_follow_prints_events_as_they_come(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "show", "-w", "live", "--follow")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert [row[:3] for row in rows] == [
        ["ID", "TIME", "TYPE"], ["1", "t", "WorkflowExecutionStarted"],
        ["2", "t", "WorkflowTaskScheduled"], ["3", "t", "WorkflowExecutionSignaled"],
        ["4", "t", "WorkflowExecutionCompleted"]]
    # Pinned to the run described first; then paged from after the last event printed.
    assert fake.requests[0][1:3] == (f"{WF}/live", {})
    assert [r[2] for r in fake.requests[1:]] == [
        {"run_id": "run-1"}, {"run_id": "run-1", "next_page_token": "2"},
        {"run_id": "run-1", "next_page_token": "3"}, {"run_id": "run-1", "next_page_token": "3"},
        {"run_id": "run-1", "next_page_token": "4"}]
    assert fake.clock.sleeps_s == [cli_wait.FOLLOW_POLL_INTERVAL_S] * 3


def test_show_follow_json_prints_one_event_per_line(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "show", "-w", "live", "-f", "--run-id",
                       "run-1", "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["event_id"], e["event_type"]) for e in events] == [
        (1, "WorkflowExecutionStarted"), (2, "WorkflowTaskScheduled"),
        (3, "WorkflowExecutionSignaled"), (4, "WorkflowExecutionCompleted")]
    assert fake.calls_to("/live") == []  # --run-id given: nothing to pin


def test_show_follow_of_a_closed_run_stops_at_once(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "show", "-w", "done", "--follow", "--json")
    assert code == 0 and len(out.splitlines()) == 2
    assert len(fake.calls_to("/history")) == 1 and fake.clock.sleeps_s == []


def test_show_follow_gives_up_at_its_timeout(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(fake, capsys, "workflow", "show", "-w", "stuck", "-f", "--timeout",
                         "2.5")
    assert code == 1
    assert [line.split()[0] for line in out.splitlines()] == ["ID", "1"]
    assert err == "error: timeout: workflow stuck run run-1 is still running after --timeout 2.5s\n"
    assert fake.clock.sleeps_s == [1.0, 1.0, 0.5]


# --- reset ----------------------------------------------------------------------------------

def test_reset_sends_the_point_reason_and_run_and_prints_the_new_run(
        fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(fake, capsys, "workflow", "reset", "-w", "wf", "--type",
                       "FirstWorkflowTask", "--reason", "bad deploy")
    assert (code, out) == (0, "reset workflow wf: new run run-7\n")
    assert fake.requests[-1] == ("POST", f"{WF}/wf/reset", {}, {
        "reason": "bad deploy", "reset_type": "FirstWorkflowTask"})
    code, out, _ = run(fake, capsys, "workflow", "reset", "-w", "wf", "--event-id", "4",
                       "--reason", "r", "--run-id", "r2", "--request-id", "x-1", "--json")
    assert code == 0 and json.loads(out) == {"workflow_id": "wf", "run_id": "run-7"}
    assert fake.requests[-1][3] == {"reason": "r", "event_id": 4, "request_id": "x-1",
                                    "run_id": "r2"}


@pytest.mark.parametrize("argv", [
    ("--reason", "r"),                                           # no reset point
    ("--event-id", "4", "--type", "LastWorkflowTask", "--reason", "r"),  # two
    ("--event-id", "0", "--reason", "r"),
    ("--type", "Middle", "--reason", "r"),
    ("--type", "LastWorkflowTask"),                              # no reason
])
def test_reset_refuses_bad_arguments_before_any_request(
        fake: Fake, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as caught:
        run(fake, capsys, "workflow", "reset", "-w", "wf", *argv)
    assert caught.value.code == 2
    assert fake.requests == []
