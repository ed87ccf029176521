"""Test-side drivers for end users: enrolment through the admin API, and the OAuth2
authorization-code flow driven through the service's own login and consent pages (plain HTML
forms, no JavaScript), exactly as a browser without scripts would submit them.

Form contract of the pages (see remotesign/api/consent_pages.py):
- GET  /trustedx-authserver/oauth/{as}?...  -> login page; cookie ``rs_authz_<hash>`` (one per request); hidden ``request_id``;
  fields ``username``, ``password``; submit ``action=login`` or ``action=cancel`` to ``{as}/login``.
- POST {as}/login -> consent page; hidden ``request_id``; optional radio ``sign_identity_id``;
  field ``pin`` when a server signature is authorized; ``action=approve|device|cancel`` to ``{as}/consent``.
- POST {as}/consent -> 303 to the redirect URI with ``code`` & ``state`` (or ``error=access_denied``),
  or (``action=device``) a waiting page refreshing ``{as}/wait?request_id=...`` until the device answers.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.mailbox import mailbox

AS = "lvrtc-eipsign-as"
REDIRECT_URI = "http://127.0.0.1:9/callback"
USE_SERVER = "urn:safelayer:eidas:sign:identity:use:server"
USE_DEVICE = "urn:safelayer:eidas:sign:identity:use:device"
PROFILE = "urn:safelayer:eidas:sign:identity:profile"


@dataclass
class Enrolled:
    user: dict[str, Any]
    identity: dict[str, Any]
    username: str
    password: str
    pin: str
    device_code: str = ""

    @property
    def identity_id(self) -> str:
        return str(self.identity["id"])

    @property
    def certificate_b64(self) -> str:
        return str(self.identity["details"]["certificate"])


def admin(http: httpx.Client, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_redirect(http: httpx.Client, token: str, uri: str = REDIRECT_URI) -> None:
    """Add ``uri`` to the client's registered redirect URIs (keeping the others)."""
    current = http.get("/v1/client", headers=admin(http, token))
    assert current.status_code == 200, current.text
    uris = list(dict.fromkeys([*current.json()["redirect_uris"], uri]))
    r = http.put("/v1/client/redirect-uris", json={"redirect_uris": uris}, headers=admin(http, token))
    assert r.status_code == 200, r.text


def activate(base_url: str, code: str, password: str, pin: str) -> str:
    """Submit the activation / reset page as the user would; returns the device-pairing code it shows."""
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        page = browser.get("/account/activate", params={"code": code})
        assert page.status_code == 200, page.text
        r = browser.post("/account/activate", data={"code": code, "password": password, "password2": password,
                                                    "pin": pin, "pin2": pin})
    assert r.status_code == 200, r.text
    m = re.search(r"<code[^>]*>([A-Z2-9-]{23})</code>", r.text)
    assert m, r.text
    return m.group(1)


def mailed_code(http: httpx.Client, token: str, user: dict[str, Any], purpose: str) -> str:
    """Have the relying party ask the service to mail ``purpose``'s code, and read it from the inbox."""
    box = mailbox()
    before = len(box.messages_to(user["email"]))
    r = http.post(f"/v1/users/{user['id']}/activation", json={"purpose": purpose}, headers=admin(http, token))
    assert r.status_code == 202, r.text
    assert "code" not in r.text.lower().replace("status_code", ""), r.text  # the relying party never sees it
    return box.latest_code(user["email"], before + 1)


def enrol(http: httpx.Client, token: str, *, algorithm: str = "rsa-2048", pin: str = "1234",
          password: str = "correct horse battery", username: str | None = None,
          phone: str | None = None) -> Enrolled:
    """A new end user of the token's relying party, activated by the user (code by e-mail, password
    and PIN chosen on the service's page), with one sign identity protected by that PIN."""
    username = username or f"user-{secrets.token_hex(4)}"
    address = f"{username}@example.test"
    r = http.post("/v1/users", json={"username": username, "display_name": f"Test {username}", "email": address,
                                     "serial_number": "PNOLV-010101-12345",   # a qualified identity needs one
                                     **({"phone": phone} if phone else {})}, headers=admin(http, token))
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["activation"]["status"] == "sent", user
    device_code = activate(str(http.base_url).rstrip("/"), mailbox().latest_code(address), password, pin)
    r = http.post(f"/v1/users/{user['id']}/identities", json={"algorithm": algorithm}, headers=admin(http, token))
    assert r.status_code == 201, r.text
    return Enrolled(user, r.json()["identity"], username, password, pin, device_code)


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}"\s+value="([^"]*)"', html) or re.search(rf'value="([^"]*)"\s+name="{name}"', html)
    assert m, f"no hidden field {name} in page:\n{html[:2000]}"
    return m.group(1)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Authorization:
    """A browser session through the pages (keeps the cookie)."""

    browser: httpx.Client
    request_id: str
    verifier: str | None
    state: str


def start(base_url: str, client_id: str, scope: str, *, identity_id: str | None = None, summary: str | None = None,
          summary_alg: str | None = None, redirect_uri: str = REDIRECT_URI, pkce: bool = True,
          extra: dict[str, str] | None = None) -> tuple[httpx.Response, Authorization]:
    browser = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
    verifier, challenge = pkce_pair() if pkce else (None, None)
    state = secrets.token_urlsafe(8)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": state}
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    if identity_id:
        params["sign_identity_id"] = identity_id
    if summary:
        params |= {"digests_summary": summary, "digests_summary_algorithm": summary_alg or "SHA256"}
    params |= extra or {}
    r = browser.get(f"/trustedx-authserver/oauth/{AS}", params=params)
    request_id = hidden(r.text, "request_id") if r.status_code == 200 else ""
    return r, Authorization(browser, request_id, verifier, state)


def login(a: Authorization, username: str, password: str) -> httpx.Response:
    return a.browser.post(f"/trustedx-authserver/oauth/{AS}/login",
                          data={"request_id": a.request_id, "username": username, "password": password,
                                "action": "login"})


def consent(a: Authorization, action: str = "approve", pin: str | None = None,
            identity_id: str | None = None) -> httpx.Response:
    data = {"request_id": a.request_id, "action": action}
    if pin is not None:
        data["pin"] = pin
    if identity_id is not None:
        data["sign_identity_id"] = identity_id
    return a.browser.post(f"/trustedx-authserver/oauth/{AS}/consent", data=data)


def redirect_params(r: httpx.Response, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    assert r.status_code in (302, 303), f"{r.status_code}: {r.text[:1000]}"
    location = r.headers["location"]
    assert location.startswith(redirect_uri), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(http: httpx.Client, client_id: str, client_secret: str, code: str, verifier: str | None,
             redirect_uri: str | None = REDIRECT_URI) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    if verifier:
        data["code_verifier"] = verifier
    return http.post(f"/trustedx-authserver/oauth/{AS}/token", data=data, auth=(client_id, client_secret))


def user_token(http: httpx.Client, demo: dict[str, str], who: Enrolled, scope: str, *,
               summary: str | None = None, summary_alg: str | None = None, identity_id: str | None = None,
               extra: dict[str, str] | None = None) -> str:
    """The whole flow with the PIN: authorize, log in, consent, exchange the code."""
    r, a = start(str(http.base_url), demo["client_id"], scope, identity_id=identity_id or who.identity_id,
                 summary=summary, summary_alg=summary_alg, extra=extra)
    assert r.status_code == 200, r.text
    r = login(a, who.username, who.password)
    assert r.status_code == 200, r.text
    params = redirect_params(consent(a, "approve", pin=who.pin if USE_SERVER in scope else None))
    assert params.get("state") == a.state and "code" in params, params
    r = exchange(http, demo["client_id"], demo["client_secret"], params["code"], a.verifier)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def summary_of(digests: list[bytes], alg: str = "sha256") -> str:
    h = hashlib.new(alg)
    for d in digests:
        h.update(d)
    return base64.b64encode(h.digest()).decode()
