"""eParaksts two-step PAdES signing over HTTP: upload -> CalculateDigest -> the test signs with its
own key (a smart card) -> finalizeSigning (B-LT) -> addArchive (B-LTA) -> download, checked by
pyHanko, poppler's pdfsig and openssl."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, SignApi, issue_card
from tests.verifiers import root_of, openssl_ts_verify, pdfsig, pyhanko_pdf, signature_timestamp_of_cms, tst_imprint


@pytest.fixture(scope="module")
def api(service: Service, demo_token: str) -> SignApi:
    return SignApi(service, demo_token)


@pytest.fixture(scope="module")
def ca_pem(http: httpx.Client) -> bytes:
    r = http.get("/pki/ca.pem")
    assert r.status_code == 200
    return r.content


@pytest.fixture(scope="module")
def rsa_card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("card"), "rsa")


@pytest.fixture(scope="module")
def ec_card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("card"), "p256", cn="Janis Berzins")


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_pdf_to_lt_then_lta(api: SignApi, kind: str, rsa_card: Card, ec_card: Card, ca_pem: bytes,
                            tmp_path: Path) -> None:
    card = rsa_card if kind == "rsa" else ec_card
    sid = api.start()
    api.upload(sid, "līgums.pdf", pdf_bytes(pages=2))
    r = api.calculate([sid], card, sign_as_pdf=True)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    digest = base64.b64decode(data["sessionDigests"][0]["digest"])
    assert data["algorithm"] == "SHA256" and len(digest) == 32
    assert data["signature_algorithm"] == ("rsa-sha256" if kind == "rsa" else "ecdsa")
    assert base64.b64decode(data["digests_summary"]) == hashlib.sha256(digest).digest()

    value = card.sign(digest, raw_ecdsa=(kind == "ec"))  # raw r||s must be accepted too
    r = api.finalize({sid: value})
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"results": [{"sessionId": sid}]}}

    info, lt = api.result(sid)
    assert info["name"] == "līgums.pdf" and info["size"] == len(lt)
    root = root_of(ca_pem)
    verdict = pyhanko_pdf(lt, root)
    assert verdict["intact"] and verdict["trusted"] and verdict["timestamped"], verdict["summary"]
    assert verdict["has_dss"] and verdict["doc_timestamps"] == 0
    (tmp_path / "lt.pdf").write_bytes(lt)
    assert "Signature is Valid." in pdfsig(tmp_path / "lt.pdf")

    token, covered = signature_timestamp_of_cms(verdict["signature"].signed_data)
    assert tst_imprint(token)[1] == hashlib.new(tst_imprint(token)[0], covered).digest()
    assert "Verification: OK" in openssl_ts_verify(tmp_path, token, covered, ca_pem)

    r = api.archive([sid])
    assert r.status_code == 200, r.text
    _, lta = api.result(sid)
    assert lta.startswith(lt)  # incremental update: the B-LT revision is untouched
    verdict = pyhanko_pdf(lta, root)
    assert verdict["doc_timestamps"] == 1 and verdict["lta"] == "PASSED/OK", verdict
    (tmp_path / "lta.pdf").write_bytes(lta)
    out = pdfsig(tmp_path / "lta.pdf")
    assert out.count("Signature is Valid.") >= 1


def test_batch_of_three_sessions(api: SignApi, rsa_card: Card, ca_pem: bytes) -> None:
    sids = api.start(3)
    assert len(sids) == 3 and all(len(s) == 64 and int(s, 16) >= 0 for s in sids)
    for i, sid in enumerate(sids):
        api.upload(sid, f"doc{i}.pdf", pdf_bytes(text=f"batch document {i}"))
    data = api.sign_sessions(sids, rsa_card, sign_as_pdf=True)
    digests = [base64.b64decode(d["digest"]) for d in data["sessionDigests"]]
    assert len(set(digests)) == 3
    assert base64.b64decode(data["digests_summary"]) == hashlib.sha256(b"".join(digests)).digest()
    root = root_of(ca_pem)
    for sid in sids:
        _, signed = api.result(sid)
        verdict = pyhanko_pdf(signed, root)
        assert verdict["intact"] and verdict["trusted"] and verdict["has_dss"], verdict["summary"]


def test_wrong_value_then_right_value_and_replay(api: SignApi, rsa_card: Card, tmp_path: Path) -> None:
    sid = api.start()
    api.upload(sid, "a.pdf", pdf_bytes())
    data = api.calculate([sid], rsa_card, sign_as_pdf=True).json()["data"]
    digest = base64.b64decode(data["sessionDigests"][0]["digest"])
    wrong = rsa_card.sign(hashlib.sha256(b"something else").digest())
    r = api.finalize({sid: wrong})
    assert r.status_code == 400
    assert r.json()["data"]["results"][0]["error"]["code"] == "invalid_signature_value"
    assert [d["name"] for d in api.list(sid)] == ["a.pdf"]  # nothing signed, input untouched

    right = rsa_card.sign(digest)
    assert api.finalize({sid: right}).status_code == 200
    _, first = api.result(sid)
    # A replay (client retry) returns the same result and never signs twice.
    r = api.finalize({sid: right})
    assert r.status_code == 200, r.text
    _, again = api.result(sid)
    assert again == first
    assert len(PdfFileReader(io.BytesIO(again)).embedded_signatures) == 1
    # Another value for an already finalized session is refused.
    r = api.finalize({sid: wrong})
    assert r.status_code == 409
    assert r.json()["data"]["results"][0]["error"]["code"] == "already_finalized"


@pytest.mark.slow
def test_second_signature_on_signed_pdf(api: SignApi, rsa_card: Card, ec_card: Card, ca_pem: bytes) -> None:
    sid = api.start()
    api.upload(sid, "two.pdf", pdf_bytes())
    api.sign_sessions([sid], rsa_card, sign_as_pdf=True)
    api.sign_sessions([sid], ec_card, sign_as_pdf=True)
    _, signed = api.result(sid)
    reader = PdfFileReader(io.BytesIO(signed))
    assert len(reader.embedded_regular_signatures) == 2
    root = root_of(ca_pem)
    for sig in reader.embedded_regular_signatures:
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root], allow_fetching=False))
        assert status.intact and status.valid and status.trusted, status.summary()
