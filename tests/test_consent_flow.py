"""The OAuth2 authorization-code flow through the service's own login and consent pages, driven
over HTTP exactly as a browser without JavaScript submits the forms (tests/consent.py), and the
token endpoint's authorization_code grant."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.consent import (AS, PROFILE, REDIRECT_URI, USE_SERVER, Authorization, Enrolled, admin, consent, enrol,
                           exchange, hidden, login, pkce_pair, redirect_params, register_redirect, start, summary_of)
from tests.harness import Service, free_port
from tests.pdfgen import pdf_bytes

AUTHORIZE = f"/trustedx-authserver/oauth/{AS}"
INTROSPECT = f"/trustedx-authserver/oauth/{AS}/introspect"


@pytest.fixture(scope="module", autouse=True)
def registered(http: httpx.Client, demo_token: str) -> None:
    register_redirect(http, demo_token)


@pytest.fixture(scope="module")
def alice(http: httpx.Client, demo_token: str) -> Enrolled:
    return enrol(http, demo_token, algorithm="ec-p256")


@pytest.fixture(scope="module")
def other_client(service: Service) -> dict[str, str]:
    return service.new_client("consent-flow other client")


def introspect(http: httpx.Client, demo: dict[str, str], token: str) -> dict[str, Any]:
    r = http.post(INTROSPECT, data={"token": token}, auth=(demo["client_id"], demo["client_secret"]))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def approved_code(http: httpx.Client, demo: dict[str, str], who: Enrolled, scope: str = PROFILE,
                  **kwargs: Any) -> tuple[str, Authorization]:
    """A fresh code through the pages (profile scope: no PIN, one password check)."""
    r, a = start(str(http.base_url), demo["client_id"], scope, **kwargs)
    assert r.status_code == 200, r.text
    r = login(a, who.username, who.password)
    assert r.status_code == 200, r.text
    params = redirect_params(consent(a, "approve", pin=who.pin if USE_SERVER in scope else None))
    assert params["state"] == a.state
    return params["code"], a


def assert_page(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, f"{r.status_code}: {r.text[:1500]}"
    assert r.headers["content-type"].startswith("text/html")
    assert "location" not in r.headers
    assert '<html lang="en">' in r.text and "<script" not in r.text.lower()
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"


# -- the happy path ------------------------------------------------------------------------------

def test_full_flow_with_pkce_token_introspection_and_code_replay(http: httpx.Client, demo: dict[str, str],
                                                                  alice: Enrolled) -> None:
    summary = summary_of([os.urandom(32)])
    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=alice.identity_id, summary=summary,
                 extra={"prompt": "login", "acr_values": "urn:eparaksts:authentication:flow:mobileid",
                        "ui_locales": "en-GB"})
    assert_page(r, 200)
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self' http://127.0.0.1:9; "
        "frame-ancestors 'none'")
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith("rs_authz_") and "httponly" in cookie and "samesite=lax" in cookie
    assert "path=/trustedx-authserver/" in cookie and "secure" not in cookie  # plain http here
    assert 'name="username"' in r.text and 'name="password"' in r.text and "demo relying party" in r.text

    r = login(a, alice.username, alice.password)
    assert_page(r, 200)
    page = r.text
    assert hidden(page, "request_id") == a.request_id
    assert alice.user["display_name"] in page and "remotesign Issuing CA" in page
    assert alice.identity["details"]["serial_number"] in page and "serverid" in page
    assert summary in page and "SHA256" in page and 'name="pin"' in page
    assert 'value="approve"' in page and 'value="cancel"' in page and 'value="device"' not in page  # no device
    assert 'type="radio"' not in page  # the identity was named in the request

    params = redirect_params(consent(a, "approve", pin=alice.pin))
    assert params["state"] == a.state and set(params) == {"code", "state"}

    r = exchange(http, demo["client_id"], demo["client_secret"], params["code"], a.verifier)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == USE_SERVER and 0 < body["expires_in"] <= 300
    info = introspect(http, demo, body["access_token"])
    assert info["active"] and info["sub"] == alice.user["id"] and info["client_id"] == demo["client_id"]
    assert info["sign_identity_id"] == alice.identity_id and info["digests_summary"] == summary

    # RFC 6749 §4.1.2: a code works once; its replay also revokes the token issued from it
    r = exchange(http, demo["client_id"], demo["client_secret"], params["code"], a.verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert introspect(http, demo, body["access_token"]) == {"active": False}

    # the finished request cannot be approved again
    assert_page(consent(a, "approve", pin=alice.pin), 400)


def test_cancel_on_login_and_on_consent_page(http: httpx.Client, demo: dict[str, str], alice: Enrolled) -> None:
    r, a = start(str(http.base_url), demo["client_id"], PROFILE)
    r = a.browser.post(f"{AUTHORIZE}/login", data={"request_id": a.request_id, "action": "cancel"})
    params = redirect_params(r)
    assert params["error"] == "access_denied" and params["state"] == a.state and "code" not in params

    r, a = start(str(http.base_url), demo["client_id"], PROFILE)
    assert login(a, alice.username, alice.password).status_code == 200
    params = redirect_params(consent(a, "cancel"))
    assert params["error"] == "access_denied" and params["state"] == a.state


# -- passwords and PINs ---------------------------------------------------------------------------

def test_wrong_passwords_show_an_error_then_lock_the_login(http: httpx.Client, demo: dict[str, str],
                                                           demo_token: str) -> None:
    who = enrol(http, demo_token, algorithm="ec-p256")
    r, a = start(str(http.base_url), demo["client_id"], PROFILE)
    r = login(a, '<b id="x">nobody</b>', "whatever1")  # unknown user: the same answer, the input escaped
    assert_page(r, 401)
    assert 'class="error"' in r.text and "Wrong user name or password" in r.text
    assert '<b id="x">' not in r.text and "&lt;b id=&quot;x&quot;&gt;nobody&lt;/b&gt;" in r.text
    assert hidden(r.text, "request_id") == a.request_id
    unknown_answer = re.search(r'<p class="error"[^>]*>(.*?)</p>', r.text).group(1)  # type: ignore[union-attr]
    for _ in range(5):
        r = login(a, who.username, "wrong password")
        assert_page(r, 401)
        assert 'class="error"' in r.text
    r = login(a, who.username, who.password)  # right password, but the account is locked now
    assert_page(r, 401)
    # ... and a caller who is not the user cannot tell a locked account from an unknown name
    assert re.search(r'<p class="error"[^>]*>(.*?)</p>', r.text).group(1) == unknown_answer  # type: ignore[union-attr]
    assert "locked" in unknown_answer


def test_wrong_pins_count_down_then_lock(http: httpx.Client, demo: dict[str, str], demo_token: str) -> None:
    who = enrol(http, demo_token, algorithm="ec-p256", pin="2468")
    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=who.identity_id,
                 summary=summary_of([os.urandom(32)]))
    assert login(a, who.username, who.password).status_code == 200
    r = consent(a, "approve", pin="0000")
    assert_page(r, 403)
    assert 'class="error"' in r.text and "Wrong PIN, 2 tries left" in r.text and 'name="pin"' in r.text
    r = consent(a, "approve", pin="1111")
    assert_page(r, 403)
    assert "Wrong PIN, 1 try left" in r.text
    r = consent(a, "approve", pin="2222")
    assert_page(r, 403)
    assert "PIN is locked until" in r.text
    r = consent(a, "approve", pin=who.pin)  # the right PIN during the lock
    assert_page(r, 403)
    assert "PIN is locked until" in r.text
    params = redirect_params(consent(a, "cancel"))  # the user can still leave
    assert params["error"] == "access_denied"


# -- errors shown on the page, never redirected ----------------------------------------------------

def test_unregistered_redirect_or_unknown_client_is_a_page_not_a_redirect(http: httpx.Client,
                                                                          demo: dict[str, str]) -> None:
    r, _ = start(str(http.base_url), demo["client_id"], PROFILE, redirect_uri="https://evil.example/callback")
    assert_page(r, 400)
    assert "redirect_uri" in r.text and "set-cookie" not in r.headers
    r, _ = start(str(http.base_url), "no-such-client", PROFILE)
    assert_page(r, 400)
    r = http.get("/trustedx-authserver/oauth/unknown-as", params={"client_id": demo["client_id"]})
    assert_page(r, 404)
    # a repeated parameter is refused without trusting either value
    r = http.get(AUTHORIZE, params=[("client_id", demo["client_id"]), ("redirect_uri", REDIRECT_URI),
                                    ("redirect_uri", "https://evil.example/"), ("response_type", "code"),
                                    ("scope", PROFILE)])
    assert_page(r, 400)


def test_bad_requests_go_back_to_the_client_with_the_error(http: httpx.Client, demo: dict[str, str]) -> None:
    base = {"response_type": "code", "client_id": demo["client_id"], "redirect_uri": REDIRECT_URI,
            "scope": PROFILE, "state": "st-123"}
    _, challenge = pkce_pair()
    cases: list[tuple[dict[str, str | None], str]] = [
        ({"scope": None}, "invalid_scope"),
        ({"scope": "openid"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": USE_SERVER}, "invalid_request"),  # no digests_summary
        ({"scope": USE_SERVER, "digests_summary": "bm90IGEgaGFzaA=="}, "invalid_request"),  # wrong length
        ({"scope": USE_SERVER, "digests_summary": "***"}, "invalid_request"),  # not base64
        ({"scope": USE_SERVER, "digests_summary": summary_of([b"x"]), "digests_summary_algorithm": "MD5"},
         "invalid_request"),
        ({"code_challenge": challenge, "code_challenge_method": "S512"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
    ]
    for change, error in cases:
        params = {k: v for k, v in (base | change).items() if v is not None}
        r = http.get(AUTHORIZE, params=params)
        got = redirect_params(r)
        assert got["error"] == error and got["state"] == "st-123", (change, got)
        assert "set-cookie" not in r.headers


def test_the_pages_need_the_browser_that_started(http: httpx.Client, demo: dict[str, str], alice: Enrolled) -> None:
    r, a = start(str(http.base_url), demo["client_id"], PROFILE)
    with httpx.Client(base_url=str(http.base_url), timeout=30) as stranger:  # no cookie
        r = stranger.post(f"{AUTHORIZE}/login", data={"request_id": a.request_id, "username": alice.username,
                                                      "password": alice.password, "action": "login"})
        assert_page(r, 400)
        r = stranger.post(f"{AUTHORIZE}/consent", data={"request_id": a.request_id, "action": "cancel"})
        assert_page(r, 400)
        r = stranger.get(f"{AUTHORIZE}/wait", params={"request_id": a.request_id})
        assert_page(r, 400)
    # malformed posts are pages with 400 too
    assert_page(a.browser.post(f"{AUTHORIZE}/login", json={"request_id": a.request_id}), 400)
    assert_page(a.browser.post(f"{AUTHORIZE}/login", content=b"request_id=\xff\xfe",
                               headers={"content-type": "application/x-www-form-urlencoded"}), 400)
    assert_page(a.browser.post(f"{AUTHORIZE}/login", data={"request_id": a.request_id, "action": "dance"}), 400)
    assert_page(a.browser.post(f"{AUTHORIZE}/login", data={"request_id": "x\x00y", "action": "login"}), 400)
    # the browser that started is still fine
    assert login(a, alice.username, alice.password).status_code == 200


# -- the token endpoint ---------------------------------------------------------------------------

def test_code_exchange_checks(http: httpx.Client, demo: dict[str, str], alice: Enrolled,
                              other_client: dict[str, str]) -> None:
    cid, secret = demo["client_id"], demo["client_secret"]
    code, a = approved_code(http, demo, alice)
    r = exchange(http, cid, secret, code, a.verifier[:-1] + ("A" if a.verifier[-1] != "A" else "B"))  # type: ignore[index]
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    code, a = approved_code(http, demo, alice)
    r = exchange(http, cid, secret, code, None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    code, a = approved_code(http, demo, alice)
    r = exchange(http, cid, secret, code, a.verifier, redirect_uri="http://127.0.0.1:9/other")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    code, a = approved_code(http, demo, alice)
    r = exchange(http, other_client["client_id"], other_client["client_secret"], code, a.verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    r = exchange(http, cid, secret, "no-such-code", None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = exchange(http, cid, "wrong secret", "no-such-code", None)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"

    # PKCE is S256 only: the plain method, or a challenge without method, goes back as an error
    for extra in ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, {"code_challenge": "a" * 43}):
        r, _ = start(str(http.base_url), cid, PROFILE, pkce=False, extra=extra)
        assert r.status_code == 303, r.text
        assert redirect_params(r)["error"] == "invalid_request", r.headers["location"]
    # The client sent PKCE: the token request must prove it, and the redirect URI, when given, must match.
    code, a = approved_code(http, demo, alice)
    r = exchange(http, cid, secret, code, None, redirect_uri=None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code, a = approved_code(http, demo, alice)
    r = exchange(http, cid, secret, code, a.verifier, redirect_uri=None)  # omitted, as the Laravel client does
    assert r.status_code == 200, r.text


def test_expired_code(tmp_path: Path) -> None:
    svc = Service(home=tmp_path / "home", port=free_port(), env={"REMOTESIGN_AUTH_CODE_TTL": "1"}).start()
    try:
        demo = svc.demo_client()
        callback = f"{svc.url}/demo/callback"
        with httpx.Client(base_url=svc.url, timeout=30) as http:
            token = svc.token(demo["client_id"], demo["client_secret"])
            r = http.get("/v1/client", headers=admin(http, token))
            assert r.json()["redirect_uris"] == [callback]  # registered for the demo client at the first start
            who = enrol(http, token, algorithm="ec-p256")
            r, a = start(svc.url, demo["client_id"], PROFILE, redirect_uri=callback)
            assert login(a, who.username, who.password).status_code == 200
            params = redirect_params(consent(a, "approve"), callback)
            page = a.browser.get("/demo/callback", params=params)
            assert page.status_code == 200 and params["code"] in page.text
            time.sleep(1.5)
            r = exchange(http, demo["client_id"], demo["client_secret"], params["code"], a.verifier, callback)
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
            assert "expired" in r.json()["error_description"]
    finally:
        svc.stop()


# -- what the consent page shows and binds ----------------------------------------------------------

def test_consent_page_lists_the_documents_behind_calculate_digest(http: httpx.Client, demo: dict[str, str],
                                                                  demo_token: str, alice: Enrolled) -> None:
    api = httpx.Client(base_url=str(http.base_url), timeout=120,
                       headers={"Authorization": f"Bearer {demo_token}", "Accept": "application/json"})
    with api:
        r = api.get("/api-session/v1.0/start")
        assert r.status_code == 201, r.text
        sid = r.json()["data"]["sessionId"]
        r = api.put(f"/api-storage/v1.0/{sid}/upload", files={"file": ("līgums <1>.pdf", pdf_bytes())})
        assert r.status_code == 201, r.text
        r = api.post("/api-sign/v1.0/CalculateDigest", json={
            "sessions": [{"sessionId": sid}], "certificate": alice.certificate_b64, "signAsPdf": True,
            "createNewEdoc": False})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=alice.identity_id,
                 summary=data["digests_summary"], summary_alg=data["algorithm"])
    assert r.status_code == 200, r.text
    assert "līgums" not in r.text  # names only after signing in
    r = login(a, alice.username, alice.password)
    assert_page(r, 200)
    assert "Documents to be signed" in r.text and "līgums &lt;1&gt;.pdf" in r.text
    assert data["digests_summary"] in r.text


def test_another_users_identity_is_refused(http: httpx.Client, demo: dict[str, str], demo_token: str,
                                           alice: Enrolled) -> None:
    mallory = enrol(http, demo_token, algorithm="ec-p256")
    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=alice.identity_id,
                 summary=summary_of([os.urandom(32)]))
    params = redirect_params(login(a, mallory.username, mallory.password))
    assert params["error"] == "access_denied" and params["state"] == a.state


def test_choosing_the_identity_on_the_consent_page(http: httpx.Client, demo: dict[str, str],
                                                   demo_token: str) -> None:
    who = enrol(http, demo_token, algorithm="ec-p256")
    r = http.post(f"/v1/users/{who.user['id']}/identities",
                  json={"algorithm": "ec-p256", "description": "second <identity>"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    second = r.json()["identity"]["id"]
    summary = summary_of([os.urandom(32)])
    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, summary=summary)
    r = login(a, who.username, who.password)
    assert_page(r, 200)
    assert r.text.count('type="radio"') == 2 and r.text.count('name="sign_identity_id"') == 2
    assert f'value="{who.identity_id}"' in r.text and f'value="{second}"' in r.text
    assert "second &lt;identity&gt;" in r.text
    r = consent(a, "approve", pin=who.pin)  # nothing chosen: asked again
    assert_page(r, 400)
    assert "Choose the sign identity to sign with." in r.text and r.text.count('type="radio"') == 2
    params = redirect_params(consent(a, "approve", pin=who.pin, identity_id=second))
    r = exchange(http, demo["client_id"], demo["client_secret"], params["code"], a.verifier)
    assert r.status_code == 200, r.text
    info = introspect(http, demo, r.json()["access_token"])
    assert info["sign_identity_id"] == second and info["sub"] == who.user["id"]
    assert info["digests_summary"] == summary


def test_client_credentials_still_work(http: httpx.Client, demo: dict[str, str]) -> None:
    r = http.post(f"/trustedx-authserver/oauth/{AS}/token", data={"grant_type": "client_credentials"},
                  auth=(demo["client_id"], demo["client_secret"]))
    assert r.status_code == 200, r.text
    info = introspect(http, demo, r.json()["access_token"])
    assert info["sub"] == demo["client_id"] and "sign_identity_id" not in info


# -- approval on the user's device ------------------------------------------------------------------

def test_approval_on_the_device(http: httpx.Client, demo: dict[str, str], demo_token: str) -> None:
    from tests.device_client import DeviceApp

    who = enrol(http, demo_token, algorithm="ec-p256")
    phone = DeviceApp.register(http, who.device_code)
    summary = summary_of([os.urandom(32)])

    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=who.identity_id, summary=summary)
    r = login(a, who.username, who.password)
    assert_page(r, 200)
    assert 'value="device"' in r.text
    r = consent(a, "device")
    assert_page(r, 200)
    wait = f"{AUTHORIZE}/wait?request_id={a.request_id}"
    assert f'<meta http-equiv="refresh" content="2;url={wait}">' in r.text
    assert f'href="{wait}"' in r.text and 'value="cancel"' in r.text
    r = a.browser.get(wait)  # not answered yet: the same page again
    assert_page(r, 200)
    assert 'http-equiv="refresh"' in r.text
    assert_page(consent(a, "approve", pin=who.pin), 400)  # the PIN route is closed while the device decides

    request = phone.request(phone.requests()[0]["id"])
    r = phone.answer(request, "approve", pin=who.pin)
    assert r.status_code == 200, r.text
    params = redirect_params(a.browser.get(wait))
    assert params["state"] == a.state
    r = exchange(http, demo["client_id"], demo["client_secret"], params["code"], a.verifier)
    assert r.status_code == 200, r.text
    info = introspect(http, demo, r.json()["access_token"])
    assert info["sign_identity_id"] == who.identity_id and info["digests_summary"] == summary

    # rejected on the device -> access_denied; cancel while waiting -> access_denied
    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=who.identity_id, summary=summary)
    login(a, who.username, who.password)
    assert consent(a, "device").status_code == 200
    pending = phone.requests()
    assert len(pending) == 1, pending
    assert phone.answer(pending[0], "reject").status_code == 200
    params = redirect_params(a.browser.get(f"{AUTHORIZE}/wait", params={"request_id": a.request_id}))
    assert params["error"] == "access_denied" and params["state"] == a.state

    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=who.identity_id, summary=summary)
    login(a, who.username, who.password)
    assert consent(a, "device").status_code == 200
    params = redirect_params(consent(a, "cancel"))
    assert params["error"] == "access_denied" and params["state"] == a.state


# -- the signer's language ---------------------------------------------------------------------------

def test_errors_on_the_pages_speak_the_signer_s_language(http: httpx.Client, demo: dict[str, str],
                                                         demo_token: str) -> None:
    """What the core refuses (here: the identity disabled between sign-in and approval, a device
    the signer does not have) is said in the language the request chose, not in the API's English."""
    who = enrol(http, demo_token, algorithm="ec-p256")
    summary = summary_of([os.urandom(32)])
    r, a = start(str(http.base_url), demo["client_id"], USE_SERVER, summary=summary, extra={"ui_locales": "lv"})
    assert r.status_code == 200 and '<html lang="lv">' in r.text
    assert login(a, who.username, who.password).status_code == 200
    r = consent(a, "device", identity_id=who.identity_id)
    assert r.status_code == 409 and "Jums nav reģistrētas apstiprināšanas ierīces." in r.text, r.text[-1500:]
    assert "no registered approval device" not in r.text
    r = http.patch(f"/v1/identities/{who.identity_id}",
                   json={"status": "disabled", "reason": "test"}, headers={"Authorization": f"Bearer {demo_token}"})
    assert r.status_code == 200, r.text
    r = consent(a, "approve", pin=who.pin, identity_id=who.identity_id)
    assert r.status_code == 403 and "Šī parakstīšanas identitāte ir atspējota." in r.text, r.text[-1500:]
    assert "is disabled" not in r.text

    r = a.browser.get("/trustedx-authserver/oauth/no-such-server", params={"ui_locales": "vi"})
    assert r.status_code == 404 and "Không có máy chủ ủy quyền nào tên &#x27;no-such-server&#x27;." in r.text
    r = http.post(f"{AUTHORIZE}/consent", data={"request_id": "no-such-request", "action": "approve"},
                  headers={"Accept-Language": "vi"})  # another browser: no language remembered
    assert r.status_code == 400 and "Trang đăng nhập này không xác định" in r.text


def test_logout_page_speaks_the_browser_s_language(http: httpx.Client) -> None:
    r = http.get("/trustedx-authserver/lvrtc-eipsign-idp/logout", params={"redirect_uri": "https://evil.example/"},
                 headers={"Accept-Language": "lv, en;q=0.5"})
    assert r.status_code == 200 and '<html lang="lv">' in r.text and "Jūs esat izrakstījies" in r.text
    r = http.get("/trustedx-authserver/no-such-idp/logout", headers={"Accept-Language": "vi"})
    assert r.status_code == 404 and "Không có nhà cung cấp danh tính nào tên" in r.text
