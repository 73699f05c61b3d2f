"""`raftflow namespace create|describe|list|update|add-search-attribute`: the namespace
commands of the CLI.

Each is an HTTP client of one node (`--address`; any node, the change is forwarded to the
cluster map's leader). `--json` prints the API's answer object; the human form is a
`key: value` block for one namespace and a table for the list. Durations are typed the way
Temporal's CLI takes them (`20s`, `72h`, `3d`, `1h30m`) or as plain milliseconds.

A call answered 503 or 504 (the map's leader is moving; the change may still apply) is sent
again for up to `RETRY_FOR_S`: create, update and add-search-attribute are idempotent, so a
second send of a change that did apply is answered like the first (create: 200 with the same
settings).
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.parse
from typing import Protocol, TextIO

from raftflow.cli_http import TRANSIENT_ERROR_CODES
from raftflow.cli_output import CliError, JsonObject, print_table, records
from raftflow.cluster.limit_flags import rate_per_s_arg
from raftflow.protocol.limits import DURATION_MS_MAX
from raftflow.protocol.namespaces import RETENTION_MS_MIN
from raftflow.protocol.search_attributes import AttributeType

# Same pacing as the membership commands: the map's leader is re-elected within seconds.
RETRY_PAUSE_S = 1.0
RETRY_FOR_S = 60.0

# A duration longer than this is not one a person types; refusing it early keeps the parser
# from turning a pasted blob into a giant integer.
DURATION_TEXT_LENGTH_MAX = 64
# Largest unit first: a compound duration names each unit at most once, in this order.
_UNIT_MS: dict[str, int] = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_UNIT_ORDER = tuple(_UNIT_MS)
# "ms" before "m": `1ms` is a millisecond, `1m5s` a minute and five seconds. ASCII digits only:
# `\d` alone also takes other scripts' digits, which int() would read.
_COMPONENT = re.compile(r"([0-9]+)(ms|d|h|m|s)")
_DURATION_FORMS = ("an integer of milliseconds (1500) or integers with units ms, s, m, h, d, "
                   "largest first (20s, 72h, 3d, 1h30m)")

_NAMESPACES_PATH = "/api/v1/namespaces"
_UPDATE_NEEDS_AN_OPTION = ("give --retention, --description, --start-rate or --poll-rate "
                           "(one or more)")
# `update --start-rate default`: the namespace goes back to the cluster's default limit.
_CLUSTER_DEFAULT = "default"
# (flag, API field, what it limits)
_RATE_FLAGS = (("--start-rate", "start_rate_per_s", "workflow starts and signals"),
               ("--poll-rate", "poll_rate_per_s", "task polls"))


class Api(Protocol):
    def call(self, method: str, path: str, body: JsonObject | None = None,
             query: dict[str, str] | None = None) -> JsonObject: ...


# --- durations ------------------------------------------------------------------------------

def parse_duration_ms(text: str) -> int:
    """Milliseconds of `text`: `1500` (ms), `20s`, `72h`, `3d`, or a compound like `1h30m`.

    Raises ValueError naming the accepted forms for anything else, for a unit repeated or out
    of order (`30m1h`), and for a duration over DURATION_MS_MAX.
    """
    if len(text) > DURATION_TEXT_LENGTH_MAX:
        raise ValueError(f"{text[:20]!r}... is too long for a duration; use {_DURATION_FORMS}")
    plain_ms = text.isascii() and text.isdigit()
    total_ms = int(text) if plain_ms else _parse_with_units(text)
    if total_ms > DURATION_MS_MAX:
        raise ValueError(f"{text!r} is longer than the longest duration, "
                         f"{format_duration_ms(DURATION_MS_MAX)}")
    assert 0 <= total_ms <= DURATION_MS_MAX
    return total_ms


def _parse_with_units(text: str) -> int:
    position = 0
    total_ms = 0
    previous_rank = -1
    for match in _COMPONENT.finditer(text):
        rank = _UNIT_ORDER.index(match.group(2))
        if match.start() != position or rank <= previous_rank:
            break
        total_ms += int(match.group(1)) * _UNIT_MS[match.group(2)]
        position, previous_rank = match.end(), rank
    if position == 0 or position != len(text):
        raise ValueError(f"{text!r} is not a duration; use {_DURATION_FORMS}")
    return total_ms


def format_duration_ms(duration_ms: int) -> str:
    """The shortest compound form of a duration, largest unit first: `3d`, `1h30m`, `1s500ms`.

    `parse_duration_ms(format_duration_ms(x)) == x` for every x in 0..DURATION_MS_MAX.
    """
    assert duration_ms >= 0, duration_ms
    if duration_ms == 0:
        return "0s"
    parts: list[str] = []
    left_ms = duration_ms
    for unit, unit_ms in _UNIT_MS.items():
        count, left_ms = divmod(left_ms, unit_ms)
        if count:
            parts.append(f"{count}{unit}")
    assert left_ms == 0
    return "".join(parts)


def retention_ms_arg(text: str) -> int:
    """argparse type of `--retention`: a duration within the API's retention bounds."""
    try:
        retention_ms = parse_duration_ms(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if retention_ms < RETENTION_MS_MIN:
        raise argparse.ArgumentTypeError(
            f"{text!r} is shorter than the shortest retention, "
            f"{format_duration_ms(RETENTION_MS_MIN)}")
    return retention_ms


def rate_or_default_arg(text: str) -> float | str:
    """argparse type of `update --start-rate/--poll-rate`: a rate, or `default`."""
    return _CLUSTER_DEFAULT if text == _CLUSTER_DEFAULT else rate_per_s_arg(text)


# --- commands: each returns the JSON object that `--json` prints ----------------------------

def _call(api: Api, method: str, path: str, body: JsonObject | None = None) -> JsonObject:
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            return api.call(method, path, body)
        except CliError as error:
            if error.code not in TRANSIENT_ERROR_CODES or time.monotonic() > deadline:
                raise
        time.sleep(RETRY_PAUSE_S)


def _namespace_path(name: str) -> str:
    return f"{_NAMESPACES_PATH}/{urllib.parse.quote(name, safe='')}"


def _retention_text(value: object, *, with_ms: bool) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return "-" if value is None else str(value)
    human = format_duration_ms(value)
    return f"{human} ({value} ms)" if with_ms else human


def _description_text(value: object) -> str:
    return str(value) if value else "-"


def _rate_text(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}/s"
    return "cluster default"


def _print_namespace(out: TextIO, info: JsonObject) -> None:
    rows = [("name", str(info.get("name"))),
            ("retention", _retention_text(info.get("retention_ms"), with_ms=True)),
            ("description", _description_text(info.get("description"))),
            ("start rate", _rate_text(info.get("start_rate_per_s"))),
            ("poll rate", _rate_text(info.get("poll_rate_per_s")))]
    attributes = info.get("search_attributes")
    if isinstance(attributes, dict) and attributes:  # shown once a namespace has some
        rows.append(("search attributes",
                     ", ".join(f"{name} ({kind})" for name, kind in attributes.items())))
    width = max(len(key) for key, _ in rows) + 1
    for key, shown in rows:
        out.write(f"{key + ':':<{width}} {shown}\n")


def namespace_create(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    body: JsonObject = {"name": args.name, "retention_ms": args.retention,
                        "description": args.description or ""}
    for _, field, _ in _RATE_FLAGS:  # a rate left out is the cluster's default
        rate = getattr(args, field.removesuffix("_rate_per_s") + "_rate")
        if rate is not None:
            body[field] = rate
    info = _call(api, "POST", _NAMESPACES_PATH, body)
    if not args.json:
        _print_namespace(out, info)
    return info


def namespace_describe(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    info = _call(api, "GET", _namespace_path(args.name))
    if not args.json:
        _print_namespace(out, info)
    return info


def namespace_list(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    listed = _call(api, "GET", _NAMESPACES_PATH)
    if not args.json:
        print_table(out, ("NAME", "RETENTION", "DESCRIPTION"), [
            (n.get("name"), _retention_text(n.get("retention_ms"), with_ms=False),
             _description_text(n.get("description")))
            for n in records(listed.get("namespaces"))])
    return listed


def namespace_update(args: argparse.Namespace, api: Api, out: TextIO) -> JsonObject:
    """PATCH the options given; refuses (usage error, exit 2) before any call if none is."""
    rates = {"start_rate_per_s": args.start_rate, "poll_rate_per_s": args.poll_rate}
    if args.retention is None and args.description is None and all(
            rate is None for rate in rates.values()):
        args.usage_error(_UPDATE_NEEDS_AN_OPTION)  # argparse's error(): exits with status 2
    body: JsonObject = {"retention_ms": args.retention, "description": args.description}
    for field, rate in rates.items():  # left out: unchanged; null: the cluster's default
        if rate is not None:
            body[field] = None if rate == _CLUSTER_DEFAULT else rate
    info = _call(api, "PATCH", _namespace_path(args.name), body)
    if not args.json:
        _print_namespace(out, info)
    return info


def namespace_add_search_attribute(args: argparse.Namespace, api: Api,
                                   out: TextIO) -> JsonObject:
    """Register a search attribute; prints the namespace with it."""
    body: JsonObject = {"name": args.attribute_name, "type": args.attribute_type}
    info = _call(api, "POST", _namespace_path(args.name) + "/search-attributes", body)
    if not args.json:
        _print_namespace(out, info)
    return info


def search_attribute_value_arg(text: str) -> tuple[str, object]:
    """`NAME=VALUE` of `workflow start --search-attribute`: VALUE as JSON (`5`, `true`,
    `"5"`, `["a","b"]`), else the text itself (a keyword or an RFC 3339 datetime need no
    quotes). The namespace's registry types it on the server, which names a mismatch."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def add_search_attribute_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAMESPACE", help="the namespace's name")
    parser.add_argument("--name", dest="attribute_name", required=True, metavar="NAME",
                        help="the attribute's name, as queries write it (CustomerId)")
    parser.add_argument("--type", dest="attribute_type", required=True,
                        choices=[t.value for t in AttributeType],
                        help="the attribute's type; it never changes once registered")


def add_arguments(create: argparse.ArgumentParser, describe: argparse.ArgumentParser,
                  update: argparse.ArgumentParser) -> None:
    """The arguments of the namespace subcommands (`list` takes only the common ones)."""
    for parser in (create, describe, update):
        parser.add_argument("name", metavar="NAME", help="the namespace's name")
    create.add_argument("--retention", type=retention_ms_arg, default=None, metavar="DURATION",
                        help="how long closed runs are kept: 20s, 72h, 3d, 1h30m or plain "
                             "milliseconds (default: the server's default retention)")
    create.add_argument("--description", default="", metavar="TEXT")
    update.add_argument("--retention", type=retention_ms_arg, default=None, metavar="DURATION",
                        help="new retention: 20s, 72h, 3d, 1h30m or plain milliseconds")
    update.add_argument("--description", default=None, metavar="TEXT",
                        help="new description ('' clears it)")
    for flag, _, limited in _RATE_FLAGS:
        dest = flag.removeprefix("--").replace("-", "_")
        create.add_argument(flag, dest=dest, type=rate_per_s_arg, default=None, metavar="PER_S",
                            help=f"{limited} per second over the cluster (default: the "
                                 "cluster's default, the nodes' --default-*-rate)")
        update.add_argument(flag, dest=dest, type=rate_or_default_arg, default=None,
                            metavar="PER_S|default",
                            help=f"new limit of {limited} per second over the cluster, or "
                                 "'default' for the cluster's default")
    # argparse cannot require "at least one of": the command checks, and reports through the
    # update parser so the refusal looks and exits (2) like every other usage error.
    update.set_defaults(usage_error=update.error)
