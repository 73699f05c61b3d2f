"""Limits of the per-link fault proxy (`links.py`), each with why it has the value it has."""

from __future__ import annotations

from typing import Final

HOST: Final = "127.0.0.1"  # links and control are loopback only: the harness owns the box
# Per direction, queued bytes and the outgoing transport's buffer are each bounded by this;
# past it the incoming socket stops being read and TCP pushes back on the sender.
CONNECTION_BUFFER_BYTES_MAX: Final = 1 << 20
CONNECTION_BUFFER_BYTES_LOW: Final = CONNECTION_BUFFER_BYTES_MAX // 4  # resume reading here
LINK_CONNECTIONS_MAX: Final = 1024  # a node pair needs a handful; more means a leak upstream
DELAY_MS_MAX: Final = 60_000  # beyond election timeouts by far; larger is a typo
LOSS_STALL_MS_MIN: Final = 200  # Linux's minimum retransmission timeout
LOSS_STALL_MS_MAX: Final = 1000
CONTROL_LINE_BYTES_MAX: Final = 64 * 1024
CONTROL_TIMEOUT_S: Final = 5.0
READY_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
assert CONNECTION_BUFFER_BYTES_LOW < CONNECTION_BUFFER_BYTES_MAX
assert 0 < LOSS_STALL_MS_MIN < LOSS_STALL_MS_MAX
