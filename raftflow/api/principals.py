"""Who a caller is and what it may do: roles, principals and the caller header (pure).

A role is one of the strings a tokens file or a JWT's `roles` claim lists:
- `admin`: cluster and namespace management, and every permission in every namespace;
- `metrics`: read `/metrics` when the node protects it (a scraper needs nothing else);
- `writer:NS`: start, signal, cancel, terminate (and reset, batch) in namespace NS, and read
  there (a writer waits for the results of what it starts, as Temporal's writer role does);
- `worker:NS`: poll task queues of NS and complete, fail and heartbeat their tasks;
- `reader:NS`: describe, history, result, list, count and query in NS.
`NS` may be `*`: that role in every namespace.

A call forwarded by one node to another carries its caller's principal (name and roles) in
`CALLER_HEADER`, beside the node credential that vouches for it (access.py), so the node that
runs the call authorizes it exactly as the node the client reached did, without the token.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from raftflow.protocol.limits import ID_LENGTH_MAX

CALLER_HEADER = "X-Raftflow-Caller"
ANY_NAMESPACE = "*"
# A principal with more roles than this is refused when configured: every call checks them.
ROLES_PER_PRINCIPAL_MAX = 64
PRINCIPAL_NAME_LENGTH_MAX = 256
# A caller header is base64 of a bounded msgpack array: name and roles, each bounded above.
CALLER_HEADER_BYTES_MAX = 4 * (PRINCIPAL_NAME_LENGTH_MAX + ROLES_PER_PRINCIPAL_MAX
                               * (ID_LENGTH_MAX + 16))


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    WORK = "work"


class RoleError(ValueError):
    """A role string that names no role (the message says which are valid)."""


# The permissions each namespace role grants in its namespace.
_NAMESPACE_ROLES: dict[str, frozenset[Permission]] = {
    "writer": frozenset({Permission.WRITE, Permission.READ}),
    "worker": frozenset({Permission.WORK}),
    "reader": frozenset({Permission.READ}),
}
_CLUSTER_ROLES = ("admin", "metrics")


def check_role(role: str) -> str:
    """`role` if it names a role, else RoleError saying what a role looks like."""
    if role in _CLUSTER_ROLES:
        return role
    kind, separator, namespace = role.partition(":")
    if not separator or kind not in _NAMESPACE_ROLES:
        raise RoleError(f"{role!r} is not a role: use admin, metrics, or writer:NS, worker:NS, "
                        "reader:NS (NS a namespace or *)")
    if not namespace or len(namespace) > ID_LENGTH_MAX:
        raise RoleError(f"{role!r}: the namespace after ':' must be 1 to {ID_LENGTH_MAX} "
                        "characters (or *)")
    return role


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a name (for logs) and its checked roles."""

    name: str
    roles: tuple[str, ...]
    admin: bool = field(init=False)
    metrics: bool = field(init=False)
    _grants: dict[str, frozenset[Permission]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert len(self.roles) <= ROLES_PER_PRINCIPAL_MAX
        grants: dict[str, set[Permission]] = {}
        for role in self.roles:
            kind, _, namespace = check_role(role).partition(":")
            if namespace:
                grants.setdefault(namespace, set()).update(_NAMESPACE_ROLES[kind])
        object.__setattr__(self, "admin", "admin" in self.roles)
        object.__setattr__(self, "metrics", "metrics" in self.roles or self.admin)
        object.__setattr__(self, "_grants", {ns: frozenset(p) for ns, p in grants.items()})

    def may(self, permission: Permission, namespace: str) -> bool:
        """Whether this caller holds `permission` in `namespace`."""
        if self.admin:
            return True
        return (permission in self._grants.get(namespace, ())
                or permission in self._grants.get(ANY_NAMESPACE, ()))

    def may_see(self, namespace: str) -> bool:
        """Whether this caller holds any role in `namespace` (describing it)."""
        return self.admin or namespace in self._grants or ANY_NAMESPACE in self._grants


# A node acting for itself (a poll leg, a shard's configure, a status probe): the cluster
# secret it proved is worth every permission (it could write any log entry anyway).
NODE = Principal(name="node", roles=("admin",))


def principal_of(name: str, roles: list[str] | tuple[str, ...]) -> Principal:
    """A principal from configured values; RoleError (ValueError) names a bad one."""
    if not name or len(name) > PRINCIPAL_NAME_LENGTH_MAX:
        raise RoleError(f"a name must be 1 to {PRINCIPAL_NAME_LENGTH_MAX} characters")
    if not roles:
        raise RoleError("at least one role is needed")
    if len(roles) > ROLES_PER_PRINCIPAL_MAX:
        raise RoleError(f"at most {ROLES_PER_PRINCIPAL_MAX} roles")
    return Principal(name=name, roles=tuple(check_role(role) for role in roles))


def encode_caller(principal: Principal) -> str:
    """The caller header's value for `principal` (ASCII, as HTTP headers must be)."""
    packed = msgspec.msgpack.encode((principal.name, principal.roles))
    return base64.urlsafe_b64encode(packed).decode("ascii")


_CallerWire = tuple[str, tuple[str, ...]]


def decode_caller(value: str) -> Principal | None:
    """The principal a caller header names, or None if it is malformed."""
    if len(value) > CALLER_HEADER_BYTES_MAX:
        return None
    try:
        name, roles = msgspec.msgpack.decode(base64.urlsafe_b64decode(value), type=_CallerWire)
        return principal_of(name, roles)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
