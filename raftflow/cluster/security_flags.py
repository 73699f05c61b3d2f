"""The security flags `raftflow node` and `raftflow dev` share (auth and TLS), and how dev hands
them to its nodes.

Kept free of heavy imports: `raftflow.cli` builds its parser from here without loading aiohttp.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# (flag, argparse dest, takes a file path, help)
_FLAGS: tuple[tuple[str, str, bool, str], ...] = (
    ("--auth-tokens", "auth_tokens", True,
     "TOML file of API keys and their roles ([[token]] name, key or key_sha256, roles); "
     "turns auth on; re-read on SIGHUP"),
    ("--jwt-hs256-secret-file", "jwt_hs256_secret_file", True,
     "accept HS256 JWTs signed with the secret in FILE (at least 32 bytes); turns auth on"),
    ("--jwt-public-key", "jwt_public_key", True,
     "accept RS256/ES256 JWTs this PEM public key verifies; turns auth on"),
    ("--jwt-jwks", "jwt_jwks", True,
     "accept RS256/ES256 JWTs a key of this JWKS file verifies (by kid); turns auth on"),
    ("--jwt-issuer", "jwt_issuer", False, "a JWT's iss must be this"),
    ("--jwt-audience", "jwt_audience", False, "a JWT's aud must hold this"),
    ("--tls-cert", "tls_cert", True,
     "PEM certificate (chain) of this node: serve the HTTP API over HTTPS (with --tls-key)"),
    ("--tls-key", "tls_key", True, "PEM private key of --tls-cert"),
    ("--tls-client-ca", "tls_client_ca", True,
     "require HTTPS clients to show a certificate this CA signed (mutual TLS)"),
    ("--cluster-ca", "cluster_ca", True,
     "the cluster's CA: nodes verify each other's HTTPS with it, and the Raft peer links run "
     "over mutual TLS with each node's --tls-cert (needs --tls-cert)"),
)
_SWITCHES = (("--protect-metrics", "protect_metrics",
              "with auth on, /metrics needs a token with the metrics or admin role (default: "
              "open, like /healthz)"),
             ("--insecure", "insecure",
              "let a node bound to a non-loopback address run without TLS, peer TLS or auth"))


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, dest, is_file, help_text in _FLAGS:
        parser.add_argument(flag, dest=dest, default=None, metavar="FILE" if is_file else None,
                            help=help_text)
    for flag, dest, help_text in _SWITCHES:
        parser.add_argument(flag, dest=dest, action="store_true", help=help_text)


def security_flags_of(args: argparse.Namespace) -> list[str]:
    """The security flags of `args` as `raftflow node` arguments (paths made absolute)."""
    flags: list[str] = []
    for flag, dest, is_file, _ in _FLAGS:
        value = getattr(args, dest, None)
        if value:
            flags += [flag, str(Path(value).resolve()) if is_file else value]
    for flag, dest, _ in _SWITCHES:
        if getattr(args, dest, False):
            flags.append(flag)
    return flags


def auth_on(args: argparse.Namespace) -> bool:
    return any(getattr(args, dest, None) for dest in (
        "auth_tokens", "jwt_hs256_secret_file", "jwt_public_key", "jwt_jwks"))
