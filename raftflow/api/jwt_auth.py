"""JSON Web Tokens as bearer tokens (`pyjwt`): HS256 with a shared secret, RS256/ES256 with a
public key or a JWKS file.

A token is accepted when its signature verifies with a configured key of its own algorithm
(only that algorithm: an RS256 public key is never tried as an HS256 secret, the classic
algorithm-confusion attack), it has not expired (`exp` is required; JWT_LEEWAY_S of clock
skew allowed), the issuer and audience match when configured, and it carries `sub` (the
caller's name) and `roles`, a list of the role strings of principals.py — the same as a tokens
file's, e.g. `["writer:shop", "reader:shop"]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from raftflow.api.api_keys import AuthConfigError
from raftflow.api.principals import Principal, RoleError, principal_of

JWT_LEEWAY_S = 30
JWT_LENGTH_MAX = 16 * 1024
JWKS_KEYS_MAX = 100
_ASYMMETRIC = ("RS256", "ES256")


class JwtError(Exception):
    """Why a presented JWT is not accepted (the message goes to the caller in a 401)."""


@dataclass(frozen=True, slots=True)
class JwtSettings:
    hs256_secret_file: Path | None = None
    public_key_file: Path | None = None
    jwks_file: Path | None = None
    issuer: str | None = None
    audience: str | None = None

    @property
    def configured(self) -> bool:
        return any((self.hs256_secret_file, self.public_key_file, self.jwks_file))


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class JwtVerifier:
    """Verifies JWTs against the keys of `JwtSettings` (read once; a restart reloads them)."""

    def __init__(self, settings: JwtSettings) -> None:
        assert settings.configured
        self._issuer = settings.issuer
        self._audience = settings.audience
        self._hs256: bytes | None = None
        self._public: tuple[str, object] | None = None  # (algorithm, key)
        self._jwks: dict[str, tuple[str, object]] = {}  # kid -> (algorithm, key)
        if settings.hs256_secret_file is not None:
            self._hs256 = _read(settings.hs256_secret_file).strip()
            if len(self._hs256) < 32:
                raise AuthConfigError(f"{settings.hs256_secret_file}: an HS256 secret needs at "
                                      "least 32 bytes (RFC 7518 §3.2)")
        if settings.public_key_file is not None:
            self._public = _public_key(settings.public_key_file)
        if settings.jwks_file is not None:
            self._jwks = _jwks(settings.jwks_file)

    def principal_for(self, token: str) -> Principal:
        if len(token) > JWT_LENGTH_MAX:
            raise JwtError(f"the token is longer than {JWT_LENGTH_MAX} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise JwtError(f"malformed JWT: {error}") from None
        algorithm, key = self._key_for(header)
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm],  # type: ignore[arg-type]
                issuer=self._issuer, audience=self._audience, leeway=JWT_LEEWAY_S,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None})
        except jwt.PyJWTError as error:
            raise JwtError(f"JWT refused: {error}") from None
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise JwtError("the JWT's 'roles' claim must be a list of role strings")
        try:
            return principal_of(str(claims["sub"]), roles)
        except RoleError as error:
            raise JwtError(f"the JWT's roles: {error}") from None

    def _key_for(self, header: dict[str, object]) -> tuple[str, object]:
        algorithm = header.get("alg")
        if algorithm == "HS256" and self._hs256 is not None:
            return algorithm, self._hs256
        if algorithm in _ASYMMETRIC:
            kid = header.get("kid")
            if isinstance(kid, str) and kid in self._jwks:
                expected, key = self._jwks[kid]
                if expected == algorithm:
                    return expected, key
            elif self._public is not None and self._public[0] == algorithm:
                return self._public
        raise JwtError(f"no configured key verifies alg {algorithm!r}"
                       + (f" with kid {header.get('kid')!r}" if header.get("kid") else ""))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise AuthConfigError(f"{path}: cannot read: {error.strerror}") from None


def _algorithm_of(key: object, where: str) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise AuthConfigError(f"{where}: only RSA and P-256 EC public keys are accepted "
                          "(RS256, ES256)")


def _public_key(path: Path) -> tuple[str, object]:
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError as error:
        raise AuthConfigError(f"{path}: not a PEM public key: {error}") from None
    return _algorithm_of(key, str(path)), key


def _jwks(path: Path) -> dict[str, tuple[str, object]]:
    try:
        document = json.loads(_read(path))
        keys = jwt.PyJWKSet.from_dict(document).keys
    except (ValueError, jwt.PyJWTError) as error:
        raise AuthConfigError(f"{path}: not a usable JWKS: {error}") from None
    if len(keys) > JWKS_KEYS_MAX:
        raise AuthConfigError(f"{path}: more than {JWKS_KEYS_MAX} keys")
    found: dict[str, tuple[str, object]] = {}
    for jwk in keys:
        if not jwk.key_id:
            raise AuthConfigError(f"{path}: every key needs a 'kid' (tokens name theirs)")
        found[jwk.key_id] = (_algorithm_of(jwk.key, f"{path} kid {jwk.key_id}"), jwk.key)
    return found
