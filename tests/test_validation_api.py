"""Validation over HTTP: the eParaksts Validation API (v1, v2) on documents signed through the
SignAPI, and the direct /v1/validations endpoint with tampered, revoked, expired, foreign and
incomplete inputs, the relying party's trust anchors, and the ``remotesign validate`` command."""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, SignApi, issue_card, make_key, sign_bb


@pytest.fixture(scope="module")
def api(service: Service, demo_token: str) -> SignApi:
    return SignApi(service, demo_token)


@pytest.fixture(scope="module")
def card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("card"), "rsa", cn="Anna Validatora")


@pytest.fixture(scope="module")
def signed_pdf(api: SignApi, card: Card) -> tuple[str, str, bytes]:
    """A PAdES B-LT made through the SignAPI: (session, document id, bytes)."""
    sid = api.start()
    api.upload(sid, "contract.pdf", pdf_bytes(pages=1))
    api.sign_sessions([sid], card, sign_as_pdf=True)
    entry, content = api.result(sid)
    return sid, entry["id"], content


@pytest.fixture(scope="module")
def signed_asice(api: SignApi, card: Card) -> tuple[str, str, bytes]:
    sid = api.start()
    api.upload(sid, "a.txt", b"first file\n")
    api.upload(sid, "b.xml", b"<invoice>42</invoice>")
    api.sign_sessions([sid], card, sign_as_pdf=False, create_new=True)
    entry, content = api.result(sid)
    return sid, entry["id"], content


def validate_v(api: SignApi, sid: str, doc_id: str, version: str = "v1.0") -> httpx.Response:
    return api.client.get(f"/api-validation/{version}/{sid}/{doc_id}/validate")


def direct(api: SignApi, name: str, content: bytes, *, extra: list[tuple[str, tuple[str, bytes]]] | None = None,
           data: dict[str, str] | None = None) -> httpx.Response:
    files = [("file", (name, content))] + list(extra or [])
    return api.client.post("/v1/validations", files=files, data=data or {})


def only_signature(report: dict[str, Any]) -> dict[str, Any]:
    assert report["signaturesCount"] == len(report["signaturesExt"]) == 1, report
    return report["signaturesExt"][0]  # type: ignore[no-any-return]


def test_signapi_pdf_validates_total_passed_at_lt_then_lta(api: SignApi, signed_pdf: tuple[str, str, bytes]) -> None:
    sid, doc_id, _ = signed_pdf
    r = validate_v(api, sid, doc_id)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    sig = only_signature(data)
    assert list(data) [0] == "signaturesExt"
    assert (sig["indication"], sig["subIndication"]) == ("TOTAL-PASSED", None), sig
    assert sig["signatureFormat"] == "PAdES_BASELINE_LT"
    assert sig["signedBy"] == "Anna Validatora" and sig["signerSerialNumber"] == "PNOLV-010101-12345"
    assert sig["signatureLevel"] == "ADESIG"        # QC statements, but no trusted list says so
    info = sig["info"]
    for key in ("bestSignatureTime", "timestampCreationTime", "ocspResponseCreationTime",
                "timeAssertionMessageImprint"):
        assert info.get(key), (key, info)
    datetime.strptime(info["bestSignatureTime"], "%d.%m.%Y. %H:%M:%S")
    assert data["signatureForm"] == "PAdES" and data["validSignaturesCount"] == 1
    assert data["validatedDocument"] == {"filename": "contract.pdf"}
    assert data["validationLevel"] == "ARCHIVAL_DATA"

    assert api.archive([sid]).status_code == 200
    doc_id = api.list(sid)[0]["id"]
    v2 = validate_v(api, sid, doc_id, "v2.0").json()["data"]
    sig = only_signature(v2)
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", "PAdES_BASELINE_LTA"), sig
    assert sig["signerExt"]["commonName"] == "Anna Validatora"
    certificate = x509.load_der_x509_certificate(base64.b64decode(sig["signerExt"]["certificate"]))
    assert sig["signerExt"]["certificateSerialNumber"] == format(certificate.serial_number, "x")
    personal_code = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    assert sig["signerExt"]["serialNumber"] == (personal_code[0].value if personal_code else None)
    assert {t["type"] for t in sig["timestamps"]} >= {"SIGNATURE_TIMESTAMP", "DOCUMENT_TIMESTAMP"}
    assert datetime.fromisoformat(v2["validationTime"].replace("Z", "+00:00")).tzinfo is not None


def test_signapi_asice_validates_total_passed(api: SignApi, signed_asice: tuple[str, str, bytes]) -> None:
    sid, doc_id, _ = signed_asice
    data = validate_v(api, sid, doc_id).json()["data"]
    sig = only_signature(data)
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", "XAdES_BASELINE_LT"), sig
    assert data["signatureForm"] == "ASiC-E"
    assert sorted(f["filename"] for f in data["includedFiles"]) == ["a.txt", "b.xml"]
    assert api.archive([sid]).status_code == 200
    data = validate_v(api, sid, api.list(sid)[0]["id"]).json()["data"]
    assert only_signature(data)["signatureFormat"] == "XAdES_BASELINE_LTA"
    assert only_signature(data)["indication"] == "TOTAL-PASSED"


def test_b_level_xades_has_no_best_signature_time(api: SignApi) -> None:
    corpus = Path(__file__).parent / "data" / "conformance" / "files" / "dss-xades-nochain-01.xml"
    sig = only_signature(direct(api, corpus.name, corpus.read_bytes()).json()["simpleReport"])
    assert (sig["signatureFormat"], sig["subIndication"]) == ("XAdES_BASELINE_B", "NO_CERTIFICATE_CHAIN_FOUND")
    assert "bestSignatureTime" not in sig["info"], sig


def test_unsigned_and_unknown_documents_get_clear_errors(api: SignApi) -> None:
    sid = api.start()
    doc = api.upload(sid, "plain.pdf", pdf_bytes())["data"]
    r = validate_v(api, sid, doc["id"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "not_signed", r.text
    assert r.json()["data"] is None
    r = validate_v(api, sid, "0" * 32)
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"
    r = direct(api, "noise.bin", b"\x01\x02 not a signature")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_format"
    r = api.client.post("/v1/validations", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_multipart", "invalid_request")


def test_tampered_pdf_is_hash_failure(api: SignApi, signed_pdf: tuple[str, str, bytes]) -> None:
    content = bytearray(signed_pdf[2])
    at = content.index(b"BT")                       # inside the page content stream, which is signed
    content[at:at + 2] = b"bt"
    sig = only_signature(direct(api, "tampered.pdf", bytes(content)).json()["simpleReport"])
    assert (sig["indication"], sig["subIndication"]) == ("TOTAL-FAILED", "HASH_FAILURE"), sig


def _signature_value_offset(pdf: bytes) -> int:
    """Offset in the file of a hex digit inside the first signature's SignatureValue."""
    start = pdf.index(b"/Contents <") + len(b"/Contents <")
    end = pdf.index(b">", start)
    der = bytes.fromhex(pdf[start:end].decode())
    info = cms.ContentInfo.load(der.rstrip(b"\x00"))
    value = info["content"]["signer_infos"][0]["signature"].native
    return start + 2 * der.index(value) + 10


def test_wrong_signature_value_is_sig_crypto_failure(api: SignApi, signed_pdf: tuple[str, str, bytes]) -> None:
    content = bytearray(signed_pdf[2])
    at = _signature_value_offset(bytes(content))
    content[at:at + 1] = b"0" if content[at:at + 1] != b"0" else b"1"
    sig = only_signature(direct(api, "badvalue.pdf", bytes(content)).json()["simpleReport"])
    assert (sig["indication"], sig["subIndication"]) == ("TOTAL-FAILED", "SIG_CRYPTO_FAILURE"), sig


def test_file_removed_from_container_is_signed_data_not_found(api: SignApi,
                                                               signed_asice: tuple[str, str, bytes]) -> None:
    source = zipfile.ZipFile(io.BytesIO(signed_asice[2]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename != "b.xml":
                target.writestr(info, source.read(info.filename))
    sig = only_signature(direct(api, "missing.asice", out.getvalue()).json()["simpleReport"])
    assert (sig["indication"], sig["subIndication"]) == ("INDETERMINATE", "SIGNED_DATA_NOT_FOUND"), sig


def test_revoked_signer_without_poe_is_revoked_no_poe(api: SignApi, service: Service, tmp_path: Path) -> None:
    card = issue_card(service, tmp_path, "p256", cn="Revoked Signer")
    pdf = sign_bb(card)
    sig = only_signature(direct(api, "bb.pdf", pdf).json()["simpleReport"])
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", "PAdES_BASELINE_B"), sig
    assert "bestSignatureTime" not in sig["info"]          # B-B: nothing proves when it existed
    service.cli("pki", "revoke", format(card.cert.serial_number, "x"), "--reason", "key_compromise")
    sig = only_signature(direct(api, "bb.pdf", pdf).json()["simpleReport"])
    assert (sig["indication"], sig["subIndication"]) == ("INDETERMINATE", "REVOKED_NO_POE"), sig


def test_expired_signer_without_poe_is_out_of_bounds(api: SignApi, service: Service, tmp_path: Path) -> None:
    key = make_key("rsa")
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "Short Lived"), x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOLV-020202-22222")])).sign(key, hashes.SHA256())
    (tmp_path / "s.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    pem = service.cli("pki", "issue", "--csr", str(tmp_path / "s.csr"), "--profile", "qualified-person",
                      "--days", "1").stdout
    card = Card(key, x509.load_pem_x509_certificate(pem))
    later = (card.cert.not_valid_after_utc + timedelta(days=1)).isoformat()
    sig = only_signature(direct(api, "old.pdf", sign_bb(card), data={"at": later}).json()["simpleReport"])
    assert (sig["indication"], sig["subIndication"]) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE"), sig


def foreign_card() -> tuple[Card, x509.Certificate]:
    """A signer under a CA the service has never heard of."""
    root_key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Partner Root CA")])
    now = datetime.now(timezone.utc)
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(root_key, hashes.SHA256()))
    key = make_key("rsa")
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Partner User")]))
            .issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=10))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .sign(root_key, hashes.SHA256()))
    return Card(key, leaf), root


def test_unknown_root_then_tenant_anchor(api: SignApi, service: Service) -> None:
    card, root = foreign_card()
    pdf = sign_bb(card, [root])
    sig = only_signature(direct(api, "foreign.pdf", pdf).json()["simpleReport"])
    assert (sig["indication"], sig["subIndication"]) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"), sig

    root_pem = root.public_bytes(serialization.Encoding.PEM)
    sig = only_signature(direct(api, "foreign.pdf", pdf, extra=[("trust", ("root.pem", root_pem))])
                         .json()["simpleReport"])
    assert sig["subIndication"] != "NO_CERTIFICATE_CHAIN_FOUND", sig     # chain found; no revocation data

    r = api.client.post("/v1/trust-anchors", json={"certificate": root_pem.decode()})
    assert r.status_code == 201, r.text
    anchor_id = r.json()[0]["id"]
    assert [a["id"] for a in api.client.get("/v1/trust-anchors").json()] == [anchor_id]
    sig = only_signature(direct(api, "foreign.pdf", pdf).json()["simpleReport"])
    assert sig["subIndication"] != "NO_CERTIFICATE_CHAIN_FOUND", sig

    other = service.new_client("Other Bank")
    other_api = SignApi(service, service.token(other["client_id"], other["client_secret"]))
    assert other_api.client.get("/v1/trust-anchors").json() == []
    sig = only_signature(direct(other_api, "foreign.pdf", pdf).json()["simpleReport"])
    assert sig["subIndication"] == "NO_CERTIFICATE_CHAIN_FOUND", sig     # one tenant's anchors stay its own
    assert other_api.client.delete(f"/v1/trust-anchors/{anchor_id}").status_code == 404
    assert api.client.delete(f"/v1/trust-anchors/{anchor_id}").status_code == 204
    r = api.client.post("/v1/trust-anchors", json={"certificate": "bm90IGEgY2VydA=="})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_certificate"


def test_detailed_and_etsi_reports(api: SignApi, signed_pdf: tuple[str, str, bytes]) -> None:
    r = direct(api, "contract.pdf", signed_pdf[2], data={"report": "detailed"})
    detailed = r.json()["detailedReport"]["signatures"][0]
    blocks = detailed["buildingBlocks"]
    for block in ("FORMAT_CHECKING", "IDENTIFICATION_OF_SIGNING_CERTIFICATE", "X509_CERTIFICATE_VALIDATION",
                  "CRYPTOGRAPHIC_VERIFICATION"):
        assert blocks[block]["indication"] == "TOTAL-PASSED", (block, blocks)
    assert "Common Name: Anna Validatora" in detailed["certificateChain"][0]["subject"]
    r = direct(api, "contract.pdf", signed_pdf[2], data={"report": "etsi"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(r.content)
    indications = [e.text for e in root.iter("{*}MainIndication")]
    assert "urn:etsi:019102:mainindication:total-passed" in indications, r.text[:500]


def test_cli_validate(service: Service, signed_pdf: tuple[str, str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "contract.pdf"
    path.write_bytes(signed_pdf[2])
    proc = service.cli("validate", str(path))
    assert b"TOTAL-PASSED" in proc.stdout and proc.returncode == 0
    proc = service.cli("validate", "--json", str(path))
    import json
    data = json.loads(proc.stdout)
    assert list(data)[0] == "signaturesExt" and data["signaturesExt"][0]["indication"] == "TOTAL-PASSED"
    tampered = bytearray(signed_pdf[2])
    at = tampered.index(b"BT")
    tampered[at:at + 2] = b"bt"
    path.write_bytes(bytes(tampered))
    proc = service.cli("validate", str(path), check=False)
    assert proc.returncode == 1 and b"HASH_FAILURE" in proc.stdout
    proc = service.cli("validate", "--standalone", str(tmp_path / "nothing.pdf"), check=False)
    assert proc.returncode == 2


def test_operator_declares_builtin_ca_qualified_with_a_local_trusted_list(service: Service, card: Card,
                                                                           signed_pdf: tuple[str, str, bytes],
                                                                           tmp_path: Path) -> None:
    """``remotesign trust local-tl`` + REMOTESIGN_TRUSTED_LISTS: the built-in CA's qualified-person
    certificates (QC statements, QSCD) become QESIG; without the list they stay ADESIG."""
    import json

    from tests.harness import cli

    tl = tmp_path / "local-tl.xml"
    service.cli("trust", "local-tl", "--out", str(tl))
    pdf = tmp_path / "contract.pdf"
    pdf.write_bytes(signed_pdf[2])
    env = {**service.env, "REMOTESIGN_TRUSTED_LISTS": str(tl)}
    data = json.loads(cli(service.home, "validate", "--json", str(pdf), env=env).stdout)
    sig = data["signaturesExt"][0]
    assert (sig["indication"], sig["signatureLevel"]) == ("TOTAL-PASSED", "QESIG"), sig
    data = json.loads(service.cli("validate", "--json", str(pdf)).stdout)
    assert data["signaturesExt"][0]["signatureLevel"] == "ADESIG"
    service.cli("trust", "local-tl", "--out", str(tl), "--no-qscd")
    data = json.loads(cli(service.home, "validate", "--json", str(pdf), env=env).stdout)
    assert data["signaturesExt"][0]["signatureLevel"] == "ADESIG_QC"


def test_online_revocation_fetching_is_cached(service: Service, card: Card, http: httpx.Client) -> None:
    """With fetching allowed, OCSP comes over HTTP from the certificate's AIA URL, once: the
    second validation is answered from the cache, and an unreachable responder costs at most the
    timeout, also only once."""
    from asn1crypto import ocsp

    from remotesign.trust.revocation_source import OnlineRevocation
    from remotesign.trust.revocation import load_certificates

    chain = load_certificates(http.get("/pki/ca.pem").content)
    leaf = asn1_x509.Certificate.load(card.cert.public_bytes(serialization.Encoding.DER))
    calls: list[str] = []

    class Counting(OnlineRevocation):
        def _fetch(self, cert, issuer):  # type: ignore[no-untyped-def]
            calls.append(cert.subject.human_friendly)
            return super()._fetch(cert, issuer)

    fetcher = Counting(timeout=5)
    data = fetcher([leaf, *chain])
    assert len(data.ocsp_responses) == 1
    response = ocsp.OCSPResponse.load(data.ocsp_responses[0])
    assert response["response_status"].native == "successful"
    assert response.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].name == "good"
    fetcher([leaf, *chain])
    assert len([c for c in calls if "Anna Validatora" in c]) == 1

    started = datetime.now(timezone.utc)
    offline = Counting(timeout=0.5)
    root_key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unreachable CA")])
    now = datetime.now(timezone.utc)
    issuer = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(root_key.public_key())
              .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(root_key, hashes.SHA256()))
    user = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "U")]))
            .issuer_name(name).public_key(make_key("p256").public_key()).serial_number(2)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                x509.oid.AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier("http://10.255.255.1:9/ocsp"))]), critical=False)
            .sign(root_key, hashes.SHA256()))
    as_asn1 = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in (user, issuer)]
    assert offline(as_asn1).is_empty()
    assert offline(as_asn1).is_empty()
    assert calls.count("Common Name: U") == 1
    # a hang guard, not a speed test: two unreachable fetches at 0.5 s each, the second from the cache
    assert (datetime.now(timezone.utc) - started).total_seconds() < 120


# --- changes after signing, and validation policies, over HTTP -----------------------------------------------
def _pay_update(pdf: bytes) -> bytes:
    """The attack of issue 11: an update that adds 'PAY 1000000 EUR' to page 1's content."""
    import re

    from tests import pdf_forge as forge

    n = forge.next_object_number(pdf)
    page = re.sub(rb"/Contents\s*(\[[^\]]*\]|\d+ \d+ R)", b"/Contents [5 0 R %d 0 R]" % n,
                  forge.object_body(pdf, 4), count=1)
    return forge.incremental_update(pdf, {n: forge.stream(b"BT /F1 24 Tf 72 600 Td (PAY 1000000 EUR) Tj ET"), 4: page})


def test_content_added_to_a_service_b_lta_fails_in_every_api(api: SignApi, card: Card, service: Service,
                                                            tmp_path: Path) -> None:
    sid = api.start()
    api.upload(sid, "contract.pdf", pdf_bytes(pages=1))
    api.sign_sessions([sid], card, sign_as_pdf=True)
    assert api.archive([sid]).status_code == 200
    lta = api.result(sid)[1]
    forged = _pay_update(lta)

    r = direct(api, "forged.pdf", forged, data={"report": "detailed"})
    assert r.status_code == 200, r.text
    sig = only_signature(r.json()["simpleReport"])
    assert (sig["indication"], sig["subIndication"], sig["signatureFormat"]) == (
        "TOTAL-FAILED", "FORMAT_FAILURE", "PAdES_BASELINE_LTA"), sig
    assert any("page 1" in e["content"] and "Revision" in e["content"] for e in sig["errors"]), sig["errors"]
    changes = r.json()["detailedReport"]["signatures"][0]["changesAfterSigning"]
    refused = [c for c in changes if not c["allowed"]]
    assert refused and refused[0]["page"] == 1 and refused[0]["object"] == "4 0 R" and refused[0]["kind"] == "page"
    assert any(c["allowed"] and "document time-stamp" in c["description"] for c in changes)
    etsi = direct(api, "forged.pdf", forged, data={"report": "etsi"}).content
    assert b"total-failed" in etsi and b"FORMAT_FAILURE" in etsi and b"page 1" in etsi

    session = api.start()
    doc = api.upload(session, "forged.pdf", forged)
    doc_id = doc["data"]["id"] if "data" in doc else doc["id"]
    v1 = only_signature(validate_v(api, session, doc_id).json()["data"])
    assert (v1["indication"], v1["subIndication"]) == ("TOTAL-FAILED", "FORMAT_FAILURE")
    v2 = only_signature(validate_v(api, session, doc_id, "v2.0").json()["data"])
    assert (v2["indication"], v2["subIndication"]) == ("TOTAL-FAILED", "FORMAT_FAILURE")
    lenient = only_signature(api.client.get(f"/api-validation/v1.0/{session}/{doc_id}/validate",
                                            params={"policy": "dss"}).json()["data"])
    assert lenient["indication"] == "TOTAL-PASSED" and any("page 1" in w["content"] for w in lenient["warnings"])
    bogus = api.client.get(f"/api-validation/v1.0/{session}/{doc_id}/validate", params={"policy": "/etc/passwd"})
    assert bogus.status_code == 400 and "invalid_policy" in bogus.text

    path = tmp_path / "forged.pdf"
    path.write_bytes(forged)
    cli = service.cli("validate", str(path), check=False)
    assert cli.returncode == 1 and b"FORMAT_FAILURE" in cli.stdout and b"page 1" in cli.stdout, cli


def test_validation_policy_per_request(api: SignApi, signed_pdf: tuple[str, str, bytes]) -> None:
    forged = _pay_update(signed_pdf[2])
    strict = only_signature(direct(api, "f.pdf", forged).json()["simpleReport"])
    assert (strict["indication"], strict["subIndication"]) == ("TOTAL-FAILED", "FORMAT_FAILURE")
    policy = b'name = "mine"\n[checks]\n"pdf.disallowed_change" = "WARN"\n'
    lenient = direct(api, "f.pdf", forged, extra=[("policy", ("mine.toml", policy))])
    assert only_signature(lenient.json()["simpleReport"])["indication"] == "TOTAL-PASSED", lenient.text
    named = direct(api, "f.pdf", forged, data={"policy": "dss"})
    assert only_signature(named.json()["simpleReport"])["indication"] == "TOTAL-PASSED"
    broken = direct(api, "f.pdf", forged, extra=[("policy", ("mine.toml", b'name = "x"\n[checks]\n"pdf.x" = 1\n'))])
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_policy", broken.text
    assert "mine.toml, line 3" in broken.text, broken.text
    unknown = direct(api, "f.pdf", forged, data={"policy": "nonsense"})
    assert unknown.status_code == 400 and "built-in policies" in unknown.text


def test_container_checks_follow_the_policy(api: SignApi, signed_asice: tuple[str, str, bytes]) -> None:
    """A file slipped into a signed ASiC-E afterwards: a warning by default, a failure when the
    policy says so (asic.file_not_signed = FAIL)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(signed_asice[2])) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr("later.txt", b"added after signing\n")
    container = out.getvalue()
    default = only_signature(direct(api, "c.asice", container).json()["simpleReport"])
    assert default["indication"] == "TOTAL-PASSED"
    assert any("later.txt" in w["content"] for w in default["warnings"]), default
    policy = b'name = "whole-container"\n[checks]\n"asic.file_not_signed" = "FAIL"\n'
    strict = only_signature(direct(api, "c.asice", container, extra=[("policy", ("p.toml", policy))])
                            .json()["simpleReport"])
    assert (strict["indication"], strict["subIndication"]) == ("TOTAL-FAILED", "FORMAT_FAILURE"), strict
    assert any("later.txt" in e["content"] for e in strict["errors"])
