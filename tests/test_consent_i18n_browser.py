"""The sign-in and consent pages translated and branded, in headless Chromium on a 390 px phone
screen: a service of its own with an operator name and logo; the language from ``ui_locales``
(Latvian) or from the browser (Vietnamese); nothing wider than the screen; screenshots kept in the
test's directory (REMOTESIGN_SCREENSHOTS=DIR copies them there to look at)."""

from __future__ import annotations

import os
import secrets
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from remotesign.api.html_pages import verification_code
from remotesign.api.page_text import TEXTS
from tests.browser import chromium
from tests.consent import AS, USE_SERVER, Enrolled, enrol, pkce_pair, register_redirect, summary_of
from tests.harness import Service, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OPERATOR = "Latvijas Valsts radio un televīzijas centrs"
LV, VI = 1, 2


def _png(size: int) -> bytes:
    """A one-colour ``size`` x ``size`` PNG, built here so the test needs no image library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + b"\x1f\x5f\xbf" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png(24)


@pytest.fixture(scope="module")
def branded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("branded")
    (base / "logo.png").write_bytes(PNG)
    svc = Service(home=base / "home", port=free_port(), env={
        "REMOTESIGN_OPERATOR_NAME": OPERATOR, "REMOTESIGN_OPERATOR_LOGO": str(base / "logo.png")}).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def signer(branded: Service) -> Iterator[tuple[dict[str, str], Enrolled, httpx.Client]]:
    demo = branded.demo_client()
    with httpx.Client(base_url=branded.url, timeout=30) as http:
        token = branded.token(demo["client_id"], demo["client_secret"])
        register_redirect(http, token, f"{branded.url}/demo/callback")
        yield demo, enrol(http, token, algorithm="ec-p256", pin="4711"), http


def phone(profile: Path, language: str) -> webdriver.Chrome:
    """Chromium as a phone: 390 px wide, asking for ``language``."""
    return chromium(profile, window="390,844", accept_language=language)


def _authorize(branded: Service, demo: dict[str, str], who: Enrolled, summary: str, **extra: str) -> str:
    _, challenge = pkce_pair()
    return f"{branded.url}/trustedx-authserver/oauth/{AS}?" + urlencode({
        "response_type": "code", "client_id": demo["client_id"], "redirect_uri": f"{branded.url}/demo/callback",
        "scope": USE_SERVER, "state": secrets.token_urlsafe(8), "code_challenge": challenge,
        "code_challenge_method": "S256", "sign_identity_id": who.identity_id, "digests_summary": summary,
        "digests_summary_algorithm": "SHA256", **extra})


def _fits(driver: webdriver.Chrome) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    view = driver.execute_script("return window.innerWidth")
    assert width <= view, f"the page is {width} px wide on a {view} px screen"


def _shot(driver: webdriver.Chrome, path: Path) -> None:
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, path   # a rendered page, not a blank one
    target = os.environ.get("REMOTESIGN_SCREENSHOTS")
    if target:
        shutil.copy2(path, Path(target) / path.name)


def _sign_in(driver: webdriver.Chrome, who: Enrolled) -> None:
    driver.find_element(By.ID, "username").send_keys(who.username)
    driver.find_element(By.ID, "password").send_keys(who.password)
    driver.find_element(By.CSS_SELECTOR, 'button[name="action"][value="login"]').click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "pin")))


@pytest.mark.parametrize("language, ui_locales, column", [("en-US,en", "lv", LV), ("vi-VN,vi;q=0.9", None, VI)])
def test_translated_branded_consent_on_a_phone(branded: Service, signer: tuple[dict[str, str], Enrolled, httpx.Client],
                                               tmp_path: Path, language: str, ui_locales: str | None,
                                               column: int) -> None:
    demo, who, _ = signer
    summary = summary_of([os.urandom(32)])
    extra = {"ui_locales": ui_locales} if ui_locales else {}
    with phone(tmp_path / "profile", language) as driver:
        driver.get(_authorize(branded, demo, who, summary, **extra))
        assert driver.title == TEXTS["sign_in"][column]
        header = driver.find_element(By.TAG_NAME, "header")
        assert OPERATOR in header.text
        logo = header.find_element(By.TAG_NAME, "img")
        assert driver.execute_script("return arguments[0].naturalWidth", logo) == 24   # the logo loaded (CSP)
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == ("en", "lv", "vi")[column]
        _fits(driver)
        _shot(driver, tmp_path / f"sign-in-{('en', 'lv', 'vi')[column]}.png")

        _sign_in(driver, who)
        assert driver.title == TEXTS["consent"][column]       # the language holds on the next page
        text = driver.find_element(By.TAG_NAME, "main").text
        assert TEXTS["scope:" + USE_SERVER][column] in text and TEXTS["signing_pin"][column] in text
        assert verification_code(summary) in text and summary not in text
        _fits(driver)
        _shot(driver, tmp_path / f"consent-{('en', 'lv', 'vi')[column]}.png")

        driver.find_element(By.ID, "pin").send_keys("0000")   # a wrong PIN: the message is translated too
        driver.find_element(By.CSS_SELECTOR, 'button[name="action"][value="approve"]').click()
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".error")))
        message = driver.find_element(By.CSS_SELECTOR, ".error").text
        assert message.startswith(TEXTS["wrong_pin"][column].split(",")[0].split(":")[0]), message


def test_a_logo_that_is_not_an_image_is_left_out(tmp_path: Path) -> None:
    from remotesign.api.branding import branding

    (tmp_path / "logo.png").write_bytes(b"<html><script>alert(1)</script></html>")
    assert branding("Op", tmp_path / "logo.png").logo_uri is None
    (tmp_path / "big.png").write_bytes(PNG + b"\0" * (64 * 1024))
    assert branding("Op", tmp_path / "big.png").logo_uri is None
    assert branding("Op", tmp_path / "missing.png").logo_uri is None
    (tmp_path / "ok.png").write_bytes(PNG)
    assert branding("Op", tmp_path / "ok.png").logo_uri.startswith("data:image/png;base64,")
