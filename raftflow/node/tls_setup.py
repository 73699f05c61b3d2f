"""A node's TLS contexts from its flags: the HTTPS API, its calls to other nodes, the peer links.

- `--tls-cert/--tls-key`: the API is served over HTTPS; `--tls-client-ca` also requires
  clients to show a certificate that CA signed (mutual TLS).
- Nodes call each other over HTTPS when they serve it, verifying the other node's certificate
  (host name included: a node's certificate must name the host its address uses) with
  `--cluster-ca`, or the system's CAs without it; they show their own certificate when asked.
- `--cluster-ca` also puts the Raft peer links under mutual TLS with the same certificate
  (raftlog/network.py), so a node's certificate must allow client and server use (no EKU, or
  both serverAuth and clientAuth).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from raftflow.raftlog.network import PeerTls


class TlsConfigError(ValueError):
    """TLS flags that cannot be used; the message names the flag and file."""


@dataclass(frozen=True, slots=True)
class NodeTls:
    server: ssl.SSLContext  # the HTTPS API
    client: ssl.SSLContext  # this node's HTTPS calls to other nodes
    peers: PeerTls | None  # the Raft links (with --cluster-ca)


def _file(flag: str, value: str) -> str:
    path = Path(value)
    if not path.is_file():
        raise TlsConfigError(f"{flag} {value}: no such file")
    return str(path)


def _load_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as error:
        raise TlsConfigError(f"--tls-cert {cert} / --tls-key {key}: cannot be used: "
                             f"{error}") from None


def _load_ca(context: ssl.SSLContext, flag: str, cafile: str) -> None:
    try:
        context.load_verify_locations(cafile=cafile)
    except (ssl.SSLError, OSError) as error:
        raise TlsConfigError(f"{flag} {cafile}: not a PEM CA certificate: {error}") from None


def tls_from_args(args: argparse.Namespace) -> NodeTls | None:
    """The node's TLS contexts, or None when it serves plain HTTP."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    client_ca, cluster_ca = getattr(args, "tls_client_ca", None), getattr(args, "cluster_ca", None)
    if not cert:
        if key or client_ca or cluster_ca:
            raise TlsConfigError("--tls-key, --tls-client-ca and --cluster-ca need --tls-cert")
        return None
    if not key:
        raise TlsConfigError("--tls-cert needs --tls-key")
    cert, key = _file("--tls-cert", cert), _file("--tls-key", key)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(server, cert, key)
    if client_ca:
        _load_ca(server, "--tls-client-ca", _file("--tls-client-ca", client_ca))
        server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cluster_ca:
        _load_ca(client, "--cluster-ca", _file("--cluster-ca", cluster_ca))
    _load_chain(client, cert, key)  # shown only to a node that asks (mutual TLS)
    return NodeTls(server=server, client=client,
                   peers=_peer_tls(cert, key, cluster_ca) if cluster_ca else None)


def _peer_tls(cert: str, key: str, cluster_ca: str) -> PeerTls:
    accepting = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    dialling = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for context in (accepting, dialling):
        _load_chain(context, cert, key)
        _load_ca(context, "--cluster-ca", cluster_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    # Peers are dialled by the map's address and proven by the cluster CA and the HMAC
    # handshake (raftlog/network.py); their certificates need not name that address.
    dialling.check_hostname = False
    return PeerTls(server=accepting, client=dialling)


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False
