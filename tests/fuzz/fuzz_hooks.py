"""The schemathesis hooks of `make fuzz` (SCHEMATHESIS_HOOKS names this one module): importing
each hook module registers its hooks."""

from __future__ import annotations

from tests.fuzz import bounded_waits, unregistered_attributes

__all__ = ["bounded_waits", "unregistered_attributes"]
