"""eSealCreate: a PFX sent with the request, its password RSA-encrypted (PKCS#1 v1.5) with the key
from the Config API; the result is B-LT, and neither PFX nor password is kept."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, SignApi, issue_card
from tests.test_signapi_asice import check_container, verify_all_signatures
from tests.verifiers import root_of
from tests.verifiers import pyhanko_pdf

PASSWORD = "Zīmoga parole 123"


@pytest.fixture(scope="module")
def api(service: Service, demo_token: str) -> SignApi:
    return SignApi(service, demo_token)


@pytest.fixture(scope="module")
def seal(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("seal"), "rsa", cn="Demo Org eZīmogs", profile="qualified-seal")


def pfx_of(card: Card, password: str) -> bytes:
    return pkcs12.serialize_key_and_certificates(b"seal", card.key, card.cert, None,  # type: ignore[arg-type]
                                                 serialization.BestAvailableEncryption(password.encode()))


def encrypt_password(api: SignApi, password: str, pad: padding.AsymmetricPadding | None = None) -> str:
    """As the vendor's C# sample does (PKCS#1 v1.5), or with ``pad`` (the PHP client: OAEP-SHA1)."""
    r = api.client.get("/api-config/v1.0/public/key")
    assert r.status_code == 200, r.text
    public = serialization.load_pem_public_key(r.json()["data"]["publicKey"].encode())
    assert r.json()["publicKey"] == r.json()["data"]["publicKey"]  # the PHP client reads it at the top level
    return base64.b64encode(public.encrypt(password.encode(),  # type: ignore[union-attr]
                                           pad or padding.PKCS1v15())).decode()


def oaep(hash_cls: type[hashes.HashAlgorithm]) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)


def eseal(api: SignApi, sids: list[str], pfx: bytes, password_b64: str, as_pdf: bool) -> httpx.Response:
    return api.client.post("/api-sign/v1.0/eSealCreate", json={
        "sessions": [{"sessionId": s} for s in sids], "signAsPdf": as_pdf, "createNewEdoc": False,
        "signKey": base64.b64encode(pfx).decode(), "signKeyPassword": password_b64,
        "authCertificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"})


def test_eseal_pdf_and_container(service: Service, api: SignApi, seal: Card, http: httpx.Client,
                                 tmp_path: Path) -> None:
    ca_pem = http.get("/pki/ca.pem").content
    pdf_session, edoc_session = api.start(2)
    api.upload(pdf_session, "rekins.pdf", pdf_bytes())
    api.upload(edoc_session, "rekins.xml", b"<invoice><total>10.00</total></invoice>")
    pfx = pfx_of(seal, PASSWORD)
    r = eseal(api, [pdf_session], pfx, encrypt_password(api, PASSWORD), as_pdf=True)
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"results": [{"sessionId": pdf_session}]}}
    _, sealed = api.result(pdf_session)
    verdict = pyhanko_pdf(sealed, root_of(ca_pem))
    assert verdict["intact"] and verdict["trusted"] and verdict["timestamped"] and verdict["has_dss"], verdict["summary"]
    assert "eZīmogs" in verdict["signature"].signer_cert.subject.human_friendly

    # The PHP client encrypts with OAEP (PHP's OPENSSL_PKCS1_OAEP_PADDING: SHA-1): accepted as well.
    r = eseal(api, [edoc_session], pfx, encrypt_password(api, PASSWORD, oaep(hashes.SHA1)), as_pdf=False)
    assert r.status_code == 200, r.text
    _, edoc = api.result(edoc_session)
    verify_all_signatures(tmp_path, check_container(edoc), ca_pem)
    # remotesign's own validator agrees: B-LT e-seals by a legal person's certificate.
    for sid, level in ((pdf_session, "PAdES_BASELINE_LT"), (edoc_session, "XAdES_BASELINE_LT")):
        doc_id = api.list(sid)[0]["id"]
        report = api.client.get(f"/api-validation/v1.0/{sid}/{doc_id}/validate").json()["data"]
        sig = report["signaturesExt"][0]
        assert (sig["indication"], sig["signatureFormat"], sig["signatureLevel"]) == \
            ("TOTAL-PASSED", level, "ADESEAL"), sig
        assert sig["registrationNumber"] == "NTRLV-40000000000" and sig["signerSerialNumber"] is None

    # Nothing of the PFX or the password is kept anywhere in the service's state.
    needle_pfx, needle_pw = pfx[40:72], PASSWORD.encode()
    for path in service.home.rglob("*"):
        if path.is_file() and path.stat().st_size < 50 << 20:
            data = path.read_bytes()
            assert needle_pfx not in data and needle_pw not in data, path


def test_eseal_refusals(api: SignApi, seal: Card) -> None:
    sid = api.start()
    api.upload(sid, "a.pdf", pdf_bytes())
    pfx = pfx_of(seal, PASSWORD)
    for pad in (None, oaep(hashes.SHA1)):
        r = eseal(api, [sid], pfx, encrypt_password(api, "wrong password", pad), as_pdf=True)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_pfx"
    # OAEP with SHA-256 is not a padding the service decrypts (SoftHSM2 cannot): a clear refusal.
    r = eseal(api, [sid], pfx, encrypt_password(api, PASSWORD, oaep(hashes.SHA256)), as_pdf=True)
    assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_password_encryption", "invalid_pfx")
    # (garbage of the right size decrypts to noise: implicit rejection, so it surfaces as invalid_pfx)
    r = eseal(api, [sid], pfx, base64.b64encode(b"\x01" * 10).decode(), as_pdf=True)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_password_encryption"
    r = eseal(api, [sid], b"not a pfx", encrypt_password(api, PASSWORD), as_pdf=True)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_pfx"
    assert [d["name"] for d in api.list(sid)] == ["a.pdf"]
