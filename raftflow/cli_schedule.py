"""`raftflow schedule ...`: create, describe, list, update, pause, unpause, trigger, backfill
and delete schedules (Temporal's `temporal schedule` commands over raftflow's HTTP API,
docs/api.md "Schedules").

`create` and `update` take the whole schedule as flags (an update replaces it: give every flag
again). Durations are `30s`, `5m`, `1h30m`, `2d` or plain seconds; instants RFC 3339
(`2026-12-07T06:00:00Z`). Each command prints a line, a `key: value` block or a table, or with
`--json` the API's JSON answer.
"""

from __future__ import annotations

import argparse
import json
import re
import urllib.parse
import uuid
from typing import TextIO

from raftflow.cli_http import ApiClient, ClientCommand, client_parser
from raftflow.cli_output import JsonObject, print_table, records
from raftflow.protocol.rfc3339 import format_rfc3339_ms, parse_rfc3339_ms

NAMESPACE_DEFAULT = "default"
OVERLAPS = ("skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


def duration_ms_arg(text: str) -> int:
    """argparse type of a duration: `1h30m`, `10s`, `2d` or plain seconds; milliseconds."""
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    found = _DURATION.fullmatch(text)
    if not text or found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: not a duration (e.g. 30s, 5m, 1h30m, 2d)")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in found.groups())
    return round((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000)


def interval_arg(text: str) -> JsonObject:
    """`EVERY[/OFFSET]`, e.g. `1h/5m` (every hour at :05)."""
    every, _, offset = text.partition("/")
    interval: JsonObject = {"every_ms": duration_ms_arg(every)}
    if offset:
        interval["offset_ms"] = duration_ms_arg(offset)
    return interval


def instant_ms_arg(text: str) -> int:
    try:
        return parse_rfc3339_ms(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: not an RFC 3339 instant ({err})") from None


def _json_arg(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from None


def schedules_path(namespace: str, schedule_id: str | None = None, suffix: str = "") -> str:
    path = f"/api/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/schedules"
    if schedule_id is not None:
        path += "/" + urllib.parse.quote(schedule_id, safe="")
    return path + suffix


def _schedule(args: argparse.Namespace) -> JsonObject:
    spec: JsonObject = {"cron_expressions": args.cron or [], "intervals": args.interval or [],
                        "jitter_ms": args.jitter or 0, "time_zone_name": args.time_zone or ""}
    if args.start_at is not None:
        spec["start_at_ms"] = args.start_at
    if args.end_at is not None:
        spec["end_at_ms"] = args.end_at
    action: JsonObject = {"workflow_id": args.workflow_id, "workflow_type": args.type,
                          "task_queue": args.task_queue, "input": args.input}
    for flag in ("execution_timeout", "run_timeout"):
        if getattr(args, flag) is not None:
            action[f"{flag}_ms"] = getattr(args, flag)
    policies: JsonObject = {"overlap": args.overlap, "pause_on_failure": args.pause_on_failure}
    if args.catchup_window is not None:
        policies["catchup_window_ms"] = args.catchup_window
    state: JsonObject = {"paused": args.paused, "note": args.note or ""}
    if args.remaining_actions is not None:
        state.update(limited_actions=True, remaining_actions=args.remaining_actions)
    return {"spec": spec, "action": action, "policies": policies, "state": state}


def _request_id(args: argparse.Namespace) -> str:
    return str(args.request_id or uuid.uuid4())


def _create(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    body: JsonObject = {"schedule_id": args.schedule_id, "schedule": _schedule(args),
                        "request_id": _request_id(args),
                        "trigger_immediately": args.trigger_immediately}
    answer = api.call("POST", schedules_path(args.namespace), body)
    if not args.json:
        out.write(f"created schedule {args.schedule_id}\n")
    return answer


def _update(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    answer = api.call("POST", schedules_path(args.namespace, args.schedule_id, "/update"),
                      {"schedule": _schedule(args), "request_id": _request_id(args)})
    if not args.json:
        out.write(f"updated schedule {args.schedule_id}\n")
    return answer


def _describe(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    described = api.call("GET", schedules_path(args.namespace, args.schedule_id))
    if not args.json:
        info = described.get("info")
        info = info if isinstance(info, dict) else {}
        schedule = described.get("schedule")
        schedule = schedule if isinstance(schedule, dict) else {}
        state = schedule.get("state") if isinstance(schedule.get("state"), dict) else {}
        assert isinstance(state, dict)
        times = info.get("next_action_times_ms")
        rows: list[tuple[str, object]] = [
            ("schedule_id", described.get("schedule_id")),
            ("paused", state.get("paused")), ("note", state.get("note")),
            ("actions", info.get("num_actions")),
            ("missed (catch-up window)", info.get("num_actions_missed_catchup_window")),
            ("skipped (overlap)", info.get("num_actions_skipped_overlap")),
            ("running", [r.get("workflow_id") for r in records(info.get("running_actions"))]),
            ("next action times", [format_rfc3339_ms(t) for t in times[:3]]
             if isinstance(times, list) else []),
            ("spec", schedule.get("spec")), ("action", schedule.get("action")),
            ("policies", schedule.get("policies"))]
        width = max(len(k) for k, _ in rows) + 1
        for key, value in rows:
            shown = value if isinstance(value, str) else json.dumps(value)
            out.write(f"{key + ':':<{width}} {shown}\n")
    return described


def _list(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    listed = api.call("GET", schedules_path(args.namespace))
    if not args.json:
        rows = []
        for entry in records(listed.get("schedules")):
            times = entry.get("next_action_times_ms")
            following = (format_rfc3339_ms(times[0]) if isinstance(times, list) and times
                         else "-")
            rows.append((entry.get("schedule_id"), entry.get("workflow_type"),
                         "yes" if entry.get("paused") else "no", following))
        print_table(out, ("SCHEDULE ID", "WORKFLOW TYPE", "PAUSED", "NEXT ACTION"), rows)
    return listed


def _patch(args: argparse.Namespace, api: ApiClient, body: JsonObject) -> JsonObject:
    body["request_id"] = _request_id(args)
    return api.call("POST", schedules_path(args.namespace, args.schedule_id, "/patch"), body)


def _pause(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    answer = _patch(args, api, {"pause": args.note or ""})
    if not args.json:
        out.write(f"paused schedule {args.schedule_id}\n")
    return answer


def _unpause(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    answer = _patch(args, api, {"unpause": args.note or ""})
    if not args.json:
        out.write(f"unpaused schedule {args.schedule_id}\n")
    return answer


def _trigger(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    trigger: JsonObject = {} if args.overlap is None else {"overlap": args.overlap}
    answer = _patch(args, api, {"trigger_immediately": trigger})
    if not args.json:
        out.write(f"triggered schedule {args.schedule_id}\n")
    return answer


def _backfill(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    backfill: JsonObject = {"start_at_ms": args.start_at, "end_at_ms": args.end_at}
    if args.overlap is not None:
        backfill["overlap"] = args.overlap
    answer = _patch(args, api, {"backfills": [backfill]})
    if not args.json:
        out.write(f"backfilling schedule {args.schedule_id} from "
                  f"{format_rfc3339_ms(args.start_at)} to {format_rfc3339_ms(args.end_at)}\n")
    return answer


def _delete(args: argparse.Namespace, api: ApiClient, out: TextIO) -> JsonObject:
    answer = api.call("DELETE", schedules_path(args.namespace, args.schedule_id),
                      query={"request_id": _request_id(args)})
    if not args.json:
        out.write(f"deleted schedule {args.schedule_id}\n")
    return answer


# --- argument parsing ---------------------------------------------------------------------

def _parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
            command: ClientCommand, help_text: str, *, one: bool = True,
            ) -> argparse.ArgumentParser:
    parser = client_parser(subparsers, name, command, help_text)
    parser.add_argument("-n", "--namespace", default=NAMESPACE_DEFAULT)
    if one:
        parser.add_argument("-s", "--schedule-id", required=True)
        parser.add_argument("--request-id", default=None,
                            help="idempotency key: a repeated id gets the first answer")
    return parser


def _add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    spec = parser.add_argument_group("when (at least one --cron or --interval)")
    spec.add_argument("--cron", action="append", metavar="EXPRESSION",
                      help="cron expression, 5 to 7 fields (repeatable)")
    spec.add_argument("--interval", action="append", type=interval_arg,
                      metavar="EVERY[/OFFSET]", help="e.g. 10s, 1h/5m (repeatable)")
    spec.add_argument("--time-zone", default=None, help="IANA zone of the cron expressions")
    spec.add_argument("--jitter", type=duration_ms_arg, default=None)
    spec.add_argument("--start-at", type=instant_ms_arg, default=None)
    spec.add_argument("--end-at", type=instant_ms_arg, default=None)
    action = parser.add_argument_group("what")
    action.add_argument("-w", "--workflow-id", required=True,
                        help="each action's workflow id is this, '-', its nominal time")
    action.add_argument("-t", "--type", required=True, help="workflow type")
    action.add_argument("-q", "--task-queue", required=True)
    action.add_argument("-i", "--input", type=_json_arg, default=None, help="input as JSON")
    action.add_argument("--execution-timeout", type=duration_ms_arg, default=None)
    action.add_argument("--run-timeout", type=duration_ms_arg, default=None)
    policies = parser.add_argument_group("policies and state")
    policies.add_argument("--overlap", choices=OVERLAPS, default="skip")
    policies.add_argument("--catchup-window", type=duration_ms_arg, default=None)
    policies.add_argument("--pause-on-failure", action="store_true")
    policies.add_argument("--paused", action="store_true")
    policies.add_argument("--note", default=None)
    policies.add_argument("--remaining-actions", type=int, default=None)


def add_schedule_parsers(
        commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`raftflow schedule` and its subcommands."""
    schedule = commands.add_parser("schedule", help="create, inspect and control schedules")
    sc = schedule.add_subparsers(dest="schedule_command", required=True)
    create = _parser(sc, "create", _create, "create a schedule")
    _add_schedule_arguments(create)
    create.add_argument("--trigger-immediately", action="store_true",
                        help="also take one action now")
    _add_schedule_arguments(_parser(sc, "update", _update,
                                    "replace a schedule (give every flag again)"))
    _parser(sc, "describe", _describe, "show a schedule, its counters and next times")
    _parser(sc, "list", _list, "list the namespace's schedules", one=False)
    for name, command, help_text in (("pause", _pause, "pause a schedule"),
                                     ("unpause", _unpause, "unpause a schedule")):
        _parser(sc, name, command, help_text).add_argument("--note", default=None)
    trigger = _parser(sc, "trigger", _trigger, "take an action now (even when paused)")
    trigger.add_argument("--overlap", choices=OVERLAPS, default=None)
    backfill = _parser(sc, "backfill", _backfill,
                       "take the actions of a past time range now")
    backfill.add_argument("--start-at", type=instant_ms_arg, required=True)
    backfill.add_argument("--end-at", type=instant_ms_arg, required=True)
    backfill.add_argument("--overlap", choices=OVERLAPS, default=None)
    _parser(sc, "delete", _delete, "delete a schedule (its runs go on)")
