"""Swagger UI and ReDoc really render in a browser from the service's own assets: every operation
of the description shown, the Authorize button there, no Content-Security-Policy violation, and
no resource fetched from anywhere but the service (so they work on a host without internet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("selenium")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.browser import chromium  # noqa: E402
from tests.harness import Service  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WATCH = ("window.__csp = [];document.addEventListener('securitypolicyviolation', "
         "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
RESOURCES = "return performance.getEntriesByType('resource').map(e => e.name)"


def _count(description: dict[str, Any]) -> int:
    return sum(len(operations) for operations in description["paths"].values())


def test_swagger_ui_and_redoc_render_from_local_assets(service: Service, http: httpx.Client, tmp_path: Path) -> None:
    with chromium(tmp_path / "profile") as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
        for page, spec in (("/docs", "/openapi.json"), ("/docs/csc-v2", "/openapi/csc-v2.json")):
            expected = _count(http.get(spec).json())
            driver.get(service.url + page)
            WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= expected)
            assert len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) == expected, page
            assert driver.find_elements(By.CSS_SELECTOR, "button.authorize"), page
            assert driver.execute_script("return window.__csp") == [], page
            assert all(url.startswith(service.url) for url in driver.execute_script(RESOURCES)), page
        driver.get(service.url + "/redoc/signapi")
        WebDriverWait(driver, 60).until(lambda d: "CalculateDigest" in d.find_element(By.TAG_NAME, "body").text)
        assert driver.execute_script("return window.__csp") == []
        assert all(url.startswith(service.url) for url in driver.execute_script(RESOURCES))
