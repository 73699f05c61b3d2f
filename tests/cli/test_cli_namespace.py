"""Goal: `raftflow namespace create|describe|list|update` parse durations strictly, send the
documented requests, print a readable form by default and the API's JSON with `--json`, retry
503/504 answers (the commands are idempotent) and nothing else, and refuse misuse before any
call with argparse's usage error (exit 2).

Method: duration parsing is checked on its own (tables of valid and invalid forms, the bounds,
and a hypothesis round trip with the human form). The commands run through the real parser,
`cli.main(argv)`, with `cli.ApiClient` replaced by a fake that answers a scripted sequence and
records every call; the retry pause is patched to zero.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftflow import cli, cli_namespace
from raftflow.cli_namespace import format_duration_ms, parse_duration_ms
from raftflow.cli_output import CliError, JsonObject
from raftflow.protocol.limits import DURATION_MS_MAX
from raftflow.protocol.namespaces import RETENTION_MS_MIN

ORDERS: JsonObject = {"name": "orders", "retention_ms": 259_200_000, "description": "shop"}


class ScriptedApi:
    def __init__(self, *answers: JsonObject | CliError) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, JsonObject | None]] = []
        self.addresses: list[str] = []  # the --address of each client the CLI made
        self.tokens: list[str | None] = []  # the bearer token of each client the CLI made

    def call(self, method: str, path: str, body: JsonObject | None = None,
             query: dict[str, str] | None = None) -> JsonObject:
        assert not query, "the namespace API takes no query parameters"
        self.calls.append((method, path, body))
        answer = self.answers.pop(0)
        if isinstance(answer, CliError):
            raise answer
        return answer


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> ScriptedApi:
    """The fake every `cli.main` call of the test talks to; fill `answers` before running."""
    fake = ScriptedApi()

    def client(address: str, timeout_s: float, *, token: str | None = None,
               ssl_context: object = None) -> ScriptedApi:
        fake.addresses.append(address)
        fake.tokens.append(token)
        return fake

    monkeypatch.setattr(cli, "ApiClient", client)
    monkeypatch.setattr(cli_namespace, "RETRY_PAUSE_S", 0.0)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["namespace", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        cli.main(["namespace", *argv])
    assert caught.value.code == 2
    return capsys.readouterr().err


# --- durations ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected_ms"), [
    ("0", 0), ("1500", 1_500), ("007", 7), ("1ms", 1), ("20s", 20_000), ("5m", 300_000),
    ("72h", 259_200_000), ("3d", 259_200_000), ("1h30m", 5_400_000), ("1m5s", 65_000),
    ("1d2h3m4s5ms", 93_784_005), ("90m", 5_400_000), ("1s500ms", 1_500),
    (str(DURATION_MS_MAX), DURATION_MS_MAX), ("3650d", DURATION_MS_MAX),
])
def test_valid_durations(text: str, expected_ms: int) -> None:
    assert parse_duration_ms(text) == expected_ms


@pytest.mark.parametrize("text", [
    "", "s", "h1", "-1", "-5s", "+5s", "1.5h", "1 h", " 20s", "20s ", "20S", "1w", "1y",
    "1h30", "30m1h", "1m1m", "1ms1s", "1h_30m", "1e3", "٣s", "١٢", "0x10",
])
def test_invalid_durations_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration; use .*20s, 72h, 3d, 1h30m"):
        parse_duration_ms(text)


@pytest.mark.parametrize("text", [str(DURATION_MS_MAX + 1), "3651d", "3650d1ms"])
def test_durations_over_the_protocol_maximum_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="longer than the longest duration, 3650d"):
        parse_duration_ms(text)


def test_an_overlong_text_is_refused_before_parsing() -> None:
    with pytest.raises(ValueError, match="too long for a duration"):
        parse_duration_ms("1" * 65)


@pytest.mark.parametrize(("duration_ms", "text"), [
    (0, "0s"), (1, "1ms"), (1_000, "1s"), (20_000, "20s"), (5_400_000, "1h30m"),
    (259_200_000, "3d"), (93_784_005, "1d2h3m4s5ms"), (DURATION_MS_MAX, "3650d"),
])
def test_human_form_of_a_duration(duration_ms: int, text: str) -> None:
    assert format_duration_ms(duration_ms) == text


@given(st.integers(min_value=0, max_value=DURATION_MS_MAX))
def test_the_human_form_parses_back_to_the_same_duration(duration_ms: int) -> None:
    assert parse_duration_ms(format_duration_ms(duration_ms)) == duration_ms


@pytest.mark.parametrize(("argv", "message"), [
    (("create", "a", "--retention", "3 days"),
     "argument --retention: '3 days' is not a duration; use an integer of milliseconds"),
    (("update", "a", "--retention", "1h30x"), "argument --retention: '1h30x' is not a duration"),
    (("create", "a", "--retention", str(RETENTION_MS_MIN - 1)),
     "argument --retention: '999' is shorter than the shortest retention, 1s"),
    (("create", "a", "--retention", "3651d"), "argument --retention: '3651d' is longer than"),
])
def test_a_bad_retention_is_a_usage_error_before_any_call(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
        message: str) -> None:
    assert message in usage_error(capsys, *argv)
    assert api.calls == []


# --- commands -------------------------------------------------------------------------------

def test_create_sends_the_documented_body_and_prints_the_namespace(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers.append(ORDERS)
    code, out, _ = run(capsys, "create", "orders", "--retention", "72h", "--description", "shop",
                       "--address", "http://n2:8081")
    assert code == 0
    assert api.calls == [("POST", "/api/v1/namespaces",
                          {"name": "orders", "retention_ms": 259_200_000, "description": "shop"})]
    assert api.addresses == ["http://n2:8081"]
    assert out == ("name:        orders\n"
                   "retention:   3d (259200000 ms)\n"
                   "description: shop\n"
                   "start rate:  cluster default\n"
                   "poll rate:   cluster default\n")


def test_create_without_options_leaves_retention_to_the_server(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers.append({"name": "bare", "retention_ms": RETENTION_MS_MIN, "description": ""})
    code, out, _ = run(capsys, "create", "bare", "--json")
    assert code == 0
    assert api.calls[0][2] == {"name": "bare", "retention_ms": None, "description": ""}
    assert json.loads(out) == {"name": "bare", "retention_ms": 1_000, "description": ""}
    assert out.count("\n") == 1


def test_describe_quotes_the_name_and_prints_json(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.answers.extend([ORDERS, {**ORDERS, "name": "a/b c", "description": ""}])
    code, out, _ = run(capsys, "describe", "orders", "--json")
    assert (code, json.loads(out)) == (0, ORDERS)
    code, out, _ = run(capsys, "describe", "a/b c")
    assert code == 0 and "description: -\n" in out and "name:        a/b c\n" in out
    assert api.calls == [("GET", "/api/v1/namespaces/orders", None),
                         ("GET", "/api/v1/namespaces/a%2Fb%20c", None)]


def test_list_prints_a_table(api: ScriptedApi, capsys: pytest.CaptureFixture[str]) -> None:
    listed: JsonObject = {"namespaces": [
        {"name": "default", "retention_ms": 259_200_000, "description": ""},
        {"name": "orders", "retention_ms": 5_400_000, "description": "the shop's orders"}]}
    api.answers.extend([listed, listed])
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.splitlines() == ["NAME     RETENTION  DESCRIPTION",
                                "default  3d         -",
                                "orders   1h30m      the shop's orders"]
    code, out, _ = run(capsys, "list", "--json")
    assert json.loads(out) == listed
    assert api.calls == [("GET", "/api/v1/namespaces", None)] * 2


@pytest.mark.parametrize(("options", "body"), [
    (("--retention", "20s"), {"retention_ms": 20_000, "description": None}),
    (("--description", "new"), {"retention_ms": None, "description": "new"}),
    (("--description", ""), {"retention_ms": None, "description": ""}),
    (("--retention", "1500", "--description", "x"), {"retention_ms": 1_500, "description": "x"}),
])
def test_update_patches_only_what_is_given(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str], options: tuple[str, ...],
        body: JsonObject) -> None:
    api.answers.append({**ORDERS, "retention_ms": 20_000})
    code, out, _ = run(capsys, "update", "orders", *options)
    assert code == 0
    assert api.calls == [("PATCH", "/api/v1/namespaces/orders", body)]
    assert "retention:   20s (20000 ms)\n" in out


def test_update_with_no_option_is_refused_before_any_call(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "update", "orders", "--json")
    assert "usage: raftflow namespace update" in err
    assert ("error: give --retention, --description, --start-rate or --poll-rate (one or "
            "more)") in err
    assert api.calls == []


def test_create_and_update_send_rates_and_describe_prints_them(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str]) -> None:
    limited = {**ORDERS, "start_rate_per_s": 50.0, "poll_rate_per_s": 0.5}
    api.answers.extend([limited, limited, {**limited, "start_rate_per_s": None}])
    code, out, _ = run(capsys, "create", "orders", "--start-rate", "50", "--poll-rate", "0.5")
    assert code == 0
    assert api.calls[0][2] == {"name": "orders", "retention_ms": None, "description": "",
                               "start_rate_per_s": 50.0, "poll_rate_per_s": 0.5}
    assert "start rate:  50/s\n" in out and "poll rate:   0.5/s\n" in out
    code, _, _ = run(capsys, "update", "orders", "--poll-rate", "0.5")
    assert code == 0
    # Only the rate given is sent: the other stays as it is.
    assert api.calls[1][2] == {"retention_ms": None, "description": None,
                               "poll_rate_per_s": 0.5}
    code, out, _ = run(capsys, "update", "orders", "--start-rate", "default")
    assert code == 0
    assert api.calls[2][2] == {"retention_ms": None, "description": None,
                               "start_rate_per_s": None}
    assert "start rate:  cluster default\n" in out


@pytest.mark.parametrize("argv", [
    ("create", "orders", "--start-rate", "0"), ("create", "orders", "--poll-rate", "fast"),
    ("create", "orders", "--start-rate", "default"), ("update", "orders", "--poll-rate", "-1"),
    ("update", "orders", "--start-rate", "inf"), ("update", "orders", "--start-rate", "1e7"),
])
def test_a_bad_rate_is_a_usage_error_before_any_call(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    assert "calls per second" in usage_error(capsys, *argv)
    assert api.calls == []


@pytest.mark.parametrize("busy", [
    CliError("not_leader", "no leader of the cluster map known yet"),
    CliError("overloaded", "try later"),
    CliError("timeout", "may still apply"),
    CliError("http_503", "Service Unavailable"),
])
def test_a_503_or_504_is_sent_again(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str], busy: CliError) -> None:
    api.answers.extend([busy, busy, ORDERS])
    code, out, _ = run(capsys, "create", "orders", "--retention", "3d", "--json")
    assert (code, json.loads(out)) == (0, ORDERS)
    assert len(api.calls) == 3 and len({json.dumps(c) for c in api.calls}) == 1


def test_retries_stop_after_the_retry_window(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_namespace, "RETRY_FOR_S", -1.0)  # the window is already over
    api.answers.extend([CliError("timeout", "may still apply"), ORDERS])
    assert run(capsys, "describe", "orders") == (1, "", "error: timeout: may still apply\n")
    assert len(api.calls) == 1


@pytest.mark.parametrize(("argv", "refusal"), [
    (("create", "orders", "--retention", "1d"),
     CliError("namespace_already_exists", "namespace 'orders' exists with other settings")),
    (("describe", "nope"), CliError("namespace_not_found", "no namespace 'nope'")),
    (("update", "nope", "--description", "x"),
     CliError("namespace_not_found", "no namespace 'nope'")),
    (("create", "bad name"), CliError("invalid_argument", "name: must match ...")),
    (("list",), CliError("unavailable", "cannot reach http://127.0.0.1:8080: refused")),
])
def test_a_refusal_is_not_retried_and_is_reported(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
        refusal: CliError) -> None:
    api.answers.extend([refusal, ORDERS])
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (1, "", f"error: {refusal.code}: {refusal.message}\n")
    assert len(api.calls) == 1


def test_add_search_attribute_posts_name_and_type_and_describe_prints_them(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str]) -> None:
    registered = {**ORDERS, "search_attributes": {"Amount": "int", "CustomerId": "keyword"}}
    api.answers.extend([registered, registered])
    code, out, _ = run(capsys, "add-search-attribute", "orders", "--name", "Amount",
                       "--type", "int")
    assert code == 0 and "search attributes: Amount (int), CustomerId (keyword)\n" in out
    code, out, _ = run(capsys, "describe", "orders", "--json")
    assert (code, json.loads(out)) == (0, registered)
    assert api.calls == [
        ("POST", "/api/v1/namespaces/orders/search-attributes",
         {"name": "Amount", "type": "int"}),
        ("GET", "/api/v1/namespaces/orders", None)]
    with pytest.raises(SystemExit) as usage:
        run(capsys, "add-search-attribute", "orders", "--name", "Amount", "--type", "text")
    assert usage.value.code == 2


def test_the_token_comes_from_the_flag_else_the_environment(
        api: ScriptedApi, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    listed: JsonObject = {"namespaces": []}
    api.answers.extend([listed] * 3)
    monkeypatch.delenv("RAFTFLOW_TOKEN", raising=False)
    assert run(capsys, "list")[0] == 0
    monkeypatch.setenv("RAFTFLOW_TOKEN", "from-env")
    assert run(capsys, "list")[0] == 0
    assert run(capsys, "list", "--token", "from-flag")[0] == 0
    assert api.tokens == [None, "from-env", "from-flag"]
