"""Throw-away certificates for clusters on this machine (tests, `raftflow bench --secure`, the
chaos harness): a CA, node certificates it signs for 127.0.0.1 and localhost (no extended key
usage, so usable as server and client, as peer links need), and a self-signed certificate like
the one a developer makes for `raftflow dev`. Keys are P-256, valid for two days; nothing here
is meant for a real deployment (docs/security.md says how to make those)."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(directory: Path, stem: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> Pem:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Pem(cert_path, key_path)


def _builder(subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             ) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2)))


_LOOPBACK = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])


def make_ca(directory: Path, name: str = "raftflow test CA") -> tuple[Pem, x509.Certificate,
                                                                      ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(name, _name(name), key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(directory, name.replace(" ", "-"), cert, key), cert, key


def make_leaf(directory: Path, stem: str, ca_cert: x509.Certificate,
              ca_key: ec.EllipticCurvePrivateKey) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(stem, ca_cert.subject, key).add_extension(_LOOPBACK, critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _write(directory, stem, cert, key)


def make_self_signed(directory: Path, stem: str = "dev") -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(stem, _name(stem), key).add_extension(_LOOPBACK, critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(directory, stem, cert, key)


@dataclass(frozen=True)
class LocalSecurity:
    """A secured local cluster's settings: every node gets `node_flags` (HTTPS, mutual TLS on
    the peer links, a tokens file); clients send `api_key` (an admin key) and verify the
    nodes with `ca_cert`."""

    node_flags: tuple[str, ...]
    api_key: str
    ca_cert: Path

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_local_security(directory: Path) -> LocalSecurity:
    """Write a CA, a node certificate and a tokens file with one random admin key."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_cert, ca_key = make_ca(directory)
    node = make_leaf(directory, "node", ca_cert, ca_key)
    api_key = secrets.token_urlsafe(24)
    tokens = directory / "tokens.toml"
    tokens.write_text(f'[[token]]\nname = "harness"\nkey = "{api_key}"\nroles = ["admin"]\n')
    return LocalSecurity(node_flags=("--tls-cert", str(node.cert), "--tls-key", str(node.key),
                                     "--cluster-ca", str(ca.cert), "--auth-tokens", str(tokens)),
                         api_key=api_key, ca_cert=ca.cert)
