"""The Remote Signing (VN)-style API over HTTP: the client login's JWT, agreements and their
certificate lifecycle, hash signing authorized by the owner's passcode or a one-time code sent by
e-mail (a real SMTP server, tests/mailbox.py) or SMS (a local HTTP gateway), and the response codes.

Signatures are checked with ``openssl pkeyutl -verify`` against the certificate the agreement got;
revocation with ``openssl ocsp`` against the service's own responder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import resource
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from tests.crash_tools import database
from tests.harness import Service, free_port
from tests.mailbox import mailbox
from tests.test_fortress_async import Receiver, sms_gateway  # noqa: F401 - the module's SMS gateway fixture

PREFIX = "/remote-signing"
DIGITS = re.compile(r"\b(\d{8})\b")


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, sms_gateway: Receiver) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("remote-signing"), port=free_port(),
                      env={"REMOTESIGN_SMS_GATEWAY_URL": sms_gateway.url, "REMOTESIGN_SMS_GATEWAY_TOKEN": "sms-secret",
                           "REMOTESIGN_NOTIFY_BACKOFF": "0.2"}).start()
    yield service
    service.stop()


class Rs:
    """A relying party of the Remote Signing API: its client, its code and its JWT."""

    def __init__(self, svc: Service, name: str, client: dict[str, str] | None = None) -> None:
        self.svc = svc
        self.client = client or svc.new_client(name)
        self.name = name
        self.http = httpx.Client(base_url=svc.url + PREFIX, timeout=60)
        r = self.http.post("/clients/login", json={"username": self.client["client_id"],
                                                   "password": self.client["client_secret"], "rpCode": name})
        assert r.status_code == 200, r.text
        self.token = r.json()["token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        r = self.http.post(path, json=body, **kw)
        assert r.headers["content-type"].startswith("application/json"), r.text
        return {"_status": r.status_code, **r.json()}

    def register(self, **overrides: Any) -> tuple[str, str]:
        """A new agreement; returns its UUID and the passcode the owner received by e-mail."""
        owner = overrides.pop("owner", f"owner-{secrets.token_hex(4)}")
        email = overrides.pop("ownerEmail", f"{owner}@example.test")
        body = {"agreementDetails": {"personalName": "Nguyễn Văn An", "organization": "EFY Việt Nam",
                                     "organizationUnit": "Development", "title": "Director", "country": "VN",
                                     "location": "Cầu Giấy", "stateOrProvince": "Hà Nội",
                                     "personalID": secrets.token_hex(5), "taxID": "0123456789",
                                     "photoIDCard": base64.b64encode(b"scanned id card").decode()},
                "email": overrides.pop("email", email), "mobileNo": "0983456789", "sharedMode": 1,
                "certificateProfile": "T2PSB21Y", "ownerEmail": email, "ownerMobileNo": "0983456789",
                "ownerUUID": owner, "acceptedApps": [], "passCodeNotificationMethod": "EMAIL", **overrides}
        answer = self.call("/certificates/register", body)
        assert answer["responseCode"] == 1007, answer
        assert answer["ownerUUID"] == owner and answer["agreementUUID"]
        if body["passCodeNotificationMethod"] == "SMS":
            return answer["agreementUUID"], ""
        passcode = passcode_in(email)
        assert passcode not in json.dumps(answer)  # the owner's, never the relying party's
        return answer["agreementUUID"], passcode

    def sign(self, agreement: str, digests: list[bytes], *, mode: str = "EXPLICIT/PIN", code: str | None = None,
             **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"agreementUUID": agreement, "authMode": mode, "hashAlgorithm": "SHA-256",
                                "mimeType": "application/sha256-binary", "encryption": "RSA", **extra}
        if code is not None:
            body["authorizeCode"] = code
        if len(digests) == 1:
            body["hash"] = digests[0].hex()
        else:
            body["hashs"] = [d.hex() for d in digests]
        return self.call("/signing/hash", body)

    def detail(self, agreement: str) -> dict[str, Any]:
        answer = self.call("/certificates/get-detail", {"agreementUUID": agreement})
        assert answer["responseCode"] == 1007, answer
        return answer


def passcode_in(address: str, count: int = 1) -> str:
    body = mailbox().wait_for(address, count).get_payload(decode=True).decode()
    m = DIGITS.search(body)
    assert m, body
    return m.group(1)


def fresh(rp: Rs, **overrides: Any) -> tuple[str, str]:
    """A registered agreement whose owner chose their own passcode (no 1018 any more)."""
    agreement, initial = rp.register(**overrides)
    mine = f"{secrets.randbelow(10 ** 6):06d}"
    answer = rp.call("/certificates/change-pin", {"agreementUUID": agreement, "currentPasscode": initial,
                                                  "newPasscode": mine})
    assert answer["responseCode"] == 1007 and answer["remainingCounter"] == 3, answer
    return agreement, mine


def verify(tmp: Path, certificate_b64: str, digest: bytes, signature_b64: str, hash_name: str = "sha256") -> bool:
    """``openssl pkeyutl -verify`` of a PKCS#1 v1.5 signature over ``digest`` with the certificate's key."""
    cert = tmp / f"cert-{secrets.token_hex(4)}.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n" + certificate_b64 + "\n-----END CERTIFICATE-----\n")
    data, sig = tmp / f"d-{secrets.token_hex(4)}", tmp / f"s-{secrets.token_hex(4)}"
    data.write_bytes(digest)
    sig.write_bytes(base64.b64decode(signature_b64))
    proc = subprocess.run(["openssl", "pkeyutl", "-verify", "-certin", "-inkey", str(cert), "-in", str(data),
                           "-sigfile", str(sig), "-pkeyopt", f"digest:{hash_name}"], capture_output=True)
    return proc.returncode == 0 and b"Signature Verified Successfully" in proc.stdout


@pytest.fixture(scope="module")
def rp(svc: Service) -> Iterator[Rs]:
    party = Rs(svc, "Bank One")
    yield party
    party.http.close()


@pytest.fixture(scope="module")
def rp2(svc: Service) -> Iterator[Rs]:
    party = Rs(svc, "Insurer Two")
    yield party
    party.http.close()


# -- login ------------------------------------------------------------------------------------------
def test_login_answers_a_jwt_signed_by_the_service(svc: Service, rp: Rs) -> None:
    header, payload, _ = rp.token.split(".")
    head = json.loads(base64.urlsafe_b64decode(header + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert head["alg"] == "ES256"
    assert claims["client_id"] == rp.client["client_id"] and claims["rpCode"] == "Bank One"
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize("change", ["password", "rpCode", "username"])
def test_login_with_wrong_credentials_is_401_in_the_spec_shape(svc: Service, rp: Rs, change: str) -> None:
    body = {"username": rp.client["client_id"], "password": rp.client["client_secret"], "rpCode": "Bank One"}
    body[change] = body[change] + "x"
    r = httpx.post(svc.url + PREFIX + "/clients/login", json=body)
    assert r.status_code == 401
    assert r.json()["error"] == {"statusCode": "401", "name": "UnauthorizedError",
                                 "message": "Invalid username or password"}


def test_calls_need_a_valid_token(svc: Service, rp: Rs) -> None:
    url = svc.url + PREFIX + "/certificates/get-detail"
    r = httpx.post(url, json={"agreementUUID": "x"})
    assert r.status_code == 401 and r.json()["responseCode"] == 1001 and r.json()["error"]["statusCode"] == "401"
    header, payload, signature = rp.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["exp"] += 86400
    forged = header + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + signature
    for token in (forged, "not-a-jwt", rp.token[:-4] + "AAAA"):
        r = httpx.post(url, json={"agreementUUID": "x"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["responseCode"] == 1001, r.text


# -- agreements -------------------------------------------------------------------------------------
def test_register_sends_the_passcode_to_the_owner_only(svc: Service, rp: Rs, tmp_path: Path) -> None:
    agreement, passcode = rp.register(owner="owner-mail-check", ownerEmail="owner-mail-check@example.test")
    assert len(passcode) == 8
    mail = mailbox().wait_for("owner-mail-check@example.test")
    assert passcode not in json.dumps(rp.detail(agreement))
    assert mail["Subject"]
    detail = rp.detail(agreement)
    assert "CN=Nguyễn Văn An" in detail["certificateDN"] and "O=EFY Việt Nam" in detail["certificateDN"]
    assert "MST:0123456789" in detail["certificateDN"] or "0123456789" in detail["certificateDN"]
    assert detail["sharedMode"] == 1 and detail["authModeSupported"][0] == "EXPLICIT/PIN"
    assert set(detail["authModeSupported"]) == {"EXPLICIT/PIN", "EXPLICIT/OTP-SMS", "EXPLICIT/OTP-EMAIL"}
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n" + detail["certificate"] + "\n-----END CERTIFICATE-----\n")
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text", "-nameopt", "utf8"],
                          capture_output=True, check=True).stdout.decode()
    assert "Non Repudiation" in text and "Nguyễn Văn An" in text
    assert detail["certificateSerialNumber"] in text.replace(":", "").upper()
    fingerprint = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha1"],
                                 capture_output=True, check=True).stdout.decode()
    assert detail["certificateThumbprint"] == fingerprint.split("=", 1)[1].strip().replace(":", "")


def test_pin_signing_with_the_first_passcode_asks_to_change_it(rp: Rs, tmp_path: Path) -> None:
    agreement, passcode = rp.register()
    digest = hashlib.sha256(b"invoice 1").digest()
    answer = rp.sign(agreement, [digest], code=passcode)
    assert answer["responseCode"] == 1018, answer
    assert answer["responseMessage"] == "SUCCESSFULLY. YOUR PASSCODE NEED TO BE CHANGED"
    assert verify(tmp_path, rp.detail(agreement)["certificate"], digest, answer["signatureValue"])
    answer = rp.call("/certificates/change-pin", {"agreementUUID": agreement, "currentPasscode": passcode,
                                                  "newPasscode": "246810"})
    assert answer["responseCode"] == 1007 and answer["remainingCounter"] == 3
    digests = [hashlib.sha256(f"invoice {n}".encode()).digest() for n in range(3)]
    answer = rp.sign(agreement, digests, code="246810")
    assert answer["responseCode"] == 0 and answer["status"] is True, answer
    cert = rp.detail(agreement)["certificate"]
    assert [verify(tmp_path, cert, d, s) for d, s in zip(digests, answer["signatureValues"])] == [True] * 3
    assert not verify(tmp_path, cert, digests[1], answer["signatureValues"][0])


def test_wrong_passcodes_count_down_then_block(rp: Rs) -> None:
    agreement, passcode = fresh(rp)
    digest = hashlib.sha256(b"x").digest()
    answer = rp.sign(agreement, [digest], code="000000")
    assert answer["responseCode"] == 1004 and answer["remainingCounter"] == 2, answer
    answer = rp.call("/certificates/change-pin", {"agreementUUID": agreement, "currentPasscode": "111111",
                                                  "newPasscode": "222222"})
    assert answer["responseCode"] == 1004 and answer["remainingCounter"] == 1, answer
    answer = rp.sign(agreement, [digest], code="333333")
    assert answer["responseCode"] == 1005 and answer["remainingCounter"] == 0, answer
    answer = rp.sign(agreement, [digest], code=passcode)  # blocked for a while, even with the right one
    assert answer["responseCode"] == 1005 and answer["blockedUntil"], answer


def test_forget_pin_sends_a_new_passcode_to_the_owner(rp: Rs) -> None:
    owner = f"forgetful-{secrets.token_hex(3)}"
    agreement, first = rp.register(owner=owner, ownerEmail=f"{owner}@example.test")
    for wrong in ("11111111", "22222222", "33333333"):
        rp.sign(agreement, [hashlib.sha256(b"y").digest()], code=wrong)
    answer = rp.call("/certificates/forget-pin", {"agreementUUID": agreement,
                                                  "notificationMessage": "Mã mới của bạn: {Passcode}.",
                                                  "notificationSubject": "EFY - Authorization Code"})
    assert answer["responseCode"] == 1007, answer
    mail = mailbox().wait_for(f"{owner}@example.test", 2)
    assert mail["Subject"] == "EFY - Authorization Code"
    body = mail.get_payload(decode=True).decode()
    assert body.startswith("Mã mới của bạn: ")
    second = passcode_in(f"{owner}@example.test", 2)
    assert second != first
    assert rp.sign(agreement, [hashlib.sha256(b"y").digest()], code=first)["responseCode"] == 1004
    assert rp.sign(agreement, [hashlib.sha256(b"y").digest()], code=second)["responseCode"] == 1018


# -- one-time codes ---------------------------------------------------------------------------------
def test_otp_email_signs_exactly_the_hashes_of_its_bill_once(rp: Rs, tmp_path: Path) -> None:
    owner = f"otp-{secrets.token_hex(3)}"
    agreement, _ = fresh(rp, owner=owner, ownerEmail=f"{owner}@example.test", email=f"{owner}.otp@example.test")
    digests = [hashlib.sha256(b"one").digest(), hashlib.sha256(b"two").digest()]
    answer = rp.sign(agreement, digests, mode="EXPLICIT/OTP-EMAIL",
                     notificationTemplate="Mã xác thực: {AuthorizeCode}", notificationSubject="Authorization")
    assert answer["responseCode"] == 1007 and answer["responseMessage"] == "REQUEST ACCEPTED", answer
    bill = answer["billCode"]
    assert "signatureValues" not in answer and answer["authorizeCredential"].startswith("o***@")
    mail = mailbox().wait_for(f"{owner}.otp@example.test")
    assert mail["Subject"] == "Authorization"
    code = DIGITS.search(mail.get_payload(decode=True).decode()).group(1)  # type: ignore[union-attr]
    wrong = rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": bill + "0",
                                                "authorizeCode": code})
    assert wrong["responseCode"] == 1002, wrong
    bad = "0" * 8 if code != "0" * 8 else "1" * 8
    wrong = rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": bill, "authorizeCode": bad})
    assert wrong["responseCode"] == 1004 and wrong["remainingCounter"] == 2, wrong
    done = rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": bill, "authorizeCode": code})
    assert done["responseCode"] == 0 and done["billCode"] == bill, done
    cert = rp.detail(agreement)["certificate"]
    assert [verify(tmp_path, cert, d, s) for d, s in zip(digests, done["signatureValues"])] == [True, True]
    replay = rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": bill, "authorizeCode": code})
    assert replay["responseCode"] == 1004 and "signatureValue" not in replay, replay


def test_otp_sms_goes_through_the_gateway(rp: Rs, sms_gateway: Receiver, tmp_path: Path) -> None:
    agreement, _ = fresh(rp, mobileNo="+84 912 000 111")
    before = len(sms_gateway.received)
    digest = hashlib.sha256(b"sms").digest()
    answer = rp.sign(agreement, [digest], mode="EXPLICIT/OTP-SMS")
    assert answer["responseCode"] == 1007, answer
    headers, body = sms_gateway.wait(before + 1)[before]
    message = json.loads(body)
    assert message["to"] == "+84 912 000 111" and headers["authorization"] == "Bearer sms-secret"
    code = DIGITS.search(message["text"]).group(1)  # type: ignore[union-attr]
    done = rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": answer["billCode"],
                                               "authorizeCode": code})
    assert done["responseCode"] == 0
    assert verify(tmp_path, rp.detail(agreement)["certificate"], digest, done["signatureValue"])


def test_three_wrong_codes_block_the_bill(rp: Rs) -> None:
    agreement, _ = fresh(rp)
    answer = rp.sign(agreement, [hashlib.sha256(b"z").digest()], mode="EXPLICIT/OTP-EMAIL")
    bill = answer["billCode"]
    codes = [rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": bill,
                                                 "authorizeCode": f"{n:08d}"})["responseCode"] for n in range(3)]
    assert codes == [1004, 1004, 1005]
    assert rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": bill,
                                               "authorizeCode": "12345678"})["responseCode"] == 1005


# -- who may use an agreement -----------------------------------------------------------------------
def test_another_relying_partys_agreement_is_not_found(rp: Rs, rp2: Rs) -> None:
    agreement, passcode = fresh(rp)
    for path, body in (("/certificates/get-detail", {"agreementUUID": agreement}),
                       ("/certificates/revoke", {"agreementUUID": agreement}),
                       ("/certificates/forget-pin", {"agreementUUID": agreement})):
        assert rp2.call(path, body)["responseCode"] == 1008
    assert rp2.sign(agreement, [hashlib.sha256(b"a").digest()], code=passcode)["responseCode"] == 1008
    assert rp.sign(agreement, [hashlib.sha256(b"a").digest()], code=passcode)["responseCode"] == 0


def test_shared_modes(rp: Rs, rp2: Rs, tmp_path: Path) -> None:
    owner = f"shared-{secrets.token_hex(3)}"
    private, _ = fresh(rp, owner=owner, ownerEmail=f"{owner}@example.test")
    shared, passcode = fresh(rp, owner=owner, ownerEmail=f"{owner}.2@example.test", sharedMode=2,
                             agreementDetails={"personalName": "Trần Thị Bình", "personalID": "B123"})
    within, _ = fresh(rp, owner=owner, ownerEmail=f"{owner}.3@example.test", sharedMode=3,
                      agreementDetails={"personalName": "Lê Văn C", "personalID": "C123"})

    def share(party: Rs, target: str, rp_code: str | None, owner_ref: str = owner) -> dict[str, Any]:
        body = {"agreementDetails": {}, "ownerUUID": owner_ref, "sharedAgreementUUID": target, "sharedMode": 1,
                "email": "attacker@example.test", "ownerEmail": "attacker@example.test"}
        if rp_code:
            body["sharedRelyingParty"] = rp_code
        return party.call("/certificates/register", body)

    assert share(rp2, "no-such-agreement", "Bank One")["responseCode"] == 1023
    assert share(rp2, private, "Bank One")["responseCode"] == 1024
    assert share(rp2, within, "Bank One")["responseCode"] == 1024  # shared within Bank One only
    assert share(rp2, shared, "Bank One", "someone-else")["responseCode"] == 1024
    answer = share(rp2, shared, "Bank One")
    assert answer["responseCode"] == 1007, answer
    mine = answer["agreementUUID"]
    same_rp = share(rp, within, None)
    assert same_rp["responseCode"] == 1007, same_rp
    # the sharing party signs with the owner's passcode and the owner's certificate ...
    digest = hashlib.sha256(b"shared").digest()
    signed = rp2.sign(mine, [digest], code=passcode)
    assert signed["responseCode"] == 0, signed
    assert rp2.detail(mine)["certificate"] == rp.detail(shared)["certificate"]
    assert verify(tmp_path, rp.detail(shared)["certificate"], digest, signed["signatureValue"])
    # ... its one-time codes go to the owner, never to the address it gave
    otp = rp2.sign(mine, [digest], mode="EXPLICIT/OTP-EMAIL")
    assert otp["responseCode"] == 1007 and otp["authorizeCredential"] == f"{owner[:1]}***@example.test"
    mailbox().wait_for(f"{owner}.2@example.test", 2)
    assert not mailbox().messages_to("attacker@example.test")
    # ... and it cannot manage the certificate
    for path in ("/certificates/revoke", "/certificates/disable", "/certificates/renew"):
        assert rp2.call(path, {"agreementUUID": mine, "certificateProfile": "T2PSB21Y"})["responseCode"] == 1012
    # the owner's relying party revokes: the shared agreement ends with it
    assert rp.call("/certificates/revoke", {"agreementUUID": shared})["responseCode"] == 1007
    assert rp2.sign(mine, [digest], code=passcode)["responseCode"] == 1017


def test_accepted_apps_are_checked(rp: Rs) -> None:
    agreement, passcode = fresh(rp, acceptedApps=["IHD", "EBHXH"])
    digest = hashlib.sha256(b"app").digest()
    assert rp.sign(agreement, [digest], code=passcode, signingApp="OTHER")["responseCode"] == 1012
    assert rp.sign(agreement, [digest], code=passcode)["responseCode"] == 1012
    assert rp.sign(agreement, [digest], code=passcode, signingApp="EBHXH")["responseCode"] == 0


def test_disable_enable(rp: Rs) -> None:
    agreement, passcode = fresh(rp)
    digest = hashlib.sha256(b"d").digest()
    assert rp.call("/certificates/disable", {"agreementUUID": agreement})["responseCode"] == 1007
    assert rp.sign(agreement, [digest], code=passcode)["responseCode"] == 1013
    assert rp.call("/certificates/enable", {"agreementUUID": agreement})["responseCode"] == 1007
    assert rp.sign(agreement, [digest], code=passcode)["responseCode"] == 0


# -- certificate lifecycle --------------------------------------------------------------------------
def _ocsp(svc: Service, tmp: Path, detail: dict[str, Any]) -> str:
    """``openssl ocsp`` for the agreement's certificate, the response verified against the CA."""
    leaf = x509.load_der_x509_certificate(base64.b64decode(detail["certificate"]))
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in detail["certificateChain"]]
    issuer = next(c for c in chain if c.subject == leaf.issuer)
    name = secrets.token_hex(3)
    (tmp / f"{name}.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    (tmp / f"{name}-issuer.pem").write_bytes(issuer.public_bytes(Encoding.PEM))
    (tmp / "ca.pem").write_bytes(httpx.get(svc.url + "/pki/ca.pem").content)
    proc = subprocess.run(["openssl", "ocsp", "-issuer", f"{name}-issuer.pem", "-cert", f"{name}.pem", "-url",
                           svc.url + "/pki/ocsp", "-CAfile", "ca.pem", "-resp_text"], capture_output=True, timeout=60,
                          cwd=tmp)
    out = proc.stdout.decode() + proc.stderr.decode()
    assert "Response verify OK" in out, out
    return out


def _crl_lists(svc: Service, tmp: Path, detail: dict[str, Any]) -> bool:
    leaf = x509.load_der_x509_certificate(base64.b64decode(detail["certificate"]))
    url = leaf.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value[0].full_name[0].value
    crl = x509.load_der_x509_crl(httpx.get(url).content)
    return crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None


def test_revoke_is_visible_in_ocsp_and_ends_the_agreement(svc: Service, rp: Rs, tmp_path: Path) -> None:
    agreement, passcode = fresh(rp)
    detail = rp.detail(agreement)
    assert ": good" in _ocsp(svc, tmp_path, detail)
    assert not _crl_lists(svc, tmp_path, detail)
    assert rp.call("/certificates/revoke", {"agreementUUID": agreement})["responseCode"] == 1007
    out = _ocsp(svc, tmp_path, detail)
    assert ": revoked" in out and "Reason: cessationOfOperation" in out, out
    assert _crl_lists(svc, tmp_path, detail)
    assert rp.sign(agreement, [hashlib.sha256(b"r").digest()], code=passcode)["responseCode"] == 1017
    assert rp.call("/certificates/renew", {"agreementUUID": agreement,
                                           "certificateProfile": "T2PSB21Y"})["responseCode"] == 1017


def test_change_keeps_the_expiry_and_the_identifiers(svc: Service, rp: Rs, tmp_path: Path) -> None:
    agreement, passcode = fresh(rp, agreementDetails={"personalName": "Phạm Văn D", "personalID": "D-1",
                                                      "taxID": "T-1", "country": "VN"})
    before = rp.detail(agreement)
    changed = rp.call("/certificates/change", {"agreementUUID": agreement, "agreementDetails": {
        "personalName": "Phạm Văn Đức", "personalID": "D-1", "taxID": "T-1", "country": "VN", "title": "CFO"}})
    assert changed["responseCode"] == 1007, changed
    after = rp.detail(agreement)
    assert "Phạm Văn Đức" in after["certificateDN"] and "CFO" in after["certificateDN"]
    assert after["certificateSerialNumber"] != before["certificateSerialNumber"]
    assert after["validTo"] == before["validTo"]
    assert "Reason: superseded" in _ocsp(svc, tmp_path, before)
    digest = hashlib.sha256(b"c").digest()
    answer = rp.sign(agreement, [digest], code=passcode)
    assert verify(tmp_path, after["certificate"], digest, answer["signatureValue"])
    refused = rp.call("/certificates/change", {"agreementUUID": agreement, "agreementDetails": {
        "personalName": "Phạm Văn Đức", "personalID": "D-2", "taxID": "T-1"}})
    assert refused["responseCode"] == 1002 and "personal_id" in refused["detail"], refused


def test_renew_issues_a_new_term(rp: Rs) -> None:
    agreement, passcode = fresh(rp)
    before = rp.detail(agreement)
    answer = rp.call("/certificates/renew", {"agreementUUID": agreement, "certificateProfile": "T2PSB23Y"})
    assert answer["responseCode"] == 1007, answer
    after = rp.detail(agreement)
    assert after["validTo"] > before["validTo"] and after["certificateProfile"] == "T2PSB23Y"
    assert rp.sign(agreement, [hashlib.sha256(b"n").digest()], code=passcode)["responseCode"] == 0


# -- response codes for what is wrong ---------------------------------------------------------------
def test_malformed_input_is_1002(rp: Rs) -> None:
    agreement, passcode = fresh(rp)
    for content in (b"{not json", b"[]", b'{"agreementUUID": 5, "hash": ', b"\xff\xfe"):
        r = rp.http.post("/signing/hash", content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["responseCode"] == 1002, r.text
    base = {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
            "hashAlgorithm": "SHA-256", "mimeType": "application/sha256-binary"}
    for extra in ({"hash": "zz" * 32}, {"hash": "abcd"}, {"hash": "!!!"}, {"hashs": ["00" * 31]},
                  {"hash": "00" * 32, "mimeType": "application/sha512-binary"}, {"hash": "00" * 32, "authMode": "X"},
                  {"hash": "00" * 32, "hashAlgorithm": "MD5"}, {}):
        answer = rp.call("/signing/hash", {**base, **extra})
        assert answer["_status"] == 400 and answer["responseCode"] == 1002, (extra, answer)
    bad_doc = rp.call("/certificates/register", {"agreementDetails": {"personalName": "X", "photoIDCard": "%%%"},
                                                 "ownerUUID": "o", "ownerEmail": "o@example.test"})
    assert bad_doc["responseCode"] == 1002 and "photoIDCard" in bad_doc["detail"], bad_doc
    deep = b'{"agreementUUID": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = rp.http.post("/certificates/get-detail", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["responseCode"] == 1002, r.text


def test_duplicates_are_refused(rp: Rs) -> None:
    reference = f"agr-{secrets.token_hex(4)}"
    owner = f"dup-{secrets.token_hex(3)}"
    rp.register(owner=owner, ownerEmail=f"{owner}@example.test", agreementUUID=reference)
    again = rp.call("/certificates/register", {"agreementDetails": {"personalName": "Y"}, "ownerUUID": "other",
                                               "ownerEmail": "other@example.test", "agreementUUID": reference})
    assert again["responseCode"] == 1010, again
    taken = rp.call("/certificates/register", {"agreementDetails": {"personalName": "Z"}, "ownerUUID": "stranger",
                                               "ownerEmail": f"{owner}@example.test"})
    assert taken["responseCode"] == 1028, taken


def test_unsupported_encryption_is_1011(rp: Rs) -> None:
    agreement, passcode = fresh(rp)
    digest = hashlib.sha256(b"e").digest()
    assert rp.sign(agreement, [digest], code=passcode, encryption="ECDSA")["responseCode"] == 1011
    assert rp.sign(agreement, [digest], code=passcode, encryption="DSA")["responseCode"] == 1011


def test_function_access_and_networks(svc: Service) -> None:
    limited = json.loads(svc.cli("client", "create", "Signing Only", "--scope", "remotesign:signatures").stdout)
    party = Rs(svc, "Signing Only", limited)
    answer = party.call("/certificates/register", {"agreementDetails": {"personalName": "Q"}, "ownerUUID": "q",
                                                   "ownerEmail": "q@example.test"})
    assert answer["responseCode"] == 1019, answer
    svc.cli("client", "networks", limited["client_id"], "10.9.8.0/24")
    r = party.http.post("/signing/hash", json={"agreementUUID": "a", "hashAlgorithm": "SHA-256",
                                                "mimeType": "application/sha256-binary", "hash": "00" * 32})
    assert r.status_code == 403 and r.json()["responseCode"] == 1000, r.text
    svc.cli("client", "networks", limited["client_id"], "127.0.0.0/8")
    r = party.http.post("/signing/hash", json={"agreementUUID": "a", "hashAlgorithm": "SHA-256",
                                                "mimeType": "application/sha256-binary", "hash": "00" * 32})
    assert r.json()["responseCode"] == 1008, r.text


def test_two_client_machines_on_one_agreement(svc: Service, rp: Rs) -> None:
    agreement, _ = fresh(rp)
    digest = hashlib.sha256(b"m").digest()
    first = rp.sign(agreement, [digest], mode="EXPLICIT/OTP-EMAIL")
    assert first["responseCode"] == 1007
    other = httpx.Client(base_url=svc.url + PREFIX, headers=rp.http.headers,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=60)
    with other:
        r = other.post("/signing/hash", json={"agreementUUID": agreement, "authMode": "EXPLICIT/OTP-EMAIL",
                                              "hashAlgorithm": "SHA-256", "mimeType": "application/sha256-binary",
                                              "hash": digest.hex()})
        assert r.json()["responseCode"] == 1026, r.text
    # the first machine may ask again: its older bill is void
    second = rp.sign(agreement, [digest], mode="EXPLICIT/OTP-EMAIL")
    assert second["responseCode"] == 1007
    # and the certificate is not changed under a waiting transaction
    renew = rp.call("/certificates/renew", {"agreementUUID": agreement, "certificateProfile": "T2PSB21Y"})
    assert renew["responseCode"] == 1027, renew


def test_a_certificate_revoked_at_the_ca_is_1021(svc: Service, rp: Rs) -> None:
    agreement, passcode = fresh(rp)
    serial = rp.detail(agreement)["certificateSerialNumber"]
    svc.cli("pki", "revoke", serial.lower(), "--reason", "key_compromise")
    assert rp.sign(agreement, [hashlib.sha256(b"k").digest()], code=passcode)["responseCode"] == 1021


# -- a second service: short lifetimes, a gateway that fails on purpose -------------------------------
class Gateway:
    """An SMS gateway whose behaviour follows the number: ``…1`` fails twice then accepts, ``…9``
    always fails, ``…5`` holds the request until ``release`` is set; others accept at once."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.delivered: list[dict[str, str]] = []
        self.release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                message = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                to = message["to"]
                gateway.attempts[to] = gateway.attempts.get(to, 0) + 1
                if to.endswith("5"):
                    gateway.release.wait(60)
                ok = not to.endswith("9") and not (to.endswith("1") and gateway.attempts[to] <= 2)
                if ok:
                    gateway.delivered.append(message)
                self.send_response(200 if ok else 502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms"

    def wait(self, to: str, timeout: float = 60.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.delivered if m["to"] == to]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"nothing delivered to {to}; attempts {self.attempts.get(to)}")


JWT_TTL = 2
LEEWAY = 5  # the service's clock leeway on a token's expiry


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    g = Gateway()
    yield g
    g.release.set()
    g.server.shutdown()
    g.server.server_close()


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory, gateway: Gateway) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("remote-signing-short"), port=free_port(),
                      env={"REMOTESIGN_SMS_GATEWAY_URL": gateway.url, "REMOTESIGN_NOTIFY_BACKOFF": "0.2",
                           "REMOTESIGN_NOTIFY_MAX_ATTEMPTS": "3", "REMOTESIGN_CLIENT_JWT_TTL": str(JWT_TTL),
                           "REMOTESIGN_OTP_TTL": "2",
                           "REMOTESIGN_CERTIFICATE_PRODUCTS": "T2PSB21Y=natural:1y,SHORT=natural:3s"}).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def quick(short: Service) -> Iterator[Rs]:
    party = Rs(short, "Quick Bank")
    yield party
    party.http.close()


def relogin(party: Rs) -> Rs:
    """A new token right before the calls that follow (the short service's tokens live 2 s)."""
    r = party.http.post("/clients/login", json={"username": party.client["client_id"],
                                                "password": party.client["client_secret"], "rpCode": party.name})
    assert r.status_code == 200, r.text
    party.http.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return party


def audit_events(svc: Service, party: Rs, event: str) -> list[dict[str, Any]]:
    token = svc.token(party.client["client_id"], party.client["client_secret"], "remotesign:audit")
    r = httpx.get(svc.url + "/v1/audit?limit=1000", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [e for e in r.json() if e["event"] == event]


def test_an_expired_token_is_1029(short: Service, quick: Rs) -> None:
    token = relogin(quick).http.headers["Authorization"]
    time.sleep(JWT_TTL + LEEWAY + 1)
    r = httpx.post(short.url + PREFIX + "/certificates/get-detail", json={"agreementUUID": "x"},
                   headers={"Authorization": token})
    assert r.status_code == 401 and r.json()["responseCode"] == 1029, r.text
    assert r.json()["responseMessage"] == "CREDENTIALS HAVE BEEN EXPIRED"


def test_an_expired_code_is_1006(short: Service, quick: Rs) -> None:
    owner = f"slow-{secrets.token_hex(3)}"
    agreement, _ = relogin(quick).register(owner=owner, ownerEmail=f"{owner}@example.test")
    answer = relogin(quick).sign(agreement, [hashlib.sha256(b"late").digest()], mode="EXPLICIT/OTP-EMAIL")
    assert answer["responseCode"] == 1007, answer
    code = DIGITS.search(mailbox().wait_for(f"{owner}@example.test", 2).get_payload(decode=True).decode()).group(1)  # type: ignore[union-attr]
    time.sleep(3)
    late = relogin(quick).call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": answer["billCode"],
                                                           "authorizeCode": code})
    assert late["responseCode"] == 1006, late


def test_an_expired_certificate_is_1014_until_renewed(short: Service, quick: Rs) -> None:
    agreement, passcode = relogin(quick).register(certificateProfile="SHORT")
    valid_to = relogin(quick).detail(agreement)["validTo"]
    while datetime.now(timezone.utc) <= datetime.fromisoformat(valid_to):
        time.sleep(0.5)
    digest = hashlib.sha256(b"expired").digest()
    assert relogin(quick).sign(agreement, [digest], code=passcode)["responseCode"] == 1014
    renewed = relogin(quick).call("/certificates/renew", {"agreementUUID": agreement, "certificateProfile": "T2PSB21Y"})
    assert renewed["responseCode"] == 1007, renewed
    assert relogin(quick).sign(agreement, [digest], code=passcode)["responseCode"] == 1018


def test_messages_are_retried_audited_and_do_not_block(short: Service, quick: Rs, gateway: Gateway) -> None:
    sent_before = len(audit_events(short, quick, "notification.sent"))
    failed_before = len(audit_events(short, quick, "notification.failed"))
    # the gateway fails twice, then accepts: the owner gets the passcode on the third try
    relogin(quick).register(passCodeNotificationMethod="SMS", ownerMobileNo="0900000001", mobileNo="0900000001")
    message = gateway.wait("0900000001")
    assert gateway.attempts["0900000001"] == 3 and DIGITS.search(message["text"])
    # a gateway that never accepts: given up after the configured attempts, recorded as failed
    relogin(quick).register(passCodeNotificationMethod="SMS", ownerMobileNo="0900000009", mobileNo="0900000009")
    deadline = time.monotonic() + 60
    while len(audit_events(short, quick, "notification.failed")) == failed_before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gateway.attempts["0900000009"] == 3
    assert len(audit_events(short, quick, "notification.failed")) == failed_before + 1
    # the API answers while the gateway still holds the message; it is then delivered at the first try
    answer = relogin(quick).call("/certificates/register", {
        "agreementDetails": {"personalName": "Held"}, "ownerUUID": "held", "ownerMobileNo": "0900000005",
        "passCodeNotificationMethod": "SMS"})
    assert answer["responseCode"] == 1007, answer
    assert not [m for m in gateway.delivered if m["to"] == "0900000005"]
    gateway.release.set()
    gateway.wait("0900000005")
    assert gateway.attempts["0900000005"] == 1
    deadline = time.monotonic() + 30
    while len(audit_events(short, quick, "notification.sent")) < sent_before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(audit_events(short, quick, "notification.sent")) == sent_before + 2


def test_ecdsa_agreements(rp: Rs, tmp_path: Path) -> None:
    agreement, passcode = fresh(rp, certificateProfile="T2PSE21Y")
    detail = rp.detail(agreement)
    leaf = x509.load_der_x509_certificate(base64.b64decode(detail["certificate"]))
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    digests = [hashlib.sha256(b"ec one").digest(), hashlib.sha256(b"ec two").digest()]
    assert rp.sign(agreement, digests, code=passcode)["responseCode"] == 1011  # RSA asked of an EC key
    answer = rp.sign(agreement, digests, code=passcode, encryption="ECDSA")
    assert answer["responseCode"] == 0, answer
    assert [verify(tmp_path, detail["certificate"], d, s) for d, s in zip(digests, answer["signatureValues"])] == \
        [True, True]
    sha384 = rp.call("/signing/hash", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
                                       "hashAlgorithm": "SHA-384", "mimeType": "application/sha384-binary",
                                       "encryption": "ECDSA",
                                       "hash": base64.b64encode(hashlib.sha384(b"x").digest()).decode()})
    assert sha384["responseCode"] == 0, sha384
    assert verify(tmp_path, detail["certificate"], hashlib.sha384(b"x").digest(), sha384["signatureValue"], "sha384")


def test_a_code_signs_once_under_concurrent_authorizations(svc: Service, rp: Rs) -> None:
    owner = f"race-{secrets.token_hex(3)}"
    agreement, _ = fresh(rp, owner=owner, ownerEmail=f"{owner}@example.test")
    answer = rp.sign(agreement, [hashlib.sha256(b"race").digest()], mode="EXPLICIT/OTP-EMAIL")
    code = DIGITS.search(mailbox().wait_for(f"{owner}@example.test", 2).get_payload(decode=True).decode()).group(1)  # type: ignore[union-attr]
    body = {"agreementUUID": agreement, "billCode": answer["billCode"], "authorizeCode": code}
    results: list[int] = []

    def authorize() -> None:
        with httpx.Client(base_url=svc.url + PREFIX, headers=rp.http.headers, timeout=60) as http:
            results.append(http.post("/signing/hash/authorize", json=body).json()["responseCode"])

    threads = [threading.Thread(target=authorize) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(0) == 1, results
    assert set(results) <= {0, 1004, 1016}, results  # signed once; the others: used, or being signed
    with database(svc.home) as db:
        identity = db.execute("SELECT sign_identity_id FROM agreements WHERE reference = ?", (agreement,)).fetchone()[0]
        uses = db.execute("SELECT details FROM audit_events WHERE event = 'identity_key.used' AND subject = ?",
                          (identity,)).fetchall()
    assert len(uses) == 1  # change-pin does not use the key: this transaction's signature is its only use


def test_concurrent_wrong_passcodes_all_count(svc: Service, rp: Rs) -> None:
    agreement, passcode = fresh(rp)
    codes: list[int] = []

    def guess(n: int) -> None:
        with httpx.Client(base_url=svc.url + PREFIX, headers=rp.http.headers, timeout=60) as http:
            codes.append(http.post("/signing/hash", json={
                "agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": f"9{n:07d}",
                "hashAlgorithm": "SHA-256", "mimeType": "application/sha256-binary",
                "hash": hashlib.sha256(b"g").hexdigest()}).json()["responseCode"])

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(1004) <= 2 and codes.count(1005) >= 6, codes  # never more than 3 tries in all
    answer = rp.sign(agreement, [hashlib.sha256(b"g").digest()], code=passcode)
    # one burst is one lock of the schedule's first step, not an escalation to a permanent block
    assert answer["responseCode"] == 1005 and answer.get("blockedUntil"), answer


def test_an_unwritable_store_is_1003_and_leaves_nothing(short: Service, quick: Rs) -> None:
    assert short.proc is not None
    reference = f"evidence-{secrets.token_hex(3)}"
    body = {"agreementDetails": {"personalName": "Big Scan", "photoIDCard": base64.b64encode(os.urandom(64 << 10)).decode()},
            "ownerUUID": "scan-owner", "ownerEmail": f"{reference}@example.test", "agreementUUID": reference}
    hard = resource.prlimit(short.proc.pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(short.proc.pid, resource.RLIMIT_FSIZE, (16 << 10, hard))  # a write past 16 KiB fails (EFBIG)
    try:
        answer = relogin(quick).call("/certificates/register", body)
    finally:
        resource.prlimit(short.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
    assert answer["_status"] == 503 and answer["responseCode"] == 1003, answer
    assert answer["responseMessage"] == "UNEXPECTED EXCEPTION" and "/" not in answer["error"]["message"]
    # nothing of it remains: the same agreement registers now, and its owner gets exactly one passcode
    again = relogin(quick).call("/certificates/register", body)
    assert again["responseCode"] == 1007 and again["agreementUUID"] == reference, again
    mailbox().wait_for(f"{reference}@example.test")
    assert len(mailbox().messages_to(f"{reference}@example.test")) == 1


def test_an_organization_certificate_names_the_organization(rp: Rs, tmp_path: Path) -> None:
    agreement, passcode = fresh(rp, certificateProfile="T2OSB21Y", agreementDetails={
        "personalName": "Nguyễn Văn An", "organization": "Công ty EFY Việt Nam", "taxID": "0102519041",
        "country": "VN", "stateOrProvince": "Hà Nội"})
    detail = rp.detail(agreement)
    leaf = x509.load_der_x509_certificate(base64.b64decode(detail["certificate"]))
    names = {a.oid.dotted_string: a.value for a in leaf.subject}
    assert names["2.5.4.3"] == "Công ty EFY Việt Nam" and names["2.5.4.97"] == "VATVN-0102519041"
    assert names["0.9.2342.19200300.100.1.1"] == "MST:0102519041"
    statements = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3"))
    assert b"\x06\x07\x04\x00\x8e\x46\x01\x06\x02" in statements.value.value  # QcType eseal (0.4.0.1862.1.6.2)
    digest = hashlib.sha256(b"seal").digest()
    answer = rp.sign(agreement, [digest], code=passcode)
    assert answer["responseCode"] == 0 and verify(tmp_path, detail["certificate"], digest, answer["signatureValue"])


# -- registrations the operator approves ------------------------------------------------------------
@pytest.fixture(scope="module")
def ra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("remote-signing-ra"), port=free_port(),
                      env={"REMOTESIGN_AGREEMENT_APPROVAL": "operator",  # the CLI sends the passcode too
                           "REMOTESIGN_SMTP_URL": mailbox().url}).start()
    yield service
    service.stop()


def test_a_registration_waits_for_the_operator(ra: Service, tmp_path: Path) -> None:
    party = Rs(ra, "Careful Bank")
    owner = f"waiting-{secrets.token_hex(3)}"
    email = f"{owner}@example.test"
    body = {"agreementDetails": {"personalName": "Võ Thị Hoa", "personalID": "H-77", "country": "VN",
                                 "photoIDCard": base64.b64encode(b"scan of the ID card").decode()},
            "ownerUUID": owner, "ownerEmail": email, "certificateProfile": "T2PSB21Y"}
    answer = party.call("/certificates/register", body)
    assert answer["responseCode"] == 1007, answer
    agreement = answer["agreementUUID"]
    digest = hashlib.sha256(b"too early").digest()
    assert party.call("/certificates/get-detail", {"agreementUUID": agreement})["responseCode"] == 1009
    assert party.sign(agreement, [digest], code="12345678")["responseCode"] == 1009
    assert party.call("/certificates/renew", {"agreementUUID": agreement,
                                              "certificateProfile": "T2PSB21Y"})["responseCode"] == 1009
    changed = party.call("/certificates/change", {"agreementUUID": agreement, "agreementDetails": {
        "personalName": "Võ Thị Hoa Mai", "personalID": "H-77", "country": "VN"}})
    assert changed["responseCode"] == 1007, changed
    assert not mailbox().messages_to(email)  # no passcode before the certificate exists

    listed = json.loads(ra.cli("agreements", "list", "--json").stdout)
    assert [r["agreement"] for r in listed if r["owner"] == owner] == [agreement]
    shown = json.loads(ra.cli("agreements", "show", party.client["client_id"], agreement).stdout)
    assert shown["details"]["name"] == "Võ Thị Hoa Mai"
    assert [Path(p).read_bytes() for p in shown["evidence"]] == [b"scan of the ID card"]
    ra.cli("agreements", "approve", party.client["client_id"], agreement)
    passcode = passcode_in(email)
    detail = party.detail(agreement)
    assert "Võ Thị Hoa Mai" in detail["certificateDN"]
    answer = party.sign(agreement, [digest], code=passcode)
    assert answer["responseCode"] == 1018 and verify(tmp_path, detail["certificate"], digest, answer["signatureValue"])
    again = ra.cli("agreements", "approve", party.client["client_id"], agreement, check=False)
    assert again.returncode == 1 and b"not waiting" in again.stderr

    refused = party.call("/certificates/register", {**body, "ownerUUID": owner + "-2",
                                                   "ownerEmail": f"{owner}-2@example.test",
                                                   "agreementDetails": {"personalName": "Forged", "personalID": "F"}})
    ra.cli("agreements", "reject", party.client["client_id"], refused["agreementUUID"], "--reason", "ID card unreadable")
    assert party.sign(refused["agreementUUID"], [digest], code=passcode)["responseCode"] == 1017
    assert not mailbox().messages_to(f"{owner}-2@example.test")


# -- the demo's message files -----------------------------------------------------------------------
def test_without_mail_server_and_gateway_messages_land_in_files(tmp_path_factory: pytest.TempPathFactory,
                                                                tmp_path: Path) -> None:
    import email as email_parser
    import stat

    drop = tmp_path_factory.mktemp("drop")
    service = Service(home=tmp_path_factory.mktemp("remote-signing-drop"), port=free_port(),
                      env={"REMOTESIGN_SMTP_URL": "", "REMOTESIGN_MAIL_DIR": str(drop / "mail"),
                           "REMOTESIGN_SMS_DIR": str(drop / "sms")}).start()
    try:
        party = Rs(service, "Demo Bank")

        def wait_for(directory: Path, count: int) -> list[Path]:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                found = sorted(directory.glob("*.*")) if directory.exists() else []
                if len([f for f in found if not f.name.startswith(".")]) >= count:
                    return [f for f in found if not f.name.startswith(".")]
                time.sleep(0.1)
            raise AssertionError(f"no message #{count} in {directory}")

        answer = party.call("/certificates/register", {
            "agreementDetails": {"personalName": "Demo Signer"}, "ownerUUID": "demo", "ownerEmail": "demo@example.test",
            "mobileNo": "+84900000123"})
        assert answer["responseCode"] == 1007, answer
        [mail] = wait_for(drop / "mail", 1)
        assert stat.S_IMODE(mail.stat().st_mode) == 0o600
        message = email_parser.message_from_bytes(mail.read_bytes())
        assert message["To"] == "demo@example.test"
        passcode = DIGITS.search(message.get_payload(decode=True).decode()).group(1)  # type: ignore[union-attr]
        digest = hashlib.sha256(b"demo").digest()
        otp = party.sign(answer["agreementUUID"], [digest], mode="EXPLICIT/OTP-SMS")
        assert otp["responseCode"] == 1007, otp
        [sms] = wait_for(drop / "sms", 1)
        text = sms.read_text()
        assert text.startswith("To: +84900000123")
        code = DIGITS.search(text.split("\n\n", 1)[1]).group(1)  # type: ignore[union-attr]
        done = party.call("/signing/hash/authorize", {"agreementUUID": answer["agreementUUID"],
                                                      "billCode": otp["billCode"], "authorizeCode": code})
        assert done["responseCode"] == 0, done
        assert party.sign(answer["agreementUUID"], [digest], code=passcode)["responseCode"] == 1018
    finally:
        service.stop()
