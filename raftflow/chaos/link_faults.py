"""What the link proxy is told to emulate, as pure values: link specs, faults, chunk holds.

A link is one direction between two nodes: node A's connections to B enter link "A->B" on its
listening port and leave towards B's real port. A `Fault` says how the link shapes bytes (see
`link_connections` for how it is applied); `chunk_hold_s` says how long one chunk waits.

Seeds: each link draws jitter and loss from `random.Random(f"{seed}/{name}")`, one draw per
chunk, so the same seed and the same chunk sequence give the same holds. Chunk boundaries
depend on scheduling, so a real run's timing still varies from run to run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from raftflow.chaos.link_limits import DELAY_MS_MAX, LOSS_STALL_MS_MAX, LOSS_STALL_MS_MIN


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One directed link: listen on 127.0.0.1:listen_port, forward to 127.0.0.1:target_port."""

    name: str
    listen_port: int
    target_port: int


def parse_link_spec(text: str) -> LinkSpec:
    """Parse `NAME=LISTEN_PORT:TARGET_PORT`. Raises ValueError saying what is wrong."""
    name, equals, ports = text.partition("=")
    if not equals or not name or any(c.isspace() for c in name):
        raise ValueError(f"link {text!r}: expected NAME=LISTEN_PORT:TARGET_PORT, NAME without "
                         "whitespace or '='")
    listen, colon, target = ports.partition(":")
    if not colon:
        raise ValueError(f"link {text!r}: expected LISTEN_PORT:TARGET_PORT after '='")
    numbers = []
    for label, value in (("LISTEN_PORT", listen), ("TARGET_PORT", target)):
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            raise ValueError(f"link {text!r}: {label} must be an integer in 1..65535")
        numbers.append(int(value))
    return LinkSpec(name, numbers[0], numbers[1])


def format_link_spec(spec: LinkSpec) -> str:
    """The `--link` argument for `spec`; `parse_link_spec` reads it back unchanged."""
    return f"{spec.name}={spec.listen_port}:{spec.target_port}"


def check_link_specs(specs: Sequence[LinkSpec]) -> None:
    """Raise ValueError for duplicate names or listening ports, or the reserved name '*'."""
    names = [s.name for s in specs]
    ports = [s.listen_port for s in specs]
    if "*" in names:
        raise ValueError("link name '*' is reserved for 'all links'")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate link names in {names}")
    if len(set(ports)) != len(ports):
        raise ValueError(f"duplicate listening ports in {ports}")


class Mode(StrEnum):
    FORWARD = "forward"
    BLACKHOLE = "blackhole"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A link's current fault. Invariant: 0 <= jitter_ms <= delay_ms <= DELAY_MS_MAX."""

    mode: Mode = Mode.FORWARD
    delay_ms: int = 0
    jitter_ms: int = 0
    loss_percent: float = 0.0

    @property
    def holds_chunks(self) -> bool:
        return self.mode is not Mode.FORWARD or self.delay_ms > 0 or self.loss_percent > 0


def chunk_hold_s(fault: Fault, rng: random.Random) -> float:
    """How long one chunk waits before delivery; draws from `rng` only for jitter and loss."""
    assert 0 <= fault.jitter_ms <= fault.delay_ms <= DELAY_MS_MAX
    hold_ms = float(fault.delay_ms)
    if fault.jitter_ms:
        hold_ms += rng.uniform(-fault.jitter_ms, fault.jitter_ms)
    if fault.loss_percent and rng.random() * 100 < fault.loss_percent:
        hold_ms += rng.uniform(LOSS_STALL_MS_MIN, LOSS_STALL_MS_MAX)
    return max(hold_ms, 0.0) / 1000

