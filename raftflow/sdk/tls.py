"""TLS for the SDK's connection to a cluster that serves HTTPS (`raftflow node --tls-cert`).

`Client.connect(..., tls=True)` verifies the nodes with the system's CAs; `tls=TLSConfig(...)`
names the CA that signed the nodes' certificates and, for a node that requires client
certificates (`--tls-client-ca`), this client's own. The shape is Temporal's.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class TLSConfig:
    """PEM bytes: the CA of the nodes' certificates (None: the system's), and the client
    certificate and key for mutual TLS (both or neither). `domain`: the name to check the
    nodes' certificates against instead of the host of their address."""

    server_root_ca_cert: bytes | None = None
    client_cert: bytes | None = None
    client_private_key: bytes | None = None
    domain: str | None = None


def ssl_context(tls: bool | TLSConfig | ssl.SSLContext) -> ssl.SSLContext | None:
    """The context of the client's HTTPS calls; None for plain HTTP (`tls=False`)."""
    if isinstance(tls, ssl.SSLContext):
        return tls
    if tls is False:
        return None
    config = tls if isinstance(tls, TLSConfig) else TLSConfig()
    ca = config.server_root_ca_cert
    context = ssl.create_default_context(cadata=None if ca is None else ca.decode("ascii"))
    if (config.client_cert is None) != (config.client_private_key is None):
        raise ValueError("TLSConfig: give both client_cert and client_private_key, or neither")
    if config.client_cert is not None and config.client_private_key is not None:
        _load_chain(context, config.client_cert, config.client_private_key)
    return context


def _load_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # The ssl module loads a certificate chain from files only: they live for the call, in a
    # directory only this user can read.
    with tempfile.TemporaryDirectory() as directory:
        paths = []
        for name, data in (("cert.pem", cert), ("key.pem", key)):
            path = os.path.join(directory, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(data)
            paths.append(path)
        context.load_cert_chain(paths[0], paths[1])
