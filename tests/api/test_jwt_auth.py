"""Goal: a JWT is accepted only when a configured key of its own algorithm verifies it, it has
not expired, issuer and audience match when configured, and it carries `sub` and valid
`roles`; an RS256 public key is never usable as an HS256 secret (algorithm confusion).
Method: tokens minted here with pyjwt and keys generated with cryptography, verified by
`JwtVerifier` as a node configures it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from raftflow.api.api_keys import AuthConfigError
from raftflow.api.jwt_auth import JwtError, JwtSettings, JwtVerifier
from raftflow.api.principals import Permission

SECRET = b"a-test-secret-that-is-32-bytes-long!"


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "ci", "roles": ["writer:shop"], "exp": int(time.time()) + 300, **extra}


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _hs(tmp_path: Path, **settings: Any) -> JwtVerifier:
    path = tmp_path / "hs.key"
    path.write_bytes(SECRET + b"\n")
    return JwtVerifier(JwtSettings(hs256_secret_file=path, **settings))


def test_hs256_token_names_its_caller_and_roles(tmp_path: Path) -> None:
    principal = _hs(tmp_path).principal_for(jwt.encode(_claims(), SECRET, algorithm="HS256"))
    assert principal.name == "ci" and principal.may(Permission.WRITE, "shop")
    assert not principal.may(Permission.WRITE, "other")


@pytest.mark.parametrize(("claims", "problem"), [
    (_claims(exp=int(time.time()) - 120), "expired"),
    ({"sub": "ci", "roles": ["admin"]}, "exp"),
    ({"roles": ["admin"], "exp": int(time.time()) + 60}, "sub"),
    (_claims(roles="admin"), "'roles' claim must be a list"),
    (_claims(roles=["root"]), "'root' is not a role"),
    (_claims(roles=[]), "at least one role"),
])
def test_a_token_missing_what_it_needs_is_refused(tmp_path: Path, claims: dict[str, Any],
                                                  problem: str) -> None:
    with pytest.raises(JwtError, match=problem):
        _hs(tmp_path).principal_for(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_a_token_signed_with_another_secret_or_altered_is_refused(tmp_path: Path) -> None:
    verifier = _hs(tmp_path)
    with pytest.raises(JwtError, match="Signature"):
        verifier.principal_for(jwt.encode(_claims(), b"x" * 40, algorithm="HS256"))
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    header, payload, signature = token.split(".")
    forged = jwt.encode(_claims(roles=["admin"]), b"y" * 40, algorithm="HS256").split(".")[1]
    with pytest.raises(JwtError):
        verifier.principal_for(f"{header}.{forged}.{signature}")
    with pytest.raises(JwtError, match="alg 'none'"):
        verifier.principal_for(jwt.encode(_claims(roles=["admin"]), None, algorithm="none"))


def test_issuer_and_audience_are_checked_when_configured(tmp_path: Path) -> None:
    verifier = _hs(tmp_path, issuer="https://idp", audience="raftflow")
    good = _claims(iss="https://idp", aud="raftflow")
    assert verifier.principal_for(jwt.encode(good, SECRET, algorithm="HS256")).name == "ci"
    for bad in (_claims(iss="https://other", aud="raftflow"), _claims(iss="https://idp"),
                _claims(iss="https://idp", aud="someone-else")):
        with pytest.raises(JwtError):
            verifier.principal_for(jwt.encode(bad, SECRET, algorithm="HS256"))


def test_rs256_public_key_verifies_and_is_never_an_hs256_secret(
        tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    pem = tmp_path / "pub.pem"
    pem.write_bytes(_pem(rsa_key))
    verifier = JwtVerifier(JwtSettings(public_key_file=pem))
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256")
    assert verifier.principal_for(token).name == "ci"
    # The public key is public: an HS256 token "signed" with its PEM must not pass.
    # (pyjwt refuses to mint one, so it is made by hand.)
    signing_input = b".".join(_b64(json.dumps(part).encode()) for part in (
        {"alg": "HS256", "typ": "JWT"}, _claims(roles=["admin"])))
    mac = hmac.new(_pem(rsa_key), signing_input, hashlib.sha256).digest()
    confused = (signing_input + b"." + _b64(mac)).decode()
    with pytest.raises(JwtError, match="alg 'HS256'"):
        verifier.principal_for(confused)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(JwtError):
        verifier.principal_for(jwt.encode(_claims(), other, algorithm="RS256"))


def test_es256_keys_of_a_jwks_file_are_chosen_by_kid(tmp_path: Path) -> None:
    keys = {kid: ec.generate_private_key(ec.SECP256R1()) for kid in ("k1", "k2")}
    jwks = {"keys": [{**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key())),
                      "kid": kid, "alg": "ES256", "use": "sig"} for kid, k in keys.items()]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    verifier = JwtVerifier(JwtSettings(jwks_file=path))
    for kid, key in keys.items():
        token = jwt.encode(_claims(sub=kid), key, algorithm="ES256", headers={"kid": kid})
        assert verifier.principal_for(token).name == kid
    crossed = jwt.encode(_claims(), keys["k1"], algorithm="ES256", headers={"kid": "k2"})
    with pytest.raises(JwtError):
        verifier.principal_for(crossed)
    with pytest.raises(JwtError, match="kid 'k3'"):
        verifier.principal_for(jwt.encode(_claims(), keys["k1"], algorithm="ES256",
                                          headers={"kid": "k3"}))


def test_unusable_key_settings_are_refused_at_start(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"too short")
    with pytest.raises(AuthConfigError, match="at least 32 bytes"):
        JwtVerifier(JwtSettings(hs256_secret_file=short))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(AuthConfigError, match="not a PEM public key"):
        JwtVerifier(JwtSettings(public_key_file=garbage))
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(AuthConfigError, match="P-256"):
        JwtVerifier(JwtSettings(public_key_file=p384))
    no_kid = tmp_path / "nokid.json"
    no_kid.write_text(json.dumps({"keys": [json.loads(jwt.algorithms.ECAlgorithm.to_jwk(
        ec.generate_private_key(ec.SECP256R1()).public_key()))]}))
    with pytest.raises(AuthConfigError, match="kid"):
        JwtVerifier(JwtSettings(jwks_file=no_kid))
