"""Sole control against the relying party itself (issue 12, point 1), over HTTP.

The relying party enrols users with sign identities, so it knows their identity keys' ids (its
``/v1/certificates`` listing names them). With its own client credentials it tries every native-API
route to list, read, sign with or certify such a key; each answers 404 exactly as for an unknown
key, and ``/v1/keys`` shows only its own keys, which keep working. A CSR route cannot certify the
key either: it needs the private key's signature. The legitimate routes (a SCAL2 server signature
through the consent pages, a device-approved signature) each leave an ``identity_key.used`` audit
event naming the authorization that allowed it. In process, the key store refuses made-up or
mismatched authorizations and plain ``sign_digest`` on an identity key.

Attacks tried (each asserted refused): 22 over HTTP (listing 2, native key/certificate routes 16,
forged CSRs 2, eSigP raw/batch with client credentials 2) and 12 in process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from asn1crypto import csr as acsr
from asn1crypto import keys as akeys
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from tests.consent import USE_DEVICE, USE_SERVER, Enrolled, enrol, register_redirect, summary_of, user_token
from tests.device_client import ESIGP, DeviceApp, b64, bearer, certificate_of, verify_raw
from tests.harness import Service

RAW = f"{ESIGP}/signatures/server/raw"
BATCH = f"{ESIGP}/signatures/server/raw/batch"
DEVICE_RAW = f"{ESIGP}/signatures/device/raw"
DIGEST = hashlib.sha256(b"the relying party's document").digest()
THIEF = "CN=Thief,SERIALNUMBER=PNOLV-THIEF,C=LV"


# -- fixtures and helpers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def users(http: httpx.Client, demo_token: str) -> dict[str, Enrolled]:
    register_redirect(http, demo_token)
    return {"rsa": enrol(http, demo_token, algorithm="rsa-2048", pin="2580"),
            "ec": enrol(http, demo_token, algorithm="ec-p256", pin="2580")}


@pytest.fixture(scope="module")
def rp(demo_token: str) -> dict[str, str]:
    """The relying party's own client-credentials token: the attacker."""
    return bearer(demo_token)


@pytest.fixture(scope="module")
def own_key(http: httpx.Client, rp: dict[str, str]) -> dict[str, Any]:
    r = http.post("/v1/keys", json={"algorithm": "ec-p256", "label": "e-seal"}, headers=rp)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def identity_key_id(service: Service, who: Enrolled) -> str:
    """The identity's key id, as the relying party can learn it (here read from the database)."""
    with sqlite3.connect(service.home / "remotesign.db") as db:
        row = db.execute("SELECT key_id FROM sign_identities WHERE id = ?", (who.identity_id,)).fetchone()
    assert row, who.identity_id
    return str(row[0])


def audit_row(service: Service, seq: int) -> tuple[str, str, dict[str, Any]]:
    with sqlite3.connect(service.home / "remotesign.db") as db:
        event, subject, details = db.execute("SELECT event, subject, details FROM audit_events WHERE seq = ?",
                                             (seq,)).fetchone()
    return event, subject, json.loads(details)


def key_uses(http: httpx.Client, rp: dict[str, str], service: Service, identity_id: str,
             after: int = 0) -> list[tuple[int, dict[str, Any]]]:
    """``identity_key.used`` events of ``identity_id`` the relying party sees in ``GET /v1/audit``
    (after ``after``), with their details from the database (the API lists events without them)."""
    r = http.get("/v1/audit", params={"limit": 1000}, headers=rp)
    assert r.status_code == 200, r.text
    seqs = sorted(e["seq"] for e in r.json()
                  if e["event"] == "identity_key.used" and e["subject"] == identity_id and e["seq"] > after)
    return [(s, audit_row(service, s)[2]) for s in seqs]


def audit_head(http: httpx.Client, rp: dict[str, str]) -> int:
    r = http.get("/v1/audit", params={"limit": 1}, headers=rp)
    assert r.status_code == 200, r.text
    return max((e["seq"] for e in r.json()), default=0)


def not_found_like_unknown(http: httpx.Client, method: str, path: str, key_id: str, rp: dict[str, str],
                           body: dict[str, Any] | None = None) -> None:
    """``path`` with ``key_id`` answers exactly what it answers for a key that does not exist."""
    unknown = str(uuid.uuid4())
    r = http.request(method, path.format(key=key_id), headers=rp,
                     json=json.loads(json.dumps(body).replace("{key}", key_id)) if body else None)
    ref = http.request(method, path.format(key=unknown), headers=rp,
                       json=json.loads(json.dumps(body).replace("{key}", unknown)) if body else None)
    assert r.status_code == 404 == ref.status_code, r.text
    assert r.json()["error"]["code"] == "not_found" == ref.json()["error"]["code"]
    assert r.json()["error"]["message"].replace(key_id, "X") == ref.json()["error"]["message"].replace(unknown, "X")


def spki(who: Enrolled) -> bytes:
    return certificate_of(who.identity).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def forged_csr(public_key_der: bytes, kind: str) -> str:
    """A PKCS#10 request carrying ``public_key_der`` but signed with another key (the attacker
    does not hold the user's private key)."""
    info = acsr.CertificationRequestInfo({
        "version": "v1",
        "subject": ax509.Name.build({"common_name": "Thief", "serial_number": "PNOLV-THIEF", "country_name": "LV"}),
        "subject_pk_info": akeys.PublicKeyInfo.load(public_key_der),
        "attributes": [],
    })
    if kind == "rsa":
        attacker = rsa.generate_private_key(65537, 2048)
        signature, alg = attacker.sign(info.dump(), padding.PKCS1v15(), hashes.SHA256()), "sha256_rsa"
    else:
        ec_attacker = ec.generate_private_key(ec.SECP256R1())
        signature, alg = ec_attacker.sign(info.dump(), ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    req = acsr.CertificationRequest({"certification_request_info": info, "signature_algorithm": {"algorithm": alg},
                                     "signature": signature})
    return base64.b64encode(req.dump()).decode()


# -- the relying party's attacks ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_identity_keys_are_not_listed(http: httpx.Client, service: Service, rp: dict[str, str],
                                      users: dict[str, Enrolled], own_key: dict[str, Any], kind: str) -> None:
    key_id = identity_key_id(service, users[kind])
    r = http.get("/v1/keys", headers=rp)
    assert r.status_code == 200, r.text
    listed = {k["id"] for k in r.json()}
    assert own_key["id"] in listed and key_id not in listed
    public_keys = {k["public_key"] for k in r.json()}
    assert not any(spki(u) == serialization.load_pem_public_key(p.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for p in public_keys for u in users.values())


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_identity_keys_are_not_found_through_the_native_api(http: httpx.Client, service: Service,
                                                            rp: dict[str, str], users: dict[str, Enrolled],
                                                            kind: str) -> None:
    key_id = identity_key_id(service, users[kind])
    digest = b64(DIGEST)
    schemes = ["rsa-pkcs1v15", "rsa-pss", None] if kind == "rsa" else ["ecdsa", None]
    tried: list[tuple[str, str, dict[str, Any] | None]] = [("GET", "/v1/keys/{key}", None)]
    tried += [("POST", "/v1/keys/{key}/sign", {"digest": digest, "hash_algorithm": h, **({"scheme": s} if s else {})})
              for s in schemes for h in ("sha256", "sha512")]
    tried += [("POST", "/v1/certificates", {"profile": p, "key_id": "{key}", "subject": THIEF})
              for p in ("qualified-person", "qualified-seal")]
    for method, path, body in tried:
        not_found_like_unknown(http, method, path, key_id, rp, body)
    # nothing was certified on the user's key: the only certificate for it is the identity's own
    r = http.get("/v1/certificates", headers=rp)
    assert r.status_code == 200, r.text
    on_key = [c for c in r.json() if x509.load_pem_x509_certificate(c["certificate"].encode()).public_key()
              .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
              == spki(users[kind])]
    assert len(on_key) == 1 and "Thief" not in on_key[0]["subject"], on_key


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_csr_cannot_certify_an_identity_key(http: httpx.Client, rp: dict[str, str], users: dict[str, Enrolled],
                                              kind: str) -> None:
    """The CSR route certifies only a key whose holder signed the request (proof of possession);
    the relying party does not hold its users' private keys."""
    r = http.post("/v1/certificates", headers=rp,
                  json={"profile": "qualified-person", "csr": forged_csr(spki(users[kind]), kind)})
    assert r.status_code == 400, r.text
    assert "proof of key possession" in r.json()["error"]["message"]


@pytest.mark.parametrize("path", [RAW, BATCH])
def test_client_credentials_cannot_sign_with_an_identity(http: httpx.Client, rp: dict[str, str],
                                                         users: dict[str, Enrolled], path: str) -> None:
    who = users["rsa"]
    body: dict[str, Any] = {"sign_identity_id": who.identity_id}
    if path == RAW:
        body["digest_value"] = b64(DIGEST)
    else:
        body["requests"] = [{"digest_value": b64(DIGEST)}]
    r = http.post(path, json=body, headers=rp)
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "not_a_signing_token", r.text


def test_the_relying_partys_own_keys_still_work(http: httpx.Client, rp: dict[str, str],
                                                own_key: dict[str, Any]) -> None:
    r = http.get(f"/v1/keys/{own_key['id']}", headers=rp)
    assert r.status_code == 200 and r.json()["id"] == own_key["id"], r.text
    r = http.post(f"/v1/keys/{own_key['id']}/sign", json={"digest": b64(DIGEST)}, headers=rp)
    assert r.status_code == 200, r.text
    public = serialization.load_pem_public_key(own_key["public_key"].encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(base64.b64decode(r.json()["signature"]), DIGEST, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    r = http.post("/v1/certificates", headers=rp, json={"profile": "qualified-seal", "key_id": own_key["id"],
                                                        "subject": "CN=Seal,O=Seal,ORGANIZATIONIDENTIFIER=NTRLV-1,C=LV"})
    assert r.status_code == 201 and r.json()["key_id"] == own_key["id"], r.text


# -- the legitimate routes name their authorization -----------------------------------------------------
def test_a_scal2_signature_is_audited_with_its_authorization(http: httpx.Client, service: Service,
                                                             demo: dict[str, str], rp: dict[str, str],
                                                             users: dict[str, Enrolled]) -> None:
    who = users["ec"]
    digests = [hashlib.sha256(os.urandom(16)).digest() for _ in range(2)]
    token = user_token(http, demo, who, USE_SERVER, summary=summary_of(digests), summary_alg="SHA256")
    before = audit_head(http, rp)
    r = http.post(BATCH, json={"sign_identity_id": who.identity_id,
                               "requests": [{"digest_value": b64(d)} for d in digests]}, headers=bearer(token))
    assert r.status_code == 200, r.text
    for d, value in zip(digests, r.json()["signatures"], strict=True):
        verify_raw(certificate_of(who.identity), d, base64.b64decode(value))

    [(seq, details)] = key_uses(http, rp, service, who.identity_id, before)
    kind, ref_seq, prefix = details["authorization"].split(":")
    assert kind == "scal2" and prefix == hashlib.sha256(token.encode()).hexdigest()[:16]
    event, subject, authorized = audit_row(service, int(ref_seq))
    assert event == "scal2.authorized" and subject == who.identity_id and before < int(ref_seq) < seq
    assert authorized["token_sha256_prefix"] == prefix
    assert details["key_id"] == identity_key_id(service, who) and details["digests"] == 2
    assert details["digests_sha256"] == hashlib.sha256(b"".join(digests)).hexdigest()


def test_a_device_approved_signature_is_audited_with_its_process(http: httpx.Client, service: Service,
                                                                 demo: dict[str, str], rp: dict[str, str],
                                                                 users: dict[str, Enrolled]) -> None:
    who = users["rsa"]
    phone = DeviceApp.register(http, who.device_code, "phone")
    token = user_token(http, demo, who, USE_DEVICE)
    digest = hashlib.sha256(os.urandom(16)).digest()
    before = audit_head(http, rp)
    r = http.post(DEVICE_RAW, headers=bearer(token), json={
        "input": {"digest_value": b64(digest), "digest_algorithm": "SHA-256"},
        "sign_identities": [{"id": who.identity_id}]})
    assert r.status_code == 201, r.text
    pid = r.json()["signature"]["id"]
    r = phone.answer(phone.request(pid), "approve", pin=who.pin)
    assert r.status_code == 200, r.text
    r = http.get(f"{ESIGP}/signatures/{pid}/result", headers=bearer(token))
    assert r.status_code == 200, r.text
    verify_raw(certificate_of(who.identity), digest, base64.b64decode(r.json()["value"]))

    [(_, details)] = key_uses(http, rp, service, who.identity_id, before)
    assert details["authorization"] == f"device-process:{pid}"
    assert details["key_id"] == identity_key_id(service, who) and details["digests"] == 1


# -- in process: no code path signs with an identity key without a real authorization -------------------
def test_the_key_store_refuses_unnamed_or_made_up_authorizations(service: Service, http: httpx.Client,
                                                                 demo: dict[str, str], rp: dict[str, str],
                                                                 users: dict[str, Enrolled], in_process: Any) -> None:
    from remotesign.keystore import AuthorizationRefused, KeyStoreError, KeyUseAuthorization, SignatureScheme

    store = in_process.keystore
    rsa_user, ec_user = users["rsa"], users["ec"]
    with sqlite3.connect(service.home / "remotesign.db") as db:
        tenant_id = db.execute("SELECT tenant_id FROM users WHERE id = ?", (ec_user.user["id"],)).fetchone()[0]
    key = store.identity_key(identity_key_id(service, ec_user), tenant_id)
    other_key = store.identity_key(identity_key_id(service, rsa_user), tenant_id)

    with pytest.raises(KeyStoreError):
        store.get(key.id, tenant_id)
    with pytest.raises(KeyStoreError):
        store.sign_digest(key, DIGEST, "sha256")

    # a real SCAL2 authorization to misuse
    token = user_token(http, demo, ec_user, USE_SERVER, summary=summary_of([DIGEST]), summary_alg="SHA256")
    before = audit_head(http, rp)
    r = http.post(RAW, json={"sign_identity_id": ec_user.identity_id, "digest_value": b64(DIGEST)},
                  headers=bearer(token))
    assert r.status_code == 200, r.text
    [(_, used)] = key_uses(http, rp, service, ec_user.identity_id, before)
    real = used["authorization"]
    seq, prefix = real.split(":")[1:]
    one = [(DIGEST, "sha256", SignatureScheme.ECDSA)]
    forged = {
        "no such audit event": KeyUseAuthorization(f"scal2:999999999:{prefix}", ec_user.identity_id, "x", tenant_id),
        "another event's seq": KeyUseAuthorization(f"scal2:1:{prefix}", ec_user.identity_id, "x", tenant_id),
        "another token": KeyUseAuthorization(f"scal2:{seq}:{'0' * 16}", ec_user.identity_id, "x", tenant_id),
        "another digest count": None,
        "another identity's key": KeyUseAuthorization(real, ec_user.identity_id, "x", tenant_id),
        "a process that does not exist": KeyUseAuthorization.device_process(str(uuid.uuid4()), ec_user.identity_id,
                                                                            "x", tenant_id),
    }
    for name, auth in forged.items():
        with pytest.raises(AuthorizationRefused):
            if name == "another digest count":
                store.sign_with_identity_key(key, one * 2, KeyUseAuthorization(real, ec_user.identity_id, "x",
                                                                                   tenant_id))
            elif name == "another identity's key":
                store.sign_with_identity_key(other_key, [(DIGEST, "sha256", SignatureScheme.RSA_PKCS1V15)], auth)
            else:
                store.sign_with_identity_key(key, one, auth)
    for bogus in ("", "operator", "scal2:1", "device-process:../x"):
        with pytest.raises(AuthorizationRefused):
            KeyUseAuthorization(bogus, ec_user.identity_id, "x", tenant_id)
    # every refusal is in the audit log, naming what was claimed
    with sqlite3.connect(service.home / "remotesign.db") as db:
        refused = [json.loads(d)["authorization"] for (d,) in db.execute(
            "SELECT details FROM audit_events WHERE event = 'identity_key.refused' AND subject = ?",
            (ec_user.identity_id,))]
    assert f"scal2:999999999:{prefix}" in refused and f"scal2:{seq}:{'0' * 16}" in refused
