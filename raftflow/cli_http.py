"""The CLI's HTTP client: one blocking JSON call at a time to one node, with the caller's token,
and the flags every client subcommand takes (`client_parser`).

`--token` (or `RAFTFLOW_TOKEN`) is sent as `Authorization: Bearer <token>` on every call; a
node with auth on answers 401 `unauthenticated` without it (docs/security.md). An `https://`
address is verified with `--ca-cert` (else the system's CAs); `--client-cert/--client-key`
answer a node that requires client certificates.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from raftflow.cli_output import CliError, JsonObject

ADDRESS_DEFAULT = "http://127.0.0.1:8080"
REQUEST_TIMEOUT_S_DEFAULT = 30.0
ERROR_BODY_BYTES_MAX = 64 * 1024
TOKEN_ENV = "RAFTFLOW_TOKEN"
# The API's 503/504 codes (a shard's leader is moving, a node is busy, a wait ran out), and the
# bare statuses a proxy in front of a node may answer with: worth asking again after a pause.
TRANSIENT_ERROR_CODES = frozenset({"not_leader", "overloaded", "timeout", "http_503",
                                   "http_504"})

# A client subcommand: returns the JSON object that `--json` prints, or None when it printed
# its JSON itself (a stream of lines, `workflow show --follow --json`).
ClientCommand = Callable[[argparse.Namespace, "ApiClient", TextIO], JsonObject | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutFlag:
    """What a client command's `--timeout` bounds, stored as `dest` with `default_s`."""

    dest: str
    default_s: float | None
    help: str


# Most commands: each HTTP answer. A command that waits for a run bounds its whole wait
# instead (`workflow result`), and its calls get REQUEST_TIMEOUT_S_DEFAULT each.
ANSWER_TIMEOUT = TimeoutFlag(dest="timeout", default_s=REQUEST_TIMEOUT_S_DEFAULT,
                             help="seconds to wait for each HTTP answer")


def client_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                  command: ClientCommand, help_text: str, *,
                  timeout: TimeoutFlag = ANSWER_TIMEOUT) -> argparse.ArgumentParser:
    """A subcommand that is an HTTP client of one node: --address, --json, --timeout and the
    credential flags; `command` runs it."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--address", default=ADDRESS_DEFAULT,
                        help=f"base URL of any node (default {ADDRESS_DEFAULT})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--timeout", dest=timeout.dest, type=seconds_arg,
                        default=timeout.default_s, metavar="SECONDS", help=timeout.help)
    if timeout.dest != ANSWER_TIMEOUT.dest:
        parser.set_defaults(timeout=REQUEST_TIMEOUT_S_DEFAULT)
    add_credential_arguments(parser)
    parser.set_defaults(client_command=command)
    return parser


def seconds_arg(text: str) -> float:
    """argparse type of `--timeout`: a number of seconds, more than 0."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be a finite number > 0")
    return seconds


def workflows_path(namespace: str, *parts: str) -> str:
    """`/api/v1/namespaces/{ns}/workflows[/{part}...]`, each piece quoted."""
    quoted = [urllib.parse.quote(part, safe="") for part in (namespace, *parts)]
    return f"/api/v1/namespaces/{quoted[0]}/workflows" + "".join(
        "/" + part for part in quoted[1:])


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=None,
                        help=f"bearer token (API key or JWT) for a node with auth on; "
                             f"default: ${TOKEN_ENV}")
    parser.add_argument("--ca-cert", default=None, metavar="FILE",
                        help="PEM CA to verify an https:// --address with (default: the "
                             "system's CAs)")
    parser.add_argument("--client-cert", default=None, metavar="FILE",
                        help="PEM client certificate, for a node that requires one")
    parser.add_argument("--client-key", default=None, metavar="FILE",
                        help="PEM private key of --client-cert")


def client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The context of https:// calls (None: urllib's default, the system's CAs)."""
    ca, cert, key = (getattr(args, name, None) for name in ("ca_cert", "client_cert",
                                                             "client_key"))
    if not (ca or cert or key):
        return None
    if bool(cert) != bool(key):
        raise CliError("invalid_argument", "--client-cert and --client-key go together")
    try:
        context = ssl.create_default_context(cafile=ca)
        if cert and key:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise CliError("invalid_argument", f"TLS files cannot be used: {error}") from None
    return context


def client_token(args: argparse.Namespace) -> str | None:
    """The token a command sends: --token, else $RAFTFLOW_TOKEN, else none."""
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    return token.strip() if token else None


class ApiClient:
    """A small blocking JSON client of one node's `/api/v1`."""

    def __init__(self, address: str, timeout_s: float, *, token: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._base = address.rstrip("/")
        self._timeout_s = timeout_s
        self._ssl = ssl_context
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: JsonObject | None = None,
             query: dict[str, str] | None = None, *,
             timeout_s: float | None = None) -> JsonObject:
        """Send one request; return the decoded JSON object (empty for an empty 2xx body,
        such as a 204). `timeout_s` replaces the client's timeout for this call (a long poll
        needs its wait and then some)."""
        url = self._base + path
        pairs = {k: v for k, v in (query or {}).items() if v}
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        call_timeout_s = self._timeout_s if timeout_s is None else timeout_s
        assert call_timeout_s > 0, call_timeout_s  # 0 would make urllib's socket non-blocking
        try:
            with urllib.request.urlopen(request, timeout=call_timeout_s,
                                        context=self._ssl) as response:
                raw: bytes = response.read()
        except urllib.error.HTTPError as err:
            raise _api_error(err.code, err.read(ERROR_BODY_BYTES_MAX)) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise CliError("unavailable", f"cannot reach {self._base}: {reason}") from None
        if not raw.strip():
            return {}
        try:
            decoded = json.loads(raw)
        except ValueError:
            raise CliError("bad_response", f"{method} {path} did not return JSON") from None
        if not isinstance(decoded, dict):
            raise CliError("bad_response", f"{method} {path} did not return a JSON object")
        return decoded


def _api_error(status: int, raw: bytes) -> CliError:
    try:
        error = json.loads(raw)["error"]
        return CliError(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        text = raw.decode("utf-8", "replace").strip() or "no details"
        return CliError(f"http_{status}", text)
