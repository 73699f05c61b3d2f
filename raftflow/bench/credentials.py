"""What a harness (bench, chaos) shows a secured cluster: a bearer token and the CA of its
HTTPS, for the SDK client and for the harness's own observer calls (status, metrics)."""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from raftflow.cluster.local_pki import LocalSecurity
from raftflow.sdk import Client


@dataclass(frozen=True)
class Credentials:
    api_key: str | None = None
    ssl_context: ssl.SSLContext | None = None  # None: plain HTTP (or the system's CAs)

    @staticmethod
    def of_local(security: LocalSecurity | None) -> Credentials:
        if security is None:
            return Credentials()
        return Credentials(api_key=security.api_key, ssl_context=security.client_ssl())

    @staticmethod
    def of_args(args: argparse.Namespace) -> Credentials:
        """--token and --ca-cert, for a cluster given by --address."""
        ca = getattr(args, "ca_cert", None)
        return Credentials(api_key=getattr(args, "token", None) or None,
                           ssl_context=ssl.create_default_context(cafile=ca) if ca else None)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def observer_session(self) -> aiohttp.ClientSession:
        """A session for the harness's own calls (not counted as the SDK's)."""
        connector = aiohttp.TCPConnector(ssl=self.ssl_context or True)
        return aiohttp.ClientSession(headers=self.headers(), connector=connector)

    async def client(self, addresses: Sequence[str]) -> Client:
        return await Client.connect(list(addresses), api_key=self.api_key,
                                    tls=self.ssl_context or False)


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secure", action="store_true",
                        help="launch the cluster with HTTPS, mutual TLS on the peer links and "
                             "auth (throw-away CA and admin key), and use them")
    parser.add_argument("--token", default=None,
                        help="bearer token for a secured cluster given by --address")
    parser.add_argument("--ca-cert", default=None, metavar="FILE",
                        help="CA of a secured cluster's HTTPS, given by --address")
