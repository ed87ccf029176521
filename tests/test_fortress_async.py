"""Asynchronous Fortress-style signature requests over HTTP: the service executes them in the
background and POSTs the outcome to the client's ``callbackUrl``, signed with HMAC-SHA256 under the
client's callback key, retried with backoff while the receiver fails, and visible as delivered or
failed through the API. The receivers are real HTTP servers the test starts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.consent import enrol, register_redirect
from tests.harness import Service, free_port
from tests.test_fortress_signature import (SIGN, authorize, check_raw, client_token, config, consent_page,
                                          consent_post, execute_raw, openssl_cms, redirected,
                                          validate)

SAMPLE = b"<order>42</order>"


@dataclass
class Receiver:
    """A callback receiver: answers 503 to the first ``failures`` deliveries, then 200."""

    failures: int = 0
    delay: float = 0.0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    attempts: int = 0
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # deliveries arrive on parallel threads

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:  # one count per delivery, even when two arrive at once
                    receiver.attempts += 1
                    refuse = receiver.attempts <= receiver.failures
                time.sleep(receiver.delay)
                if refuse:
                    self.send_response(503)
                else:
                    with receiver.lock:
                        receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/fortress-callback"

    def wait(self, count: int = 1, timeout: float = 60.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.received) >= count, f"{len(self.received)} callbacks after {timeout} s"
        return self.received

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="module")
def sms_gateway() -> Iterator[Receiver]:
    gateway = Receiver().start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, sms_gateway: Receiver) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("fortress-async"), port=free_port(),
                      env={"REMOTESIGN_CALLBACK_ALLOWED_HOSTS": "loopback", "REMOTESIGN_CALLBACK_BACKOFF": "0.2",
                           "REMOTESIGN_CALLBACK_MAX_ATTEMPTS": "3", "REMOTESIGN_CALLBACK_TIMEOUT": "2",
                           "REMOTESIGN_SMS_GATEWAY_URL": sms_gateway.url,
                           "REMOTESIGN_SMS_GATEWAY_TOKEN": "gateway-secret"}).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def rp(svc: Service) -> Iterator[httpx.Client]:
    demo = svc.demo_client()
    with httpx.Client(base_url=svc.url, timeout=60) as http:
        http.headers["Authorization"] = f"Bearer {svc.token(demo['client_id'], demo['client_secret'])}"
        yield http


@pytest.fixture(scope="module")
def fortress(svc: Service) -> Iterator[httpx.Client]:
    client = client_token(svc, svc.demo_client())
    yield client
    client.close()


@pytest.fixture(scope="module")
def seal(rp: httpx.Client) -> dict[str, Any]:
    username = f"seal-{secrets.token_hex(3)}"
    r = rp.post("/v1/users", json={"username": username, "display_name": "Async Seal Ltd", "kind": "legal",
                                   "serial_number": "NTRLV-40003000000"})
    assert r.status_code == 201, r.text
    r = rp.post(f"/v1/users/{r.json()['id']}/identities", json={"algorithm": "rsa-2048"})
    assert r.status_code == 201, r.text
    return {**r.json()["identity"], "username": username}


def callback_key(rp: httpx.Client) -> bytes:
    r = rp.get("/v1/client/callback-secret")
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["callback_secret"])


def verify_signature(headers: dict[str, str], body: bytes, key: bytes) -> dict[str, Any]:
    """What a receiver does: recompute the HMAC over timestamp and body, check the timestamp is fresh."""
    timestamp = headers["x-remotesign-timestamp"]
    expected = "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-remotesign-signature"], expected), headers
    assert abs(time.time() - int(timestamp)) < 300
    return json.loads(body)  # type: ignore[no-any-return]


def wait_state(fortress: httpx.Client, exe: str, callback_status: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = fortress.get(f"{SIGN}/{exe}").json()
        if state["callbackStatus"] == callback_status:
            return state  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"callback of {exe} still {state['callbackStatus']}: {state}")


def test_an_async_e_seal_is_posted_back_signed_after_the_receiver_failed_twice(
        svc: Service, rp: httpx.Client, fortress: httpx.Client, seal: dict[str, Any], tmp_path: Path) -> None:
    receiver = Receiver(failures=2).start()
    try:
        r = fortress.post(SIGN, json={"certificateCode": seal["id"], "async": "true", "callbackUrl": receiver.url,
                                      "signatureConfigurations": [
                                          config(SAMPLE, "CADES_T", "order.xml", "o1", packaging="ENVELOPING"),
                                          config(SAMPLE, "PKCS1", "order.xml", "o2")]})
        assert r.status_code == 200, r.text
        exe = r.json()["exeCode"]
        [(headers, body)] = receiver.wait(1)
        assert receiver.attempts == 3
        key = callback_key(rp)
        sent = verify_signature(headers, body, key)
        assert sent["exeCode"] == exe and sent["status"] == "DONE", sent
        signed = {s["ref"]: base64.b64decode(s["bytesB64"]) for s in sent["signatures"]}
        ca_pem = httpx.get(svc.url + "/pki/ca.pem").content
        assert openssl_cms(tmp_path, signed["o1"], ca_pem) == SAMPLE
        [cades] = validate(svc, "order.p7m", signed["o1"])
        assert (cades["indication"], cades["signatureFormat"]) == ("TOTAL-PASSED", "CAdES_BASELINE_T"), cades
        pem = fortress.get(f"/fortress/api/v1/user/{seal['username']}/certificate").json()[0]["pem"]
        check_raw(signed["o2"], SAMPLE, pem)
        # a forged body does not verify under the key
        with pytest.raises(AssertionError):
            verify_signature(headers, body.replace(b"DONE", b"FAIL"), key)
        state = wait_state(fortress, exe, "DELIVERED")
        assert state["status"] == "DONE" and state["callbackAttempts"] == 3, state
        # the client may still fetch the same documents itself
        again = fortress.post(f"{SIGN}/execute/{exe}")
        assert again.status_code == 200 and [x["bytesB64"] for x in again.json()] == \
            [s["bytesB64"] for s in sent["signatures"]]
    finally:
        receiver.stop()


def test_a_dead_receiver_fails_visibly_and_holds_up_nothing(fortress: httpx.Client, seal: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    slow = Receiver(delay=5.0).start()  # longer than the delivery timeout (2 s)
    fast = Receiver().start()
    try:
        exes = []
        for url in (dead, slow.url, fast.url):
            r = fortress.post(SIGN, json={"certificateCode": seal["id"], "async": True, "callbackUrl": url,
                                          "signatureConfigurations": [config(SAMPLE, "PKCS1", "o.xml", "p")]})
            assert r.status_code == 200, r.text
            exes.append(r.json()["exeCode"])
        fast.wait(1, timeout=30)  # delivered while the others keep failing
        for exe in exes[:2]:
            state = wait_state(fortress, exe, "FAILED")
            assert state["status"] == "DONE" and state["callbackAttempts"] == 3 and state["callbackError"], state
        assert wait_state(fortress, exes[2], "DELIVERED")["callbackAttempts"] == 1
    finally:
        slow.stop()
        fast.stop()


def test_an_async_interactive_request_runs_once_the_user_authorized(svc: Service, rp: httpx.Client,
                                                                     fortress: httpx.Client) -> None:
    token = rp.headers["Authorization"].removeprefix("Bearer ")
    register_redirect(rp, token)
    who = enrol(rp, token)
    receiver = Receiver().start()
    try:
        r = fortress.post(SIGN, json={"userCode": who.username, "async": "true", "callbackUrl": receiver.url,
                                      "signatureConfigurations": [config(SAMPLE, "PKCS1", "o.xml", "mine")]})
        assert r.status_code == 200, r.text
        time.sleep(1.5)
        assert receiver.received == []  # nothing is signed before the user authorizes
        consent, browser = authorize(svc, r.json()["authCode"], who, pin=who.pin)
        browser.close()
        assert "code" in redirected(consent)
        [(headers, body)] = receiver.wait(1)
        sent = verify_signature(headers, body, callback_key(rp))
        assert sent["status"] == "DONE", sent
        pem = fortress.get(f"/fortress/api/v1/user/{who.username}/certificate").json()[0]["pem"]
        check_raw(base64.b64decode(sent["signatures"][0]["bytesB64"]), SAMPLE, pem)

        # a canceled one is reported too
        r = fortress.post(SIGN, json={"userCode": who.username, "async": "true", "callbackUrl": receiver.url,
                                      "signatureConfigurations": [config(SAMPLE, "PKCS1", "o.xml", "no")]})
        consent, browser = authorize(svc, r.json()["authCode"], who, action="cancel")
        browser.close()
        assert redirected(consent)["error"] == "access_denied"
        received = receiver.wait(2)
        denied = verify_signature(*received[1], callback_key(rp))
        assert denied["status"] == "DENIED" and denied["error"] == "access_denied" and "signatures" not in denied
    finally:
        receiver.stop()


def test_async_requests_need_a_callback_url(fortress: httpx.Client, seal: dict[str, Any]) -> None:
    r = fortress.post(SIGN, json={"certificateCode": seal["id"], "async": "true",
                                  "signatureConfigurations": [config(SAMPLE, "PKCS1", "o.xml", "p")]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    r = fortress.post(SIGN, json={"certificateCode": seal["id"], "async": "true", "callbackUrl": "ftp://x/y",
                                  "signatureConfigurations": [config(SAMPLE, "PKCS1", "o.xml", "p")]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


def test_a_one_time_code_by_sms_approves_the_request(svc: Service, rp: httpx.Client, fortress: httpx.Client,
                                                     sms_gateway: Receiver) -> None:
    token = rp.headers["Authorization"].removeprefix("Bearer ")
    register_redirect(rp, token)
    who = enrol(rp, token, phone="+37120000123")
    r = fortress.post(SIGN, json={"userCode": who.username, "signatureConfigurations": [
        config(SAMPLE, "PKCS1", "o.xml", "sms")]})
    assert r.status_code == 200, r.text
    browser, request_id, _ = consent_page(svc, r.json()["authCode"], who)
    before = len(sms_gateway.received)
    page = consent_post(browser, request_id, action="otp")
    assert page.status_code == 200 and "***123" in page.text, page.text
    headers, body = sms_gateway.wait(before + 1)[before]
    message = json.loads(body)
    assert message["to"] == "+37120000123" and headers["authorization"] == "Bearer gateway-secret", message
    code = re.search(r"\b(\d{8})\b", message["text"]).group(1)  # type: ignore[union-attr]
    params = redirected(consent_post(browser, request_id, action="approve", otp=code))
    browser.close()
    assert params["code"]
    execute_raw(fortress, r.json()["exeCode"], who.username, SAMPLE)
