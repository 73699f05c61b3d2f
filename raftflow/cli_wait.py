"""`raftflow workflow result`, the wait of `workflow execute`, and `workflow show [--follow]`:
the workflow commands that read a run until it closes.

Theory of operation. `result` long-polls `GET .../result?wait_ms=`: the server holds each call
up to RESULT_POLL_WAIT_MS and answers 204 while the run is open, 200 with its description once
it is closed; the command polls again until then, or until `--timeout` runs out. A run that
continued as new, or failed or timed out into the next attempt of its retry policy, is followed
to its next run, as Temporal's `result` and the SDK's `handle.result()` do. The description
cannot name that run (its `continued_execution_run_id` is the *previous* run), so the next
run's id is read from the closed run's last event: `new_execution_run_id` of
WorkflowExecutionContinuedAsNew, or of WorkflowExecutionFailed / TimedOut when it is not "".

`show` prints every page of a run's history. `--follow` first pins the run (describe), so a run
that continues as new meanwhile does not switch the pages to its successor; then, every
FOLLOW_POLL_INTERVAL_S, it asks for the events after the last one printed (the API has no
history long poll; a page token is the id of the page's first event) until the close event,
always the history's last (DESIGN §4 I3), has been printed. A follow stops at that close: it
does not go on into a continued run. With `--json`, `show --follow` prints one JSON event per
line as they come (JSON Lines), not one object at the end: a reader of a stream cannot wait for
the end.

A wait outlives leader moves: a 503/504 answer (TRANSIENT_ERROR_CODES) is asked again after
RETRY_PAUSE_S, up to TRANSIENT_RETRIES_MAX times in a row, within `--timeout`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from raftflow.cli_http import TRANSIENT_ERROR_CODES, workflows_path
from raftflow.cli_output import (
    CliError,
    JsonObject,
    column_widths,
    print_row,
    print_table,
    records,
)
from raftflow.protocol.events import CLOSE_EVENT_TYPES, EventType
from raftflow.protocol.results import WorkflowExecutionStatus

# One result long poll. The API allows up to 60 s (api/query_handlers.py RESULT_WAIT_MS_MAX);
# half of it is the SDK's choice too, and keeps a proxy's idle timeout out of the way.
RESULT_POLL_WAIT_MS = 30_000
# How often `show --follow` asks for new events: a person watching sees them within a second,
# and a node answers one small read per second per follower.
FOLLOW_POLL_INTERVAL_S = 1.0
# A history of 51,200 events needs far fewer pages; this stops a server that never ends one.
HISTORY_PAGES_MAX = 10_000
# Runs `result` follows through continue-as-new before it gives up (the SDK's bound).
CONTINUE_AS_NEW_FOLLOW_MAX = 10_000
# Same pacing as the namespace commands: a shard's leader is re-elected within seconds.
RETRY_PAUSE_S = 1.0
TRANSIENT_RETRIES_MAX = 60
# A call made when a wait's --timeout is (nearly) over still gets this long for its answer.
CALL_TIMEOUT_S_MIN = 1.0

_COMPLETED = WorkflowExecutionStatus.COMPLETED.value
_CONTINUED_AS_NEW = WorkflowExecutionStatus.CONTINUED_AS_NEW.value
# Closes whose last event may name a next run: continue-as-new, and a retried attempt.
_MAY_NAME_NEXT_RUN = frozenset({_CONTINUED_AS_NEW, WorkflowExecutionStatus.FAILED.value,
                                WorkflowExecutionStatus.TIMED_OUT.value})
_NEXT_RUN_EVENTS = frozenset({EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
                              EventType.WORKFLOW_EXECUTION_FAILED,
                              EventType.WORKFLOW_EXECUTION_TIMED_OUT})
_RUNNING = WorkflowExecutionStatus.RUNNING.value
_EVENT_HEADERS = ("ID", "TIME", "TYPE", "ATTRIBUTES")


class Api(Protocol):
    def call(self, method: str, path: str, body: JsonObject | None = None,
             query: dict[str, str] | None = None, *,
             timeout_s: float | None = None) -> JsonObject: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a command's wait ends: `at_s` on the monotonic clock, or never (None)."""

    at_s: float | None
    timeout_s: float | None

    @staticmethod
    def after(timeout_s: float | None) -> Deadline:
        assert timeout_s is None or timeout_s > 0, timeout_s
        return Deadline(None if timeout_s is None else time.monotonic() + timeout_s, timeout_s)

    def remaining_s(self) -> float | None:
        return None if self.at_s is None else self.at_s - time.monotonic()

    def passed(self) -> bool:
        remaining_s = self.remaining_s()
        return remaining_s is not None and remaining_s <= 0

    def ran_out(self, what: str) -> CliError:
        return CliError("timeout", f"{what} after --timeout {self.timeout_s:g}s")

    def call_timeout_s(self, answer_timeout_s: float) -> float:
        """A call's bound: its answer's, cut to what is left of the wait, but never below
        CALL_TIMEOUT_S_MIN (the last look after a follow's final pause is made at the end)."""
        remaining_s = self.remaining_s()
        if remaining_s is None:
            return answer_timeout_s
        return min(answer_timeout_s, max(remaining_s, CALL_TIMEOUT_S_MIN))


def _call(api: Api, path: str, query: dict[str, str], *, timeout_s: float,
          deadline: Deadline) -> JsonObject:
    """One GET, asked again after a transient error while the deadline allows."""
    for attempt in range(TRANSIENT_RETRIES_MAX + 1):
        try:
            return api.call("GET", path, query=query, timeout_s=timeout_s)
        except CliError as error:
            if (error.code not in TRANSIENT_ERROR_CODES or attempt == TRANSIENT_RETRIES_MAX
                    or deadline.passed()):
                raise
        time.sleep(RETRY_PAUSE_S)
    raise AssertionError("unreachable: the last attempt returns or raises")


# --- result ---------------------------------------------------------------------------------

def wait_for_result(api: Api, args: argparse.Namespace, run_id: str | None) -> JsonObject:
    """The closed description of `run_id` (default: the current run), or of the last run it
    continued as new or was retried into; raises CliError `timeout` if `--timeout` runs out
    first."""
    deadline = Deadline.after(args.wait_timeout_s)
    for _ in range(CONTINUE_AS_NEW_FOLLOW_MAX):
        closed = _wait_closed(api, args, run_id, deadline)
        if closed.get("status") not in _MAY_NAME_NEXT_RUN:
            return closed
        next_run_id = _next_run_id(api, args, closed, deadline)
        if next_run_id is None:
            return closed  # reported as it is: the history does not name a next run
        if next_run_id == closed.get("run_id"):
            raise CliError("bad_response", f"run {next_run_id} names itself as its next run")
        run_id = next_run_id
    raise CliError("bad_response", f"workflow {args.workflow_id} continued as new more than "
                                   f"{CONTINUE_AS_NEW_FOLLOW_MAX} times")


def _wait_closed(api: Api, args: argparse.Namespace, run_id: str | None,
                 deadline: Deadline) -> JsonObject:
    path = workflows_path(args.namespace, args.workflow_id, "result")
    while True:  # each poll is bounded; the run's close or the deadline ends the loop
        remaining_s = deadline.remaining_s()
        wait_ms = RESULT_POLL_WAIT_MS if remaining_s is None else max(
            0, min(RESULT_POLL_WAIT_MS, int(remaining_s * 1000)))
        answer = _call(api, path, {"run_id": run_id or "", "wait_ms": str(wait_ms)},
                       timeout_s=wait_ms / 1000 + args.timeout, deadline=deadline)
        if answer.get("status") not in (None, _RUNNING):  # a 204 (still running) reads as {}
            return answer
        if deadline.passed():
            run = f" run {run_id}" if run_id else ""
            raise deadline.ran_out(f"workflow {args.workflow_id}{run} is still running")


def _next_run_id(api: Api, args: argparse.Namespace, closed: JsonObject,
                 deadline: Deadline) -> str | None:
    """The run `closed` continued as new or was retried into, named by its last (close)
    event; None when it names none (a failure the retry policy did not retry)."""
    run_id, length = closed.get("run_id"), closed.get("history_length")
    if not isinstance(run_id, str) or not isinstance(length, int) or length < 1:
        return None
    page = _call(api, workflows_path(args.namespace, args.workflow_id, "history"),
                 {"run_id": run_id, "next_page_token": str(length), "page_size": "1"},
                 timeout_s=deadline.call_timeout_s(args.timeout), deadline=deadline)
    events = records(page.get("events"))
    if not events or events[-1].get("event_type") not in _NEXT_RUN_EVENTS:
        return None
    attributes = events[-1].get("attributes")
    next_run_id = attributes.get("new_execution_run_id") if isinstance(attributes, dict) else None
    return next_run_id if isinstance(next_run_id, str) and next_run_id else None


def report_result(args: argparse.Namespace, closed: JsonObject, out: TextIO) -> JsonObject:
    """Print a completed run's result (JSON); any other close is a CliError
    `workflow_<status>` that says why, carrying the description for `--json`."""
    status = str(closed.get("status"))
    if status == _COMPLETED:
        if not args.json:
            out.write(json.dumps(closed.get("result")) + "\n")
        return closed
    failure = closed.get("failure")
    failure = failure if isinstance(failure, dict) else {}
    reason = closed.get("reason")
    why = ": ".join(str(part) for part in (failure.get("type"), failure.get("message")) if part)
    details = {
        WorkflowExecutionStatus.FAILED.value: "failed" + (f": {why}" if why else ""),
        WorkflowExecutionStatus.TERMINATED.value: "was terminated" + (
            f": {reason}" if reason else ""),
        WorkflowExecutionStatus.CANCELED.value: "was canceled",
        WorkflowExecutionStatus.TIMED_OUT.value: "timed out",
        _CONTINUED_AS_NEW: "continued as new, and its history names no next run",
    }
    detail = details.get(status, f"closed with status {status}")
    raise CliError(f"workflow_{status.lower()}", f"workflow {closed.get('workflow_id')} run "
                   f"{closed.get('run_id')} {detail}", answer=closed)


def workflow_result(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    """Wait for the run to close; print its result, or fail with why it did not complete."""
    return report_result(args, wait_for_result(api, args, args.run_id), out)


# --- show -----------------------------------------------------------------------------------

def workflow_show(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject | None:
    """Print a run's whole history; with --follow, then its new events until it closes."""
    deadline = Deadline.after(args.wait_timeout_s)
    run_id = args.run_id
    if args.follow and run_id is None:  # pinned: a continue-as-new must not switch runs
        described = _call(api, workflows_path(args.namespace, args.workflow_id), {},
                          timeout_s=deadline.call_timeout_s(args.timeout), deadline=deadline)
        run_id = str(described.get("run_id") or "") or None
    events = _history_from(api, args, run_id, "", deadline)
    if args.follow:
        _follow(api, args, out, run_id, events, deadline)
        return None
    if not args.json:
        print_table(out, _EVENT_HEADERS, [_event_row(e) for e in events])
    return {"workflow_id": args.workflow_id, "events": events}


def _follow(api: Api, args: argparse.Namespace, out: TextIO, run_id: str | None,
            events: list[JsonObject], deadline: Deadline) -> None:
    widths = column_widths(_EVENT_HEADERS, [_event_row(e) for e in events])
    if not args.json:
        print_row(out, _EVENT_HEADERS, widths)
    batch, last_event_id = events, 0
    while True:  # each round is bounded; the close event or the deadline ends the loop
        for event in batch:
            event_id = _event_id(event)
            if event_id != last_event_id + 1:  # ids are contiguous from 1 (DESIGN §4 I3)
                raise CliError("bad_response", f"history event {event_id} after {last_event_id}")
            last_event_id = event_id
            if args.json:
                out.write(json.dumps(event) + "\n")
            else:
                print_row(out, _event_row(event), widths)
        out.flush()  # a reader at the other end of a pipe sees each event as it comes
        if batch and batch[-1].get("event_type") in CLOSE_EVENT_TYPES:
            return
        remaining_s = deadline.remaining_s()
        if remaining_s is not None and remaining_s <= 0:
            run = f" run {run_id}" if run_id else ""
            raise deadline.ran_out(f"workflow {args.workflow_id}{run} is still running")
        time.sleep(FOLLOW_POLL_INTERVAL_S if remaining_s is None
                   else min(FOLLOW_POLL_INTERVAL_S, remaining_s))
        batch = _history_from(api, args, run_id, str(last_event_id + 1), deadline)


def _history_from(api: Api, args: argparse.Namespace, run_id: str | None, token: str,
                  deadline: Deadline) -> list[JsonObject]:
    """Every page of the history from `token` ("": the first event) to its current end."""
    path = workflows_path(args.namespace, args.workflow_id, "history")
    events: list[JsonObject] = []
    for page_index in range(HISTORY_PAGES_MAX):
        if page_index > 0 and deadline.passed():  # the first page of a look is always asked
            raise deadline.ran_out(f"history of workflow {args.workflow_id} not read in full")
        page = _call(api, path, {"run_id": run_id or "", "next_page_token": token},
                     timeout_s=deadline.call_timeout_s(args.timeout), deadline=deadline)
        events.extend(records(page.get("events")))
        token = str(page.get("next_page_token") or "")
        if not token:
            return events
    raise CliError("bad_response", f"history did not end after {HISTORY_PAGES_MAX} pages")


def _event_id(event: JsonObject) -> int:
    event_id = event.get("event_id")
    if not isinstance(event_id, int) or isinstance(event_id, bool):
        raise CliError("bad_response", f"history event without an integer event_id: {event}")
    return event_id


def _event_row(event: JsonObject) -> Sequence[object]:
    return (event.get("event_id"), event.get("timestamp"), event.get("event_type"),
            json.dumps(event.get("attributes", {}), separators=(",", ":")))
