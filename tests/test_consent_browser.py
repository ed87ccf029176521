"""The login and consent pages in a real browser: headless Chromium driven by Selenium (Debian's
chromium and chromium-driver; scripts/test.sh installs them). The browser starts at the
authorization URL and must end on the demo client's redirect URI (/demo/callback on the service
itself) with the code and the state; the code is then exchanged over HTTP."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.consent import AS, USE_SERVER, Enrolled, enrol, exchange, pkce_pair, register_redirect, summary_of
from remotesign.api.html_pages import verification_code
from tests.browser import chromium
from tests.harness import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]



@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@pytest.fixture(scope="module")
def callback(service: Service, http: httpx.Client, demo_token: str) -> str:
    uri = f"{service.url}/demo/callback"
    register_redirect(http, demo_token, uri)
    return uri


@pytest.fixture(scope="module")
def signer(http: httpx.Client, demo_token: str) -> Enrolled:
    return enrol(http, demo_token, algorithm="ec-p256", pin="4711")


def authorize_url(service: Service, demo: dict[str, str], callback: str, who: Enrolled, state: str,
                  challenge: str, summary: str) -> str:
    return f"{service.url}/trustedx-authserver/oauth/{AS}?" + urlencode({
        "response_type": "code", "client_id": demo["client_id"], "redirect_uri": callback, "scope": USE_SERVER,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        "sign_identity_id": who.identity_id, "digests_summary": summary, "digests_summary_algorithm": "SHA256"})


def wait_for_url(driver: webdriver.Chrome, prefix: str) -> dict[str, str]:
    WebDriverWait(driver, 20).until(ec.url_contains(prefix))
    assert driver.current_url.startswith(prefix), driver.current_url
    return {k: v[0] for k, v in parse_qs(urlsplit(driver.current_url).query).items()}


def log_in(driver: webdriver.Chrome, who: Enrolled) -> None:
    driver.find_element(By.ID, "username").send_keys(who.username)
    driver.find_element(By.ID, "password").send_keys(who.password)
    driver.find_element(By.CSS_SELECTOR, 'button[name="action"][value="login"]').click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "pin")))


def test_sign_in_and_approve_with_the_pin(driver: webdriver.Chrome, service: Service, http: httpx.Client,
                                          demo: dict[str, str], callback: str, signer: Enrolled) -> None:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    summary = summary_of([os.urandom(32)])
    driver.get(authorize_url(service, demo, callback, signer, state, challenge, summary))
    assert driver.title == "Sign in"
    assert "demo relying party" in driver.find_element(By.TAG_NAME, "main").text

    log_in(driver, signer)
    assert driver.title == "Consent"
    text = driver.find_element(By.TAG_NAME, "main").text
    assert signer.user["display_name"] in text and "remotesign Issuing CA" in text
    assert signer.identity["details"]["serial_number"] in text and verification_code(summary) in text
    assert summary in driver.page_source     # the whole value, folded away for machines and experts

    driver.find_element(By.ID, "pin").send_keys(signer.pin)
    driver.find_element(By.CSS_SELECTOR, 'button[name="action"][value="approve"]').click()
    params = wait_for_url(driver, callback)
    assert params["state"] == state and "code" in params and "error" not in params
    assert params["code"] in driver.find_element(By.TAG_NAME, "main").text  # the demo callback page loaded

    r = exchange(http, demo["client_id"], demo["client_secret"], params["code"], verifier, callback)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = http.post(f"/trustedx-authserver/oauth/{AS}/introspect", data={"token": token},
                  auth=(demo["client_id"], demo["client_secret"]))
    info = r.json()
    assert info["active"] and info["sub"] == signer.user["id"] and info["sign_identity_id"] == signer.identity_id


def test_cancel_on_the_login_page(driver: webdriver.Chrome, service: Service, demo: dict[str, str],
                                  callback: str, signer: Enrolled) -> None:
    _, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    driver.get(authorize_url(service, demo, callback, signer, state, challenge, summary_of([os.urandom(32)])))
    # user name and password are required fields, yet Cancel must submit without them
    driver.find_element(By.CSS_SELECTOR, 'button[name="action"][value="cancel"]').click()
    params = wait_for_url(driver, callback)
    assert params["error"] == "access_denied" and params["state"] == state and "code" not in params


def test_cancel_on_the_consent_page(driver: webdriver.Chrome, service: Service, demo: dict[str, str],
                                    callback: str, signer: Enrolled) -> None:
    _, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    driver.get(authorize_url(service, demo, callback, signer, state, challenge, summary_of([os.urandom(32)])))
    log_in(driver, signer)
    # the PIN field is required, yet Cancel must submit without it
    driver.find_element(By.CSS_SELECTOR, 'button[name="action"][value="cancel"]').click()
    params = wait_for_url(driver, callback)
    assert params["error"] == "access_denied" and params["state"] == state and "code" not in params
