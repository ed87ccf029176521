"""Fortress-style user API over HTTP: a client reads its own users by user code, their active
certificates (the vendor's fields, the PEM the same certificate as the identity's), their
status, and the unauthenticated ping; another client's user and an unknown code are both
``user_not_found``; no token is ``invalid_token``-shaped, in the Fortress error format."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509

from tests.consent import Enrolled, admin, enrol
from tests.harness import Service


def _fortress_client(service: Service, client_id: str, client_secret: str) -> httpx.Client:
    r = httpx.post(service.url + "/fortress/oauth2/v1/token", params={
        "scope": "client", "client_id": client_id, "client_secret": client_secret,
        "grant_type": "client_credentials"}, timeout=30)
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=service.url, timeout=60,
                        headers={"Authorization": f"Bearer {r.json()['access_token']}"})


@pytest.fixture(scope="module")
def fortress(service: Service) -> Iterator[httpx.Client]:
    demo = service.demo_client()
    with _fortress_client(service, demo["client_id"], demo["client_secret"]) as client:
        yield client


@pytest.fixture(scope="module")
def signer(http: httpx.Client, demo_token: str) -> Enrolled:
    return enrol(http, demo_token, algorithm="ec-p256")


def test_user_with_active_certificates(fortress: httpx.Client, signer: Enrolled) -> None:
    r = fortress.get(f"/fortress/api/v1/user/{signer.username}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == signer.username and body["name"] == signer.user["display_name"]
    assert body["email"] == signer.user["email"] and body["role"] == "ROLE_USER"
    cert = {c["code"]: c for c in body["certificates"]}[signer.identity["id"]]
    pem = x509.load_pem_x509_certificate(cert["pem"].encode())
    assert format(pem.serial_number, "X") == cert["serialNumber"]
    assert cert["subject"] == pem.subject.rfc4514_string() and cert["issuer"] == pem.issuer.rfc4514_string()
    assert cert["dateIssued"] == int(pem.not_valid_before_utc.timestamp() * 1000)
    assert cert["dateExpired"] == int(pem.not_valid_after_utc.timestamp() * 1000) > cert["dateIssued"]
    assert fortress.get(f"/fortress/api/v1/user/{signer.username}/certificate").json() == body["certificates"]


def test_status_follows_the_user_and_the_identity(fortress: httpx.Client, http: httpx.Client, demo_token: str) -> None:
    user = enrol(http, demo_token, algorithm="ec-p256")
    status = f"/fortress/api/v1/user/{user.username}/status"
    assert fortress.get(status).json() == {"auth": True, "sign": True}
    active = fortress.get(f"/fortress/api/v1/user/{user.username}/certificate").json()
    assert user.identity["id"] in {c["code"] for c in active}
    for cert in active:  # every identity of the user disabled: nothing left to sign with
        r = http.patch(f"/v1/identities/{cert['code']}", json={"status": "disabled"}, headers=admin(http, demo_token))
        assert r.status_code == 200, r.text
    assert fortress.get(status).json() == {"auth": True, "sign": False}
    assert fortress.get(f"/fortress/api/v1/user/{user.username}/certificate").json() == []
    r = http.patch(f"/v1/users/{user.user['id']}", json={"enabled": False}, headers=admin(http, demo_token))
    assert r.status_code == 200, r.text
    assert fortress.get(status).json() == {"auth": False, "sign": False}


def test_another_clients_user_is_not_found(service: Service, signer: Enrolled, fortress: httpx.Client) -> None:
    other = json.loads(service.cli("client", "create", "Other RP").stdout)
    with _fortress_client(service, other["client_id"], other["client_secret"]) as stranger:
        for path in ("", "/certificate", "/status"):
            r = stranger.get(f"/fortress/api/v1/user/{signer.username}{path}")
            assert r.status_code == 404, r.text
            assert r.json()["error"] == "user_not_found"
    unknown = fortress.get("/fortress/api/v1/user/nobody-here")
    assert unknown.status_code == 404 and unknown.json()["error"] == "user_not_found"


def test_ping_needs_no_token_and_the_user_api_does(service: Service, signer: Enrolled) -> None:
    assert httpx.get(service.url + "/fortress/api/v1/ping", timeout=30).json() == {"status": "ok"}
    r = httpx.get(service.url + f"/fortress/api/v1/user/{signer.username}", timeout=30)
    assert r.status_code == 401 and "error" in r.json() and "error_description" in r.json()
    forged = base64.b64encode(b"not a token").decode()
    r = httpx.get(service.url + f"/fortress/api/v1/user/{signer.username}", timeout=30,
                  headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
