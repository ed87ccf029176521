"""A CSC client written from the specification (v1.0.4.0 and v2.0.0.2), for the tests: the OAuth2
authorization through the service's own login and consent pages (as a browser without scripts
submits them), the token endpoint, and the JSON methods."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.consent import REDIRECT_URI, hidden, pkce_pair

PAGES = "/trustedx-authserver/oauth/csc"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
RSA = "1.2.840.113549.1.1.1"
SHA256_RSA = "1.2.840.113549.1.1.11"
RSA_PSS = "1.2.840.113549.1.1.10"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Csc:
    """One version of the API with one access token."""

    http: httpx.Client
    version: str
    token: str | None = None

    def call(self, method: str, body: dict[str, Any] | None = None, token: str | None = None) -> httpx.Response:
        bearer = token or self.token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return self.http.post(f"/csc/{self.version}/{method}", json=body or {}, headers=headers)

    def ok(self, method: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
        r = self.call(method, body)
        assert r.status_code == status, f"{method}: {r.status_code} {r.text}"
        return r.json() if r.content else {}

    def refused(self, method: str, body: dict[str, Any], status: int = 400, token: str | None = None) -> dict[str, Any]:
        r = self.call(method, body, token)
        assert r.status_code == status, f"{method}: {r.status_code} {r.text}"
        error = r.json()
        assert set(error) >= {"error", "error_description"}, error
        return error  # type: ignore[no-any-return]

    def authorize_pin(self, credential: str, pin: str, hashes: list[bytes], hash_oid: str = SHA256) -> str:
        body: dict[str, Any] = {"credentialID": credential, "numSignatures": len(hashes)}
        if self.version == "v1":
            body |= {"hash": [b64(h) for h in hashes], "PIN": pin}
        else:
            body |= {"hashes": [b64(h) for h in hashes], "hashAlgorithmOID": hash_oid,
                     "authData": [{"id": "PIN", "value": pin}]}
        return str(self.ok("credentials/authorize", body)["SAD"])


@dataclass
class Browser:
    """A user's browser on the authorization pages (keeps the cookie)."""

    client: httpx.Client
    request_id: str
    state: str
    verifier: str | None


def authorize_page(base_url: str, version: str, params: dict[str, str], pkce: bool = True
                   ) -> tuple[httpx.Response, Browser]:
    browser = httpx.Client(base_url=base_url, timeout=60, follow_redirects=False)
    verifier, challenge = pkce_pair() if pkce else (None, None)
    state = secrets.token_urlsafe(8)
    query = {"response_type": "code", "redirect_uri": REDIRECT_URI, "state": state, **params}
    if challenge:
        query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    r = browser.get(f"/csc/{version}/oauth2/authorize", params=query)
    return r, Browser(browser, hidden(r.text, "request_id") if r.status_code == 200 else "", state, verifier)


def log_in(b: Browser, username: str, password: str) -> httpx.Response:
    return b.client.post(f"{PAGES}/login", data={"request_id": b.request_id, "username": username,
                                                 "password": password, "action": "login"})


def approve(b: Browser, pin: str | None = None, otp: str | None = None, action: str = "approve") -> httpx.Response:
    data = {"request_id": b.request_id, "action": action}
    if pin is not None:
        data["pin"] = pin
    if otp is not None:
        data["otp"] = otp
    return b.client.post(f"{PAGES}/consent", data=data)


def code_of(r: httpx.Response, b: Browser) -> str:
    assert r.status_code in (302, 303), f"{r.status_code}: {r.text[:1500]}"
    query = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
    assert query.get("state") == b.state and "code" in query, query
    return query["code"]


def token_request(http: httpx.Client, version: str, client: dict[str, str], code: str, verifier: str | None,
                  as_json: bool = False) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": client["client_id"], "client_secret": client["client_secret"]}
    if verifier:
        data["code_verifier"] = verifier
    if as_json:  # CSC v1's examples send JSON
        return http.post(f"/csc/{version}/oauth2/token", content=json.dumps(data),
                         headers={"Content-Type": "application/json"})
    return http.post(f"/csc/{version}/oauth2/token", data=data)


def user_token(http: httpx.Client, version: str, client: dict[str, str], username: str, password: str,
               params: dict[str, str], pin: str | None = None) -> dict[str, Any]:
    """The whole authorization-code flow; returns the token response."""
    r, b = authorize_page(str(http.base_url), version, {"client_id": client["client_id"], **params})
    assert r.status_code == 200, r.text[:2000]
    r = log_in(b, username, password)
    assert r.status_code == 200, r.text[:2000]
    r = token_request(http, version, client, code_of(approve(b, pin), b), b.verifier, as_json=version == "v1")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
