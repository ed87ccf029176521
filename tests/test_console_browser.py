"""The operator console in a real browser with JavaScript switched off: headless Chromium (Debian's
chromium and chromium-driver) signs in through the form, opens every page, creates a relying party
and verifies the audit log by clicking, and signs out. Every page is saved as a full-page PNG under
the test's tmp directory and checked to be a real rendering, not a blank or an error page."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium
from tests.consent import enrol
from tests.console import make_operator
from tests.device_client import DeviceApp
from tests.harness import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {"overview": ("/console/", "Overview"), "clients": ("/console/clients", "Relying parties"),
         "users": ("/console/users", "Users"), "identities": ("/console/identities", "Sign identities"),
         "devices": ("/console/devices", "Approval devices"), "certificates": ("/console/certificates", "Certificates"),
         "audit": ("/console/audit", "Audit log"), "health": ("/console/health", "Service health")}


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    with chromium(tmp_path_factory.mktemp("console-chromium"), javascript=False) as browser:
        browser.set_window_size(1440, 900)
        yield browser


def screenshot(driver: webdriver.Chrome, path: Path) -> Path:
    """The whole page (not only the window) as a PNG, through the DevTools protocol (no page script)."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width, height = max(1, int(size["width"])), max(1, min(int(size["height"]), 8000))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def assert_rendered(path: Path) -> None:
    """A real page: big enough, many colours, no single colour covering (almost) everything."""
    assert path.stat().st_size > 15_000, (path, path.stat().st_size)
    with Image.open(path) as img:
        assert img.width >= 1000 and img.height >= 400, (path, img.size)
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50, (path, len(colours or []))
        commonest = max(count for count, _ in colours)
        assert commonest < 0.93 * img.width * img.height, (path, commonest / (img.width * img.height))


def heading(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "h1").text)


def test_the_console_in_a_browser_without_javascript(driver: webdriver.Chrome, service: Service,
                                                     http: httpx.Client, demo_token: str, tmp_path: Path) -> None:
    name, password = make_operator(service)
    who = enrol(http, demo_token, algorithm="ec-p256", pin="86420")  # rows for users, identities, certificates
    DeviceApp.register(http, who.device_code, name="console test phone")  # and devices
    shots = tmp_path / "screenshots"
    shots.mkdir()

    driver.get(service.url + "/console/identities")
    assert driver.current_url.startswith(service.url + "/console/login?next=")
    assert heading(driver) == "Operator sign-in"
    assert driver.execute_cdp_cmd("Runtime.evaluate", {"expression": "1"}) is not None  # CDP works, page JS is off
    assert_rendered(screenshot(driver, shots / "console-login.png"))
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 20).until(ec.url_to_be(service.url + "/console/identities"))
    assert who.identity_id in driver.find_element(By.TAG_NAME, "main").text

    for key, (path, title) in PAGES.items():
        driver.get(service.url + path)
        assert heading(driver) == title, (path, driver.page_source[:2000])
        assert f"Signed in as {name}" in driver.find_element(By.CSS_SELECTOR, "header").text
        assert_rendered(screenshot(driver, shots / f"console-{key}.png"))
    driver.get(service.url + "/console/users")  # oldest first, 100 a page: the search form finds the new user
    driver.find_element(By.ID, "q").send_keys(who.username)
    driver.find_element(By.XPATH, "//form[@class='search']//button[text()='Search']").click()
    WebDriverWait(driver, 20).until(ec.url_contains("q=" + who.username))
    assert who.username in driver.find_element(By.TAG_NAME, "main").text
    assert driver.find_element(By.ID, "showing").text.startswith("1 user.")
    driver.get(service.url + "/console/devices")
    assert "console test phone" in driver.find_element(By.TAG_NAME, "main").text

    # forms posted by the browser itself: SameSite=Strict cookie, form token and Sec-Fetch-Site all pass
    driver.get(service.url + "/console/clients")
    driver.find_element(By.CSS_SELECTOR, "details summary").click()  # <details> opens without scripts
    driver.find_element(By.ID, "name").send_keys("Browser Bank")
    driver.find_element(By.XPATH, "//button[text()='Create relying party']").click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "client_secret")))
    assert heading(driver) == "Relying party created"
    client_id = driver.find_element(By.ID, "client_id").text
    secret = driver.find_element(By.ID, "client_secret").text
    assert service.token(client_id, secret)
    assert_rendered(screenshot(driver, shots / "console-client-created.png"))

    driver.get(service.url + "/console/audit")
    driver.find_element(By.XPATH, "//button[text()='Verify the audit log']").click()
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "verification")))
    assert "Audit log intact." in driver.find_element(By.ID, "verification").text
    assert_rendered(screenshot(driver, shots / "console-audit-verified.png"))

    driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
    WebDriverWait(driver, 20).until(ec.url_contains("/console/login"))
    assert "You are signed out." in driver.find_element(By.TAG_NAME, "main").text
    driver.get(service.url + "/console/")
    assert driver.current_url.startswith(service.url + "/console/login")
    print(f"console screenshots in {shots}")
