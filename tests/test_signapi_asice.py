"""eParaksts two-step XAdES signing in ASiC-E containers over HTTP: a new container with several
files, a parallel signature added to an existing container, wrapping, B-LTA; checked by xmlsec1,
openssl and the container layout rules of EN 319 162-1."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, SignApi, issue_card
from tests.verifiers import openssl_ts_verify, tst_imprint, xmlsec_verify

NS = {"ds": "http://www.w3.org/2000/09/xmldsig#", "xades": "http://uri.etsi.org/01903/v1.3.2#",
      "xades141": "http://uri.etsi.org/01903/v1.4.1#"}
MIMETYPE = b"application/vnd.etsi.asic-e+zip"


@pytest.fixture(scope="module")
def api(service: Service, demo_token: str) -> SignApi:
    return SignApi(service, demo_token)


@pytest.fixture(scope="module")
def ca_pem(http: httpx.Client) -> bytes:
    return http.get("/pki/ca.pem").content


@pytest.fixture(scope="module")
def cards(service: Service, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Card]:
    tmp = tmp_path_factory.mktemp("cards")
    return {"rsa": issue_card(service, tmp, "rsa", cn="Ilze Ozola"),
            "p256": issue_card(service, tmp, "p256", cn="Peteris Kalns"),
            "p384": issue_card(service, tmp, "p384", cn="Liga Liepa")}


FILES = {"iesniegums.txt": "Labdien! Šis ir iesniegums ar garumzīmēm.\n".encode(),
         "dati/attēls.bin": os.urandom(50_000),
         "līgums.pdf": pdf_bytes()}


def check_container(data: bytes) -> zipfile.ZipFile:
    """EN 319 162-1 layout: mimetype first, stored, no extra field, then META-INF/manifest.xml."""
    assert data[30:38] == b"mimetype" and data[38:38 + len(MIMETYPE)] == MIMETYPE
    zf = zipfile.ZipFile(io.BytesIO(data))
    first = zf.infolist()[0]
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
    assert "META-INF/manifest.xml" in zf.namelist()
    assert zf.testzip() is None
    return zf


def verify_all_signatures(tmp: Path, zf: zipfile.ZipFile, ca_pem: bytes) -> list[etree._Element]:
    files = {n: zf.read(n) for n in zf.namelist() if not n.startswith("META-INF/") and n != "mimetype"}
    roots = []
    for name in sorted(n for n in zf.namelist() if n.startswith("META-INF/signatures")):
        xml = zf.read(name)
        ok, out = xmlsec_verify(tmp, xml, files, ca_pem)
        assert ok, f"{name}: {out[-3000:]}"
        root = etree.fromstring(xml)
        refs = root.findall(".//ds:SignedInfo/ds:Reference", NS)
        assert any(r.get("Type") == "http://uri.etsi.org/01903#SignedProperties" for r in refs)
        roots.append(root)
    return roots


def check_signature_timestamp(tmp: Path, sig: etree._Element, ca_pem: bytes) -> None:
    """The SignatureTimeStamp covers the canonicalized ds:SignatureValue (recomputed here) and
    openssl accepts the token."""
    stamp = sig.find(".//xades:SignatureTimeStamp", NS)
    assert stamp is not None
    method = stamp.find("ds:CanonicalizationMethod", NS).get("Algorithm")
    value_el = sig.find(".//ds:SignatureValue", NS)
    exclusive = "exc-c14n" in method
    c14n = etree.tostring(value_el, method="c14n", exclusive=exclusive)
    token = base64.b64decode(stamp.find("xades:EncapsulatedTimeStamp", NS).text)
    alg, imprint = tst_imprint(token)
    assert imprint == hashlib.new(alg, c14n).digest()
    assert "Verification: OK" in openssl_ts_verify(tmp, token, c14n, ca_pem)


@pytest.mark.parametrize("kind", ["rsa", "p256", "p384"])
def test_new_container_with_text_and_binary_files(api: SignApi, cards: dict[str, Card], kind: str,
                                                  ca_pem: bytes, tmp_path: Path) -> None:
    sid = api.start()
    for name, content in FILES.items():
        api.upload(sid, name, content)
    data = api.sign_sessions([sid], cards[kind], sign_as_pdf=False)
    assert data["algorithm"] == ("SHA384" if kind == "p384" else "SHA256")
    info, edoc = api.result(sid)
    assert info["name"].endswith(".edoc")
    assert {d["name"] for d in info["includedDocuments"]} == {n.rsplit("/", 1)[-1] for n in FILES}
    zf = check_container(edoc)
    stored = {n: zf.read(n) for n in zf.namelist() if not n.startswith("META-INF/") and n != "mimetype"}
    assert sorted(stored.values()) == sorted(FILES.values())
    [sig] = verify_all_signatures(tmp_path, zf, ca_pem)
    check_signature_timestamp(tmp_path, sig, ca_pem)
    assert sig.find(".//xades:CertificateValues", NS) is not None
    assert sig.find(".//xades:RevocationValues//xades:EncapsulatedOCSPValue", NS) is not None
    assert sig.find(".//xades:SigningCertificateV2", NS) is not None
    assert len(sig.findall(".//xades:DataObjectFormat", NS)) == len(FILES)

    r = api.archive([sid])
    assert r.status_code == 200, r.text
    _, lta = api.result(sid)
    zf = check_container(lta)
    [sig] = verify_all_signatures(tmp_path, zf, ca_pem)
    archive = sig.find(".//xades141:ArchiveTimeStamp", NS)
    assert archive is not None
    token = base64.b64decode(archive.find("xades:EncapsulatedTimeStamp", NS).text)
    tok = tmp_path / "ats.der"
    tok.write_bytes(token)
    from tests.signapi import run

    ca = tmp_path / "ca.pem"
    ca.write_bytes(ca_pem)
    alg, imprint = tst_imprint(token)
    out = run("openssl", "ts", "-verify", "-in", tok, "-token_in", "-digest", imprint.hex(), "-CAfile", ca,
              check=False)
    assert "Verification: OK" in out.stdout + out.stderr


def test_parallel_signature_in_existing_container(api: SignApi, cards: dict[str, Card], ca_pem: bytes,
                                                  tmp_path: Path) -> None:
    first = api.start()
    api.upload(first, "protokols.txt", b"Sapulces protokols\n")
    api.upload(first, "pielikums.bin", os.urandom(2048))
    api.sign_sessions([first], cards["rsa"], sign_as_pdf=False)
    _, edoc = api.result(first)

    second = api.start()
    api.upload(second, "protokols.edoc", edoc)
    api.sign_sessions([second], cards["p256"], sign_as_pdf=False, create_new=False)
    info, both = api.result(second)
    assert info["name"] == "protokols.edoc"
    zf = check_container(both)
    names = [n for n in zf.namelist() if n.startswith("META-INF/signatures")]
    assert names == ["META-INF/signatures0.xml", "META-INF/signatures1.xml"]
    assert zf.read("META-INF/signatures0.xml") == zipfile.ZipFile(io.BytesIO(edoc)).read("META-INF/signatures0.xml")
    sigs = verify_all_signatures(tmp_path, zf, ca_pem)
    assert len(sigs) == 2


def test_container_wrapped_in_new_container(api: SignApi, cards: dict[str, Card], ca_pem: bytes,
                                            tmp_path: Path) -> None:
    first = api.start()
    api.upload(first, "inner.txt", b"inner\n")
    api.sign_sessions([first], cards["rsa"], sign_as_pdf=False)
    _, inner = api.result(first)
    outer = api.start()
    api.upload(outer, "inner.edoc", inner)
    api.sign_sessions([outer], cards["p256"], sign_as_pdf=False, create_new=True)
    _, wrapped = api.result(outer)
    zf = check_container(wrapped)
    assert zf.read("inner.edoc") == inner
    verify_all_signatures(tmp_path, zf, ca_pem)


def test_digest_only_entries(api: SignApi, cards: dict[str, Card]) -> None:
    sid = api.start()
    content = b"kept by the relying party\n"
    r = api.client.post(f"/api-storage/v1.0/{sid}/addDocumentDigest", json={
        "files": [{"name": "remote.txt", "digest": base64.b64encode(hashlib.sha256(content).digest()).decode(),
                   "digest_algorithm": "SHA256"}], "signatureIndex": "0"})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["type"] == "hash"
    api.sign_sessions([sid], cards["rsa"], sign_as_pdf=False)
    _, edoc = api.result(sid)
    zf = zipfile.ZipFile(io.BytesIO(edoc))
    sig = etree.fromstring(zf.read("META-INF/signatures0.xml"))
    ref = next(r for r in sig.findall(".//ds:SignedInfo/ds:Reference", NS) if r.get("URI") == "remote.txt")
    assert base64.b64decode(ref.find("ds:DigestValue", NS).text) == hashlib.sha256(content).digest()
