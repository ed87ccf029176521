"""eSigP raw signatures with server-held keys over HTTP (``signatures/server/raw[/batch]``), and
proof (d) of the SCAL2 invariant: a token from the user's consent signs exactly the digests it was
issued for, with exactly that identity, once, before it expires. Every refusal is a 403 (401 for
the expired token) and leaves a ``scal2.refused`` audit event with its reason."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.exceptions import InvalidSignature

from tests.consent import PROFILE, USE_DEVICE, USE_SERVER, Enrolled, enrol, register_redirect, summary_of, user_token
from tests.device_client import (ESIGP, b64, bearer, certificate_of, last_audit_seq, refusal_reasons, verify_raw)
from tests.harness import Service, free_port

RAW = f"{ESIGP}/signatures/server/raw"
BATCH = f"{ESIGP}/signatures/server/raw/batch"


@pytest.fixture(scope="module")
def users(http: httpx.Client, demo_token: str) -> dict[str, Enrolled]:
    register_redirect(http, demo_token)
    return {"rsa": enrol(http, demo_token, algorithm="rsa-2048"), "ec": enrol(http, demo_token, algorithm="ec-p256")}


def digests(n: int, alg: str = "sha256") -> list[bytes]:
    return [hashlib.new(alg, os.urandom(32)).digest() for _ in range(n)]


_BY_SIZE = {20: "SHA1", 32: "SHA256", 48: "SHA384", 64: "SHA512"}


def signing_token(http: httpx.Client, demo: dict[str, str], who: Enrolled, ds: list[bytes], alg: str = "SHA256",
                  identity_id: str | None = None, declare: bool | None = None) -> str:
    """A token for ``ds``; digests of another algorithm than the summary's are declared, in order
    (``digests_algorithms``), as a client signing them must."""
    types = [_BY_SIZE[len(d)] for d in ds]
    if declare is None:
        declare = any(t != alg.upper().replace("-", "") for t in types)
    return user_token(http, demo, who, USE_SERVER, summary=summary_of(ds, alg.lower().replace("-", "")),
                      summary_alg=alg, identity_id=identity_id,
                      extra={"digests_algorithms": ",".join(types)} if declare else None)


def raw(http: httpx.Client, token: str, identity_id: str, digest: bytes, alg: str | None = None) -> httpx.Response:
    body = {"digest_value": b64(digest), "sign_identity_id": identity_id}
    if alg:
        body["signature_algorithm"] = alg
    return http.post(RAW, json=body, headers=bearer(token))


def refused(r: httpx.Response, reason: str, status: int = 403) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["reason"] == reason and body["error"] == ("access_denied" if status == 403 else "invalid_token"), body
    assert body["error_description"]


@pytest.mark.parametrize(("kind", "alg"), [("rsa", "rsa-sha256"), ("rsa", None), ("ec", "ecdsa"),
                                           ("ec", "ecdsa-sha256")])
def test_server_raw_returns_a_binary_signature_that_verifies(http: httpx.Client, demo: dict[str, str],
                                                             users: dict[str, Enrolled], kind: str,
                                                             alg: str | None) -> None:
    who = users[kind]
    [d] = digests(1)
    token = signing_token(http, demo, who, [d])
    r = raw(http, token, who.identity_id, d, alg)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    if kind == "rsa":
        assert len(r.content) == 256
    else:
        assert r.content[0] == 0x30  # DER ECDSA-Sig-Value
    verify_raw(certificate_of(who.identity), d, r.content)
    with pytest.raises(InvalidSignature):
        verify_raw(certificate_of(who.identity), hashlib.sha256(b"other").digest(), r.content)


@pytest.mark.parametrize(("kind", "hash_name", "alg"), [("rsa", "sha256", "rsa-sha256"),
                                                        ("rsa", "sha384", "rsa-sha384"), ("ec", "sha256", "ecdsa")])
def test_batch_of_three_signs_in_order(http: httpx.Client, demo: dict[str, str], users: dict[str, Enrolled],
                                       kind: str, hash_name: str, alg: str) -> None:
    who = users[kind]
    ds = digests(3, hash_name)
    token = signing_token(http, demo, who, ds, "SHA256")
    r = http.post(BATCH, headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "signature_algorithm": alg,
        "requests": [{"digest_value": b64(d)} for d in ds]})
    assert r.status_code == 200, r.text
    values = [base64.b64decode(v) for v in r.json()["signatures"]]
    assert len(values) == 3
    cert = certificate_of(who.identity)
    for d, v in zip(ds, values):
        verify_raw(cert, d, v, hash_name)
    with pytest.raises(InvalidSignature):
        verify_raw(cert, ds[1], values[0], hash_name)


def test_batch_with_digest_info_and_per_request_algorithm(http: httpx.Client, demo: dict[str, str],
                                                          users: dict[str, Enrolled]) -> None:
    """``data`` (a DER DigestInfo, rsa-pkcs1) and a per-request algorithm overriding the top-level one."""
    from asn1crypto import algos

    who = users["rsa"]
    d256, d512 = hashlib.sha256(b"a").digest(), hashlib.sha512(b"b").digest()
    info = algos.DigestInfo({"digest_algorithm": {"algorithm": "sha512"}, "digest": d512}).dump()
    token = signing_token(http, demo, who, [d256, d512])
    r = http.post(BATCH, headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "signature_algorithm": "rsa-sha256",
        "requests": [{"digest_value": b64(d256)}, {"data": b64(info), "signature_algorithm": "rsa-pkcs1"}]})
    assert r.status_code == 200, r.text
    first, second = (base64.b64decode(v) for v in r.json()["signatures"])
    verify_raw(certificate_of(who.identity), d256, first, "sha256")
    verify_raw(certificate_of(who.identity), d512, second, "sha512")


# -- proof (d): every SCAL2 refusal, answered and audited --------------------------------------------------
def test_other_digest_is_refused_digests_mismatch(service: Service, http: httpx.Client, demo: dict[str, str],
                                                  users: dict[str, Enrolled]) -> None:
    who = users["rsa"]
    [d, other] = digests(2)
    token = signing_token(http, demo, who, [d])
    seq = last_audit_seq(service)
    refused(raw(http, token, who.identity_id, other), "digests_mismatch")
    assert refusal_reasons(service, seq) == ["digests_mismatch"]
    assert raw(http, token, who.identity_id, d).status_code == 200  # the refusal did not spend the consent


def test_reordered_batch_is_refused_digests_mismatch(service: Service, http: httpx.Client, demo: dict[str, str],
                                                     users: dict[str, Enrolled]) -> None:
    who = users["ec"]
    ds = digests(3)
    token = signing_token(http, demo, who, ds)
    seq = last_audit_seq(service)
    r = http.post(BATCH, headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(d)} for d in reversed(ds)]})
    refused(r, "digests_mismatch")
    r = http.post(BATCH, headers=bearer(token), json={  # a subset is not the consented set either
        "sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(d)} for d in ds[:2]]})
    refused(r, "digests_mismatch")
    assert refusal_reasons(service, seq) == ["digests_mismatch", "digests_mismatch"]


def test_another_identity_is_refused_identity_mismatch(service: Service, http: httpx.Client, demo: dict[str, str],
                                                       demo_token: str, users: dict[str, Enrolled]) -> None:
    who = users["rsa"]
    [d] = digests(1)
    token = signing_token(http, demo, who, [d])
    # a second identity of the same user ...
    r = http.post(f"/v1/users/{who.user['id']}/identities", json={"algorithm": "rsa-2048"},
                  headers=bearer(demo_token))
    assert r.status_code == 201, r.text
    second = r.json()["identity"]["id"]
    seq = last_audit_seq(service)
    refused(raw(http, token, second, d), "identity_mismatch")
    # ... and another user's identity
    refused(raw(http, token, users["ec"].identity_id, d, "ecdsa"), "identity_mismatch")
    assert refusal_reasons(service, seq) == ["identity_mismatch", "identity_mismatch"]
    assert raw(http, token, who.identity_id, d).status_code == 200


def test_replay_is_refused(service: Service, http: httpx.Client, demo: dict[str, str],
                           users: dict[str, Enrolled]) -> None:
    who = users["ec"]
    ds = digests(2)
    token = signing_token(http, demo, who, ds)
    body = {"sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(d)} for d in ds]}
    assert http.post(BATCH, json=body, headers=bearer(token)).status_code == 200
    seq = last_audit_seq(service)
    refused(http.post(BATCH, json=body, headers=bearer(token)), "replayed")
    assert refusal_reasons(service, seq) == ["replayed"]


@pytest.mark.parametrize("scope", [PROFILE, USE_DEVICE])
def test_a_token_without_the_server_signing_scope_is_refused(service: Service, http: httpx.Client,
                                                             demo: dict[str, str], users: dict[str, Enrolled],
                                                             scope: str) -> None:
    who = users["rsa"]
    token = user_token(http, demo, who, scope)
    [d] = digests(1)
    seq = last_audit_seq(service)
    refused(raw(http, token, who.identity_id, d), "not_a_signing_token")
    assert refusal_reasons(service, seq) == ["not_a_signing_token"]


def test_a_client_credentials_token_is_refused(service: Service, http: httpx.Client, demo_token: str,
                                               users: dict[str, Enrolled]) -> None:
    """The relying party itself holds every client scope, yet cannot sign with its user's key."""
    who = users["rsa"]
    [d] = digests(1)
    seq = last_audit_seq(service)
    refused(raw(http, demo_token, who.identity_id, d), "not_a_signing_token")
    r = http.post(BATCH, headers=bearer(demo_token), json={"sign_identity_id": who.identity_id,
                                                             "requests": [{"digest_value": b64(d)}]})
    refused(r, "not_a_signing_token")
    assert refusal_reasons(service, seq) == ["not_a_signing_token", "not_a_signing_token"]
    events = http.get("/v1/audit", params={"limit": 20}, headers=bearer(demo_token)).json()
    assert [e["event"] for e in events].count("scal2.refused") >= 2  # also visible through the audit API


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A second service whose signing tokens live 2 seconds."""
    svc = Service(home=tmp_path_factory.mktemp("short-ttl"), port=free_port(),
                  env={"REMOTESIGN_SIGNING_TOKEN_TTL": "2"}).start()
    yield svc
    svc.stop()


def test_an_expired_token_is_refused_and_audited(short_lived: Service) -> None:
    demo = short_lived.demo_client()
    admin = short_lived.token(demo["client_id"], demo["client_secret"])
    with httpx.Client(base_url=short_lived.url, timeout=30) as http:
        register_redirect(http, admin)
        who = enrol(http, admin)
        [d] = digests(1)
        token = signing_token(http, demo, who, [d])
        time.sleep(2.5)
        seq = last_audit_seq(short_lived)
        r = raw(http, token, who.identity_id, d)
        refused(r, "expired", status=401)
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert refusal_reasons(short_lived, seq) == ["expired"]


# -- malformed input never spends the consent -------------------------------------------------------------
def test_malformed_requests_do_not_spend_the_token(http: httpx.Client, demo: dict[str, str],
                                                   users: dict[str, Enrolled]) -> None:
    who = users["rsa"]
    [d] = digests(1)
    token = signing_token(http, demo, who, [d])
    auth = bearer(token)
    bad = [
        {"digest_value": "not base64!!", "sign_identity_id": who.identity_id},
        {"digest_value": b64(d[:31]), "sign_identity_id": who.identity_id},
        {"digest_value": b64(d), "sign_identity_id": who.identity_id, "signature_algorithm": "rsa-md5"},
        {"digest_value": b64(d), "sign_identity_id": who.identity_id, "signature_algorithm": "rsa-sha384"},
        {"digest_value": b64(d), "sign_identity_id": who.identity_id, "signature_algorithm": "ecdsa"},
        {"digest_value": b64(d)},
        {"digest_value": 12, "sign_identity_id": who.identity_id},
        {"digest_value": "A" * 5000, "sign_identity_id": who.identity_id},
    ]
    for body in bad:
        r = http.post(RAW, json=body, headers=auth)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) == {"error", "error_description"}, r.json()
    for content in (b"{not json", b"[]", b""):
        r = http.post(RAW, content=content, headers={**auth, "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
    for body in ({"sign_identity_id": who.identity_id, "requests": []},
                 {"sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(d), "data": b64(d)}]},
                 {"sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(d)}, {"digest_value": "%%"}]},
                 {"sign_identity_id": who.identity_id, "requests": [{"data": b64(b"not a DigestInfo")}],
                  "signature_algorithm": "rsa-pkcs1"}):
        r = http.post(BATCH, json=body, headers=auth)
        assert r.status_code == 400, (body, r.text)
    r = raw(http, token, who.identity_id, d, "rsa-sha256")
    assert r.status_code == 200, r.text
    verify_raw(certificate_of(who.identity), d, r.content)


def test_disabled_identity_is_refused_without_spending_the_token(http: httpx.Client, demo: dict[str, str],
                                                                 demo_token: str) -> None:
    who = enrol(http, demo_token, algorithm="ec-p256")
    [d] = digests(1)
    token = signing_token(http, demo, who, [d])
    patch = f"/v1/identities/{who.identity_id}"
    r = http.patch(patch, json={"status": "disabled", "reason": "lost"}, headers=bearer(demo_token))
    assert r.status_code == 200, r.text
    r = raw(http, token, who.identity_id, d)
    assert r.status_code == 403 and r.json()["error"] == "identity_disabled", r.text
    assert http.patch(patch, json={"status": "enabled"}, headers=bearer(demo_token)).status_code == 200
    assert raw(http, token, who.identity_id, d).status_code == 200


def test_sha1_is_refused_by_default(http: httpx.Client, demo: dict[str, str], users: dict[str, Enrolled]) -> None:
    who = users["rsa"]
    d = hashlib.sha1(b"legacy").digest()
    token = signing_token(http, demo, who, [d], declare=False)
    for alg in ("rsa-sha1", None):
        r = raw(http, token, who.identity_id, d, alg)
        assert r.status_code == 400 and r.json()["error"] == "unsupported_algorithm", r.text


# -- authentication and the error format ----------------------------------------------------------------
def test_tokens_and_error_format(http: httpx.Client, users: dict[str, Enrolled]) -> None:
    who = users["rsa"]
    body = {"digest_value": b64(digests(1)[0]), "sign_identity_id": who.identity_id}
    r = http.post(RAW, json=body)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = http.post(RAW, json=body, headers=bearer("no-such-token"))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert set(r.json()) == {"error", "error_description"}
    r = http.get(RAW, headers=bearer("x"))
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed", r.text
    r = http.get("/trustedx-resources/esigp/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found" and "error_description" in r.json()
