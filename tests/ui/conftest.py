"""Browser tests of the web UI: one real 3-node cluster and one headless Chromium for the package,
always torn down.

Chromium and chromedriver are Debian's (`apt-get install chromium chromium-driver`; `.ci/run`
installs them when missing), driven by selenium. A missing browser fails the tests, naming what
to install: a UI nobody tested is not a UI that works. Screenshots go to docs/ui/ (docs/ui.md
shows them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raftflow.cluster.launcher import LocalCluster
from tests.live_cluster import running

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# docs/ui.md shows these; RAFTFLOW_UI_SCREENSHOTS=DIR writes them elsewhere (a CI run that
# should leave the work tree as it found it).
SCREENSHOTS = Path(os.environ.get("RAFTFLOW_UI_SCREENSHOTS")
                   or Path(__file__).resolve().parents[2] / "docs" / "ui")
WINDOW = (1280, 800)
DOWNLOADS = "downloads"
# Offline machine: without these Chromium keeps dialling Google's services (refused
# connections by the hundred); the rest make it run headless in a container.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  f"--window-size={WINDOW[0]},{WINDOW[1]}")


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(tmp_path_factory, "ui-cluster") as local:
        yield local


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"the UI tests need {', '.join(missing)}: apt-get install -y "
                    "--no-install-recommends chromium chromium-driver (.ci/run does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the UI tests need selenium: pip install -e '.[dev]'")
    profile = tempfile.mkdtemp(prefix="raftflow-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Downloads land in the profile's own directory (the history download test reads them).
    options.add_experimental_option("prefs", {
        "download.default_directory": str(Path(profile) / DOWNLOADS),
        "download.prompt_for_download": False})
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.raftflow_downloads = Path(profile) / DOWNLOADS
    try:
        driver.set_window_size(*WINDOW)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def screenshot(browser: Any) -> Callable[..., None]:
    def take(name: str, at: str | None = None) -> None:
        """docs/ui/<name>.png: the page's top, whatever was clicked, or the element `at`."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if at is None:
            browser.execute_script("window.scrollTo(0, 0)")
        else:
            browser.execute_script("document.querySelector(arguments[0]).scrollIntoView()", at)
        browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    return take


@pytest.fixture(autouse=True)
def no_script_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """A page that threw (or hit a CSP refusal) fails the test that showed it; a test that
    drives no browser needs none."""
    if "browser" not in request.fixturenames:
        yield
        return
    browser = request.getfixturevalue("browser")
    browser.get_log("browser")  # drop what earlier tests left
    yield
    # Failed loads ("network": a 4xx the page showed, a 503 it asked again) are answers the
    # page handles; a script error or a CSP refusal is a bug.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and e["source"] != "network"]
    assert errors == []
