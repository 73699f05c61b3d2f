"""Static API keys from a TOML tokens file (`raftflow node --auth-tokens FILE`).

    [[token]]
    name = "shop-writer"
    key = "a long random string"          # or: key_sha256 = "<64 hex digits>"
    roles = ["writer:shop", "reader:shop"]

Only SHA-256 digests are kept in memory, and `key_sha256` lets the file keep only the digest
at rest. A presented key is hashed and looked up by digest: the lookup's timing can only tell
how much of a guess's digest matched a stored one, which says nothing about the key (finding a
key from its digest is SHA-256's preimage problem), so no constant-time compare of keys is
needed. The file is read at start-up and again on SIGHUP (serve.py); a file that fails to
load leaves the keys as they were.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from raftflow.api.principals import Principal, RoleError, principal_of

# A file with more entries than this is refused: it is read on every SIGHUP, whole.
TOKENS_PER_FILE_MAX = 10_000
TOKENS_FILE_BYTES_MAX = 4 * 1024 * 1024
KEY_LENGTH_MAX = 1024
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class AuthConfigError(ValueError):
    """A tokens file (or JWT setting) that cannot be used; the message names the entry."""


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """Principals by the SHA-256 hex digest of their key."""

    by_digest: Mapping[str, Principal]
    source: str  # the file they came from, for log lines

    def principal_for(self, key: str) -> Principal | None:
        """The principal whose key is `key`, or None."""
        if not key or len(key) > KEY_LENGTH_MAX:
            return None
        return self.by_digest.get(key_digest(key))


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_api_keys(path: Path) -> ApiKeys:
    """The keys a tokens file holds; AuthConfigError says what is wrong and where."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise AuthConfigError(f"{path}: cannot read the tokens file: {error.strerror}") from None
    if len(raw) > TOKENS_FILE_BYTES_MAX:
        raise AuthConfigError(f"{path}: larger than {TOKENS_FILE_BYTES_MAX} bytes")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise AuthConfigError(f"{path}: not valid TOML: {error}") from None
    unknown = set(document) - {"token"}
    if unknown:
        raise AuthConfigError(f"{path}: unknown table(s) {sorted(unknown)}; only [[token]]")
    entries = document.get("token", [])
    if not isinstance(entries, list):
        raise AuthConfigError(f"{path}: 'token' must be an array of tables ([[token]])")
    if len(entries) > TOKENS_PER_FILE_MAX:
        raise AuthConfigError(f"{path}: more than {TOKENS_PER_FILE_MAX} tokens")
    by_digest: dict[str, Principal] = {}
    names: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{path}: token[{index}]"
        digest, principal = _entry(where, entry)
        if principal.name in names:
            raise AuthConfigError(f"{where}: name {principal.name!r} is used twice")
        if digest in by_digest:
            raise AuthConfigError(f"{where}: the same key as token {by_digest[digest].name!r}")
        names.add(principal.name)
        by_digest[digest] = principal
    return ApiKeys(by_digest=MappingProxyType(by_digest), source=str(path))


def _entry(where: str, entry: object) -> tuple[str, Principal]:
    if not isinstance(entry, dict):
        raise AuthConfigError(f"{where}: must be a table")
    unknown = set(entry) - {"name", "key", "key_sha256", "roles"}
    if unknown:
        raise AuthConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    name, roles = entry.get("name"), entry.get("roles")
    if not isinstance(name, str):
        raise AuthConfigError(f"{where}: 'name' must be a string")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthConfigError(f"{where} ({name}): 'roles' must be a list of strings")
    try:
        principal = principal_of(name, roles)
    except RoleError as error:
        raise AuthConfigError(f"{where} ({name}): {error}") from None
    key, hashed = entry.get("key"), entry.get("key_sha256")
    if (key is None) == (hashed is None):
        raise AuthConfigError(f"{where} ({name}): give exactly one of 'key' and 'key_sha256'")
    if key is not None:
        if not isinstance(key, str) or not key or len(key) > KEY_LENGTH_MAX:
            raise AuthConfigError(
                f"{where} ({name}): 'key' must be a string of 1 to {KEY_LENGTH_MAX} characters")
        return key_digest(key), principal
    if not isinstance(hashed, str) or not _SHA256_HEX.match(hashed.lower()):
        raise AuthConfigError(f"{where} ({name}): 'key_sha256' must be 64 hex digits "
                              "(sha256sum of the key)")
    return hashed.lower(), principal
