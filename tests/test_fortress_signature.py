"""Fortress-style signature requests over HTTP: a user's interactive authorization on the
service's pages (password, then PIN) for exactly the documents of the request, unattended e-seals
of a legal person, and the refusals (wrong user code, a filter that matches nothing, a natural
person's certificate unattended, another client's request, a canceled or expired authorization).
Every signed output is checked by an independent verifier (pyHanko and pdfsig, openssl cms,
xmlsec1, a plain public-key check) and by remotesign's validator."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.consent import REDIRECT_URI, Enrolled, admin, enrol, hidden, register_redirect
from tests.harness import Service
from tests.mailbox import mailbox
from tests.pdfgen import pdf_bytes
from tests.verifiers import pyhanko_pdf, root_of, xmlsec_verify

SIGN = "/fortress/api/v1/signature"
XML = b'<?xml version="1.0" encoding="UTF-8"?><invoice id="inv-1"><total currency="EUR">12.50</total></invoice>'
CALLBACK = REDIRECT_URI + "/fortress?set=7"  # same origin as the registered redirect URI


def client_token(service: Service, client: dict[str, str]) -> httpx.Client:
    r = httpx.post(service.url + "/fortress/oauth2/v1/token", params={
        "scope": "client", "client_id": client["client_id"], "client_secret": client["client_secret"],
        "grant_type": "client_credentials"}, timeout=30)
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=service.url, timeout=180,
                        headers={"Authorization": f"Bearer {r.json()['access_token']}"})


@pytest.fixture(scope="module")
def fortress(service: Service) -> httpx.Client:
    client = client_token(service, service.demo_client())
    yield client
    client.close()


@pytest.fixture(scope="module")
def signer(http: httpx.Client, demo_token: str) -> Enrolled:
    register_redirect(http, demo_token)
    return enrol(http, demo_token)


def config(data: bytes, signature_type: str, name: str, ref: str, **extra: Any) -> dict[str, Any]:
    return {"ref": ref, "document": {"bytesB64": base64.b64encode(data).decode(), "name": name},
            "signatureType": signature_type, "signatureAlgorithm": "RSA_SHA256", **extra}


def consent_page(service: Service, auth_code: str, who: Enrolled) -> tuple[httpx.Client, str, str]:
    """The user's browser through the authorization URI and the login page: (browser, request id,
    the consent page)."""
    browser = httpx.Client(base_url=service.url, timeout=60, follow_redirects=False)
    page = browser.get("/fortress/oauth2/v1/auth", params={
        "response_type": "code", "client_id": service.demo_client()["client_id"], "auth_code": auth_code,
        "redirect_uri": CALLBACK, "state": "st-42"})
    assert page.status_code == 200, page.text
    request_id = hidden(page.text, "request_id")
    page = browser.post("/trustedx-authserver/oauth/fortress/login", data={
        "request_id": request_id, "username": who.username, "password": who.password, "action": "login"})
    assert page.status_code == 200, page.text
    return browser, request_id, page.text


def consent_post(browser: httpx.Client, request_id: str, **fields: str) -> httpx.Response:
    return browser.post("/trustedx-authserver/oauth/fortress/consent", data={"request_id": request_id, **fields})


def authorize(service: Service, auth_code: str, who: Enrolled, *, action: str = "approve",
              pin: str | None = None, documents: tuple[str, ...] = ()) -> tuple[httpx.Response, httpx.Client]:
    """The user's browser through the authorization URI, the login page and the consent page."""
    browser = httpx.Client(base_url=service.url, timeout=60, follow_redirects=False)
    page = browser.get("/fortress/oauth2/v1/auth", params={
        "response_type": "code", "client_id": service.demo_client()["client_id"], "auth_code": auth_code,
        "redirect_uri": CALLBACK, "state": "st-42"})
    assert page.status_code == 200, page.text
    assert f'value="{who.username}"' in page.text  # the request's user is named on the login page
    request_id = hidden(page.text, "request_id")
    wrong = browser.post("/trustedx-authserver/oauth/fortress/login", data={
        "request_id": request_id, "username": "somebody-else", "password": who.password, "action": "login"})
    assert wrong.status_code == 401, wrong.text
    page = browser.post("/trustedx-authserver/oauth/fortress/login", data={
        "request_id": request_id, "username": who.username, "password": who.password, "action": "login"})
    assert page.status_code == 200, page.text
    assert all(name in page.text for name in documents), page.text  # the user sees what they sign
    data = {"request_id": request_id, "action": action}
    if pin is not None:
        data["pin"] = pin
    return browser.post("/trustedx-authserver/oauth/fortress/consent", data=data), browser


def redirected(r: httpx.Response) -> dict[str, str]:
    assert r.status_code in (302, 303), r.text[:2000]
    location = r.headers["location"]
    assert location.startswith(REDIRECT_URI + "/fortress?set=7&"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def validate(service: Service, name: str, data: bytes, detached: tuple[str, bytes] | None = None) -> list[dict]:
    """remotesign's validator over its HTTP API, as a relying party would call it."""
    demo = service.demo_client()
    files = [("file", (name, data))] + ([("detached", detached)] if detached else [])
    r = httpx.post(service.url + "/v1/validations", files=files, timeout=120,
                   headers={"Authorization": f"Bearer {service.token(demo['client_id'], demo['client_secret'])}"})
    assert r.status_code == 200, r.text
    return r.json()["simpleReport"]["signaturesExt"]  # type: ignore[no-any-return]


def openssl_cms(tmp: Path, signature: bytes, ca_pem: bytes, content: bytes | None = None) -> bytes:
    (tmp / "sig.p7s").write_bytes(signature)
    (tmp / "ca.pem").write_bytes(ca_pem)
    args = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp / "sig.p7s"), "-CAfile",
            str(tmp / "ca.pem"), "-purpose", "any", "-out", str(tmp / "out.bin")]
    if content is not None:
        (tmp / "content.bin").write_bytes(content)
        args += ["-content", str(tmp / "content.bin")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    return (tmp / "out.bin").read_bytes()


def check_raw(value: bytes, data: bytes, certificate_pem: str) -> None:
    key = cx509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(value, data, ec.ECDSA(hashes.SHA256()))


def execute_raw(fortress: httpx.Client, exe: str, username: str, data: bytes) -> None:
    """Execute a request of one PKCS1 configuration and check the value with the user's certificate."""
    done = fortress.post(f"{SIGN}/execute/{exe}")
    assert done.status_code == 200, done.text
    pem = fortress.get(f"/fortress/api/v1/user/{username}/certificate").json()[0]["pem"]
    check_raw(base64.b64decode(done.json()[0]["bytesB64"]), data, pem)


def identity_uses(svc: Any, identity_id: str) -> int:
    from sqlalchemy import func, select

    from remotesign.storage.models import AuditEvent

    with svc.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "identity_key.used", AuditEvent.subject == identity_id)) or 0)


def test_the_user_authorizes_exactly_the_documents_then_the_client_executes_once(
        service: Service, fortress: httpx.Client, signer: Enrolled, ca_pem: bytes, tmp_path: Path,
        in_process: Any) -> None:
    pdf = pdf_bytes(text="Fortress contract")
    stamper = {"type": "QR_BARCODE128", "page": 1, "xAxis": 40, "yAxis": 40,
               "csvPath": "https://verify.example/csv/"}
    r = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": [
        config(pdf, "PADES_LT", "contract.pdf", "pdf-1", reason="Agreed",
               padesConfiguration={"stamper": stamper}),
        config(b"plain attachment\n", "CADES_T", "annex.txt", "cades-1", packaging="DETACHED"),
        config(XML, "XADES_B", "invoice.xml", "xml-1", packaging="ENVELOPED"),
        config(b"raw bytes to sign", "PKCS1", "value.bin", "raw-1"),
    ]})
    assert r.status_code == 200, r.text
    created = r.json()
    assert set(created) == {"exeCode", "authCode"} and created["authCode"]
    exe = created["exeCode"]

    early = fortress.post(f"{SIGN}/execute/{exe}")
    assert early.status_code == 409 and early.json()["error"] == "authorization_pending", early.text

    consent, browser = authorize(service, created["authCode"], signer, pin=signer.pin,
                                 documents=("contract.pdf", "annex.txt", "invoice.xml", "value.bin"))
    params = redirected(consent)
    assert params["state"] == "st-42" and params["code"], params
    # the code identifies the user; it is no signing credential
    exchanged = httpx.post(service.url + "/fortress/oauth2/v1/token", data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": CALLBACK},
        auth=(service.demo_client()["client_id"], service.demo_client()["client_secret"]), timeout=30)
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["token_type"] == "Bearer"
    browser.close()

    uses_before = identity_uses(in_process, signer.identity["id"])
    r = fortress.post(f"{SIGN}/execute/{exe}")
    assert r.status_code == 200, r.text
    results = r.json()
    assert [x["ref"] for x in results] == ["pdf-1", "cades-1", "xml-1", "raw-1"]
    signed = {x["ref"]: base64.b64decode(x["bytesB64"]) for x in results}
    assert identity_uses(in_process, signer.identity["id"]) == uses_before + 1  # one use of the key, four values

    again = fortress.post(f"{SIGN}/execute/{exe}")
    assert again.status_code == 200 and again.json() == results  # the same documents, no second signature
    assert identity_uses(in_process, signer.identity["id"]) == uses_before + 1

    verdict = pyhanko_pdf(signed["pdf-1"], root_of(ca_pem))
    assert verdict["intact"] and verdict["trusted"] and verdict["timestamped"] and verdict["has_dss"], verdict
    (tmp_path / "signed.pdf").write_bytes(signed["pdf-1"])
    out = subprocess.run(["pdfsig", "-nocert", str(tmp_path / "signed.pdf")], capture_output=True, text=True,
                         check=False).stdout
    assert "Signature is Valid." in out, out
    assert verdict["signature"].sig_object["/Reason"] == "Agreed"
    [pades] = validate(service, "contract.pdf", signed["pdf-1"])
    assert (pades["indication"], pades["signatureFormat"]) == ("TOTAL-PASSED", "PAdES_BASELINE_LT"), pades

    openssl_cms(tmp_path, signed["cades-1"], ca_pem, content=b"plain attachment\n")
    [cades] = validate(service, "annex.p7s", signed["cades-1"], detached=("annex.txt", b"plain attachment\n"))
    assert (cades["indication"], cades["signatureFormat"]) == ("TOTAL-PASSED", "CAdES_BASELINE_T"), cades

    ok, log = xmlsec_verify(tmp_path, signed["xml-1"], {}, ca_pem)
    assert ok, log
    [xades] = validate(service, "invoice.xml", signed["xml-1"])
    assert (xades["indication"], xades["signatureFormat"]) == ("TOTAL-PASSED", "XAdES_BASELINE_B"), xades

    users = fortress.get(f"/fortress/api/v1/user/{signer.username}/certificate").json()
    check_raw(signed["raw-1"], b"raw bytes to sign", users[0]["pem"])

    state = fortress.get(f"{SIGN}/{exe}").json()
    assert state["status"] == "DONE" and state["certificateCode"] == signer.identity["id"], state


def test_a_canceled_authorization_is_access_denied(service: Service, fortress: httpx.Client,
                                                   signer: Enrolled) -> None:
    r = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": [
        config(pdf_bytes(), "PADES_B", "a.pdf", "a")]})
    assert r.status_code == 200, r.text
    consent, browser = authorize(service, r.json()["authCode"], signer, action="cancel")
    browser.close()
    assert redirected(consent)["error"] == "access_denied"
    refused = fortress.post(f"{SIGN}/execute/{r.json()['exeCode']}")
    assert refused.status_code == 403 and refused.json()["error"] == "access_denied", refused.text


def test_an_expired_authorization_signs_nothing(service: Service, fortress: httpx.Client, signer: Enrolled,
                                                in_process: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from remotesign.storage.models import AccessToken, SignatureRequest

    r = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": [
        config(pdf_bytes(), "PADES_B", "late.pdf", "late")]})
    assert r.status_code == 200, r.text
    exe = r.json()["exeCode"]
    consent, browser = authorize(service, r.json()["authCode"], signer, pin=signer.pin)
    browser.close()
    assert "code" in redirected(consent)
    with in_process.db.session() as s:
        token_hash = s.get(SignatureRequest, exe).token_hash
        s.execute(update(AccessToken).where(AccessToken.token_hash == token_hash)
                  .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    uses = identity_uses(in_process, signer.identity["id"])
    refused = fortress.post(f"{SIGN}/execute/{exe}")
    assert refused.status_code == 403 and refused.json()["error"] == "expired", refused.text
    assert identity_uses(in_process, signer.identity["id"]) == uses
    assert fortress.get(f"{SIGN}/{exe}").json()["status"] == "FAILED"


def test_requests_that_cannot_be_made_are_refused(service: Service, fortress: httpx.Client,
                                                  signer: Enrolled) -> None:
    doc = [config(pdf_bytes(), "PADES_B", "x.pdf", "x")]
    r = fortress.post(SIGN, json={"userCode": "nobody-" + signer.username, "signatureConfigurations": doc})
    assert r.status_code == 404 and r.json()["error"] == "user_not_found", r.text
    r = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": doc,
                                  "certificateFilter": {"issuer.cn": ["Some Other CA"]}})
    assert r.status_code == 404 and r.json()["error"] == "certificate_not_found", r.text
    r = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": doc,
                                  "certificateFilter": {"oid": ["1.2.3.4.5"]}})
    assert r.status_code == 404 and r.json()["error"] == "certificate_not_found", r.text
    # a natural person's certificate never signs unattended
    r = fortress.post(SIGN, json={"certificateCode": signer.identity["id"], "signatureConfigurations": doc})
    assert r.status_code == 403 and r.json()["error"] == "unattended_not_allowed", r.text
    for bad, field in (({**doc[0], "signatureType": "PADES_X"}, "signatureType"),
                       ({**doc[0], "signatureAlgorithm": "RSA_SHA1"}, "signatureAlgorithm"),
                       ({**doc[0], "document": {"bytesB64": "***"}}, "Base64"),
                       ({**doc[0], "signatureType": "CADES_B", "packaging": "ENVELOPED"}, "CAdES")):
        r = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": [bad]})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request" and field in r.text, r.text
    r = fortress.post(SIGN, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    r = httpx.post(service.url + SIGN, json={"userCode": signer.username, "signatureConfigurations": doc},
                   headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text

    # another client's request is unknown to this one, and so is its authorization page
    created = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": doc}).json()
    other = client_token(service, service.new_client("Fortress Other"))
    try:
        for r in (other.post(f"{SIGN}/execute/{created['exeCode']}"), other.get(f"{SIGN}/{created['exeCode']}")):
            assert r.status_code == 404 and r.json()["error"] == "request_not_found", r.text
    finally:
        other.close()


def test_an_e_seal_of_a_legal_person_signs_unattended(service: Service, http: httpx.Client, demo_token: str,
                                                      fortress: httpx.Client, ca_pem: bytes, tmp_path: Path) -> None:
    r = http.post("/v1/users", json={"username": f"acme-{hashlib.sha1(tmp_path.name.encode()).hexdigest()[:6]}",
                                     "display_name": "ACME Ltd", "kind": "legal", "serial_number": "NTRLV-40003000000"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    seal_user = r.json()
    r = http.post(f"/v1/users/{seal_user['id']}/identities", json={"algorithm": "ec-p256"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    seal = r.json()["identity"]
    # the seal's legal person never signs in, and its e-seal signs all the same
    status = f"/fortress/api/v1/user/{seal_user['username']}/status"
    assert fortress.get(status).json() == {"auth": False, "sign": True}
    content = b"<statement>sealed</statement>"
    r = fortress.post(SIGN, json={"certificateCode": seal["id"], "signatureConfigurations": [
        config(content, "CADES_B", "statement.xml", "c1", packaging="ENVELOPING"),
        config(content, "PKCS1", "statement.xml", "r1")]})
    assert r.status_code == 200, r.text
    assert r.json()["authCode"] is None
    r = fortress.post(f"{SIGN}/execute/{r.json()['exeCode']}")
    assert r.status_code == 200, r.text
    signed = {x["ref"]: base64.b64decode(x["bytesB64"]) for x in r.json()}
    assert openssl_cms(tmp_path, signed["c1"], ca_pem) == content
    [cades] = validate(service, "statement.p7m", signed["c1"])
    assert cades["indication"] == "TOTAL-PASSED", cades
    pem = fortress.get(f"/fortress/api/v1/user/{seal_user['username']}/certificate").json()[0]["pem"]
    check_raw(signed["r1"], content, pem)


OTP = re.compile(r"\b(\d{8})\b")


def mailed_otp(address: str, count: int) -> str:
    body = mailbox().wait_for(address, count).get_payload(decode=True).decode()
    m = OTP.search(body)
    assert m, body
    return m.group(1)


def test_a_one_time_code_by_e_mail_approves_instead_of_the_pin(service: Service, fortress: httpx.Client,
                                                                signer: Enrolled) -> None:
    address = signer.user["email"]
    r = fortress.post(SIGN, json={"userCode": signer.username, "signatureConfigurations": [
        config(b"otp approved", "PKCS1", "otp.bin", "otp")]})
    assert r.status_code == 200, r.text
    browser, request_id, page = consent_page(service, r.json()["authCode"], signer)
    assert 'name="otp"' in page and 'value="otp"' in page, page  # the page offers a code instead of the PIN
    before = len(mailbox().messages_to(address))
    sent = consent_post(browser, request_id, action="otp")
    assert sent.status_code == 200 and f"***@{address.split('@')[1]}" in sent.text, sent.text
    code = mailed_otp(address, before + 1)
    wrong = consent_post(browser, request_id, action="approve", otp=f"{(int(code) + 1) % 10 ** 8:08d}")
    assert wrong.status_code == 403 and "2 tries left" in wrong.text, wrong.text
    params = redirected(consent_post(browser, request_id, action="approve", otp=code))
    browser.close()
    assert params["code"]
    execute_raw(fortress, r.json()["exeCode"], signer.username, b"otp approved")


def test_multifactor_auth_wants_the_pin_and_a_one_time_code(service: Service, fortress: httpx.Client,
                                                            signer: Enrolled) -> None:
    address = signer.user["email"]
    r = fortress.post(SIGN, json={"userCode": signer.username, "multifactorAuth": True, "signatureConfigurations": [
        config(b"two factors", "PKCS1", "mfa.bin", "mfa")]})
    assert r.status_code == 200, r.text
    browser, request_id, page = consent_page(service, r.json()["authCode"], signer)
    assert "signing PIN and a one-time code" in page, page
    pin_only = consent_post(browser, request_id, action="approve", pin=signer.pin)
    assert pin_only.status_code == 403, pin_only.text
    before = len(mailbox().messages_to(address))
    assert consent_post(browser, request_id, action="otp").status_code == 200
    code = mailed_otp(address, before + 1)
    again = consent_post(browser, request_id, action="otp")
    assert again.status_code == 429 and "Wait 20 seconds" in again.text, again.text  # no code flood
    params = redirected(consent_post(browser, request_id, action="approve", pin=signer.pin, otp=code))
    browser.close()
    assert params["code"]
    assert fortress.post(f"{SIGN}/execute/{r.json()['exeCode']}").status_code == 200


MATRIX = [  # (signatureType, packaging, document name, what remotesign's validator must call it)
    ("PADES_B", "ENVELOPED", "b.pdf", "PAdES_BASELINE_B"),
    ("PADES_T", "ENVELOPED", "t.pdf", "PAdES_BASELINE_T"),
    ("PADES_LTA", "ENVELOPED", "lta.pdf", "PAdES_BASELINE_LTA"),
    ("CADES_B", "ENVELOPING", "b.txt", "CAdES_BASELINE_B"),
    ("CADES_LT", "DETACHED", "lt.txt", "CAdES_BASELINE_LT"),
    ("CADES_LTA", "ENVELOPING", "lta.txt", "CAdES_BASELINE_LTA"),
    ("XADES_T", "ENVELOPED", "t.xml", "XAdES_BASELINE_T"),
    ("XADES_LT", "ENVELOPING", "lt.xml", "XAdES_BASELINE_LT"),
    ("XADES_LTA", "DETACHED", "lta.xml", "XAdES_BASELINE_LTA"),
]


@pytest.fixture(scope="module")
def e_seal(http: httpx.Client, demo_token: str) -> dict[str, Any]:
    username = f"seal-{hashlib.sha256(str(time.time()).encode()).hexdigest()[:6]}"
    r = http.post("/v1/users", json={"username": username, "display_name": "Matrix Seal Ltd", "kind": "legal",
                                     "serial_number": "NTRLV-40003000000"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    r = http.post(f"/v1/users/{r.json()['id']}/identities", json={"algorithm": "rsa-3072"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    return {**r.json()["identity"], "username": username}


def test_every_format_and_level_verifies_independently(service: Service, fortress: httpx.Client,
                                                       e_seal: dict[str, Any], ca_pem: bytes, tmp_path: Path) -> None:
    contents = {"pdf": pdf_bytes(text="matrix"), "txt": b"matrix text\n", "xml": XML}
    configs = [config(contents[name.rsplit(".", 1)[1]], kind, name, name, packaging=packaging,
                      signatureAlgorithm="RSA_SHA384" if kind.startswith("XADES") else "RSA_SHA256")
               for kind, packaging, name, _ in MATRIX]
    configs.append(config(b"raw value", "PKCS1", "raw.bin", "raw", signatureAlgorithm="RSA_SHA512"))
    r = fortress.post(SIGN, json={"certificateCode": e_seal["id"], "signatureConfigurations": configs})
    assert r.status_code == 200, r.text
    r = fortress.post(f"{SIGN}/execute/{r.json()['exeCode']}")
    assert r.status_code == 200, r.text
    signed = {x["ref"]: base64.b64decode(x["bytesB64"]) for x in r.json()}
    assert list(signed) == [name for _, _, name, _ in MATRIX] + ["raw"]
    root = root_of(ca_pem)
    for kind, packaging, name, level in MATRIX:
        data, original = signed[name], contents[name.rsplit(".", 1)[1]]
        detached = (name, original) if packaging == "DETACHED" else None
        [sig] = validate(service, name + (".p7s" if kind.startswith("CADES") else ""), data, detached)
        assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", level), (name, sig)
        if kind.startswith("PADES"):
            verdict = pyhanko_pdf(data, root)
            assert verdict["intact"] and verdict["trusted"], (name, verdict)
            assert verdict["doc_timestamps"] == (1 if kind == "PADES_LTA" else 0), (name, verdict)
        elif kind.startswith("CADES"):
            out = openssl_cms(tmp_path, data, ca_pem, content=original if detached else None)
            assert out == original
        else:
            ok, log = xmlsec_verify(tmp_path, data, {name: original} if detached else {}, ca_pem)
            assert ok, (name, log)
            assert b"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" in data
    key = cx509.load_pem_x509_certificate(
        fortress.get(f"/fortress/api/v1/user/{e_seal['username']}/certificate").json()[0]["pem"].encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072
    key.verify(signed["raw"], b"raw value", padding.PKCS1v15(), hashes.SHA512())


def test_a_signature_policy_and_xades_options_reach_the_signature(fortress: httpx.Client, e_seal: dict[str, Any],
                                                                  ca_pem: bytes, tmp_path: Path) -> None:
    policy_digest = hashlib.sha256(b"the policy document").digest()
    policy = {"id": "1.3.6.1.4.1.99999.1.2", "digestAlgorithm": "SHA256",
              "digestValueB64": base64.b64encode(policy_digest).decode(), "description": "test policy"}
    r = fortress.post(SIGN, json={"certificateCode": e_seal["id"], "signatureConfigurations": [
        config(XML, "XADES_B", "p.xml", "x", packaging="ENVELOPED", policy=policy,
               xadesConfiguration={"claimedSignerRoles": ["Accountant"]}),
        config(b"cms policy", "CADES_B", "p.txt", "c", packaging="ENVELOPING", policy=policy)]})
    assert r.status_code == 200, r.text
    r = fortress.post(f"{SIGN}/execute/{r.json()['exeCode']}")
    assert r.status_code == 200, r.text
    signed = {x["ref"]: base64.b64decode(x["bytesB64"]) for x in r.json()}
    xml = signed["x"].decode()
    assert "1.3.6.1.4.1.99999.1.2" in xml and base64.b64encode(policy_digest).decode() in xml, xml
    assert "Accountant" in xml
    ok, log = xmlsec_verify(tmp_path, signed["x"], {}, ca_pem)
    assert ok, log
    from asn1crypto import cms

    signer_info = cms.ContentInfo.load(signed["c"])["content"]["signer_infos"][0]
    attrs = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    sig_policy = attrs["signature_policy_identifier"].native
    assert sig_policy["sig_policy_id"] == "1.3.6.1.4.1.99999.1.2", sig_policy
    assert sig_policy["sig_policy_hash"]["digest"] == policy_digest
    openssl_cms(tmp_path, signed["c"], ca_pem)


def test_the_certificate_is_narrowed_by_the_client_and_chosen_by_the_user(
        service: Service, http: httpx.Client, demo_token: str, fortress: httpx.Client) -> None:
    who = enrol(http, demo_token)
    r = http.post(f"/v1/users/{who.user['id']}/identities", json={"algorithm": "ec-p256"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    second = r.json()["identity"]["id"]
    first = who.identity["id"]
    cn = f"Test {who.username}"

    def signed_by(exe: str) -> str:
        done = fortress.post(f"{SIGN}/execute/{exe}")
        assert done.status_code == 200, done.text
        value = base64.b64decode(done.json()[0]["bytesB64"])
        for cert in fortress.get(f"/fortress/api/v1/user/{who.username}/certificate").json():
            try:
                check_raw(value, b"which key", cert["pem"])
                return str(cert["code"])
            except Exception:  # noqa: BLE001 - not this certificate's signature
                continue
        raise AssertionError("no certificate of the user verifies the value")

    # the client narrows to one certificate: the user is not asked to choose
    r = fortress.post(SIGN, json={"userCode": who.username, "certificateCode": second,
                                  "certificateFilter": {"subject.cn": [cn]},
                                  "signatureConfigurations": [config(b"which key", "PKCS1", "k.bin", "k")]})
    assert r.status_code == 200, r.text
    browser, request_id, page = consent_page(service, r.json()["authCode"], who)
    assert 'name="sign_identity_id"' not in page, page
    assert "code" in redirected(consent_post(browser, request_id, action="approve", pin=who.pin))
    browser.close()
    assert signed_by(r.json()["exeCode"]) == second

    # both match: the user picks one of the two (and nothing else)
    r = fortress.post(SIGN, json={"userCode": who.username, "certificateFilter": {"subject.cn": [cn]},
                                  "signatureConfigurations": [config(b"which key", "PKCS1", "k.bin", "k")]})
    assert r.status_code == 200, r.text
    browser, request_id, page = consent_page(service, r.json()["authCode"], who)
    assert page.count('name="sign_identity_id"') == 2 and first in page and second in page, page
    other = enrol(http, demo_token).identity["id"]  # not the user's: refused whatever the form says
    foreign = consent_post(browser, request_id, action="approve", pin=who.pin, sign_identity_id=other)
    assert foreign.status_code == 400, foreign.text
    assert "code" in redirected(consent_post(browser, request_id, action="approve", pin=who.pin,
                                             sign_identity_id=first))
    browser.close()
    assert signed_by(r.json()["exeCode"]) == first


def test_a_plain_authorization_takes_two_factors_and_gives_a_code_for_the_token_endpoint(
        service: Service, signer: Enrolled) -> None:
    demo = service.demo_client()

    def start(browser: httpx.Client) -> tuple[str, str]:
        page = browser.get("/fortress/oauth2/v1/auth", params={
            "scope": "profile", "state": "plain-1", "redirect_uri": CALLBACK, "response_type": "code",
            "client_id": demo["client_id"], "user_code": signer.username})
        assert page.status_code == 200, page.text
        return hidden(page.text, "request_id"), page.text

    with httpx.Client(base_url=service.url, timeout=60, follow_redirects=False) as browser:
        request_id, page = start(browser)
        assert f'value="{signer.username}"' in page
        page = browser.post("/trustedx-authserver/oauth/fortress/login", data={
            "request_id": request_id, "username": signer.username, "password": signer.password, "action": "login"})
        assert page.status_code == 200 and 'name="pin"' in page.text and 'value="otp"' in page.text, page.text
        assert consent_post(browser, request_id, action="approve").status_code == 403  # no second factor
        params = redirected(consent_post(browser, request_id, action="approve", pin=signer.pin))
        assert params["state"] == "plain-1"
        token = httpx.post(service.url + "/fortress/oauth2/v1/token", params={
            "grant_type": "authorization_code", "code": params["code"], "client_id": demo["client_id"],
            "client_secret": demo["client_secret"]}, timeout=30)
        assert token.status_code == 200 and token.json()["token_type"] == "Bearer", token.text
        replay = httpx.post(service.url + "/fortress/oauth2/v1/token", params={
            "grant_type": "authorization_code", "code": params["code"], "client_id": demo["client_id"],
            "client_secret": demo["client_secret"]}, timeout=30)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text

        request_id, _ = start(browser)
        cancel = browser.post("/trustedx-authserver/oauth/fortress/login", data={
            "request_id": request_id, "action": "cancel"})
        assert redirected(cancel) == {"set": "7", "error": "access_denied", "error_description": "the user canceled",
                                      "state": "plain-1"}  # the callback's own query is kept
    bad = httpx.get(service.url + "/fortress/oauth2/v1/auth", params={
        "scope": "profile", "redirect_uri": "https://elsewhere.example/cb", "response_type": "code",
        "client_id": demo["client_id"]}, timeout=30)
    assert bad.status_code == 400 and "redirect_uri" in bad.text  # shown, never redirected
