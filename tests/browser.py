"""Headless Chromium for the browser tests (Debian's chromium and chromium-driver; scripts/test.sh
installs them), driven by Selenium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def chromium(profile: Path, *, javascript: bool = True, window: str | None = None,
             accept_language: str | None = None) -> Iterator[webdriver.Chrome]:
    """Headless Chromium; ``javascript=False`` turns pages' scripts off (the driver still works);
    ``window`` is "WIDTH,HEIGHT" (a phone: "390,844"); ``accept_language`` what it asks pages for."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).exists() or shutil.which(Path(path).name), \
            f"{path} missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    prefs: dict[str, object] = {}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    if accept_language:
        prefs["intl.accept_languages"] = accept_language
    if prefs:
        options.add_experimental_option("prefs", prefs)
    os.environ.setdefault("SE_AVOID_STATS", "true")
    browser = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    if window:  # a phone's viewport (a headless window is at least 500 px wide)
        width, height = (int(v) for v in window.split(","))
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    try:
        yield browser
    finally:
        browser.quit()
