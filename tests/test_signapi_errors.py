"""Bad input to the SignAPI facade: every case gets the {data, error} envelope with a stable code,
never a 5xx, and leaves no partial files behind."""

from __future__ import annotations

import base64
import io
import os
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.harness import Service, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, SignApi, issue_card

MIMETYPE = b"application/vnd.etsi.asic-e+zip"


@pytest.fixture(scope="module")
def api(service: Service, demo_token: str) -> SignApi:
    return SignApi(service, demo_token)


@pytest.fixture(scope="module")
def card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("card"), "rsa", cn="Error Tester")


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Service:
    """A service with a 100 KB file limit and 3-second sessions."""
    svc = Service(home=tmp_path_factory.mktemp("tight"), port=free_port(),
                  env={"REMOTESIGN_FILE_MAX_BYTES": "100000", "REMOTESIGN_SESSION_TIMEOUT": "3"}).start()
    yield svc
    svc.stop()


def error_of(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["data"] is None and set(body["error"]) >= {"code", "message"}, body
    return str(body["error"]["code"])


def session_error(r: httpx.Response, status: int, key: str = "sessionDigests") -> str:
    assert r.status_code == status, r.text
    data = r.json()["data"]
    entries = data[key] if key in data else data["results"]
    return str(entries[0]["error"]["code"])


def blobs_of(service: Service, sid: str) -> list[Path]:
    return [p for p in (service.home / "blobs").rglob("*") if p.is_file() and sid in str(p)]


def zip_bytes(entries: list[tuple[str, bytes]], mimetype: bytes | None = MIMETYPE) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if mimetype is not None:
            zf.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def test_unauthenticated_and_unknown_operation(service: Service, api: SignApi) -> None:
    r = httpx.get(service.url + "/api-session/v1.0/start")
    assert error_of(r, 401) == "unauthorized"
    assert error_of(api.client.post("/api-sign/v1.0/doSomething", json={}), 404) == "unknown_operation"


def test_malformed_requests(api: SignApi, card: Card) -> None:
    r = api.client.post("/api-sign/v1.0/CalculateDigest", content=b"{not json", headers={"Content-Type": "application/json"})
    assert error_of(r, 400) == "invalid_json"
    assert error_of(api.client.post("/api-sign/v1.0/calculatedigest", json={"sessions": []}), 400) == "invalid_request"
    sid = api.start()
    r = api.client.post("/api-sign/v1.0/CalculateDigest", json={"sessions": [{"sessionId": sid}],
                                                                "certificate": "%%%not base64%%%"})
    assert error_of(r, 400) == "invalid_base64"
    r = api.client.post("/api-sign/v1.0/CalculateDigest", json={"sessions": [{"sessionId": sid}],
                                                                "certificate": base64.b64encode(b"garbage").decode()})
    assert error_of(r, 400) == "invalid_certificate"
    r = api.client.post("/api-sign/v1.0/finalizeSigning", json={"sessionSignatureValues": [
        {"sessionId": sid, "signatureValue": "***"}]})
    assert error_of(r, 400) == "invalid_base64"
    r = api.client.post("/api-sign/v1.0/CalculateDigest", json={
        "sessions": [{"sessionId": sid}, {"sessionId": sid}], "certificate": card.cert_b64})
    assert error_of(r, 400) == "duplicate_session"


def test_untrusted_and_expired_certificates(service: Service, api: SignApi, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from datetime import datetime, timezone

    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Self Signed")])
    now = datetime.now(timezone.utc)
    selfsigned = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                  .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
                  .sign(key, hashes.SHA256()))
    sid = api.start()
    api.upload(sid, "a.pdf", pdf_bytes())
    r = api.calculate([sid], Card(key, selfsigned), sign_as_pdf=True)
    assert error_of(r, 400) == "certificate_untrusted"

    # An expired certificate of the built-in CA: issued in-process with a 1-second validity.
    from remotesign.config import load_settings
    from remotesign.service import Services
    from remotesign.trust.ca import subject_from_text

    env_home = os.environ.get("REMOTESIGN_HOME")
    os.environ["REMOTESIGN_HOME"] = str(service.home)
    try:
        svc = Services(load_settings())
        pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        issued = svc.ca.issue(subject=subject_from_text("CN=Expired,SERIALNUMBER=PNOLV-1,C=LV"), public_key_der=pub,
                              profile_name="qualified-person", tenant_id=None, validity=timedelta(seconds=1))
        svc.close()
    finally:
        if env_home is None:
            os.environ.pop("REMOTESIGN_HOME", None)
        else:
            os.environ["REMOTESIGN_HOME"] = env_home
    import time

    time.sleep(1.5)
    expired = Card(key, x509.load_der_x509_certificate(issued.der))
    assert error_of(api.calculate([sid], expired, sign_as_pdf=True), 400) == "certificate_expired"


def test_wrong_documents_for_the_format(api: SignApi, card: Card) -> None:
    sid = api.start()
    api.upload(sid, "notes.txt", b"plain text")
    assert session_error(api.calculate([sid], card, sign_as_pdf=True), 400) == "not_a_pdf"
    sid = api.start()
    api.upload(sid, "broken.pdf", b"%PDF-1.7\n" + os.urandom(3000))
    assert session_error(api.calculate([sid], card, sign_as_pdf=True), 400) == "invalid_pdf"
    sid = api.start()
    api.upload(sid, "a.pdf", pdf_bytes())
    api.upload(sid, "b.pdf", pdf_bytes())
    assert session_error(api.calculate([sid], card, sign_as_pdf=True), 400) == "one_pdf_per_session"
    sid = api.start()
    assert session_error(api.calculate([sid], card, sign_as_pdf=False), 400) == "no_documents"
    api.upload(sid, "c.pdf", pdf_bytes())
    assert session_error(api.archive([sid]), 409, "results") == "not_signed"
    assert session_error(api.finalize({sid: b"v" * 256}), 409, "results") == "not_prepared"


@pytest.mark.parametrize("content,code", [
    (b"PK\x03\x04" + os.urandom(200), "invalid_container"),
    (zip_bytes([("a.txt", b"x")], mimetype=b"application/zip"), "invalid_mimetype"),
    (zip_bytes([("../evil.txt", b"x")]), "unsafe_entry_name"),
    (zip_bytes([("/etc/passwd", b"x")]), "unsafe_entry_name"),
    (zip_bytes([("a.txt", b"x"), ("A.TXT", b"y")]), "duplicate_entry"),
    (zip_bytes([("bomb.bin", bytes(50 << 20))]), "zip_bomb"),
])
def test_hostile_containers_are_refused_at_upload(service: Service, api: SignApi, content: bytes, code: str) -> None:
    sid = api.start()
    r = api.client.put(f"/api-storage/v1.0/{sid}/upload", files={"file": ("evil.edoc", content)})
    assert error_of(r, 400) == code
    assert api.list(sid) == [] and blobs_of(service, sid) == []


def test_sessions_unknown_closed_foreign(service: Service, api: SignApi, card: Card) -> None:
    unknown = "ab" * 32
    assert error_of(api.client.get(f"/api-storage/v1.0/{unknown}/list"), 404) == "session_not_found"
    assert error_of(api.client.get("/api-storage/v1.0/not-hex/list"), 404) == "session_not_found"
    assert session_error(api.calculate([unknown], card, sign_as_pdf=True), 404) == "session_not_found"

    sid = api.start()
    api.upload(sid, "a.pdf", pdf_bytes())
    r = api.client.get(f"/api-session/v1.0/{sid}/close")
    assert r.status_code == 200 and r.json() == {"data": f"Session {sid} closed"}
    assert blobs_of(service, sid) == []
    assert error_of(api.client.get(f"/api-storage/v1.0/{sid}/list"), 410) == "session_closed"
    assert error_of(api.client.put(f"/api-storage/v1.0/{sid}/upload", files={"file": ("late.pdf", pdf_bytes())}),
                    410) == "session_closed"
    assert blobs_of(service, sid) == []  # nothing of the refused upload stays behind
    assert session_error(api.finalize({sid: b"x" * 256}), 410, "results") == "session_closed"

    other = service.new_client("other relying party")
    other_api = SignApi(service, service.token(other["client_id"], other["client_secret"]))
    mine = api.start()
    doc = api.upload(mine, "mine.pdf", pdf_bytes())["data"]
    assert error_of(other_api.client.get(f"/api-storage/v1.0/{mine}/list"), 404) == "session_not_found"
    assert error_of(other_api.client.get(f"/api-storage/v1.0/{mine}/{doc['id']}"), 404) == "session_not_found"
    assert error_of(other_api.client.delete(f"/api-storage/v1.0/{mine}/{doc['id']}"), 404) == "session_not_found"
    assert error_of(other_api.client.put(f"/api-storage/v1.0/{mine}/upload", files={"file": ("x.pdf", pdf_bytes())}),
                    404) == "session_not_found"
    assert session_error(other_api.calculate([mine], card, sign_as_pdf=True), 404) == "session_not_found"
    assert error_of(other_api.client.get(f"/api-session/v1.0/{mine}/close"), 404) == "session_not_found"
    assert [d["name"] for d in api.list(mine)] == ["mine.pdf"]  # still open, its file still there
    # closing again, or an id that is not one: answered, nothing else changes
    assert error_of(api.client.get(f"/api-session/v1.0/{sid}/close"), 410) == "session_closed"
    assert error_of(api.client.get("/api-session/v1.0/not-hex/close"), 404) == "session_not_found"
    assert error_of(api.client.get(f"/api-session/v1.0/{unknown}/close"), 404) == "session_not_found"


def test_duplicate_names_and_documents(api: SignApi) -> None:
    sid = api.start()
    doc = api.upload(sid, "a.txt", b"1")["data"]
    assert error_of(api.client.put(f"/api-storage/v1.0/{sid}/upload", files={"file": ("A.txt", b"2")}), 409) \
        == "duplicate_document_name"
    assert error_of(api.client.get(f"/api-storage/v1.0/{sid}/nope"), 404) == "document_not_found"
    r = api.client.delete(f"/api-storage/v1.0/{sid}/{doc['id']}")
    assert r.status_code == 200
    assert api.list(sid) == []
    assert error_of(api.client.put(f"/api-storage/v1.0/{sid}/upload", content=b"raw",
                                   headers={"Content-Type": "text/plain"}), 400) == "invalid_upload"


def test_oversized_upload_and_expiry(tight: Service) -> None:
    demo = tight.demo_client()
    api = SignApi(tight, tight.token(demo["client_id"], demo["client_secret"]))
    sid = api.start()
    r = api.client.put(f"/api-storage/v1.0/{sid}/upload", files={"file": ("big.bin", os.urandom(300_000))})
    assert error_of(r, 413) in ("file_too_large", "payload_too_large")
    assert api.list(sid) == [] and blobs_of(tight, sid) == []
    cfg = api.client.get("/api-config/v1.0/").json()["data"]
    assert cfg["fileMaxLength"] == 100000 and cfg["sessionExpirationTimeout"] == 3

    api.upload(sid, "small.txt", b"small")
    assert blobs_of(tight, sid)
    import time

    time.sleep(3.5)
    assert error_of(api.client.get(f"/api-storage/v1.0/{sid}/list"), 410) == "session_expired"
    assert blobs_of(tight, sid) == []
    assert error_of(api.client.get(f"/api-session/v1.0/{sid}/close"), 410) == "session_expired"


@pytest.mark.parametrize("how", ["untrusted", "tampered"])
def test_archive_of_an_upload_signed_elsewhere_validates_it_first(api: SignApi, card: Card, how: str) -> None:
    """addArchive adopts a PDF signed elsewhere only when its signatures pass: the service's
    time-stamp must not give a forged or altered signature a proof of existence."""
    from tests.signapi import sign_bb
    from tests.test_validation_api import foreign_card

    if how == "untrusted":
        foreign, root = foreign_card()
        pdf = sign_bb(foreign, [root])
    else:
        forged = bytearray(sign_bb(card))
        at = forged.index(b"/Type /Page")
        forged[at + 1:at + 5] = b"XXXX"  # inside the signed byte range
        pdf = bytes(forged)
    sid = api.start()
    doc = api.upload(sid, "elsewhere.pdf", pdf)["data"]
    assert session_error(api.archive([sid]), 422, "results") == "signature_not_valid"
    assert api.download(sid, doc["id"]) == pdf
    assert [d["id"] for d in api.list(sid)] == [doc["id"]]


def test_an_uploaded_html_document_comes_back_inert(api: SignApi) -> None:
    """A relying party stores what it likes under the type it declares; downloaded, it is an
    attachment the browser may not sniff, and sandboxed should it be opened on the service's origin."""
    sid = api.start()
    r = api.client.put(f"/api-storage/v1.0/{sid}/upload",
                       files={"file": ("page.html", b"<script>alert(document.cookie)</script>", "text/html")})
    assert r.status_code == 201, r.text
    [doc] = api.list(sid)
    r = api.client.get(f"/api-storage/v1.0/{sid}/{doc['id']}")
    assert r.status_code == 200 and r.content.startswith(b"<script>")
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"
    # every answer carries nosniff, the pages keep their own policy
    assert api.client.get("/health").headers["x-content-type-options"] == "nosniff"
    page = api.client.get("/docs")
    assert page.headers["x-content-type-options"] == "nosniff" and "sandbox" not in page.headers["content-security-policy"]


def test_a_closed_session_stays_closed_until_the_sweep_forgets_it(api: SignApi, in_process: Any) -> None:
    """The minute's sweep does not turn a just-closed session into an unknown one (410, not 404);
    once closed for CLOSED_KEPT it is forgotten, files and row."""
    from datetime import datetime, timezone

    from remotesign.core.sessions import CLOSED_KEPT

    sid = api.start()
    api.upload(sid, "a.pdf", pdf_bytes())
    assert api.client.get(f"/api-session/v1.0/{sid}/close").status_code == 200
    in_process.sessions.sweep_expired()
    assert error_of(api.client.get(f"/api-storage/v1.0/{sid}/list"), 410) == "session_closed"
    in_process.sessions.sweep_expired(datetime.now(timezone.utc) + CLOSED_KEPT + timedelta(seconds=1))
    assert error_of(api.client.get(f"/api-storage/v1.0/{sid}/list"), 404) == "session_not_found"
