"""Goal: the shipped Prometheus files are valid and the alerts fire exactly when they should.

Method: run Debian's `promtool` on them: `check config` (which also loads alerts.yml),
`test rules` on deploy/prometheus/alerts_test.yml (each alert firing on its series, pending
before its `for:`, silent on a healthy look-alike). A missing promtool fails the test with
what to install; CI installs it (.ci/run).
"""

from __future__ import annotations

import subprocess

from tests.metrics.prometheus_tools import PROMETHEUS_DIR, alert_expressions, tool


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], cwd=PROMETHEUS_DIR, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_prometheus_config_and_its_rules_are_valid() -> None:
    done = _promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout + done.stderr


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    done = _promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
    tested = (PROMETHEUS_DIR / "alerts_test.yml").read_text()
    untested = [name for name, _ in alert_expressions() if f"alertname: {name}" not in tested]
    assert untested == [], f"alerts without a promtool unit test: {untested}"
