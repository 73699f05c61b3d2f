"""What a node was asked to tell its operators: its log format and its trace exporter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

OTEL_EXPORTERS: Final = ("otlp", "console")


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservabilityConfig:
    """`log_format`: "text" (the default) or "json" (json_logs.py). `otel_exporter`: None (no
    tracing, the default: nothing of OpenTelemetry is imported), "otlp" or "console"."""

    log_format: str = "text"
    otel_exporter: str | None = None

    def __post_init__(self) -> None:
        assert self.log_format in ("text", "json"), self.log_format
        assert self.otel_exporter is None or self.otel_exporter in OTEL_EXPORTERS

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json"

    @property
    def tracing(self) -> bool:
        return self.otel_exporter is not None


DEFAULT_OBSERVABILITY: Final = ObservabilityConfig()
