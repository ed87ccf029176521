"""Signatures approved on the user's device, over HTTP: the relying party creates a process
(``signatures/device/raw``), the device long-polls ``/v1/device/requests`` and answers with its
key's signature over the decision's text plus the signing PIN.

Proof (b): pending (result 404) -> the device sees it -> approval with PIN + device signature ->
finished with a value that verifies. Proof (c): a rejection, a relying-party cancel and a deletion
end the process (410 once deleted); a wrong device signature changes nothing. Proof (e): three wrong
PINs lock the identity, even the right PIN is refused while locked, and it works after the lock."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.consent import PROFILE, USE_DEVICE, Enrolled, enrol, mailed_code, register_redirect, user_token
from tests.device_client import ESIGP, DeviceApp, b64, bearer, certificate_of, verify_raw
from tests.harness import Service, free_port

SIGNATURES = f"{ESIGP}/signatures"
DEVICE_RAW = f"{SIGNATURES}/device/raw"
HTML = "=" + base64.b64encode(b'{"code":"sign","message":"Sign contract 42","api_level":1}').decode()


@pytest.fixture(scope="module")
def alice(http: httpx.Client, demo_token: str) -> Enrolled:
    register_redirect(http, demo_token)
    return enrol(http, demo_token, algorithm="rsa-2048", pin="2468")


@pytest.fixture(scope="module")
def phone(http: httpx.Client, alice: Enrolled) -> DeviceApp:
    return DeviceApp.register(http, alice.device_code, "Alice's phone")


@pytest.fixture(scope="module")
def rp(http: httpx.Client, demo: dict[str, str], alice: Enrolled, phone: DeviceApp) -> str:
    """The relying party's token for Alice's device signatures (her consent, scope use:device)."""
    return user_token(http, demo, alice, USE_DEVICE)


def create(http: httpx.Client, token: str, digest: bytes, selector: dict[str, Any] | None = None,
           digest_algorithm: str = "SHA-256") -> str:
    r = http.post(DEVICE_RAW, headers=bearer(token), json={
        "input": {"digest_value": b64(digest), "digest_algorithm": digest_algorithm, "data_info": {"html": HTML}},
        "sign_identities": [selector or {"labels": ["serverid", "x509:keyUsage:contentCommitment"]}],
        "notify": True})
    assert r.status_code == 201, r.text
    signature = r.json()["signature"]
    assert signature["self"].endswith(f"{SIGNATURES}/{signature['id']}") and r.headers["location"] == signature["self"]
    return str(signature["id"])


def result(http: httpx.Client, token: str, process_id: str) -> httpx.Response:
    return http.get(f"{SIGNATURES}/{process_id}/result", headers=bearer(token))


def test_approval_with_pin_and_device_key(http: httpx.Client, alice: Enrolled, phone: DeviceApp, rp: str) -> None:
    """Proof (b)."""
    digest = hashlib.sha256(os.urandom(16)).digest()
    pid = create(http, rp, digest)
    r = result(http, rp, pid)
    assert r.status_code == 404 and r.json()["error"] == "not_finished", r.text
    r = http.get(f"{SIGNATURES}/{pid}", headers=bearer(rp))
    assert r.status_code == 200, r.text
    process = r.json()
    assert process["status"] == "pending" and process["operation_type"] == "sign:raw" and "result" not in process
    assert process["input"] == {"digest_value": b64(digest), "digest_algorithm": "sha256", "data_info": {"html": HTML}}
    assert process["sign_identity_selectors"][0]["id"] == alice.identity_id and process["domain"] == "citizen"
    assert process["links"]["cancel"]["href"].endswith(f"/{pid}/cancel") and process["creation_time"]

    request = phone.request(pid)
    assert request["operation_type"] == "sign:raw" and request["digest_value"] == b64(digest)
    assert request["identity"]["id"] == alice.identity_id and "CN=Test " in request["identity"]["subject"]
    assert request["data_info"] == {"html": HTML} and request["client"] == "demo relying party"
    text = base64.b64decode(request["approve_text"])
    assert pid.encode() in text and b"approve" in text and b64(digest).encode() in text

    r = phone.answer(request, "approve", pin=alice.pin)
    assert r.status_code == 200 and r.json() == {"id": pid, "status": "finished"}, r.text
    r = result(http, rp, pid)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "finished" and body["signature_algorithm"] == "rsa-sha256"
    assert body["sign_identity"] == alice.identity_id and body["device_type"]["id"]
    verify_raw(certificate_of(alice.identity), digest, base64.b64decode(body["value"]))
    r = http.get(f"{SIGNATURES}/{pid}", headers=bearer(rp))
    assert r.json()["status"] == "finished" and r.json()["result"]["value"] == body["value"]
    assert pid not in [x["id"] for x in phone.requests()]  # no longer waiting
    r = phone.answer(request, "approve", pin=alice.pin)  # answering twice: conflict
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_answered", r.text


def test_long_poll_returns_as_soon_as_a_request_arrives(http: httpx.Client, demo_token: str, phone: DeviceApp,
                                                        rp: str) -> None:
    for stale in phone.requests():  # nothing left over from other tests
        http.delete(f"{SIGNATURES}/{stale['id']}", headers=bearer(rp))
    start = time.monotonic()
    assert phone.requests(wait=1) == []
    assert 0.9 <= time.monotonic() - start < 5

    seen: dict[str, Any] = {}

    def poll() -> None:
        t0 = time.monotonic()
        seen["requests"] = phone.requests(wait=20)
        seen["elapsed"] = time.monotonic() - t0

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.5)
    pid = create(http, rp, hashlib.sha256(b"long poll").digest())
    poller.join(30)
    assert [x["id"] for x in seen["requests"]] == [pid]
    assert 1.4 <= seen["elapsed"] < 5, seen["elapsed"]
    assert http.post(f"{SIGNATURES}/{pid}/cancel", headers=bearer(rp)).json()["status"] == "canceled"


def test_reject_cancel_and_delete(http: httpx.Client, alice: Enrolled, phone: DeviceApp, rp: str) -> None:
    """Proof (c)."""
    pid = create(http, rp, hashlib.sha256(b"reject me").digest(), {"id": alice.identity_id})
    r = phone.answer(phone.request(pid), "reject")
    assert r.status_code == 200 and r.json()["status"] == "canceled", r.text
    r = result(http, rp, pid)
    assert r.status_code == 200 and r.json()["status"] == "canceled" and "device_type" not in r.json(), r.text

    pid = create(http, rp, hashlib.sha256(b"cancel me").digest())
    request = phone.request(pid)
    r = http.post(f"{SIGNATURES}/{pid}/cancel", headers=bearer(rp))
    assert r.status_code == 200 and r.json()["status"] == "canceled", r.text
    assert result(http, rp, pid).json()["status"] == "canceled"
    r = phone.answer(request, "approve", pin=alice.pin)  # too late: the relying party canceled
    assert r.status_code == 409, r.text
    assert http.post(f"{SIGNATURES}/{pid}/cancel", headers=bearer(rp)).json()["status"] == "canceled"

    pid = create(http, rp, hashlib.sha256(b"delete me").digest())
    request = phone.request(pid)
    r = http.delete(f"{SIGNATURES}/{pid}", headers=bearer(rp))
    assert r.status_code == 204, r.text
    for r in (result(http, rp, pid), http.get(f"{SIGNATURES}/{pid}", headers=bearer(rp)),
              http.post(f"{SIGNATURES}/{pid}/cancel", headers=bearer(rp)),
              http.delete(f"{SIGNATURES}/{pid}", headers=bearer(rp))):
        assert r.status_code == 410 and r.json()["error"] == "gone", r.text
    assert phone.answer(request, "approve", pin=alice.pin).status_code == 404  # a deleted request cannot be approved
    assert result(http, rp, "no-such-process").status_code == 410


def test_wrong_device_signature_or_pin_leaves_the_request_pending(http: httpx.Client, alice: Enrolled,
                                                                  phone: DeviceApp, rp: str) -> None:
    digest = hashlib.sha256(b"forged").digest()
    pid = create(http, rp, digest)
    request = phone.request(pid)
    intruder = ec.generate_private_key(ec.SECP256R1())
    forged = b64(intruder.sign(base64.b64decode(request["approve_text"]), ec.ECDSA(hashes.SHA256())))
    for signature in (forged, phone.sign_text(base64.b64decode(request["reject_text"]))):  # wrong key, wrong text
        r = phone.answer(request, "approve", pin=alice.pin, signature=signature)
        assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_device_signature", r.text
    r = phone.answer(request, "approve", pin=alice.pin, signature="%%%")
    assert r.status_code == 400, r.text
    assert result(http, rp, pid).status_code == 404  # still pending
    r = phone.answer(request, "approve", pin="0000")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "pin_invalid" and r.json()["error"]["remaining"] == 2
    r = phone.answer(request, "approve")
    assert r.status_code == 400 and r.json()["error"]["code"] == "pin_required", r.text
    assert result(http, rp, pid).status_code == 404
    r = phone.answer(request, "approve", pin=alice.pin)
    assert r.status_code == 200 and r.json()["status"] == "finished", r.text
    verify_raw(certificate_of(alice.identity), digest, base64.b64decode(result(http, rp, pid).json()["value"]))


def test_other_users_device_and_tokens_see_nothing(http: httpx.Client, demo: dict[str, str], demo_token: str,
                                                   alice: Enrolled, rp: str) -> None:
    bob = enrol(http, demo_token)
    bobs_phone = DeviceApp.register(http, bob.device_code)
    pid = create(http, rp, hashlib.sha256(b"for alice only").digest())
    assert pid not in [x["id"] for x in bobs_phone.requests()]
    r = bobs_phone.answer({"id": pid, "approve_text": b64(b"x")}, "approve", pin=bob.pin)
    assert r.status_code == 404, r.text
    bob_rp = user_token(http, demo, bob, USE_DEVICE)
    assert result(http, bob_rp, pid).status_code == 410  # another user's process does not exist for Bob's token
    r = http.post(DEVICE_RAW, headers=bearer(bob_rp), json={  # Bob cannot select Alice's identity
        "input": {"digest_value": b64(hashlib.sha256(b"x").digest())}, "sign_identities": [{"id": alice.identity_id}]})
    assert r.status_code == 404 and r.json()["error"] == "sign_identity_not_found", r.text
    http.delete(f"{SIGNATURES}/{pid}", headers=bearer(rp))


def test_device_api_errors(http: httpx.Client, demo: dict[str, str], demo_token: str, alice: Enrolled,
                           rp: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    r = http.post("/v1/device/register", json={"username": alice.username, "password": alice.password,
                                               "public_key": b64(der)})  # the password alone pairs nothing
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", r.text
    r = http.post("/v1/device/register", json={"activation_code": "AAAAA-BBBBB-CCCCC-DDDDD", "public_key": b64(der)})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_code", r.text
    code = mailed_code(http, demo_token, alice.user, "device")
    r = http.post("/v1/device/register", json={"activation_code": code, "public_key": "not a key"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_public_key", r.text
    r = http.post("/v1/device/register", json={"activation_code": code.lower().replace("-", " "),
                                               "public_key": b64(der), "name": "base64 DER key"})
    assert r.status_code == 201, r.text  # a malformed key did not burn the code; case and spacing are forgiven
    device_token = r.json()["device_token"]
    r = http.post("/v1/device/register", json={"activation_code": code, "public_key": b64(der)})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_code", r.text  # once
    assert http.get("/v1/device/requests").status_code == 401
    r = http.get("/v1/device/requests", headers=bearer("nope"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    for wait in ("-1", "soon"):
        r = http.get("/v1/device/requests", params={"wait": wait}, headers=bearer(device_token))
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", r.text

    profile = user_token(http, demo, alice, PROFILE)
    body = {"input": {"digest_value": b64(hashlib.sha256(b"x").digest())},
            "sign_identities": [{"labels": ["serverid"]}]}
    for token in (profile, demo_token):  # device signatures need the user's use:device consent
        r = http.post(DEVICE_RAW, headers=bearer(token), json=body)
        assert r.status_code == 403 and r.json()["error"] == "insufficient_scope", r.text
    for bad in ({**body, "input": {"digest_value": "%%%"}},
                {**body, "input": {"digest_value": b64(b"short")}},
                {**body, "input": {**body["input"], "digest_algorithm": "md5"}},
                {**body, "sign_identities": []},
                {**body, "sign_identities": [{}]}):
        r = http.post(DEVICE_RAW, headers=bearer(rp), json=bad)
        assert r.status_code == 400 and set(r.json()) == {"error", "error_description"}, (bad, r.text)
    r = http.post(DEVICE_RAW, headers=bearer(rp), json={**body, "sign_identities": [{"labels": ["no-such-label"]}]})
    assert r.status_code == 404, r.text


def test_user_without_device_gets_a_conflict(http: httpx.Client, demo: dict[str, str], demo_token: str) -> None:
    carol = enrol(http, demo_token)
    token = user_token(http, demo, carol, USE_DEVICE)
    r = http.post(DEVICE_RAW, headers=bearer(token), json={
        "input": {"digest_value": b64(hashlib.sha256(b"x").digest())}, "sign_identities": [{"id": carol.identity_id}]})
    assert r.status_code == 409 and r.json()["error"] == "no_device", r.text


# -- proof (e): PIN lockout and its expiry ---------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(home=tmp_path_factory.mktemp("pin-lock"), port=free_port(),
                  env={"REMOTESIGN_PIN_LOCK_SECONDS": "15"}).start()  # long enough for a busy machine
    yield svc
    svc.stop()


def test_pin_lockout_and_its_expiry(quick_lock: Service) -> None:
    demo = quick_lock.demo_client()
    admin = quick_lock.token(demo["client_id"], demo["client_secret"])
    with httpx.Client(base_url=quick_lock.url, timeout=30) as http:
        register_redirect(http, admin)
        who = enrol(http, admin, algorithm="ec-p256", pin="97531")
        phone = DeviceApp.register(http, who.device_code)
        rp = user_token(http, demo, who, USE_DEVICE)

        pid = create(http, rp, hashlib.sha256(b"first").digest())
        request = phone.request(pid)
        for remaining in (2, 1):
            r = phone.answer(request, "approve", pin="11111")
            assert r.status_code == 403 and r.json()["error"] == {
                "code": "pin_invalid", "message": f"wrong PIN; {remaining} tries left", "remaining": remaining}, r.text
        r = phone.answer(request, "approve", pin="11111")
        assert r.status_code == 403 and r.json()["error"]["code"] == "pin_locked", r.text
        assert r.json()["error"]["remaining"] == 0 and r.json()["error"]["locked_until"]
        assert result(http, rp, pid).json()["status"] == "failed"  # a locked PIN ends the request

        pid = create(http, rp, hashlib.sha256(b"second").digest())
        r = phone.answer(phone.request(pid), "approve", pin=who.pin)  # even the right PIN, while locked
        assert r.status_code == 403 and r.json()["error"]["code"] == "pin_locked", r.text

        locked_until = datetime.fromisoformat(r.json()["error"]["locked_until"])
        time.sleep(max(0.0, (locked_until - datetime.now(timezone.utc)).total_seconds()) + 0.5)
        digest = hashlib.sha256(b"third").digest()
        pid = create(http, rp, digest)
        r = phone.answer(phone.request(pid), "approve", pin=who.pin)
        assert r.status_code == 200 and r.json()["status"] == "finished", r.text
        value = base64.b64decode(result(http, rp, pid).json()["value"])
        verify_raw(certificate_of(who.identity), digest, value)
