"""Selenium helpers shared by the UI tests: explicit waits on what a page shows.

Pages re-render what they show on each auto-refresh (every 3 s), so an element found a moment
ago may be gone: every helper finds its elements inside a wait that ignores stale ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

# Pages refresh every 3 s and a cluster call may wait out a leader change.
WAIT_S = 20.0


_GONE = (NoSuchElementException, StaleElementReferenceException)


def wait_for(browser: Any, condition: Callable[[Any], Any], what: str) -> Any:
    return WebDriverWait(browser, WAIT_S, ignored_exceptions=_GONE).until(
        condition, f"waited {WAIT_S} s for {what}")


def click(browser: Any, css: str) -> None:
    def clicked(b: Any) -> bool:
        b.find_element(By.CSS_SELECTOR, css).click()
        return True
    wait_for(browser, clicked, f"a click on {css}")


def displayed(browser: Any, css: str) -> bool:
    return bool(wait_for(browser, lambda b: (
        b.find_element(By.CSS_SELECTOR, css).is_displayed(),), css)[0])


def enabled(browser: Any, css: str) -> bool:
    return bool(wait_for(browser, lambda b: (
        b.find_element(By.CSS_SELECTOR, css).is_enabled(),), css)[0])


def element(browser: Any, css: str) -> WebElement:
    return wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, css), css)


def text_of(browser: Any, css: str) -> str:
    return str(wait_for(browser, lambda b: "\n".join(
        e.text for e in b.find_elements(By.CSS_SELECTOR, css)) or None, css))


def wait_text(browser: Any, css: str, *needles: str) -> str:
    """Wait until the elements `css` selects show every needle; their text."""
    def shown(b: Any) -> str | None:
        text = "\n".join(e.text for e in b.find_elements(By.CSS_SELECTOR, css))
        return text if all(n in text for n in needles) else None
    return str(wait_for(browser, shown, f"{css} to show {needles}"))


def confirm(browser: Any, *, accept: bool) -> None:
    """Answer the open confirmation dialog."""
    element(browser, "#confirm-dialog[open]")
    click(browser, "#confirm-ok" if accept else "#confirm-cancel")
    wait_for(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, "#confirm-dialog[open]"),
             "the dialog to close")
