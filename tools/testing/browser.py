"""Headless Chromium for report tests and benchmarks: find the system browser, open a report, collect its errors."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

#: Where a Chromium binary may be: Debian's real binary first (its /usr/bin/chromium is a shell wrapper).
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome-stable",
                       "google-chrome")  # fmt: skip
#: How to get a browser where none is found.
INSTALL_HINT = "install Chromium (Debian: apt-get install -y chromium) or set HAYSTACK_RL_CHROMIUM=/path/to/chrome"


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome binary on this machine (`HAYSTACK_RL_CHROMIUM` first), or None."""
    for candidate in (os.environ.get("HAYSTACK_RL_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if not candidate:
            continue
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    return None


def browser_missing() -> str | None:
    """Why no report can be opened in a browser here (None when one can): no Chromium, or no Playwright."""
    if find_chromium() is None:
        return f"no Chromium found: {INSTALL_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[dev]' (it drives the system Chromium)"
    return None


class ReportBrowser:
    """
    A headless Chromium (through Playwright, never a downloaded browser) that opens report files and records
    every console error and uncaught exception of each page.

    Usage example:
    ```python
    import tempfile
    from pathlib import Path
    from tools.testing.browser import ReportBrowser, browser_missing

    page_file = Path(tempfile.mkdtemp()) / "page.html"
    page_file.write_text("<script>window.report = {ready: true}</script>")
    if browser_missing() is None:
        with ReportBrowser() as browser:
            page, seconds = browser.open(page_file)
            assert page.evaluate("window.report.ready") and browser.errors == []
    ```
    """

    def __init__(self, viewport: tuple[int, int] = (1400, 1000)) -> None:
        self.viewport = viewport
        self.errors: list[str] = []
        self._playwright: Any = None
        self._browser: Any = None

    def __enter__(self) -> ReportBrowser:
        from playwright.sync_api import sync_playwright

        executable = find_chromium()
        if executable is None:
            raise RuntimeError(f"no Chromium found: {INSTALL_HINT}")
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=executable, headless=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()

    def open(self, path: str | Path, timeout_s: float = 60.0) -> tuple[Any, float]:
        """
        Open a report file in a new page and wait until its script says it is ready (`window.report.ready`).

        :returns: The Playwright page, and the seconds from navigation to ready.
        """
        width, height = self.viewport
        page = self._browser.new_page(viewport={"width": width, "height": height})
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        start = time.perf_counter()
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_function("window.report && window.report.ready === true", timeout=timeout_s * 1000)
        return page, time.perf_counter() - start

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")
