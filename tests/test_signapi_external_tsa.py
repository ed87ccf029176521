"""finalizeSigning with a configured RFC 3161 TSA reached over HTTP (REMOTESIGN_TSA_URL): here the
TSA of another remotesign instance, whose CA this instance trusts through REMOTESIGN_TRUST_ANCHORS.
The LT data then covers the foreign TSA's chain, fetched over HTTP (OCSP from its AIA)."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asn1crypto import cms
from lxml import etree

from tests.harness import Service, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi, issue_card
from tests.test_signapi_asice import check_container, verify_all_signatures
from tests.verifiers import root_of
from tests.verifiers import pyhanko_pdf, signature_timestamp_of_cms
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


@pytest.fixture(scope="module")
def tsa_ca(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tsa") / "tsa-ca.pem"
    path.write_bytes(httpx.get(service.url + "/pki/ca.pem").content)
    return path


@pytest.fixture(scope="module")
def signer_service(service: Service, tsa_ca: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(home=tmp_path_factory.mktemp("ext-tsa"), port=free_port(),
                  env={"REMOTESIGN_TSA_URL": service.url + "/pki/tsa",
                       "REMOTESIGN_TRUST_ANCHORS": str(tsa_ca)}).start()
    yield svc
    svc.stop()


def test_pades_and_xades_with_external_tsa(service: Service, signer_service: Service, tsa_ca: Path,
                                           tmp_path: Path) -> None:
    demo = signer_service.demo_client()
    api = SignApi(signer_service, signer_service.token(demo["client_id"], demo["client_secret"]))
    card = issue_card(signer_service, tmp_path, "rsa")
    own_ca = httpx.get(signer_service.url + "/pki/ca.pem").content
    tsa_pem = tsa_ca.read_bytes()

    pdf_sid, edoc_sid = api.start(2)
    api.upload(pdf_sid, "a.pdf", pdf_bytes())
    api.upload(edoc_sid, "a.txt", b"text\n")
    api.sign_sessions([pdf_sid], card, sign_as_pdf=True)
    api.sign_sessions([edoc_sid], card, sign_as_pdf=False)

    _, pdf = api.result(pdf_sid)
    verdict = pyhanko_pdf(pdf, root_of(own_ca))
    token, _ = signature_timestamp_of_cms(verdict["signature"].signed_data)
    signed = cms.ContentInfo.load(token)["content"]
    serial = signed["signer_infos"][0]["sid"].chosen["serial_number"].native
    tsa_cert = next(c.chosen for c in signed["certificates"] if c.chosen.serial_number == serial)
    from asn1crypto import pem as apem

    own_tsa = apem.unarmor(httpx.get(signer_service.url + "/pki/tsa.pem").content)[2]
    their_tsa = apem.unarmor(httpx.get(service.url + "/pki/tsa.pem").content)[2]
    assert tsa_cert.dump() == their_tsa != own_tsa
    status = validate_pdf_signature(verdict["signature"], ValidationContext(
        trust_roots=[root_of(own_ca), root_of(tsa_pem)], allow_fetching=False))
    assert status.intact and status.trusted and status.timestamp_validity.trusted, status.summary()
    # The foreign TSA's certificate and an OCSP response for it are in the DSS.
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    assert any(c.dump() == tsa_cert.dump() for c in dss.load_certs())
    assert len(dss.ocsps) >= 2

    _, edoc = api.result(edoc_sid)
    verify_all_signatures(tmp_path, check_container(edoc), own_ca)
    sig = etree.fromstring(zipfile.ZipFile(io.BytesIO(edoc)).read("META-INF/signatures0.xml"))
    embedded = [base64.b64decode(e.text) for e in sig.iter("{http://uri.etsi.org/01903/v1.3.2#}EncapsulatedX509Certificate")]
    assert tsa_cert.dump() in embedded
