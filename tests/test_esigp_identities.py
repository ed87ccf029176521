"""eSigP sign identities over HTTP: a user's token lists only that user's identities; the relying
party's client-credentials token (manage scope) lists one of its users' identities at a time and
never another relying party's; PKCS#12 import (then signing with the imported key after the user's
consent) and deletion; the OpenID ``users/me`` profile."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from tests.consent import PROFILE, USE_DEVICE, USE_SERVER, Enrolled, enrol, register_redirect, summary_of, user_token
from tests.device_client import ESIGP, DeviceApp, b64, bearer, certificate_of, self_signed_pkcs12, verify_raw
from tests.harness import Service

IDS = f"{ESIGP}/sign_identities"
MANAGE = "urn:safelayer:eidas:sign:identity:manage"
EXTRA_LABELS = ["serverid", "x509:keyUsage:contentCommitment", "eparaksts", "serveridVersion1"]


@pytest.fixture(scope="module")
def alice(http: httpx.Client, demo_token: str) -> dict[str, Any]:
    """A user with two identities: the default labels, and one with extra labels (EC)."""
    register_redirect(http, demo_token)
    who = enrol(http, demo_token)
    r = http.post(f"/v1/users/{who.user['id']}/identities", headers=bearer(demo_token),
                  json={"algorithm": "ec-p256", "labels": EXTRA_LABELS})
    assert r.status_code == 201, r.text
    return {"who": who, "second": r.json()["identity"]}


@pytest.fixture(scope="module")
def bob(http: httpx.Client, demo_token: str) -> Enrolled:
    return enrol(http, demo_token)


@pytest.fixture(scope="module")
def alice_profile(http: httpx.Client, demo: dict[str, str], alice: dict[str, Any]) -> str:
    return user_token(http, demo, alice["who"], PROFILE)


@pytest.fixture(scope="module")
def other_rp(service: Service) -> dict[str, str]:
    creds = service.new_client("another relying party")
    return {**creds, "token": service.token(creds["client_id"], creds["client_secret"])}


def listed(http: httpx.Client, token: str, **params: str) -> list[dict[str, Any]]:
    r = http.get(IDS, params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["sign_identities"]  # type: ignore[no-any-return]


def all_ids(entries: list[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in entries}


def ids(entries: list[dict[str, Any]]) -> set[str]:
    """The signing identities listed (enrolment also gives each person an authentication identity)."""
    return {e["id"] for e in entries if e["description"] != "eparaksts:mobileid:auth"}


def test_user_token_lists_own_identities_with_filters(http: httpx.Client, alice: dict[str, Any],
                                                      alice_profile: str, bob: Enrolled) -> None:
    who, second = alice["who"], alice["second"]
    both = {who.identity_id, second["id"]}
    entries = listed(http, alice_profile)
    # Enrolment gave Alice the authentication identity eParaksts clients look for beside the signing one.
    auth = [e for e in entries if e["description"] == "eparaksts:mobileid:auth"]
    assert len(auth) == 1 and auth[0]["labels"] == ["mobileid", "x509:keyUsage:digitalSignature"]
    assert ids(entries) == both and all_ids(entries) == both | all_ids(auth) and bob.identity_id not in all_ids(entries)
    for e in entries:
        assert "details" not in e
        assert e["type"] == "pki:x509" and e["status"] == {"value": "enabled"} and e["domain"] == "citizen"
        assert e["self"].endswith(f"{IDS}/{e['id']}")
        assert e["access"] == [{"user_id": who.user["id"], "permissions": ["sign"]}]
        assert e["links"]["Signatures.create.server.raw"]["auth"]["oauth2"]["scopes"] == [USE_SERVER]
    assert ids(listed(http, alice_profile, labels="serverid,x509:keyUsage:contentCommitment")) == both
    assert all_ids(listed(http, alice_profile, labels="mobileid,x509:keyUsage:digitalSignature")) == all_ids(auth)
    assert ids(listed(http, alice_profile, labels="eparaksts,serverid")) == {second["id"]}
    assert ids(listed(http, alice_profile, labels="serverid,nope")) == set()
    assert ids(listed(http, alice_profile, domain="citizen")) == both
    assert listed(http, alice_profile, domain="business") == []
    r = http.get(IDS, params={"user_id": bob.user["id"]}, headers=bearer(alice_profile))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


def test_single_identity_has_its_certificate(http: httpx.Client, alice: dict[str, Any], alice_profile: str,
                                             bob: Enrolled) -> None:
    who = alice["who"]
    r = http.get(f"{IDS}/{who.identity_id}", headers=bearer(alice_profile))
    assert r.status_code == 200, r.text
    identity = r.json()["identity"]
    assert identity["details"]["certificate"] == who.certificate_b64
    assert identity["details"]["activation_mode"] == "pin"
    cert = certificate_of(identity)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert base64.b64decode(identity["details"]["public_key"]) == spki
    r = http.get(f"{IDS}/{bob.identity_id}", headers=bearer(alice_profile))  # another user's: not found
    assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    assert http.get(f"{IDS}/no-such-id", headers=bearer(alice_profile)).status_code == 404


def test_users_me(http: httpx.Client, alice: dict[str, Any], alice_profile: str, demo_token: str) -> None:
    who = alice["who"]
    r = http.get("/trustedx-resources/openid/v1/users/me", headers=bearer(alice_profile))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["id"] == who.user["id"] and me["name"] == who.user["display_name"]
    assert ids(me["sign_identities"]) == {who.identity_id, alice["second"]["id"]}
    r = http.get("/trustedx-resources/openid/v1/users/me", headers=bearer(demo_token))
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope", r.text


def test_signing_scopes_may_list_too_but_not_without_a_user_scope(http: httpx.Client, demo: dict[str, str],
                                                                  alice: dict[str, Any]) -> None:
    who = alice["who"]
    device_token = user_token(http, demo, who, USE_DEVICE)
    assert ids(listed(http, device_token)) == {who.identity_id, alice["second"]["id"]}
    r = http.get("/trustedx-resources/openid/v1/users/me", headers=bearer(device_token))
    assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_client_credentials_need_user_id_and_the_manage_scope(service: Service, http: httpx.Client,
                                                             demo: dict[str, str], demo_token: str,
                                                             alice: dict[str, Any], bob: Enrolled) -> None:
    who = alice["who"]
    r = http.get(IDS, headers=bearer(demo_token))
    assert r.status_code == 400 and "user_id" in r.json()["error_description"], r.text
    assert ids(listed(http, demo_token, user_id=who.user["id"])) == {who.identity_id, alice["second"]["id"]}
    assert ids(listed(http, demo_token, user_id=bob.user["id"])) == {bob.identity_id}
    assert ids(listed(http, demo_token, user_id=who.user["id"], labels="eparaksts")) == {alice["second"]["id"]}
    r = http.get(f"{IDS}/{bob.identity_id}", headers=bearer(demo_token))
    assert r.status_code == 200 and r.json()["identity"]["details"]["certificate"] == bob.certificate_b64
    weak = service.token(demo["client_id"], demo["client_secret"], "urn:safelayer:eidas:oauth:token:introspect")
    for url, params in ((IDS, {"user_id": who.user["id"]}), (f"{IDS}/{who.identity_id}", {})):
        r = http.get(url, params=params, headers=bearer(weak))
        assert r.status_code == 403 and r.json()["error"] == "insufficient_scope", r.text
        assert MANAGE in r.headers["www-authenticate"]


def test_listing_by_device(http: httpx.Client, demo_token: str, bob: Enrolled, alice: dict[str, Any]) -> None:
    phone = DeviceApp.register(http, bob.device_code)
    assert ids(listed(http, demo_token, device_id=phone.device_id)) == {bob.identity_id}
    assert listed(http, demo_token, device_id=phone.device_id, user_id=alice["who"].user["id"]) == []
    assert listed(http, demo_token, device_id="no-such-device") == []


def test_another_relying_party_sees_nothing(http: httpx.Client, other_rp: dict[str, str], alice: dict[str, Any],
                                            bob: Enrolled) -> None:
    token = other_rp["token"]
    who = alice["who"]
    assert listed(http, token, user_id=who.user["id"]) == []
    assert listed(http, token, user_id=bob.user["id"]) == []
    for method in ("GET", "DELETE"):
        r = http.request(method, f"{IDS}/{who.identity_id}", headers=bearer(token))
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    p12, _ = self_signed_pkcs12(b"pw")
    r = http.post(f"{IDS}/server/pki_x509/pkcs12", headers=bearer(token),
                  json={"pkcs12": b64(p12), "password": "pw", "labels": ["serverid"], "user_id": who.user["id"]})
    assert r.status_code == 404, r.text
    assert listed(http, token, user_id=who.user["id"]) == []


def _ca_issued_pkcs12(http: httpx.Client, demo_token: str, password: bytes) -> tuple[bytes, x509.Certificate]:
    """A local key with a certificate from the service's CA (through ``/v1/certificates`` with a CSR)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Imported Person"),
                                    x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOLV-020202-22222"),
                                    x509.NameAttribute(NameOID.COUNTRY_NAME, "LV")]))
           .sign(key, hashes.SHA256()))
    r = http.post("/v1/certificates", headers=bearer(demo_token), json={
        "profile": "qualified-person", "csr": csr.public_bytes(serialization.Encoding.PEM).decode()})
    assert r.status_code == 201, r.text
    cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
    chain = [x509.load_pem_x509_certificate(c.encode()) for c in r.json()["chain"]]
    p12 = pkcs12.serialize_key_and_certificates(b"imported", key, cert, chain,
                                                serialization.BestAvailableEncryption(password))
    return p12, cert


def test_pkcs12_import_sign_and_delete(service: Service, http: httpx.Client, demo: dict[str, str],
                                       demo_token: str) -> None:
    who = enrol(http, demo_token)
    p12, cert = _ca_issued_pkcs12(http, demo_token, b"p12 secret")
    url = f"{IDS}/server/pki_x509/pkcs12"
    body = {"pkcs12": b64(p12), "password": "p12 secret", "labels": ["serverid", "imported"]}

    r = http.post(url, headers=bearer(demo_token), json=body)  # a client token must say for whom
    assert r.status_code == 400 and "user_id" in r.json()["error_description"], r.text
    r = http.post(url, headers=bearer(demo_token), json={**body, "user_id": who.user["id"], "password": "wrong"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_pkcs12", r.text
    r = http.post(url, headers=bearer(demo_token), json={**body, "user_id": who.user["id"], "pkcs12": "###"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    r = http.post(url, headers=bearer(demo_token), json={**body, "user_id": who.user["id"], "pkcs12": b64(b"junk")})
    assert r.status_code == 400 and r.json()["error"] == "invalid_pkcs12", r.text
    r = http.post(url, headers=bearer(demo_token), json={**body, "user_id": "no-such-user"})
    assert r.status_code == 404, r.text

    r = http.post(url, headers=bearer(demo_token), json={**body, "user_id": who.user["id"]})
    assert r.status_code == 201, r.text
    imported = r.json()["identity"]
    assert r.headers["location"] == imported["self"]
    assert imported["labels"] == ["serverid", "imported"]
    assert certificate_of(imported) == cert
    assert ids(listed(http, demo_token, user_id=who.user["id"], labels="imported")) == {imported["id"]}

    # the user consents to one digest with the imported identity; the signature verifies with its certificate
    digest = hashlib.sha256(b"signed with an imported key").digest()
    token = user_token(http, demo, who, USE_SERVER, summary=summary_of([digest]), summary_alg="SHA256",
                       identity_id=imported["id"])
    r = http.post(f"{ESIGP}/signatures/server/raw", headers=bearer(token), json={
        "digest_value": b64(digest), "signature_algorithm": "ecdsa", "sign_identity_id": imported["id"]})
    assert r.status_code == 200, r.text
    verify_raw(cert, digest, r.content)

    # a user token without the manage scope cannot delete; the relying party can
    profile = user_token(http, demo, who, PROFILE)
    r = http.delete(f"{IDS}/{imported['id']}", headers=bearer(profile))
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope", r.text
    r = http.delete(f"{IDS}/{imported['id']}", headers=bearer(demo_token))
    assert r.status_code == 204, r.text
    assert http.get(f"{IDS}/{imported['id']}", headers=bearer(demo_token)).status_code == 404
    assert http.get(f"{IDS}/{imported['id']}", headers=bearer(profile)).status_code == 404
    assert http.delete(f"{IDS}/{imported['id']}", headers=bearer(demo_token)).status_code == 404
    assert imported["id"] not in ids(listed(http, profile))
    # deleting the identity destroyed its private key: the key record keeps only the public half
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{service.home / 'remotesign.db'}")
    with engine.connect() as conn:
        handles = conn.execute(text("SELECT k.handle, k.public_key_der FROM keys k JOIN audit_events a "
                                    "ON a.subject = k.id WHERE a.event = 'key.destroyed'")).all()
    engine.dispose()
    assert handles and all(h == b"" and pub for h, pub in handles)


def test_self_signed_pkcs12_without_password(http: httpx.Client, demo_token: str) -> None:
    who = enrol(http, demo_token)
    p12, cert = self_signed_pkcs12(b"", kind="rsa")
    r = http.post(f"{IDS}/server/pki_x509/pkcs12", headers=bearer(demo_token),
                  json={"pkcs12": b64(p12), "password": "", "labels": ["selfmade"], "user_id": who.user["id"]})
    assert r.status_code == 201, r.text
    assert certificate_of(r.json()["identity"]) == cert
    assert r.json()["identity"]["details"]["activation_mode"] == "pin"  # the PIN its user chose at activation


def test_unauthenticated_and_malformed(http: httpx.Client, demo_token: str) -> None:
    r = http.get(IDS)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    r = http.post(f"{IDS}/server/pki_x509/pkcs12", content=b"{",
                  headers={**bearer(demo_token), "Content-Type": "application/json"})
    assert r.status_code == 400 and set(r.json()) == {"error", "error_description"}, r.text
    r = http.post(f"{IDS}/server/pki_x509/pkcs12", json={"pkcs12": "AA==", "unexpected": 1}, headers=bearer(demo_token))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


def test_a_qualified_identity_needs_the_user_s_serial_number(http: httpx.Client, demo_token: str) -> None:
    """No identifier is made up: a user without a serial number gets no qualified certificate."""
    from tests.consent import admin

    auth = admin(http, demo_token)
    r = http.post("/v1/users", json={"username": f"noid-{hashlib.sha1(demo_token.encode()).hexdigest()[:6]}",
                                     "display_name": "No Identifier"}, headers=auth)
    assert r.status_code == 201, r.text
    r = http.post(f"/v1/users/{r.json()['id']}/identities", json={"algorithm": "ec-p256"}, headers=auth)
    assert r.status_code == 400 and "missing_serial_number" in r.text and "PNOLV-" in r.text, r.text

    enrolled = enrol(http, demo_token, algorithm="ec-p256")     # with one: its certificate names it
    cert = certificate_of(enrolled.identity)
    serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    assert [a.value for a in serial] == ["PNOLV-010101-12345"]
