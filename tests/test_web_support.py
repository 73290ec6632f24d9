"""Helpers for the access-graph page tests: a real headless Chromium driven by Selenium (Debian's
chromium and chromedriver; Selenium Manager never downloads anything), waits on the page's DOM,
and what the page shows (edges with their computed colours, node boxes, the YAML panel)."""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-default-apps", "--disable-extensions", "--mute-audio")
# The legend's colours (style.css): what the computed stroke of an edge must be.
COLOURS = {"applied": "rgb(46, 157, 72)", "missing": "rgb(224, 168, 0)", "denied": "rgb(211, 58, 44)"}

T = TypeVar("T")


def chromium_missing() -> str | None:
    """Why no browser test can run here, or None."""
    for p in (CHROMIUM, CHROMEDRIVER):
        if not os.access(p, os.X_OK):
            return f"{p} is missing: apt-get install chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed in the venv (requirements-test.txt)"
    return None


@contextlib.contextmanager
def chromium(workdir: Path, width: int = 1500, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium with a fresh profile in ``workdir``; quit (and its processes gone) afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never reach the network
    profile = workdir / "chromium-profile"
    downloads = workdir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for a in CHROMIUM_ARGS:
        opts.add_argument(a)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()


def wait_for(what: str, cond: Callable[[], T], seconds: float = 60.0, every: float = 0.2,
             explain: Callable[[], Any] | None = None) -> T:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` (never a timed assertion:
    the limit only keeps a broken page from hanging the test)."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what} (last: {last!r})" + (f"; {explain()}" if explain else ""))


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors since the last call (a page with none is the expectation)."""
    return [m["message"] for m in driver.get_log("browser") if m["level"] == "SEVERE"]


def page_state(driver: Any) -> str:
    """The page's status line and the browser's console messages, to explain a failed wait."""
    line = driver.execute_script("return document.querySelector('header').innerText")
    try:
        console = [f"{m['level']}: {m['message']}" for m in driver.get_log("browser")]
    except Exception as exc:  # noqa: BLE001 - the log is a diagnostic only
        console = [f"(no console log: {exc})"]
    return f"page header: {line!r}; console: {console}"


def edges(driver: Any) -> list[dict[str, Any]]:
    """Every drawn edge: from, to, status, permissions, its computed stroke colour and its length."""
    return driver.execute_script("""
        return [...document.querySelectorAll('#edges path')].map(p => ({
          from: p.dataset.from, to: p.dataset.to, status: p.dataset.status,
          permissions: p.dataset.permissions ? p.dataset.permissions.split('\\n') : [],
          stroke: getComputedStyle(p).stroke, length: p.getTotalLength()}));""")


def nodes(driver: Any) -> list[dict[str, Any]]:
    """Every node box: id, type (workload|scope), its text and its rectangle in page coordinates."""
    return driver.execute_script("""
        return [...document.querySelectorAll('.node[data-id]')].map(n => { const r = n.getBoundingClientRect();
          return {id: n.dataset.id, type: n.classList.contains('workload') ? 'workload' : 'scope',
                  text: n.innerText, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; });""")


def overlaps(boxes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of boxes that overlap (sweep by top edge)."""
    found = []
    ordered = sorted(boxes, key=lambda b: b["y"])
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b["y"] >= a["y"] + a["h"]:
                break
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]:
                found.append((a["id"], b["id"]))
    return found


def panel_yaml(driver: Any) -> str:
    return driver.execute_script("return document.getElementById('yaml').textContent")


def click_workload(driver: Any, node_id: str) -> None:
    from selenium.webdriver.common.by import By

    el = driver.find_element(By.CSS_SELECTOR, f'.node.workload[data-id="{node_id}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()


def screenshot(driver: Any, name: str, full_page: bool = True) -> Path:
    """Save a screenshot (of the whole page, up to 8000 px high) under artifacts/ and print its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if not full_page:
        driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
        return path
    height = driver.execute_script("return Math.max(document.body.scrollHeight, innerHeight)")
    width = driver.execute_script("return innerWidth")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": min(int(height), 8000), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(f"screenshot: {path}")
    return path
