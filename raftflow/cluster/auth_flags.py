"""The auth flags `raftflow node` and `raftflow dev` share, and how dev hands them to its nodes.

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
)
_PROTECT_METRICS = "--protect-metrics"


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, dest, is_file, help_text in _FLAGS:
        parser.add_argument(flag, dest=dest, default=None, metavar="FILE" if is_file else None,
                            help=help_text)
    parser.add_argument(_PROTECT_METRICS, dest="protect_metrics", action="store_true",
                        help="with auth on, /metrics needs a token with the metrics or admin "
                             "role (default: open, like /healthz)")


def auth_flags_of(args: argparse.Namespace) -> list[str]:
    """The auth flags of `args` as `raftflow node` arguments (paths made absolute)."""
    flags: list[str] = []
    for flag, dest, is_file, _ in _FLAGS:
        value = getattr(args, dest, None)
        if value:
            flags += [flag, str(Path(value).resolve()) if is_file else value]
    if getattr(args, "protect_metrics", False):
        flags.append(_PROTECT_METRICS)
    return flags
