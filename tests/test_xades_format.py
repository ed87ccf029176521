"""XAdES baseline B/T/LT/LTA over ASiC-E files, judged by independent verifiers.

Our own reader is never the judge of our own output: xmlsec1 verifies the XMLDSig core
(references, SignedProperties digest, signature value, certificate path), openssl and pyHanko
verify the time-stamp tokens against imprints this file recomputes itself (a hand-written
exclusive c14n of ds:SignatureValue, and a from-scratch EN 319 132-1 §5.5.2.2 archive input),
and the ETSI XSDs shipped with signxml check the element structure and order.
"""

from __future__ import annotations

import asyncio
import base64
import glob
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import pyhanko.sign.validation  # noqa: F401 - registers pyHanko's asn1crypto extensions
import pytest
from asn1crypto import cms, ocsp, tsp
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from lxml import etree
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from remotesign.formats.base import FormatError, SignerSpec, ValidationData
from remotesign.formats.xades import (DataObjectRef, add_archive_timestamp, add_signature_timestamp,
                                      add_validation_data, embed_signature_value, name_to_uri, parse_signatures,
                                      prepare_signature, signature_level, signature_values, timestamp_imprints,
                                      timestamp_tokens, uri_to_name)
from remotesign.keystore import KeyAlgorithm
from remotesign.storage.db import Database
from remotesign.trust.ca import CertificateAuthority, subject_from_text
from remotesign.trust.crl import CrlPublisher
from remotesign.trust.ocsp import OcspResponder
from remotesign.trust.tsa import TimeStampAuthority
from tests.inprocess_pki import build_ca

pytestmark = pytest.mark.skipif(shutil.which("xmlsec1") is None or shutil.which("openssl") is None,
                                reason="needs the xmlsec1 and openssl commands")

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
NS = {"ds": DS, "xades": XADES, "xadesv141": XADES141, "asic": "http://uri.etsi.org/02918/v1.2.1#"}
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

# Container files: a directory, spaces and Latvian letters in names, binary content.
FILES = {
    "dir/My file ā.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n",
    "Līgums ar šķērsli.txt": "Rīga, čūska, ģimene\n".encode() * 100,
    "data.bin": os.urandom(5000),
}
MIME = {"dir/My file ā.pdf": "application/pdf", "Līgums ar šķērsli.txt": "text/plain",
        "data.bin": "application/octet-stream"}
SUBJECT = "CN=Test Signer,SERIALNUMBER=PNOLV-010101-12345,C=LV"


@dataclass
class Pki:
    dir: Path
    db: Database
    ca: CertificateAuthority
    tsa: TimeStampAuthority
    ocsp: OcspResponder
    crl: CrlPublisher
    root_pem: Path
    issuing_pem: Path
    tsa_chain_pem: Path
    files_dir: Path
    signers: dict[str, tuple[object, bytes]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    tmp = tmp_path_factory.mktemp("xades")
    db, keystore, ca = build_ca(tmp, "http://127.0.0.1:1", KeyAlgorithm.EC_P384)  # EC CAs are fast; RSA TSA/OCSP
    (tmp / "root.pem").write_text(ca.root.pem())
    (tmp / "issuing.pem").write_text(ca.issuing.pem())
    (tmp / "tsa-chain.pem").write_text(ca.tsa_signer()[0].pem() + ca.issuing.pem())
    files_dir = tmp / "container"
    for name, data in FILES.items():
        path = files_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    p = Pki(dir=tmp, db=db, ca=ca, tsa=TimeStampAuthority(db, ca, keystore, "1.3.6.1.4.1.59999.1.3.1", 500),
            ocsp=OcspResponder(ca, keystore, 60), crl=CrlPublisher(db, ca, keystore, 24),
            root_pem=tmp / "root.pem", issuing_pem=tmp / "issuing.pem", tsa_chain_pem=tmp / "tsa-chain.pem",
            files_dir=files_dir)
    keys = {"rsa2048": rsa.generate_private_key(65537, 2048), "p256": ec.generate_private_key(ec.SECP256R1()),
            "p384": ec.generate_private_key(ec.SECP384R1())}
    for label, key in keys.items():
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        cert = ca.issue(subject=subject_from_text(SUBJECT), public_key_der=spki,
                        profile_name="qualified-person", tenant_id=None)
        p.signers[label] = (key, cert.der)
    yield p
    db.dispose()


# -- helpers ---------------------------------------------------------------------------------------

def spec(pki: Pki, label: str, digest: str) -> SignerSpec:
    cert = pki.signers[label][1]
    return SignerSpec(certificate=cert, chain=(pki.ca.issuing.der, pki.ca.root.der), digest_algorithm=digest,
                      mechanism="rsa" if label.startswith("rsa") else "ecdsa")


def objects(digest: str = "sha256") -> list[DataObjectRef]:
    return [DataObjectRef(name, hashlib.new(digest, data).digest(), digest, MIME[name]) for name, data in FILES.items()]


def sign_digest(key: object, digest: bytes, hash_name: str) -> bytes:
    """What a smart card / HSM does: sign a precomputed digest (ECDSA answers in DER here)."""
    algo = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[hash_name]
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), Prehashed(algo))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.sign(digest, ec.ECDSA(Prehashed(algo)))


def sign_b(pki: Pki, label: str, digest: str = "sha256", **kwargs: object) -> bytes:
    prepared = prepare_signature(objects(), spec(pki, label, digest), datetime.now(timezone.utc), **kwargs)
    return embed_signature_value(prepared.xml, sign_digest(pki.signers[label][0], prepared.digest, digest))


def timestamper(pki: Pki, calls: list[bytes] | None = None):
    async def stamp(imprint: bytes, hash_name: str) -> bytes:
        if calls is not None:
            calls.append(imprint)
        query = tsp.TimeStampReq({"version": "v1", "cert_req": True, "message_imprint": {
            "hash_algorithm": {"algorithm": hash_name}, "hashed_message": imprint}})
        reply = tsp.TimeStampResp.load(pki.tsa.respond(query.dump()).der)
        assert reply["status"]["status"].native == "granted"
        return reply["time_stamp_token"].dump()
    return stamp


def ocsp_response(pki: Pki, cert_der: bytes) -> bytes:
    cert = ax509.Certificate.load(cert_der)
    issuer = pki.ca.issuing.asn1()
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": {
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha1(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": cert.serial_number}}]}})
    der = pki.ocsp.respond(request.dump()).der
    parsed = ocsp.OCSPResponse.load(der)
    assert parsed["response_status"].native == "successful"
    assert parsed.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].name == "good"
    return der


def lt_data(pki: Pki, label: str) -> ValidationData:
    cert = pki.signers[label][1]
    return ValidationData(certificates=(cert, pki.ca.issuing.der, pki.ca.root.der),
                          ocsp_responses=(ocsp_response(pki, cert),),
                          crls=(pki.crl.current(pki.ca.root.id),))


def chunks(name: str) -> Iterator[bytes]:
    data = FILES[name]
    for i in range(0, len(data), 1000):
        yield data[i:i + 1000]


def xmlsec_verify(pki: Pki, xml: bytes, name: str, files_dir: Path | None = None) -> tuple[bool, str]:
    """xmlsec1 core verification; detached files are mapped by their *decoded* name, which is
    what xmlsec1 looks up first for a percent-encoded reference URI."""
    path = pki.dir / f"{name}.xml"
    path.write_bytes(xml)
    files_dir = files_dir or pki.files_dir
    args = ["xmlsec1", "--verify", "--print-debug", "--trusted-pem", str(pki.root_pem),
            "--untrusted-pem", str(pki.issuing_pem), "--id-attr:Id", f"{XADES}:SignedProperties"]
    for file_name in FILES:
        args += [f"--url-map:{file_name}", str(files_dir / file_name)]
    proc = subprocess.run([*args, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=60)
    refs = re.search(r"SignedInfo References \(ok/all\): (\d+)/(\d+)", proc.stdout)
    want = len(FILES) + 1
    ok = (proc.returncode == 0 and re.search(r"^OK$", proc.stdout, re.M) is not None
          and refs is not None and refs.groups() == (str(want), str(want)))
    return ok, proc.stdout


def signed_region(xml: bytes) -> tuple[bytes, bytes]:
    """The serialized document up to the end of SignedProperties, minus the signature value."""
    match = re.search(rb"<ds:SignatureValue [^>]*?(/>|>[^<]*</ds:SignatureValue>)", xml)
    assert match is not None
    return xml[:match.start()], xml[match.end():].split(b"</xades:SignedProperties>", 1)[0]


def parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def signature(xml: bytes) -> etree._Element:
    return parse(xml).find("ds:Signature", NS)


def usp_children(xml: bytes) -> list[etree._Element]:
    usp = signature(xml).find("ds:Object/xades:QualifyingProperties/xades:UnsignedProperties/"
                              "xades:UnsignedSignatureProperties", NS)
    return [] if usp is None else [el for el in usp if isinstance(el.tag, str)]


def token_imprint(token: bytes) -> tuple[str, bytes]:
    tst = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    return (tst["message_imprint"]["hash_algorithm"]["algorithm"].native,
            tst["message_imprint"]["hashed_message"].native)


# -- independent imprint computations -----------------------------------------------------------

def independent_signature_ts_imprint(xml: bytes, hash_name: str) -> bytes:
    """Exclusive c14n of ds:SignatureValue written out by hand: the element with only the ds
    namespace it uses, its Id attribute and its base64 text."""
    value = signature(xml).find("ds:SignatureValue", NS)
    assert value.prefix == "ds" and list(value.attrib) == ["Id"]
    octets = f'<ds:SignatureValue xmlns:ds="{DS}" Id="{value.get("Id")}">{value.text}</ds:SignatureValue>'
    return hashlib.new(hash_name, octets.encode()).digest()


def independent_archive_imprint(xml: bytes, index: int, hash_name: str) -> bytes:
    """EN 319 132-1 §5.5.2.2, straight from the text, for the ``index``-th ArchiveTimeStamp."""
    sig = signature(xml)
    ats = sig.findall(".//xadesv141:ArchiveTimeStamp", NS)[index]
    assert ats.find("ds:CanonicalizationMethod", NS).get("Algorithm") == EXC_C14N
    h = hashlib.new(hash_name)

    def exc(el: etree._Element) -> bytes:
        return etree.tostring(el, method="c14n", exclusive=True, with_comments=False)

    # 1) every ds:Reference, processed: files -> their bytes; #id -> its transform (inclusive c14n).
    for ref in sig.findall("ds:SignedInfo/ds:Reference", NS):
        uri = ref.get("URI")
        if uri.startswith("#"):
            transforms = [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)]
            assert transforms == [C14N_10]
            (target,) = sig.xpath(f"//*[@Id='{uri[1:]}']")
            h.update(etree.tostring(target, method="c14n", exclusive=False, with_comments=False))
        else:
            assert ref.find("ds:Transforms", NS) is None
            h.update(FILES[unquote(uri)])
    # 2) SignedInfo, SignatureValue, KeyInfo
    for path in ("ds:SignedInfo", "ds:SignatureValue", "ds:KeyInfo"):
        h.update(exc(sig.find(path, NS)))
    # 3) unsigned signature properties before this time-stamp
    for prop in ats.getparent():
        if prop is ats:
            break
        if isinstance(prop.tag, str):
            h.update(exc(prop))
    # 4) ds:Objects other than the one with QualifyingProperties
    for obj in sig.findall("ds:Object", NS):
        if obj.find("xades:QualifyingProperties", NS) is None:
            h.update(exc(obj))
    return h.digest()


def openssl_ts_verify(pki: Pki, token: bytes, imprint: bytes, name: str) -> str:
    path = pki.dir / f"{name}.tst"
    path.write_bytes(token)
    proc = subprocess.run(["openssl", "ts", "-verify", "-digest", imprint.hex(), "-in", str(path), "-token_in",
                           "-CAfile", str(pki.root_pem), "-untrusted", str(pki.tsa_chain_pem)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                          env={**os.environ, "OPENSSL_CONF": "/dev/null"})
    return proc.stdout


def pyhanko_tst_status(pki: Pki, token: bytes, imprint: bytes) -> dict:
    vc = ValidationContext(trust_roots=[pki.ca.root.asn1()], other_certs=[pki.ca.issuing.asn1()],
                           allow_fetching=False)
    signed_data = cms.ContentInfo.load(token)["content"]
    return asyncio.run(validate_tst_signed_data(signed_data, vc, lambda _md: imprint))


def xsd() -> etree.XMLSchema:
    base = glob.glob(str(Path(etree.__file__).parent.parent / "signxml"))[0]
    wrapper = f"""<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:wrapper">
      <xsd:import namespace="{DS}" schemaLocation="file://{base}/schemas/xmldsig-core-schema.xsd"/>
      <xsd:import namespace="{XADES}" schemaLocation="file://{base}/xades/schemas/XAdES01903v132-201601.xsd"/>
      <xsd:import namespace="{XADES141}" schemaLocation="file://{base}/xades/schemas/XAdES01903v141-201601.xsd"/>
    </xsd:schema>"""
    return etree.XMLSchema(etree.fromstring(wrapper, etree.XMLParser(no_network=True)))


# -- the levels, end to end ------------------------------------------------------------------------

@pytest.mark.parametrize("label,digest,sig_size", [("rsa2048", "sha256", 256), ("p256", "sha256", 64),
                                                   ("p384", "sha384", 96)])
def test_levels_verify_with_xmlsec1(pki: Pki, label: str, digest: str, sig_size: int) -> None:
    key, cert = pki.signers[label]
    prepared = prepare_signature(objects(), spec(pki, label, digest), datetime.now(timezone.utc),
                                 claimed_role="Valdes loceklis",
                                 production_place={"city": "Rīga", "country_name": "LV"})
    assert prepared.xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert prepared.digest == hashlib.new(digest, prepared.data_to_be_signed).digest()
    assert signature(prepared.xml).get("Id") == prepared.signature_id

    b = embed_signature_value(prepared.xml, sign_digest(key, prepared.digest, digest))
    value = base64.b64decode(signature(b).findtext("ds:SignatureValue", namespaces=NS))
    assert len(value) == sig_size  # raw r||s for ECDSA even though the key holder answered DER
    assert signature_values(b).signed_info == prepared.data_to_be_signed
    assert signature_level(b) == "B"

    t = asyncio.run(add_signature_timestamp(b, timestamper(pki)))
    assert signature_level(t) == "T"
    lt = add_validation_data(t, lt_data(pki, label))
    assert signature_level(lt) == "LT"
    tsa_data = ValidationData(certificates=(pki.ca.tsa_signer()[0].der,),
                              crls=(pki.crl.current(pki.ca.issuing.id),))
    lta = asyncio.run(add_archive_timestamp(lt, chunks, timestamper(pki), tsa_data))
    assert signature_level(lta) == "LTA"
    renewed = asyncio.run(add_archive_timestamp(lta, chunks, timestamper(pki), hash_name="sha512"))
    assert [kind for kind, _ in timestamp_tokens(renewed)] == ["signature", "archive", "archive"]

    schema = xsd()
    for level, xml in (("B", b), ("T", t), ("LT", lt), ("LTA", lta), ("LTA2", renewed)):
        ok, out = xmlsec_verify(pki, xml, f"{label}-{level}")
        assert ok, f"{label} {level}: {out}"
        assert schema.validate(etree.ElementTree(signature(xml))), (level, schema.error_log)
        # Everything signed is byte-for-byte what prepare_signature wrote.
        assert signed_region(xml) == signed_region(prepared.xml)
    assert [etree.QName(el).localname for el in usp_children(renewed)] == [
        "SignatureTimeStamp", "CertificateValues", "RevocationValues", "TimeStampValidationData",
        "ArchiveTimeStamp", "ArchiveTimeStamp"]
    assert all(el.get("Id") for el in usp_children(renewed))


def test_ecdsa_accepts_raw_r_s(pki: Pki) -> None:
    key, _ = pki.signers["p384"]
    prepared = prepare_signature(objects("sha512"), spec(pki, "p384", "sha384"), datetime.now(timezone.utc))
    r, s = decode_dss_signature(sign_digest(key, prepared.digest, "sha384"))
    xml = embed_signature_value(prepared.xml, r.to_bytes(48, "big") + s.to_bytes(48, "big"))
    assert base64.b64decode(signature(xml).findtext("ds:SignatureValue", namespaces=NS)) == \
        r.to_bytes(48, "big") + s.to_bytes(48, "big")
    ok, out = xmlsec_verify(pki, xml, "p384-raw")
    assert ok, out


def test_signed_properties_content(pki: Pki) -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc)
    prepared = prepare_signature(objects(), spec(pki, "p256", "sha256"), when, signature_id="S-1",
                                 claimed_role="Director", production_place={"city": "Rīga", "postal_code": "LV-1050",
                                                                            "country_name": "LV"})
    sig = signature(prepared.xml)
    refs = sig.findall("ds:SignedInfo/ds:Reference", NS)
    assert [r.get("URI") for r in refs[:-1]] == ["dir/My%20file%20%C4%81.pdf",
                                                  "L%C4%ABgums%20ar%20%C5%A1%C4%B7%C4%93rsli.txt", "data.bin"]
    assert [unquote(r.get("URI")) for r in refs[:-1]] == list(FILES)
    assert refs[-1].get("Type") == "http://uri.etsi.org/01903#SignedProperties"
    assert sig.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm") == C14N_10
    assert sig.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") == \
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    ssp = sig.find(".//xades:SignedSignatureProperties", NS)
    assert ssp.findtext("xades:SigningTime", namespaces=NS) == "2025-03-04T05:06:07Z"
    cert_der = pki.signers["p256"][1]
    cert_el = ssp.find("xades:SigningCertificateV2/xades:Cert", NS)
    assert base64.b64decode(cert_el.findtext("xades:CertDigest/ds:DigestValue", namespaces=NS)) == \
        hashlib.sha256(cert_der).digest()
    issuer_serial = tsp.IssuerSerial.load(base64.b64decode(cert_el.findtext("xades:IssuerSerialV2", namespaces=NS)))
    parsed = ax509.Certificate.load(cert_der)
    assert issuer_serial["serial_number"].native == parsed.serial_number
    assert issuer_serial["issuer"][0].name == "directory_name"
    assert issuer_serial["issuer"][0].chosen.untag().dump() == parsed.issuer.dump()
    assert ssp.findtext("xades:SignerRoleV2/xades:ClaimedRoles/xades:ClaimedRole", namespaces=NS) == "Director"
    assert [etree.QName(e).localname for e in ssp.find("xades:SignatureProductionPlaceV2", NS)] == \
        ["City", "PostalCode", "CountryName"]
    formats = sig.findall(".//xades:DataObjectFormat", NS)
    assert [(f.get("ObjectReference"), f.findtext("xades:MimeType", namespaces=NS)) for f in formats] == \
        [(f"#{r.get('Id')}", MIME[unquote(r.get('URI'))]) for r in refs[:-1]]
    # KeyInfo: signer and issuing CA, never the trust anchor.
    certs = [base64.b64decode(e.text) for e in sig.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    assert certs == [cert_der, pki.ca.issuing.der]
    assert name_to_uri("dir/My file ā.pdf") == "dir/My%20file%20%C4%81.pdf"
    assert uri_to_name("dir/My%20file%20%C4%81.pdf") == "dir/My file ā.pdf"


# -- time-stamps ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lta_doc(pki: Pki) -> bytes:
    """A P-256 B-LTA, renewed once, with an extra unsigned ds:Object (covered by step 4)."""
    t = asyncio.run(add_signature_timestamp(sign_b(pki, "p256"), timestamper(pki)))
    root = parse(t)
    sig = root.find("ds:Signature", NS)
    extra = etree.SubElement(sig, f"{{{DS}}}Object", {"Id": "extra-object"})
    extra.text = "not signed, but archived"
    t = b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")
    lt = add_validation_data(t, lt_data(pki, "p256"))
    lta = asyncio.run(add_archive_timestamp(lt, chunks, timestamper(pki)))
    return asyncio.run(add_archive_timestamp(lta, chunks, timestamper(pki), hash_name="sha384"))


def test_timestamp_tokens_verify_independently(pki: Pki, lta_doc: bytes) -> None:
    ok, out = xmlsec_verify(pki, lta_doc, "lta-extra-object")
    assert ok, out
    tokens = timestamp_tokens(lta_doc)
    assert [kind for kind, _ in tokens] == ["signature", "archive", "archive"]
    archive_index = 0
    for n, (kind, token) in enumerate(tokens):
        hash_name, in_token = token_imprint(token)
        if kind == "signature":
            expected = independent_signature_ts_imprint(lta_doc, hash_name)
        else:
            expected = independent_archive_imprint(lta_doc, archive_index, hash_name)
            archive_index += 1
        assert in_token == expected, f"{kind} time-stamp {n}: imprint differs from the independent computation"
        out = openssl_ts_verify(pki, token, expected, f"tst{n}")
        assert "Verification: OK" in out, out
        status = pyhanko_tst_status(pki, token, expected)
        assert status["intact"] and status["valid"] and status["trust_problem_indic"] is None, status
        # Our own helper agrees (and flags a wrong imprint as a failure in pyHanko too).
        assert not pyhanko_tst_status(pki, token, hashlib.new(hash_name, b"other").digest())["intact"]
    assert [i.hash_name for i in timestamp_imprints(lta_doc, chunks)] == ["sha256", "sha256", "sha384"]
    assert all(i.matches for i in timestamp_imprints(lta_doc, chunks))


def test_archive_timestamp_streams_chunks_and_checks_digests(pki: Pki, lta_doc: bytes) -> None:
    seen: list[str] = []

    def tracking(name: str) -> Iterator[bytes]:
        seen.append(name)
        return chunks(name)

    calls: list[bytes] = []
    renewed = asyncio.run(add_archive_timestamp(lta_doc, tracking, timestamper(pki, calls)))
    assert seen == list(FILES)
    assert calls == [independent_archive_imprint(renewed, 2, "sha256")]

    def wrong(name: str) -> Iterator[bytes]:
        yield FILES[name] + b"x"

    with pytest.raises(FormatError) as exc:
        asyncio.run(add_archive_timestamp(lta_doc, wrong, timestamper(pki)))
    assert exc.value.code == "digest_mismatch"

    def missing(name: str) -> Iterator[bytes]:
        raise KeyError(name)

    with pytest.raises(FormatError) as exc:
        asyncio.run(add_archive_timestamp(lta_doc, missing, timestamper(pki)))
    assert exc.value.code == "missing_data_object"


def test_wrong_timestamp_token_is_refused(pki: Pki) -> None:
    b = sign_b(pki, "p256")
    real = timestamper(pki)

    async def liar(imprint: bytes, hash_name: str) -> bytes:
        return await real(hashlib.new(hash_name, b"something else").digest(), hash_name)

    with pytest.raises(FormatError) as exc:
        asyncio.run(add_signature_timestamp(b, liar))
    assert exc.value.code == "invalid_timestamp"
    with pytest.raises(FormatError) as exc:
        asyncio.run(add_archive_timestamp(b, chunks, real))
    assert exc.value.code == "not_timestamped"


# -- validation data ------------------------------------------------------------------------------

def test_validation_data_placement(pki: Pki) -> None:
    t = asyncio.run(add_signature_timestamp(sign_b(pki, "rsa2048"), timestamper(pki)))
    data = lt_data(pki, "rsa2048")
    lt = add_validation_data(t, data)
    assert add_validation_data(lt, data) == lt  # nothing new, nothing added
    cv, rv = usp_children(lt)[1:]
    assert [base64.b64decode(e.text) for e in cv] == list(data.certificates)
    assert [etree.QName(e).localname for e in rv] == ["CRLValues", "OCSPValues"]  # schema order
    assert base64.b64decode(rv.findtext("xades:OCSPValues/xades:EncapsulatedOCSPValue", namespaces=NS)) == \
        data.ocsp_responses[0]
    assert base64.b64decode(rv.findtext("xades:CRLValues/xades:EncapsulatedCRLValue", namespaces=NS)) == data.crls[0]
    assert signature_values(lt).validation_data == data

    # More revocation data before any archive time-stamp: merged into the existing values.
    second_ocsp = ocsp_response(pki, pki.ca.tsa_signer()[0].der)
    lt2 = add_validation_data(lt, ValidationData(ocsp_responses=(second_ocsp,)))
    assert len(usp_children(lt2)) == 3
    assert len(usp_children(lt2)[2].findall("xades:OCSPValues/xades:EncapsulatedOCSPValue", NS)) == 2

    # After an archive time-stamp: frozen, new material goes into TimeStampValidationData.
    tsa_cert = pki.ca.tsa_signer()[0].der
    lta = asyncio.run(add_archive_timestamp(lt2, chunks, timestamper(pki),
                                            ValidationData(certificates=(tsa_cert, pki.ca.issuing.der))))
    names = [etree.QName(e).localname for e in usp_children(lta)]
    assert names == ["SignatureTimeStamp", "CertificateValues", "RevocationValues", "TimeStampValidationData",
                     "ArchiveTimeStamp"]
    tsvd = usp_children(lta)[3]
    # issuing CA is already embedded, only the TSA certificate is new
    assert [base64.b64decode(e.text) for e in tsvd.findall("xades:CertificateValues/*", NS)] == [tsa_cert]
    third_ocsp = ocsp_response(pki, pki.ca.ocsp_signer()[0].der)
    later = add_validation_data(lta, ValidationData(ocsp_responses=(third_ocsp,)))
    assert [etree.QName(e).localname for e in usp_children(later)][-2:] == ["ArchiveTimeStamp",
                                                                            "TimeStampValidationData"]
    assert all(i.matches for i in timestamp_imprints(later, chunks))  # the archive time-stamp still holds
    ok, out = xmlsec_verify(pki, later, "lta-later-tsvd")
    assert ok, out
    assert xsd().validate(etree.ElementTree(signature(later))), xsd().error_log


def test_t_straight_to_lta_puts_values_into_lt_properties(pki: Pki) -> None:
    t = asyncio.run(add_signature_timestamp(sign_b(pki, "p256"), timestamper(pki)))
    lta = asyncio.run(add_archive_timestamp(t, chunks, timestamper(pki), lt_data(pki, "p256")))
    assert [etree.QName(e).localname for e in usp_children(lta)] == [
        "SignatureTimeStamp", "CertificateValues", "RevocationValues", "ArchiveTimeStamp"]
    (_, token) = timestamp_tokens(lta)[1]
    assert token_imprint(token)[1] == independent_archive_imprint(lta, 0, "sha256")


# -- negative cases ------------------------------------------------------------------------------

def test_tampering_breaks_xmlsec1(pki: Pki) -> None:
    lt = add_validation_data(asyncio.run(add_signature_timestamp(sign_b(pki, "p256"), timestamper(pki))),
                             lt_data(pki, "p256"))
    ok, out = xmlsec_verify(pki, lt, "tamper-base")
    assert ok, out
    # A changed file.
    changed_dir = pki.dir / "changed"
    shutil.copytree(pki.files_dir, changed_dir)
    (changed_dir / "data.bin").write_bytes(FILES["data.bin"][:-1] + bytes([FILES["data.bin"][-1] ^ 1]))
    assert not xmlsec_verify(pki, lt, "tamper-file", changed_dir)[0]
    # A changed file digest in SignedInfo.
    root = parse(lt)
    digest_el = root.find(".//ds:Reference/ds:DigestValue", NS)
    digest_el.text = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    assert not xmlsec_verify(pki, etree.tostring(root), "tamper-digest")[0]
    # A changed signed property.
    root = parse(lt)
    root.find(".//xades:SigningTime", NS).text = "2001-01-01T00:00:00Z"
    assert not xmlsec_verify(pki, etree.tostring(root), "tamper-signedprops")[0]
    root = parse(lt)
    root.find(".//xades:MimeType", NS).text = "text/html"
    assert not xmlsec_verify(pki, etree.tostring(root), "tamper-mimetype")[0]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#">&lol9;</asic:XAdESSignatures>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#">&xxe;</asic:XAdESSignatures>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % ext SYSTEM "http://127.0.0.1:1/evil.dtd"> %ext;]>
<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#"/>"""


@pytest.mark.parametrize("data", [
    BILLION_LAUGHS, XXE, PARAMETER_ENTITY,
    b'<!DOCTYPE asic:XAdESSignatures><asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#"/>',
    b"<asic:XAdESSignatures xmlns:asic='http://uri.etsi.org/02918/v1.2.1#'>",  # unclosed
    b"<other/>",  # wrong root
    b"",
    b"\xff\xfe<\x00",
], ids=["billion-laughs", "xxe", "parameter-entity", "doctype", "malformed", "wrong-root", "empty", "garbage"])
def test_parse_signatures_rejects(data: bytes) -> None:
    with pytest.raises(FormatError) as exc:
        parse_signatures(data, 1 << 20)
    assert exc.value.code == "invalid_xml"


def test_parse_signatures_size_limit(pki: Pki) -> None:
    xml = sign_b(pki, "p256")
    assert parse_signatures(xml, len(xml)).getroot().tag == f"{{{NS['asic']}}}XAdESSignatures"
    with pytest.raises(FormatError) as exc:
        parse_signatures(xml, len(xml) - 1)
    assert exc.value.code == "invalid_xml"
    with pytest.raises(FormatError):
        signature_level(BILLION_LAUGHS)


def test_embed_signature_value_rejects_bad_values(pki: Pki) -> None:
    for label, digest, size in (("rsa2048", "sha256", 256), ("p256", "sha256", 64), ("p384", "sha384", 96)):
        prepared = prepare_signature(objects(), spec(pki, label, digest), datetime.now(timezone.utc))
        for bad in (b"\x01" * (size - 1), b"\x01" * (size + 1), b"\x30\x03\x02\x01\x01", b""):
            with pytest.raises(FormatError) as exc:
                embed_signature_value(prepared.xml, bad)
            assert exc.value.code == "invalid_signature_value", (label, len(bad))
        # Right length and form, wrong value.
        forged = sign_digest(pki.signers[label][0], hashlib.new(digest, b"x").digest(), digest)
        with pytest.raises(FormatError) as exc:
            embed_signature_value(prepared.xml, forged)
        assert exc.value.code == "invalid_signature_value"
        good = embed_signature_value(prepared.xml, sign_digest(pki.signers[label][0], prepared.digest, digest))
        with pytest.raises(FormatError) as exc:
            embed_signature_value(good, sign_digest(pki.signers[label][0], prepared.digest, digest))
        assert exc.value.code == "already_signed"
    with pytest.raises(FormatError) as exc:  # an unsigned document cannot be time-stamped
        asyncio.run(add_signature_timestamp(prepared.xml, timestamper(pki)))
    assert exc.value.code == "not_signed"


def test_prepare_rejects_bad_input(pki: Pki) -> None:
    now = datetime.now(timezone.utc)
    cases = [
        (objects(), spec(pki, "p256", "sha256"), datetime(2025, 1, 1), {}),  # naive time
        ([], spec(pki, "p256", "sha256"), now, {}),
        ([DataObjectRef("a.txt", b"\x00" * 20, "sha256", "text/plain")], spec(pki, "p256", "sha256"), now, {}),
        ([DataObjectRef("a.txt", b"\x00" * 32, "md5", "text/plain")], spec(pki, "p256", "sha256"), now, {}),
        ([DataObjectRef("../a.txt", b"\x00" * 32, "sha256", "text/plain")], spec(pki, "p256", "sha256"), now, {}),
        (objects(), SignerSpec(pki.signers["p256"][1], (), "sha256", "rsa"), now, {}),  # wrong mechanism
        (objects(), spec(pki, "p256", "sha256"), now, {"signature_id": "1 bad id"}),
        (objects(), spec(pki, "p256", "sha256"), now, {"production_place": {"planet": "Earth"}}),
        (objects(), spec(pki, "p256", "sha256"), now, {"claimed_role": "bad\x00role"}),
    ]
    for objs, signer, when, kwargs in cases:
        with pytest.raises(FormatError):
            prepare_signature(objs, signer, when, **kwargs)
