"""Shared by the Prometheus tests: where the shipped files are, what their queries are, and
the Prometheus tools (Debian's `prometheus` package) that the tests need and do not skip."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "raftflow.json"
INSTALL_HINT = ("apt-get install -y --no-install-recommends prometheus (Debian's package ships "
                "/usr/bin/prometheus and /usr/bin/promtool; .ci/run installs it)")

# What Grafana puts in a query before sending it: the dashboard's variables with their "All"
# value, and the rate window Grafana derives from the scrape interval.
GRAFANA_VARIABLES = {"$namespace": ".*", "$__rate_interval": "30s"}

_METRIC_NAME = re.compile(r"\b(raftflow_[a-z0-9_]+)")
# Suffixes Prometheus exposition adds to a metric family's name.
_SAMPLE_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def tool(name: str) -> str:
    """The path of a Prometheus tool; fails (never skips) the test when it is missing."""
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed: {INSTALL_HINT}"
    return path


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL as Grafana sends it) for every query of every dashboard panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"panel {panel['title']!r} uses an unknown variable: {expr}"
            queries.append((panel["title"], expr))
    return queries


def alert_expressions() -> list[tuple[str, str]]:
    """(alert name, expr) of every rule of alerts.yml."""
    rules: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"]
            for rule in group["rules"]]


def metric_families(expr: str) -> set[str]:
    """The raftflow metric families an expression reads (sample suffixes removed)."""
    families = set()
    for name in _METRIC_NAME.findall(expr):
        for suffix in _SAMPLE_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        families.add(name)
    return families
