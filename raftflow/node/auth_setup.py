"""A node's authenticator from its flags, and the SIGHUP that reloads its tokens file.

Auth is on when any credential source is given (`--auth-tokens`, a JWT key); otherwise every
route is open, as `raftflow dev` on loopback has always been (docs/security.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from raftflow.api.access import Authenticator
from raftflow.api.api_keys import AuthConfigError, load_api_keys
from raftflow.api.jwt_auth import JwtSettings, JwtVerifier
from raftflow.cluster.node_credential import node_credential

log = logging.getLogger(__name__)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def authenticator_from_args(args: argparse.Namespace, secret: str) -> Authenticator | None:
    """The node's authenticator, or None with auth off; AuthConfigError names a bad setting."""
    jwt = JwtSettings(hs256_secret_file=_path(getattr(args, "jwt_hs256_secret_file", None)),
                      public_key_file=_path(getattr(args, "jwt_public_key", None)),
                      jwks_file=_path(getattr(args, "jwt_jwks", None)),
                      issuer=getattr(args, "jwt_issuer", None),
                      audience=getattr(args, "jwt_audience", None))
    tokens = _path(getattr(args, "auth_tokens", None))
    if tokens is None and not jwt.configured:
        if jwt.issuer or jwt.audience or getattr(args, "protect_metrics", False):
            raise AuthConfigError("--jwt-issuer, --jwt-audience and --protect-metrics need "
                                  "auth on (--auth-tokens or a JWT key)")
        return None
    return Authenticator(node_credential=node_credential(secret),
                         api_keys=None if tokens is None else load_api_keys(tokens),
                         jwt=JwtVerifier(jwt) if jwt.configured else None,
                         protect_metrics=bool(getattr(args, "protect_metrics", False)))


def reload_on_sighup(auth: Authenticator, tokens: Path) -> None:
    """Re-read `tokens` on every SIGHUP; a file that fails to load keeps the current keys."""

    def reload() -> None:
        try:
            keys = load_api_keys(tokens)
        except AuthConfigError as error:
            log.error("SIGHUP: tokens file not reloaded, the previous keys stay: %s", error)
            return
        auth.replace_keys(keys)
        log.info("SIGHUP: reloaded %d API keys from %s", len(keys.by_digest), tokens)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
