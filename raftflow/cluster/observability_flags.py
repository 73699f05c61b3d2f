"""The logging and tracing flags `raftflow node` and `raftflow dev` share, and how dev hands
them to its nodes (docs/observability.md).

Kept free of heavy imports: `raftflow.cli` builds its parser from here without loading aiohttp
(or OpenTelemetry, which only a node started with --otel-exporter imports).
"""

from __future__ import annotations

import argparse

from raftflow.observability.config import OTEL_EXPORTERS, ObservabilityConfig
from raftflow.observability.json_logs import LOG_FORMATS

LOG_LEVELS = ("debug", "info", "warning", "error")


def add_observability_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    parser.add_argument("--log-format", default="text", choices=LOG_FORMATS,
                        help="text lines (default), or one JSON object per line with time, "
                             "level, logger, node, message and the namespace, workflow_id, "
                             "run_id, shard and term the line concerns")
    parser.add_argument("--otel-exporter", default=None, choices=OTEL_EXPORTERS,
                        help="trace with OpenTelemetry and export spans over OTLP/HTTP (to "
                             "OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318) or "
                             "to the node's log stream (console); default: no tracing")


def observability_of(args: argparse.Namespace) -> ObservabilityConfig:
    return ObservabilityConfig(log_format=getattr(args, "log_format", "text"),
                               otel_exporter=getattr(args, "otel_exporter", None))


def observability_flags_of(args: argparse.Namespace) -> list[str]:
    """The flags of `args` as `raftflow node` arguments (defaults left out)."""
    flags: list[str] = []
    if getattr(args, "log_level", "info") != "info":
        flags += ["--log-level", args.log_level]
    if getattr(args, "log_format", "text") != "text":
        flags += ["--log-format", args.log_format]
    if getattr(args, "otel_exporter", None) is not None:
        flags += ["--otel-exporter", args.otel_exporter]
    return flags
