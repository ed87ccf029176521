"""The project's own XAdES validation (EN 319 102-1), judged against the conformance corpus
(EU DSS and digidoc4j expectations), against signatures made by remotesign's own writer with an
in-process CA and TSA, against signxml's enveloped signatures, and against hostile XML."""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import hashlib
import io
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import algos, core, ocsp as asn1_ocsp, x509 as ax509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509 import ocsp as cocsp
from lxml import etree

from remotesign.formats.base import SignerSpec, ValidationData
from remotesign.formats.xades import (DataObjectRef, add_archive_timestamp, add_signature_timestamp,
                                      add_validation_data, embed_signature_value, prepare_signature)
from remotesign.formats.xades import constants as xc
from remotesign.formats.xades.c14n import Budget, NodeSet, element_octets
from remotesign.keystore import KeyAlgorithm
from remotesign.storage.db import Database
from remotesign.trust.ca import CertificateAuthority, subject_from_text
from remotesign.trust.crl import CrlPublisher
from remotesign.trust.ocsp import OcspResponder
from remotesign.trust.tsa import TimeStampAuthority
from remotesign.validation.model import Block, Indication, SubIndication, TimestampKind, ValidationInputError
from remotesign.validation.options import DetachedDocument, ValidationOptions
from remotesign.validation.xades import validate_xades, validate_xml_file
from tests import conformance
from tests.inprocess_pki import build_ca

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = {"ds": DS, "xades": XADES, "xadesv141": "http://uri.etsi.org/01903/v1.4.1#"}
FILES = {
    "dir/Līgums ā.txt": "Rīga, čūska, ģimene\n".encode() * 50,
    "data.bin": bytes(range(256)) * 20,
}
MIME = {"dir/Līgums ā.txt": "text/plain", "data.bin": "application/octet-stream"}


# -- conformance corpus -------------------------------------------------------------------------------

# (the dss-xades rows themselves run in tests/test_conformance.py)


def _tl_anchors() -> list[ax509.Certificate]:
    """The Estonian TEST trusted list's service certificates: the offline stand-in the
    manifest names for digidoc4j's TEST mode."""
    text = (conformance.TRUST / "digidoc4j" / "testFiles-tsl" / "test-tl-EE_T-30.xml.template").read_text()
    found = re.findall(r"<(?:\w+:)?X509Certificate>([^<]+)<", text)
    return [ax509.Certificate.load(base64.b64decode(b)) for b in found]


def _container_results(case_id: str) -> list:
    case = next(c for c in conformance.cases() if c.id == case_id)
    options = conformance.options_for(case)
    options = dataclasses.replace(options, trust_anchors=options.trust_anchors + tuple(_tl_anchors()))
    with zipfile.ZipFile(case.file) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}

    def resolve(uri: str):
        name = conformance_name(uri)
        if name is None or name not in entries or name.startswith("META-INF/"):
            return None
        return lambda: io.BytesIO(entries[name])

    results = []
    for name in sorted(n for n in entries if n.startswith("META-INF/") and "signatures" in n):
        results += asyncio.run(validate_xades(entries[name], options, resolve=resolve))
    return results


def conformance_name(uri: str) -> str | None:
    from remotesign.formats.xades import uri_to_name
    try:
        return uri_to_name(uri)
    except Exception:  # noqa: BLE001 - an unusable URI names nothing
        return None


@pytest.mark.parametrize("case_id,prefix", [
    *[("dd4j-asice-multi-01", p) for p in conformance.PER_SIGNATURE["dd4j-asice-multi-01"]],
    ("dd4j-bdoc-multi-01", "S0"),  # its OCSP responder is a locally trusted one (RFC 6960 §4.2.2.2)
    ("dd4j-bdoc-multi-01", "S1"),
])
def test_container_signature(case_id: str, prefix: str, container_results: dict) -> None:
    """Per-signature expectations of the containers, validated through validate_xades with a
    resolver over the container entries (as the ASiC validator does)."""
    results = container_results.setdefault(case_id, _container_results(case_id))
    want_ind, want_sub = conformance.PER_SIGNATURE[case_id][prefix]
    got = next(s for s in results if s.id.startswith(prefix))
    if want_ind == "not TOTAL-PASSED":
        assert got.indication is not Indication.TOTAL_PASSED
    else:
        assert got.indication.value == want_ind, (got.sub_indication, got.errors)
    if want_sub:
        assert got.sub_indication is not None and got.sub_indication.value == want_sub
    assert got.signed_objects in (["test.txt"], ["test.xtx"])


@pytest.fixture(scope="module")
def container_results() -> dict:
    return {}


# -- in-process PKI ---------------------------------------------------------------------------------

@dataclass
class Pki:
    db: Database
    ca: CertificateAuthority
    tsa: TimeStampAuthority
    ocsp: OcspResponder
    crl: CrlPublisher
    signers: dict[str, tuple[object, bytes]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    tmp = tmp_path_factory.mktemp("xades-validation")
    db, keystore, ca = build_ca(tmp, "http://127.0.0.1:1", KeyAlgorithm.EC_P384)
    p = Pki(db=db, ca=ca, tsa=TimeStampAuthority(db, ca, keystore, "1.3.6.1.4.1.59999.1.3.1", 500),
            ocsp=OcspResponder(ca, keystore, 60), crl=CrlPublisher(db, ca, keystore, 24))
    keys = {"p256": ec.generate_private_key(ec.SECP256R1()), "rsa2048": rsa.generate_private_key(65537, 2048)}
    for label, key in keys.items():
        p.signers[label] = (key, _issue(p, key))
    yield p
    db.dispose()


def _issue(pki: Pki, key: object, subject: str = "CN=Test Signer,SERIALNUMBER=PNOLV-010101-12345,C=LV") -> bytes:
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pki.ca.issue(subject=subject_from_text(subject), public_key_der=spki, profile_name="qualified-person",
                        tenant_id=None).der


def options(pki: Pki, *, provider: bool = True, anchors: tuple | None = None, **kwargs: object) -> ValidationOptions:
    """Trust the in-process root; fresh revocation data from the in-process CA (what the
    service's revocation provider gives) unless ``provider`` is False."""
    return ValidationOptions(trust_anchors=anchors if anchors is not None else (pki.ca.root.asn1(),),
                             revocation_provider=_provider(pki) if provider else None, **kwargs)


def _provider(pki: Pki):
    """OCSP for end-entity certificates of the issuing CA, the root's CRL for the issuing CA."""
    issuing, root = pki.ca.issuing.asn1(), pki.ca.root.asn1()

    def provide(certificates) -> ValidationData:
        ocsps, crls = [], []
        for cert in certificates:
            if cert.issuer == issuing.subject and not cert.ca:
                ocsps.append(ocsp_for(pki, cert.dump()))
            elif cert.issuer == root.subject and cert.dump() != root.dump():
                crls.append(pki.crl.current(pki.ca.root.id))
        return ValidationData(certificates=(pki.ca.issuing.der,), ocsp_responses=tuple(dict.fromkeys(ocsps)),
                              crls=tuple(dict.fromkeys(crls)))
    return provide


def objects(files: dict[str, bytes] = FILES) -> list[DataObjectRef]:
    return [DataObjectRef(n, hashlib.sha256(d).digest(), "sha256", MIME.get(n, "application/octet-stream"))
            for n, d in files.items()]


def sign_digest(key: object, digest: bytes, hash_name: str = "sha256") -> bytes:
    algo = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}[hash_name]
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), Prehashed(algo))
    return key.sign(digest, ec.ECDSA(Prehashed(algo)))


def signer_spec(pki: Pki, label: str) -> SignerSpec:
    return SignerSpec(certificate=pki.signers[label][1], chain=(pki.ca.issuing.der, pki.ca.root.der),
                      digest_algorithm="sha256", mechanism="rsa" if label.startswith("rsa") else "ecdsa")


def sign_b(pki: Pki, label: str = "p256", **kwargs: object) -> bytes:
    prepared = prepare_signature(objects(), signer_spec(pki, label), datetime.now(timezone.utc), **kwargs)
    return embed_signature_value(prepared.xml, sign_digest(pki.signers[label][0], prepared.digest))


def timestamper(pki: Pki):
    async def stamp(imprint: bytes, hash_name: str) -> bytes:
        from asn1crypto import tsp
        query = tsp.TimeStampReq({"version": "v1", "cert_req": True, "message_imprint": {
            "hash_algorithm": {"algorithm": hash_name}, "hashed_message": imprint}})
        return tsp.TimeStampResp.load(pki.tsa.respond(query.dump()).der)["time_stamp_token"].dump()
    return stamp


def ocsp_for(pki: Pki, cert_der: bytes, nonce: bytes | None = None) -> bytes:
    cert = cx509.load_der_x509_certificate(cert_der)
    issuer = cx509.load_der_x509_certificate(pki.ca.issuing.der)
    builder = cocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(cx509.UnrecognizedExtension(cx509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.2"),
                                                                     nonce), critical=False)
    return pki.ocsp.respond(builder.build().public_bytes(serialization.Encoding.DER)).der


def lt_data(pki: Pki, label: str = "p256") -> ValidationData:
    """What the signing core embeds for LT: signer and TSA paths with their revocation data."""
    tsa_cert = pki.ca.tsa_signer()[0].der
    return ValidationData(certificates=(pki.signers[label][1], pki.ca.issuing.der, pki.ca.root.der, tsa_cert),
                          ocsp_responses=(ocsp_for(pki, pki.signers[label][1]), ocsp_for(pki, tsa_cert)),
                          crls=(pki.crl.current(pki.ca.root.id),))


def chunks(name: str) -> Iterator[bytes]:
    yield FILES[name]


def resolver(files: dict[str, bytes] = FILES):
    def resolve(uri: str):
        name = conformance_name(uri)
        if name not in files:
            return None
        return lambda: io.BytesIO(files[name])
    return resolve


def validate(xml: bytes, opts: ValidationOptions, files: dict[str, bytes] = FILES) -> list:
    return asyncio.run(validate_xades(xml, opts, resolve=resolver(files)))


@pytest.fixture(scope="module")
def levels(pki: Pki) -> dict[str, bytes]:
    b = sign_b(pki, "p256", claimed_role="Valdes loceklis", production_place={"city": "Rīga", "country_name": "LV"})
    t = asyncio.run(add_signature_timestamp(b, timestamper(pki)))
    lt = add_validation_data(t, lt_data(pki))
    tsa_data = ValidationData(crls=(pki.crl.current(pki.ca.issuing.id),))
    lta = asyncio.run(add_archive_timestamp(lt, chunks, timestamper(pki), tsa_data))
    return {"B": b, "T": t, "LT": lt, "LTA": lta}


# -- our own signatures -------------------------------------------------------------------------------

@pytest.mark.parametrize("level,expected", [("B", "XAdES_BASELINE_B"), ("T", "XAdES_BASELINE_T"),
                                            ("LT", "XAdES_BASELINE_LT"), ("LTA", "XAdES_BASELINE_LTA")])
def test_own_levels_pass(pki: Pki, levels: dict[str, bytes], level: str, expected: str) -> None:
    (result,) = validate(levels[level], options(pki))
    assert result.indication is Indication.TOTAL_PASSED, (result.sub_indication, result.errors)
    assert result.signature_format == expected
    assert result.signed_objects == list(FILES)
    assert result.signing_certificate.dump() == pki.signers["p256"][1]
    assert [c.subject.human_friendly for c in result.chain][-1] == pki.ca.root.asn1().subject.human_friendly
    assert result.signature_algorithm == "sha256_ecdsa"
    assert result.signer_roles == ["Valdes loceklis"]
    assert result.production_place == {"city": "Rīga", "countryName": "LV"}
    assert result.claimed_signing_time is not None
    kinds = [t.kind for t in result.timestamps]
    assert kinds == {"B": [], "T": [TimestampKind.SIGNATURE], "LT": [TimestampKind.SIGNATURE],
                     "LTA": [TimestampKind.SIGNATURE, TimestampKind.ARCHIVE]}[level]
    assert all(t.valid and t.message_imprint and t.tsa_name for t in result.timestamps)
    if result.timestamps:
        assert result.best_signature_time == result.timestamps[0].gen_time
    assert not result.errors


def test_own_rsa_signature_and_detached_file(pki: Pki, tmp_path: Path) -> None:
    xml = sign_b(pki, "rsa2048")
    path = tmp_path / "signature.xml"
    path.write_bytes(xml)
    detached = []
    for name, data in FILES.items():
        file = tmp_path / name.replace("/", "_")
        file.write_bytes(data)
        detached.append(DetachedDocument(name=name, path=file))
    document = asyncio.run(validate_xml_file(path, options(pki, detached=tuple(detached)), filename="signature.xml"))
    (result,) = document.signatures
    assert result.indication is Indication.TOTAL_PASSED, result.errors
    assert result.signature_algorithm == "sha256_rsa"
    document = asyncio.run(validate_xml_file(path, options(pki), filename="signature.xml"))
    assert document.signatures[0].sub_indication is SubIndication.SIGNED_DATA_NOT_FOUND


def test_validation_later_uses_time_stamps(pki: Pki, levels: dict[str, bytes]) -> None:
    """Forty days on, offline, with the TSA trusted directly (as a trusted-list service is): the
    embedded OCSP responses are stale, yet LT/LTA signatures pass through past signature
    validation with the POE of their time-stamps; a B signature has no POE and cannot."""
    later = datetime.now(timezone.utc) + timedelta(days=40)
    anchors = (pki.ca.root.asn1(), pki.ca.tsa_signer()[0].asn1())
    for level in ("LT", "LTA"):
        (result,) = validate(levels[level], options(pki, provider=False, validation_time=later, anchors=anchors))
        assert result.indication is Indication.TOTAL_PASSED, (level, result.sub_indication, result.errors)
        assert result.best_signature_time < later - timedelta(days=39)
        assert result.blocks[Block.X509_CERTIFICATE_VALIDATION].messages  # resolved, with the reason
    (result,) = validate(levels["B"], options(pki, provider=False, validation_time=later, anchors=anchors))
    assert result.indication is Indication.INDETERMINATE  # no revocation data at all


def test_time_mark(pki: Pki) -> None:
    """BDOC time-mark: an OCSP response whose nonce is DigestInfo(sha256(SignatureValue)) dates
    the signature (no signature time-stamp)."""
    b = sign_b(pki, "p256")
    value = base64.b64decode(etree.fromstring(b).findtext(".//ds:SignatureValue", namespaces=NS))
    nonce = core.OctetString(algos.DigestInfo({"digest_algorithm": {"algorithm": "sha256"},
                                               "digest": hashlib.sha256(value).digest()}).dump()).dump()
    data = ValidationData(certificates=(pki.signers["p256"][1], pki.ca.issuing.der),
                          ocsp_responses=(ocsp_for(pki, pki.signers["p256"][1], nonce),),
                          crls=(pki.crl.current(pki.ca.root.id),))
    tm = add_validation_data(b, data)
    produced = asn1_ocsp.OCSPResponse.load(data.ocsp_responses[0]).basic_ocsp_response[
        "tbs_response_data"]["produced_at"].native
    later = datetime.now(timezone.utc) + timedelta(days=40)
    (result,) = validate(tm, options(pki, provider=False, validation_time=later))
    assert result.signature_format == "XAdES_BASELINE_LT_TM"
    assert result.indication is Indication.TOTAL_PASSED, result.errors
    assert result.best_signature_time == produced and result.ocsp_produced_at == [produced]
    # An OCSP response not bound to this signature value proves nothing.
    other = add_validation_data(b, dataclasses.replace(data, ocsp_responses=(ocsp_for(pki, pki.signers["p256"][1]),)))
    (result,) = validate(other, options(pki, provider=False, validation_time=later))
    assert result.signature_format == "XAdES_BASELINE_LT_TM"
    assert result.indication is Indication.INDETERMINATE


def test_rsa_pss_signature(pki: Pki) -> None:
    key, cert = pki.signers["rsa2048"]
    prepared = prepare_signature(objects(), signer_spec(pki, "rsa2048"), datetime.now(timezone.utc))
    root = etree.fromstring(prepared.xml)
    root.find(".//ds:SignatureMethod", NS).set("Algorithm", "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1")
    signed_info = etree.tostring(root.find(".//ds:SignedInfo", NS), method="c14n", with_comments=False)
    value = key.sign(signed_info, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    root.find(".//ds:SignatureValue", NS).text = base64.b64encode(value).decode()
    (result,) = validate(etree.tostring(root), options(pki))
    assert result.indication is Indication.TOTAL_PASSED, result.errors
    assert result.signature_algorithm == "rsassa_pss"


# -- failures -----------------------------------------------------------------------------------------

def test_altered_data_object(pki: Pki, levels: dict[str, bytes]) -> None:
    files = {**FILES, "data.bin": FILES["data.bin"][:-1] + b"X"}
    (result,) = validate(levels["T"], options(pki), files)
    assert (result.indication, result.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert "data.bin" in result.errors[0]


def test_removed_data_object(pki: Pki, levels: dict[str, bytes]) -> None:
    (result,) = validate(levels["B"], options(pki), {"data.bin": FILES["data.bin"]})
    assert (result.indication, result.sub_indication) == (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)
    assert result.signed_objects == list(FILES)


def test_altered_signature_value(pki: Pki, levels: dict[str, bytes]) -> None:
    root = etree.fromstring(levels["B"])
    el = root.find(".//ds:SignatureValue", NS)
    value = bytearray(base64.b64decode(el.text))
    value[5] ^= 1
    el.text = base64.b64encode(bytes(value)).decode()
    (result,) = validate(etree.tostring(root), options(pki))
    assert (result.indication, result.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE)


def test_altered_signed_property(pki: Pki, levels: dict[str, bytes]) -> None:
    root = etree.fromstring(levels["B"])
    root.find(".//xades:SigningTime", NS).text = "2001-01-01T00:00:00Z"
    (result,) = validate(etree.tostring(root), options(pki))
    assert (result.indication, result.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)


def test_unknown_root(pki: Pki, levels: dict[str, bytes]) -> None:
    other = conformance.load_anchor(conformance.TRUST / "pyhanko" / "testing-ca-root.cert.pem")[0]
    (result,) = validate(levels["LT"], options(pki, anchors=(other,)))
    assert (result.indication, result.sub_indication) == (Indication.INDETERMINATE,
                                                           SubIndication.NO_CERTIFICATE_CHAIN_FOUND)


def test_revoked_signer(pki: Pki) -> None:
    """Revoked after a signature time-stamp: the POE predates the revocation, so it passes; a
    B signature has no POE and gets REVOKED_NO_POE."""
    key = ec.generate_private_key(ec.SECP256R1())
    pki.signers["revoked"] = (key, _issue(pki, key, "CN=Revoked Signer,SERIALNUMBER=PNOLV-020202-12345,C=LV"))
    b = sign_b(pki, "revoked")
    t = asyncio.run(add_signature_timestamp(b, timestamper(pki)))
    time.sleep(1.1)  # OCSP revocation times have whole seconds
    issued = next(c for c in pki.ca.list(all_tenants=True) if c.der == pki.signers["revoked"][1])
    pki.ca.revoke(issued, "key_compromise")
    (result,) = validate(b, options(pki))
    assert (result.indication, result.sub_indication) == (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE)
    (result,) = validate(t, options(pki))
    assert result.indication is Indication.TOTAL_PASSED, result.errors


def test_copied_archive_timestamp(pki: Pki, levels: dict[str, bytes]) -> None:
    """An archive time-stamp moved from another signature does not time-stamp this one."""
    other = asyncio.run(add_archive_timestamp(add_validation_data(
        asyncio.run(add_signature_timestamp(sign_b(pki), timestamper(pki))), lt_data(pki)), chunks, timestamper(pki)))
    victim = etree.fromstring(levels["LTA"])
    donor = etree.fromstring(other)
    victim.find(".//xadesv141:ArchiveTimeStamp/xades:EncapsulatedTimeStamp", NS).text = donor.find(
        ".//xadesv141:ArchiveTimeStamp/xades:EncapsulatedTimeStamp", NS).text
    (result,) = validate(etree.tostring(victim), options(pki))
    assert result.signature_format == "XAdES_BASELINE_LTA"
    archive = [t for t in result.timestamps if t.kind is TimestampKind.ARCHIVE]
    assert archive[0].conclusion.sub_indication is SubIndication.HASH_FAILURE
    assert result.indication is not Indication.TOTAL_PASSED


# -- enveloped / enveloping XML from another producer ---------------------------------------------------

def _signxml_enveloped(pki: Pki, document: bytes, method: str) -> bytes:
    from signxml import DigestAlgorithm, SignatureMethod, methods
    from signxml.xades import XAdESSigner
    key, cert = pki.signers["p256"]
    certs = [cx509.load_der_x509_certificate(d) for d in (cert, pki.ca.issuing.der)]
    signer = XAdESSigner(method=getattr(methods, method), signature_algorithm=SignatureMethod.ECDSA_SHA256,
                         digest_algorithm=DigestAlgorithm.SHA256)
    return etree.tostring(signer.sign(etree.fromstring(document), key=key, cert=certs))


@pytest.mark.parametrize("method", ["enveloped", "enveloping"])
def test_signxml_signature(pki: Pki, method: str) -> None:
    xhtml = (b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Aa</title></head>'
             b'<body><p>Sveiki <b>pasaule</b> &amp; co</p>\n<!-- note --></body></html>')
    signed = _signxml_enveloped(pki, xhtml, method)
    (result,) = validate(signed, options(pki))
    assert result.indication is Indication.TOTAL_PASSED, result.errors
    assert result.signature_format == "XAdES_BASELINE_B"
    assert result.signed_objects == []
    root = etree.fromstring(signed)
    target = root.find(".//{http://www.w3.org/1999/xhtml}b")
    target.text = "world"
    (result,) = validate(etree.tostring(root), options(pki))
    assert result.sub_indication is SubIndication.HASH_FAILURE


def test_plain_xmldsig_is_not_etsi(pki: Pki) -> None:
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner
    key, cert = pki.signers["p256"]
    signed = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256).sign(
        etree.fromstring(b"<doc><a>1</a></doc>"), key=key, cert=[cx509.load_der_x509_certificate(cert)])
    (result,) = validate(etree.tostring(signed), options(pki))
    assert result.signature_format == "XML_NOT_ETSI"
    assert result.indication is Indication.TOTAL_PASSED, result.errors


# -- hostile XML and wrapping ------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<r>&lol9;</r>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % ext SYSTEM "http://127.0.0.1:1/evil.dtd"> %ext;]><r/>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, PARAMETER_ENTITY, b"<r>", b"", b"\xff\xfe<\x00",
                                  b"<a>" * 5000 + b"</a>" * 5000],
                         ids=["billion-laughs", "xxe", "parameter-entity", "malformed", "empty", "garbage", "deep"])
def test_hostile_xml_is_refused(data: bytes, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ValidationInputError) as exc:
        asyncio.run(validate_xades(data, ValidationOptions(), resolve=lambda _u: None))
    assert exc.value.code == "invalid_document"
    path = tmp_path / "hostile.xml"
    path.write_bytes(data)
    with pytest.raises(ValidationInputError):
        asyncio.run(validate_xml_file(path, ValidationOptions(), filename="hostile.xml"))
    assert time.monotonic() - started < 2


def test_unsigned_and_oversized_xml(tmp_path: Path) -> None:
    path = tmp_path / "plain.xml"
    path.write_bytes(b"<invoice><total>1</total></invoice>")
    document = asyncio.run(validate_xml_file(path, ValidationOptions(), filename="plain.xml"))
    assert document.signatures == [] and document.signature_form == "XAdES"
    small = ValidationOptions(limits=dataclasses.replace(ValidationOptions().limits, max_xml_bytes=10))
    with pytest.raises(ValidationInputError):
        asyncio.run(validate_xml_file(path, small, filename="plain.xml"))


def _mutate(xml: bytes, change) -> bytes:
    root = etree.fromstring(xml)
    change(root)
    return etree.tostring(root)


def test_duplicate_id_wrapping(pki: Pki, levels: dict[str, bytes]) -> None:
    """A second element with the SignedProperties' Id (the XSW classic) is a format failure."""
    def duplicate(root: etree._Element) -> None:
        props = root.find(".//xades:SignedProperties", NS)
        fake = copy.deepcopy(props)
        fake.find(".//xades:SigningTime", NS).text = "2001-01-01T00:00:00Z"
        wrapper = etree.SubElement(root.find("ds:Signature", NS), f"{{{DS}}}Object")
        wrapper.append(fake)
    (result,) = validate(_mutate(levels["B"], duplicate), options(pki))
    assert (result.indication, result.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)


def test_signed_properties_of_another_signature(pki: Pki) -> None:
    """Re-pointing the SignedProperties reference at another signature's properties is refused:
    this signature's own SignedProperties are not found (EU DSS's XSW-enveloped-fake-signedProperties
    test: INDETERMINATE/SIGNED_DATA_NOT_FOUND)."""
    first, second = sign_b(pki), sign_b(pki)
    root = etree.fromstring(first)
    other = etree.fromstring(second).find("ds:Signature", NS)
    root.append(other)
    ref = root.find("ds:Signature/ds:SignedInfo/ds:Reference[@Type='http://uri.etsi.org/01903#SignedProperties']", NS)
    ref.set("URI", "#" + other.find(".//xades:SignedProperties", NS).get("Id"))
    results = validate(etree.tostring(root), options(pki))
    assert (results[0].indication, results[0].sub_indication) == (Indication.INDETERMINATE,
                                                                  SubIndication.SIGNED_DATA_NOT_FOUND)
    assert results[1].indication is Indication.TOTAL_PASSED


@pytest.mark.parametrize("transform", [
    '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>',
    '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>//*</ds:XPath></ds:Transform>',
    '<ds:Transform Algorithm="http://www.w3.org/2002/06/xmldsig-filter2">'
    '<f:XPath xmlns:f="http://www.w3.org/2002/06/xmldsig-filter2" Filter="union">/</f:XPath></ds:Transform>',
], ids=["xslt", "xpath", "xpath-filter2-union"])
def test_refused_transforms(pki: Pki, levels: dict[str, bytes], transform: str) -> None:
    def add(root: etree._Element) -> None:
        ref = root.find(".//ds:Reference[@Type='http://uri.etsi.org/01903#SignedProperties']", NS)
        transforms = ref.find("ds:Transforms", NS)
        transforms.insert(0, etree.fromstring(f'<ds:Transforms xmlns:ds="{DS}">{transform}</ds:Transforms>')[0])
    (result,) = validate(_mutate(levels["B"], add), options(pki))
    assert (result.indication, result.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)


def test_many_references_are_bounded(pki: Pki, levels: dict[str, bytes]) -> None:
    def flood(root: etree._Element) -> None:
        signed_info = root.find(".//ds:SignedInfo", NS)
        ref = signed_info.find("ds:Reference", NS)
        for _ in range(1200):
            signed_info.append(copy.deepcopy(ref))
    started = time.monotonic()
    (result,) = validate(_mutate(levels["B"], flood), options(pki))
    assert result.sub_indication is SubIndication.FORMAT_FAILURE
    assert time.monotonic() - started < 5


def test_canonicalization_work_is_bounded() -> None:
    """Thousands of signatures each referencing a large document body exhaust the budget."""
    body = "<p>" + "x" * 2000 + "</p>"
    sig = (f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{xc.C14N_10}"/>'
           '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
           + '<ds:Reference URI="#body"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
           '<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>' * 900 +
           '</ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>')
    xml = f'<doc><body Id="body">{body * 50}</body>{sig * 3}</doc>'.encode()
    started = time.monotonic()
    with pytest.raises(ValidationInputError):
        asyncio.run(validate_xades(xml, ValidationOptions(), resolve=lambda _u: None))
    assert time.monotonic() - started < 10


# -- canonicalization -----------------------------------------------------------------------------------

def test_c14n_matches_lxml_where_lxml_is_right() -> None:
    doc = (b'<?xml version="1.0"?><!--top--><?pi a?><r xmlns:a="urn:a" xmlns="urn:d" a:x="1" b="2" xml:lang="lv">'
           b'<a:e z="&amp;&lt;&#10;" a:y="q">t&amp;ext<!--c--><?p d?>\r\n<f/></a:e>tail<g xmlns=""/></r><!--end-->')
    tree = etree.ElementTree(etree.fromstring(doc))
    budget = Budget(1 << 20)
    for algorithm, kwargs in ((xc.C14N_10, {}), (xc.C14N_10_COMMENTS, {"with_comments": True}),
                              (xc.EXC_C14N, {"exclusive": True}),
                              (xc.EXC_C14N_COMMENTS, {"exclusive": True, "with_comments": True})):
        kwargs.setdefault("with_comments", False)
        assert NodeSet(tree, None, comments=True).octets(algorithm, budget) == etree.tostring(
            tree, method="c14n", **kwargs)
        inner = tree.getroot()[0]
        if kwargs.get("exclusive"):
            assert element_octets(inner, algorithm, budget) == etree.tostring(inner, method="c14n", **kwargs)
    # C14N 1.0: an apex element takes xml:* attributes from its ancestors (libxml2 does not).
    assert b'xml:lang="lv"' in element_octets(tree.getroot()[0], xc.C14N_10, budget)


def test_c14n_default_namespace_on_apex() -> None:
    """libxml2 2.14 writes xmlns="" on grandchildren here; C14N says nothing of the kind."""
    root = etree.fromstring(b'<r xmlns:d="urn:d"><h xmlns="urn:x"><a><b/></a></h></r>')
    assert element_octets(root[0], xc.C14N_10, Budget(1 << 20)) == \
        b'<h xmlns="urn:x" xmlns:d="urn:d"><a><b></b></a></h>'
    assert element_octets(root[0], xc.EXC_C14N, Budget(1 << 20)) == b'<h xmlns="urn:x"><a><b></b></a></h>'


# -- algorithms and counter-signatures ------------------------------------------------------------------

def _resign(pki: Pki, root: etree._Element, signature: etree._Element, label: str, hash_name: str) -> None:
    """Sign ``signature``'s SignedInfo (exclusive c14n, as it declares) with the ``label`` key."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    key = pki.signers[label][0]
    signed_info = etree.tostring(signature.find("ds:SignedInfo", NS), method="c14n", exclusive=True,
                                 with_comments=False)
    algo = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}[hash_name]
    r, s = decode_dss_signature(key.sign(signed_info, ec.ECDSA(algo)))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    signature.find("ds:SignatureValue", NS).text = base64.b64encode(raw).decode()


def test_sha1_signature_method_is_refused(pki: Pki, levels: dict[str, bytes]) -> None:
    """SHA-1 is accepted by the default policy only for signatures proven to exist by 2012-08-01:
    a new one has no such proof (NO_POE); a policy that never accepts it says so plainly."""
    from remotesign.validation.policy import parse_policy

    root = etree.fromstring(levels["B"])
    sig = root.find("ds:Signature", NS)
    sig.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).set("Algorithm", xc.EXC_C14N)
    method = sig.find("ds:SignedInfo/ds:SignatureMethod", NS)
    method.set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1")
    _resign(pki, root, sig, "p256", "sha1")
    (result,) = validate(etree.tostring(root), options(pki))
    assert result.blocks[Block.CRYPTOGRAPHIC_VERIFICATION].indication is Indication.TOTAL_PASSED
    assert result.sub_indication is SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE
    assert result.signature_algorithm == "sha1_ecdsa"
    never = parse_policy(b'name = "no-sha1"\n[cryptography.digests]\nsha1 = "never"\nsha256 = ""\n')
    (result,) = validate(etree.tostring(root), options(pki, policy=never))
    assert result.sub_indication is SubIndication.CRYPTO_CONSTRAINTS_FAILURE


def test_counter_signature(pki: Pki, levels: dict[str, bytes]) -> None:
    """A xades:CounterSignature over the parent's SignatureValue is reported with parent_id."""
    root = etree.fromstring(levels["B"])
    parent = root.find("ds:Signature", NS)
    value = parent.find("ds:SignatureValue", NS)
    qp = parent.find(".//xades:QualifyingProperties", NS)
    usp = etree.SubElement(etree.SubElement(qp, f"{{{XADES}}}UnsignedProperties"),
                           f"{{{XADES}}}UnsignedSignatureProperties")
    holder = etree.SubElement(usp, f"{{{XADES}}}CounterSignature")
    counter = etree.fromstring(f"""<ds:Signature xmlns:ds="{DS}" Id="counter-1"><ds:SignedInfo>
        <ds:CanonicalizationMethod Algorithm="{xc.EXC_C14N}"/>
        <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
        <ds:Reference URI="#{value.get('Id')}" Type="http://uri.etsi.org/01903#CountersignedSignature">
        <ds:Transforms><ds:Transform Algorithm="{xc.EXC_C14N}"/></ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
        </ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
        {base64.b64encode(pki.signers['p256'][1]).decode()}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
        </ds:Signature>""")
    holder.append(counter)
    digest = hashlib.sha256(etree.tostring(value, method="c14n", exclusive=True, with_comments=False)).digest()
    counter.find(".//ds:DigestValue", NS).text = base64.b64encode(digest).decode()
    _resign(pki, root, counter, "p256", "sha256")
    results = validate(etree.tostring(root), options(pki))
    assert [(r.id, r.parent_id) for r in results] == [(parent.get("Id"), None), ("counter-1", parent.get("Id"))]
    assert all(r.indication is Indication.TOTAL_PASSED for r in results), [r.errors for r in results]
    assert results[1].signature_format == "XML_NOT_ETSI"
    value.text = value.text[:-8] + ("AAAAAAA=" if not value.text.endswith("AAAAAAA=") else "BBBBBBB=")
    results = validate(etree.tostring(root), options(pki))
    assert results[1].sub_indication is SubIndication.HASH_FAILURE
