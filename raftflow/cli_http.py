"""The CLI's HTTP client: one blocking JSON call at a time to one node, with the caller's token.

`--token` (or `RAFTFLOW_TOKEN`) is sent as `Authorization: Bearer <token>` on every call; a
node with auth on answers 401 `unauthenticated` without it (docs/security.md). An `https://`
address is verified with `--ca-cert` (else the system's CAs); `--client-cert/--client-key`
answer a node that requires client certificates.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request

from raftflow.cli_output import CliError, JsonObject

ERROR_BODY_BYTES_MAX = 64 * 1024
TOKEN_ENV = "RAFTFLOW_TOKEN"


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
             query: dict[str, str] | None = None) -> JsonObject:
        """Send one request; return the decoded JSON object (empty for an empty 2xx body)."""
        url = self._base + path
        pairs = {k: v for k, v in (query or {}).items() if v}
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s,
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
