"""The Fortress-style Extend Signature API over HTTP: the client token as Fortress clients ask for
it, extension of PDFs signed elsewhere (pyHanko) to T, LT and LTA checked by pdfsig, pyHanko and
remotesign's validator, refusal of tampered, revoked and untrusted signatures, the PKCS1 time-stamp
checked by ``openssl ts -verify``, and the errors in the vendor's shape."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509

from tests.harness import Service
from tests.signapi import Card, issue_card, sign_bb

EXTEND = "/fortress/api/v1/signature/extend"


@pytest.fixture(scope="module")
def fortress(service: Service) -> httpx.Client:
    """A client holding a Fortress client token, obtained with query parameters as the vendor documents."""
    demo = service.demo_client()
    r = httpx.post(service.url + "/fortress/oauth2/v1/token", params={
        "scope": "client", "redirect_uri": "https://rp.example/cb", "client_id": demo["client_id"],
        "client_secret": demo["client_secret"], "grant_type": "client_credentials"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int) and body["access_token"]
    client = httpx.Client(base_url=service.url, timeout=120,
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    yield client
    client.close()


@pytest.fixture(scope="module")
def card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("fortress"), "p256", cn="Fortress Signer")


def extend(client: httpx.Client, data: bytes, signature_type: str, name: str = "contract.pdf",
           **extra: Any) -> httpx.Response:
    config = {"document": {"bytesB64": base64.b64encode(data).decode(), "name": name},
              "signatureType": signature_type, "signatureAlgorithm": "RSA_SHA256", "packaging": "ENVELOPED", **extra}
    return client.post(EXTEND, json={"extendSignatureConfigurations": [config]})


def extended(response: httpx.Response) -> bytes:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"ref", "bytesB64"} and len(body["ref"]) == 32
    return base64.b64decode(body["bytesB64"])


def validate(client: httpx.Client, service: Service, data: bytes) -> list[dict[str, Any]]:
    """remotesign's validator over its eParaksts-style HTTP API, as a relying party would."""
    token = service.token(service.demo_client()["client_id"], service.demo_client()["client_secret"])
    r = httpx.post(service.url + "/v1/validations", files=[("file", ("x.pdf", data))],
                   headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()["simpleReport"]["signaturesExt"]  # type: ignore[no-any-return]


def pdfsig_ok(data: bytes, tmp_path: Path, ca_pem: bytes) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdfsig", "-nocert", str(path)], capture_output=True, text=True, check=False).stdout
    assert "Signature is Valid." in out, out
    return out


@pytest.mark.parametrize("level", ["T", "LT", "LTA"])
def test_extend_pyhanko_pdf(fortress: httpx.Client, service: Service, card: Card, ca_pem: bytes, level: str,
                            tmp_path: Path) -> None:
    source = sign_bb(card)
    result = extended(extend(fortress, source, f"PADES_{level}"))
    assert result.startswith(source), "the original revision must stay byte for byte"
    pdfsig_ok(result, tmp_path, ca_pem)
    roots = [asn1_x509.Certificate.load(der) for _, _, der in asn1_pem.unarmor(ca_pem, multiple=True)]
    vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    status = validate_pdf_signature(PdfFileReader(io.BytesIO(result)).embedded_regular_signatures[0], vc)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    [sig] = validate(fortress, service, result)
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", f"PAdES_BASELINE_{level}"), sig


def test_lta_is_renewed(fortress: httpx.Client, service: Service, card: Card, ca_pem: bytes, tmp_path: Path) -> None:
    lta = extended(extend(fortress, sign_bb(card), "PADES_LTA"))
    renewed = extended(extend(fortress, lta, "PADES_LTA"))
    assert renewed.startswith(lta)
    stamps = PdfFileReader(io.BytesIO(renewed)).embedded_timestamp_signatures
    assert len(stamps) == len(PdfFileReader(io.BytesIO(lta)).embedded_timestamp_signatures) + 1
    [sig] = validate(fortress, service, renewed)
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", "PAdES_BASELINE_LTA"), sig


def refused(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and fragment in body["error_description"], body


def test_tampered_pdf_is_refused(fortress: httpx.Client, card: Card) -> None:
    source = bytearray(sign_bb(card))
    at = source.index(b"/Type /Page") if b"/Type /Page" in source else len(source) // 3
    source[at + 1:at + 5] = b"XXXX"  # inside the signed byte range
    refused(extend(fortress, bytes(source), "PADES_LT"), "signature_not_valid")


def test_revoked_signer_is_refused(fortress: httpx.Client, service: Service, tmp_path: Path) -> None:
    card = issue_card(service, tmp_path, "p256", cn="Revoked Before Extension")
    source = sign_bb(card)
    service.cli("pki", "revoke", format(card.cert.serial_number, "x"), "--reason", "key_compromise")
    refused(extend(fortress, source, "PADES_LTA"), "signature_not_valid")


def test_untrusted_signer_is_refused(fortress: httpx.Client) -> None:
    from tests.test_validation_api import foreign_card

    foreign, root = foreign_card()
    refused(extend(fortress, sign_bb(foreign, [root]), "PADES_T"), "signature_not_valid")


def test_pkcs1_value_gets_a_verifiable_timestamp(fortress: httpx.Client, ca_pem: bytes, tmp_path: Path) -> None:
    value = hashlib.sha512(b"some signature value").digest() * 4
    token = extended(extend(fortress, value, "PKCS1", name="sig.bin"))
    (tmp_path / "value").write_bytes(value)
    (tmp_path / "token.tst").write_bytes(token)
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    out = subprocess.run(["openssl", "ts", "-verify", "-data", str(tmp_path / "value"), "-in", str(tmp_path / "token.tst"),
                          "-token_in", "-CAfile", str(tmp_path / "ca.pem"), "-untrusted", str(tmp_path / "ca.pem")],
                         capture_output=True, text=True, check=False)
    assert "Verification: OK" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("config, fragment", [
    ({"document": {"bytesB64": "%%%", "name": "x.pdf"}, "signatureType": "PADES_T"}, "Base64"),
    ({"document": {"bytesB64": "JVBERi0=", "name": "x.pdf"}, "signatureType": "PADES_B"}, "signatureType"),
    ({"document": {"bytesB64": "JVBERi0=", "name": "x.pdf"}, "signatureType": "WORD_T"}, "signatureType"),
    ({"document": {"bytesB64": "aGVsbG8=", "name": "x.txt"}, "signatureType": "PADES_T"}, "unsupported_format"),
    ({"document": {"bytesB64": "JVBERi0=", "name": "x.pdf"}, "signatureType": "PADES_T",
      "signatureAlgorithm": "DSA_MD5"}, "signatureAlgorithm"),
])
def test_bad_requests(fortress: httpx.Client, config: dict[str, Any], fragment: str) -> None:
    refused(fortress.post(EXTEND, json={"extendSignatureConfigurations": [config]}), fragment)


def test_pdf_as_cades_is_a_format_mismatch(fortress: httpx.Client, card: Card) -> None:
    refused(extend(fortress, sign_bb(card), "CADES_T"), "format_mismatch")


def test_malformed_bodies(fortress: httpx.Client) -> None:
    for body in (b"{", b"[]", b'{"extendSignatureConfigurations": []}', b'{"extendSignatureConfigurations": [{}]}'):
        r = fortress.post(EXTEND, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


def test_token_errors(service: Service) -> None:
    url = service.url + "/fortress/oauth2/v1/token"
    demo = service.demo_client()
    r = httpx.post(url, params={"client_id": demo["client_id"], "client_secret": "wrong", "grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = httpx.post(url, data={"client_id": demo["client_id"], "client_secret": demo["client_secret"],
                              "grant_type": "client_credentials", "scope": "everything"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = httpx.post(service.url + EXTEND, json={"extendSignatureConfigurations": []})
    assert r.status_code == 401 and "error_description" in r.json()
    r = httpx.post(service.url + EXTEND, json={}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


def test_stamp_on_extension_keeps_the_signature(fortress: httpx.Client, service: Service, card: Card, ca_pem: bytes,
                                                tmp_path: Path) -> None:
    """A QR stamp asked with the extension shows on the page (decoded back with zbarimg) and the
    signature it was added after still verifies (pdfsig, remotesign)."""
    import shutil

    if shutil.which("zbarimg") is None:
        pytest.skip("zbar-tools is installed by scripts/test.sh")
    source = sign_bb(card)
    r = extend(fortress, source, "PADES_LT", padesConfiguration={"stamper": {
        "type": "QR", "csvPath": "https://verify.example/v#", "page": 1, "xAxis": 100, "yAxis": 400}})
    result = extended(r)
    ref = r.json()["ref"]
    assert result.startswith(source)
    out = pdfsig_ok(result, tmp_path, ca_pem)
    assert "Signature Field Name: Timestamp1" in out, out  # the stamped document time-stamp (B -> T)
    (tmp_path / "stamped.pdf").write_bytes(result)
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(tmp_path / "stamped.pdf"),
                    str(tmp_path / "page")], check=True)
    page = next(tmp_path.glob("page*.png"))
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(page)], capture_output=True, text=True).stdout
    assert f"https://verify.example/v#{ref}" in decoded, decoded
    sigs = validate(fortress, service, result)
    assert [(s["indication"], s["signatureFormat"]) for s in sigs] == [("TOTAL-PASSED", "PAdES_BASELINE_LT")], sigs


def test_bad_stamper_is_refused(fortress: httpx.Client, card: Card) -> None:
    refused(extend(fortress, sign_bb(card), "PADES_T", padesConfiguration={"stamper": {"type": "HOLOGRAM"}}),
            "stamper")


# --- CAdES and XAdES made elsewhere, over HTTP ---------------------------------------------------------

def _card_files(card: Card, tmp_path: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    cert, key = tmp_path / "card.pem", tmp_path / "card.key"
    cert.write_bytes(card.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(card.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert, key


@pytest.mark.parametrize("level", ["T", "LT", "LTA"])
def test_extend_openssl_cades(fortress: httpx.Client, service: Service, card: Card, ca_pem: bytes, level: str,
                              tmp_path: Path) -> None:
    """An attached CAdES made by ``openssl cms -sign -cades`` extended over HTTP, then verified by
    openssl cms and by remotesign's validator at the level."""
    cert, key = _card_files(card, tmp_path)
    (tmp_path / "content.txt").write_bytes(b"invoice 42: 100 EUR\n" * 20)
    subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-cades", "-md", "sha256", "-in",
                    str(tmp_path / "content.txt"), "-signer", str(cert), "-inkey", str(key), "-outform", "DER",
                    "-out", str(tmp_path / "sig.p7m")], check=True, capture_output=True)
    result = extended(extend(fortress, (tmp_path / "sig.p7m").read_bytes(), f"CADES_{level}", name="sig.p7m"))
    (tmp_path / "out.p7m").write_bytes(result)
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    out = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "out.p7m"),
                          "-CAfile", str(tmp_path / "ca.pem"), "-purpose", "any", "-out", str(tmp_path / "got.txt")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "got.txt").read_bytes() == (tmp_path / "content.txt").read_bytes()
    [sig] = validate(fortress, service, result)
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", f"CAdES_BASELINE_{level}"), sig


def _sign_b(fmt: Any, documents: list[Any], card: Card, ca_pem: bytes, **options: Any) -> bytes:
    """A B-B signature made in this process through a format (the key stays with the test)."""
    import asyncio
    import dataclasses

    from asn1crypto import pem as apem
    from cryptography.hazmat.primitives import serialization

    from remotesign.formats.base import SignerSpec
    from tests import format_pki

    chain = tuple(der for _, _, der in apem.unarmor(ca_pem, multiple=True))
    spec = SignerSpec(card.cert.public_bytes(serialization.Encoding.DER), chain, "sha256",
                      "rsa" if "RSA" in type(card.key).__name__ else "ecdsa")
    tweak = (lambda p: dataclasses.replace(p, **options)) if options else None
    return asyncio.run(format_pki.sign(fmt, documents, spec, card.key, tweak=tweak))


def test_extend_asic_e_xades(fortress: httpx.Client, service: Service, card: Card, ca_pem: bytes,
                             tmp_path: Path) -> None:
    import zipfile

    from remotesign.formats.asic_e_format import AsicEXadesFormat
    from tests import format_pki
    from tests.verifiers import xmlsec_verify

    files = {"a.txt": b"first\n", "b.xml": b"<invoice>42</invoice>"}
    container = _sign_b(AsicEXadesFormat(), [format_pki.document(n, d, "text/plain") for n, d in files.items()],
                        card, ca_pem)
    result = extended(extend(fortress, container, "XADES_LTA", name="c.asice"))
    zf = zipfile.ZipFile(io.BytesIO(result))
    ok, out = xmlsec_verify(tmp_path, zf.read("META-INF/signatures0.xml"), files, ca_pem)
    assert ok, out[-2000:]
    [sig] = validate(fortress, service, result)
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", "XAdES_BASELINE_LTA"), sig


@pytest.mark.parametrize("level", ["T", "LTA"])
def test_extend_enveloped_xml(fortress: httpx.Client, service: Service, card: Card, ca_pem: bytes, level: str,
                              tmp_path: Path) -> None:
    from remotesign.formats.interface import Packaging
    from remotesign.formats.xades_xml import XadesXmlFormat
    from tests import format_pki

    invoice = b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice><Id>42</Id><Total>100.00</Total></Invoice>'
    signed = _sign_b(XadesXmlFormat(), [format_pki.document("invoice.xml", invoice, "application/xml")], card,
                     ca_pem, packaging=Packaging.ENVELOPED)
    result = extended(extend(fortress, signed, f"XADES_{level}", name="invoice.xml"))
    from tests.verifiers import xmlsec_verify

    ok, out = xmlsec_verify(tmp_path, result, {}, ca_pem)
    assert ok, out[-2000:]
    token = service.token(service.demo_client()["client_id"], service.demo_client()["client_secret"])
    r = httpx.post(service.url + "/v1/validations", files=[("file", ("invoice.xml", result))],
                   headers={"Authorization": f"Bearer {token}"}, timeout=120)
    [sig] = r.json()["simpleReport"]["signaturesExt"]
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", f"XAdES_BASELINE_{level}"), sig


def test_pades_lta_validates_in_pyhanko_from_its_dss(fortress: httpx.Client, card: Card, ca_pem: bytes) -> None:
    """pyHanko, offline and hard-fail, with nothing but the root and what the extension wrote into
    the DSS (the pyHanko-made B-B carried only the signer's certificate): the signature is intact,
    valid and trusted with revocation checked, and every document time-stamp validates too.
    (pyHanko's ETSI process ades_lta_validation insists on a signature time-stamp inside the CMS
    and cannot judge a B-B made T by a document time-stamp, which EN 319 142-1 allows and EU DSS
    does; remotesign's validator judges that chain.)"""
    from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_timestamp

    from tests.verifiers import root_of

    result = extended(extend(fortress, sign_bb(card), "PADES_LTA"))
    reader = PdfFileReader(io.BytesIO(result))
    vc = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": [root_of(ca_pem)], "allow_fetching": False, "revocation_mode": "hard-fail"})
    status = validate_pdf_signature(reader.embedded_regular_signatures[0], vc)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    stamps = reader.embedded_timestamp_signatures
    assert len(stamps) == 2
    for stamp in stamps:
        ts_vc = DocumentSecurityStore.read_dss(reader).as_validation_context(
            {"trust_roots": [root_of(ca_pem)], "allow_fetching": False, "revocation_mode": "hard-fail"})
        ts_status = validate_pdf_timestamp(stamp, validation_context=ts_vc)
        assert ts_status.intact and ts_status.valid and ts_status.trusted, ts_status.pretty_print_details()


def _pem_files(card: Card, ca_pem: bytes, tmp_path: Path) -> tuple[Path, Path]:
    """The card's key, and its certificate followed by the issuing CA (the root stays out)."""
    from asn1crypto import pem as apem
    from asn1crypto import x509 as ax509
    from cryptography.hazmat.primitives import serialization

    cert, key = _card_files(card, tmp_path)
    issuing = [der for _, _, der in apem.unarmor(ca_pem, multiple=True)
               if ax509.Certificate.load(der).self_signed == "no"]
    cert.write_bytes(cert.read_bytes() + b"".join(apem.armor("CERTIFICATE", d) for d in issuing))
    return key, cert


@pytest.mark.parametrize("producer", ["signxml", "xmlsec1"])
def test_extend_xades_made_elsewhere(fortress: httpx.Client, service: Service, card: Card, ca_pem: bytes,
                                     producer: str, tmp_path: Path) -> None:
    """An enveloped XAdES-B-B made by signxml's XAdESSigner, or by xmlsec1 from a XAdES
    template, extended to LTA over HTTP: xmlsec1 still verifies it and remotesign's validator
    says XAdES_BASELINE_LTA."""
    import base64 as b64
    import hashlib as hl
    from datetime import datetime, timezone

    from cryptography.hazmat.primitives import serialization
    from lxml import etree

    from tests.verifiers import xmlsec_verify

    key, cert = _pem_files(card, ca_pem, tmp_path)
    if producer == "signxml":
        from signxml import DigestAlgorithm, SignatureMethod
        from signxml.xades import XAdESSigner

        signer = XAdESSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256)
        signed = signer.sign(etree.fromstring(b"<Invoice><Number>1</Number><Total>10.00</Total></Invoice>"),
                             key=key.read_bytes(), cert=cert.read_text())
        data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    else:
        from tests.test_xades_xml_format import ENVELOPED, SP_ID_ATTR, XMLSEC_TEMPLATE, DS, XADES, xc

        der = card.cert.public_bytes(serialization.Encoding.DER)
        template = tmp_path / "template.xml"
        template.write_text(XMLSEC_TEMPLATE.format(
            ds=DS, xades=XADES, exc=xc.EXC_C14N, enveloped=ENVELOPED,
            time=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            digest=b64.b64encode(hl.sha256(der).digest()).decode()))
        out = tmp_path / "xmlsec-signed.xml"
        subprocess.run(["xmlsec1", "--sign", "--privkey-pem", f"{key},{cert}", "--id-attr:Id", SP_ID_ATTR,
                        "--output", str(out), str(template)], check=True, capture_output=True, timeout=60)
        data = out.read_bytes()
    result = extended(extend(fortress, data, "XADES_LTA", name="invoice.xml"))
    ok, log = xmlsec_verify(tmp_path, result, {}, ca_pem)
    assert ok, log[-2000:]
    token = service.token(service.demo_client()["client_id"], service.demo_client()["client_secret"])
    r = httpx.post(service.url + "/v1/validations", files=[("file", ("invoice.xml", result))],
                   headers={"Authorization": f"Bearer {token}"}, timeout=120)
    [sig] = r.json()["simpleReport"]["signaturesExt"]
    assert (sig["indication"], sig["signatureFormat"]) == ("TOTAL-PASSED", "XAdES_BASELINE_LTA"), sig
