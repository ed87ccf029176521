"""eIDAS qualification from trusted lists, local trusted lists of the built-in CA, loading EU-style
LOTL/TL files with their signatures checked, and the ETSI TS 119 102-2 validation report."""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import pem, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from pyhanko.sign.validation.qualified.eutl_parse import trust_list_to_registry_unsafe
from pyhanko.sign.validation.qualified.tsp import CA_QC_URI, QcCertType, Qualifier, TSPRegistry

from remotesign.cli import main as cli
from remotesign.keystore import KeyAlgorithm
from remotesign.trust.ca import CertificateAuthority, subject_from_text
from remotesign.trust.local_tl import build_local_trusted_list, sign_trusted_list
from remotesign.validation import trusted_lists
from remotesign.validation.etsi_report import etsi_validation_report, signature_quality_uri
from remotesign.validation.model import (CertificateQualification, DocumentResult, Indication, SignatureResult,
                                         SubIndication, TimestampKind, TimestampResult)
from remotesign.validation.options import ValidationOptions
from remotesign.validation.qualification import assess
from remotesign.validation.trusted_lists import load_trusted_lists
from tests.inprocess_pki import build_ca

TSL_DIR = Path(__file__).parent / "data/conformance/trust/digidoc4j/testFiles-tsl"
CERT_DIR = Path(__file__).parent / "data/conformance/trust/digidoc4j/testFiles-certs"
VR = "{http://uri.etsi.org/19102/v1.2.1#}"


def _now() -> datetime:
    """The current time, read when needed: a module-level constant goes stale when the suite is slow
    and would predate certificates the fixtures make later."""
    return datetime.now(timezone.utc)


@dataclass
class Pki:
    ca: CertificateAuthority
    root: x509.Certificate
    issuing: x509.Certificate
    person: x509.Certificate
    seal: x509.Certificate
    org_auth: x509.Certificate   # no QC statements, legal-person subject

    def chain(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        return [leaf, self.issuing, self.root]


def _public_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    _, _, ca = build_ca(tmp_path_factory.mktemp("ca"), ca_algorithm=KeyAlgorithm.EC_P256,
                        service_algorithm=KeyAlgorithm.EC_P256)

    def issue(subject: str, profile: str) -> x509.Certificate:
        issued = ca.issue(subject=subject_from_text(subject), public_key_der=_public_key(), profile_name=profile,
                          tenant_id=None)
        return x509.Certificate.load(issued.der)

    return Pki(ca=ca, root=ca.root.asn1(), issuing=ca.issuing.asn1(),
               person=issue("CN=Alice Tester,SERIALNUMBER=PNOLV-010101-12345,C=LV", "qualified-person"),
               seal=issue("CN=Example Seal,ORGANIZATIONIDENTIFIER=NTRLV-40000000000,O=Example,C=LV",
                          "qualified-seal"),
               org_auth=issue("CN=Example Login,ORGANIZATIONIDENTIFIER=NTRLV-40000000000,O=Example",
                              "person-auth"))


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    trusted_lists.clear_cache()


def _local_tl(pki: Pki, tmp_path: Path, name: str = "local-tl.xml", **kwargs: object) -> Path:
    path = tmp_path / name
    path.write_bytes(build_local_trusted_list([pki.ca.issuing.der], operator_name="Test QTSP",
                                              **kwargs))  # type: ignore[arg-type]
    return path


def _options(pki: Pki, registry: TSPRegistry | None) -> ValidationOptions:
    return ValidationOptions(trust_anchors=(pki.root,), tsp_registry=registry)


def _signature(pki: Pki, leaf: x509.Certificate | None, indication: Indication = Indication.TOTAL_PASSED,
               sub: SubIndication | None = None, at: datetime | None = None) -> SignatureResult:
    return SignatureResult(id="S0", signature_format="XAdES_BASELINE_B", indication=indication,
                           sub_indication=sub, signing_certificate=leaf,
                           chain=pki.chain(leaf) if leaf is not None else [], best_signature_time=at or _now())


def _assessed(pki: Pki, registry: TSPRegistry | None, leaf: x509.Certificate | None,
              indication: Indication = Indication.TOTAL_PASSED, **kwargs: object) -> SignatureResult:
    signature = _signature(pki, leaf, indication, **kwargs)  # type: ignore[arg-type]
    assess(signature, _options(pki, registry))
    return signature


# -- local trusted list of the built-in CA ---------------------------------------------------------

def test_local_tl_round_trips_through_pyhanko(pki: Pki, tmp_path: Path) -> None:
    xml = build_local_trusted_list([pki.ca.issuing.pem().encode()], operator_name="Test QTSP", territory="xx")
    registry, errors = trust_list_to_registry_unsafe(xml.decode())
    assert errors == []
    (service,) = registry.applicable_service_definitions(next(iter(registry.known_certificate_authorities)), None)
    assert service.base_info.service_type == CA_QC_URI
    assert service.base_info.provider_certs[0].dump() == pki.issuing.dump()
    assert service.base_info.additional_info_certificate_type == {QcCertType.QC_ESIGN, QcCertType.QC_ESEAL}
    qualifiers = {q for qual in service.qualifications for q in qual.qualifiers}
    assert {Qualifier.QC_STATEMENT, Qualifier.FOR_ESIG, Qualifier.FOR_ESEAL, Qualifier.WITH_QSCD} <= qualifiers
    root = etree.fromstring(xml)
    assert root.findtext("{http://uri.etsi.org/02231/v2#}SchemeInformation/"
                         "{http://uri.etsi.org/02231/v2#}SchemeTerritory") == "XX"

    loaded = load_trusted_lists([_local_tl(pki, tmp_path)])
    assert loaded.problems == ()
    (tl,) = loaded.lists
    assert (tl.territory, tl.sequence_number, tl.verified, tl.services) == ("XX", 1, False, 1)
    assert tl.next_update is not None and tl.next_update > _now()


def test_local_tl_rejects_bad_arguments(pki: Pki) -> None:
    with pytest.raises(ValueError):
        build_local_trusted_list([pki.ca.issuing.der], operator_name="x", qualified_for=("web",))
    with pytest.raises(ValueError):
        build_local_trusted_list([], operator_name="x")


def test_cli_writes_local_tl(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeServices:
        ca = pki.ca
        base_url = "https://sign.example"

        def close(self) -> None:
            pass

    monkeypatch.setattr(cli, "_services", lambda *a: FakeServices())
    out = tmp_path / "tl.xml"
    assert cli.main(["trust", "local-tl", "--out", str(out), "--territory", "QQ", "--no-qscd"]) == 0
    loaded = load_trusted_lists([out])
    assert [t.territory for t in loaded.lists] == ["QQ"]
    assert _assessed(pki, loaded.registry, pki.person).signature_level == "ADESIG_QC"


# -- qualification and signature levels ------------------------------------------------------------

def test_qualified_person_on_qscd_is_qesig(pki: Pki, tmp_path: Path) -> None:
    registry = load_trusted_lists([_local_tl(pki, tmp_path)]).registry
    signature = _assessed(pki, registry, pki.person)
    assert signature.qualification is CertificateQualification.QC_FOR_ESIG_QSCD
    assert signature.signature_level == "QESIG"


def test_without_qscd_is_adesig_qc(pki: Pki, tmp_path: Path) -> None:
    registry = load_trusted_lists([_local_tl(pki, tmp_path, qscd=False)]).registry
    signature = _assessed(pki, registry, pki.person)
    assert signature.qualification is CertificateQualification.QC_FOR_ESIG
    assert signature.signature_level == "ADESIG_QC"


def test_qualified_seal_is_qeseal(pki: Pki, tmp_path: Path) -> None:
    registry = load_trusted_lists([_local_tl(pki, tmp_path)]).registry
    signature = _assessed(pki, registry, pki.seal)
    assert signature.qualification is CertificateQualification.QC_FOR_ESEAL_QSCD
    assert signature.signature_level == "QESEAL"


def test_type_not_declared_in_the_list_is_not_qualified(pki: Pki, tmp_path: Path) -> None:
    registry = load_trusted_lists([_local_tl(pki, tmp_path, qualified_for=("esig",))]).registry
    assert _assessed(pki, registry, pki.person).signature_level == "QESIG"
    signature = _assessed(pki, registry, pki.seal)
    assert signature.qualification is CertificateQualification.NOT_QC_FOR_ESEAL
    assert signature.signature_level == "ADESEAL"


def test_qc_statements_alone_do_not_qualify(pki: Pki) -> None:
    person = _assessed(pki, None, pki.person)
    assert (person.qualification, person.signature_level) == (CertificateQualification.NOT_QC_FOR_ESIG, "ADESIG")
    seal = _assessed(pki, None, pki.seal)
    assert (seal.qualification, seal.signature_level) == (CertificateQualification.NOT_QC_FOR_ESEAL, "ADESEAL")
    assert _assessed(pki, TSPRegistry(), pki.person).signature_level == "ADESIG"


def test_certificate_without_qc_statements_falls_back_to_its_subject(pki: Pki, tmp_path: Path) -> None:
    registry = load_trusted_lists([_local_tl(pki, tmp_path)]).registry
    signature = _assessed(pki, registry, pki.org_auth)
    assert signature.qualification is CertificateQualification.NOT_QC_FOR_ESEAL
    assert signature.signature_level == "ADESEAL"


def test_signature_before_the_service_was_granted_is_not_qualified(pki: Pki, tmp_path: Path) -> None:
    registry = load_trusted_lists([_local_tl(pki, tmp_path)]).registry
    early = pki.issuing.not_valid_before - timedelta(days=1)
    assert _assessed(pki, registry, pki.person, at=early).signature_level == "ADESIG"


def test_chain_assembled_by_name_does_not_borrow_a_listed_ca(pki: Pki, tmp_path: Path) -> None:
    """A certificate naming the listed CA as issuer but not signed by it is not qualified."""
    genuine = cx509.load_der_x509_certificate(pki.person.dump())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (cx509.CertificateBuilder().subject_name(genuine.subject).issuer_name(genuine.issuer)
               .public_key(key.public_key()).serial_number(genuine.serial_number)
               .not_valid_before(genuine.not_valid_before_utc).not_valid_after(genuine.not_valid_after_utc))
    for extension in genuine.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    forged = x509.Certificate.load(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    registry = load_trusted_lists([_local_tl(pki, tmp_path)]).registry
    assert _assessed(pki, registry, forged, Indication.INDETERMINATE,
                     sub=SubIndication.NO_CERTIFICATE_CHAIN_FOUND).signature_level == "INDETERMINATE_ADESIG"


def test_indeterminate_levels(pki: Pki, tmp_path: Path) -> None:
    registry = load_trusted_lists([_local_tl(pki, tmp_path)]).registry
    assert _assessed(pki, registry, pki.person, Indication.INDETERMINATE,
                     sub=SubIndication.TRY_LATER).signature_level == "INDETERMINATE_QESIG"
    assert _assessed(pki, registry, pki.seal, Indication.INDETERMINATE).signature_level == "INDETERMINATE_QESEAL"
    assert _assessed(pki, None, pki.person, Indication.INDETERMINATE).signature_level == "INDETERMINATE_ADESIG"


def test_failed_levels(pki: Pki, tmp_path: Path) -> None:
    qscd = load_trusted_lists([_local_tl(pki, tmp_path)]).registry
    no_qscd = load_trusted_lists([_local_tl(pki, tmp_path, name="noqscd.xml", qscd=False)]).registry
    failed = Indication.TOTAL_FAILED
    assert _assessed(pki, qscd, pki.person, failed, sub=SubIndication.HASH_FAILURE).signature_level == \
        "NOT_ADES_QC_QSCD"
    assert _assessed(pki, no_qscd, pki.seal, failed).signature_level == "NOT_ADES_QC"
    assert _assessed(pki, None, pki.person, failed).signature_level == "NOT_ADES"


def test_no_signing_certificate_is_na(pki: Pki) -> None:
    signature = _assessed(pki, None, None, Indication.INDETERMINATE, sub=SubIndication.NO_SIGNING_CERTIFICATE_FOUND)
    assert (signature.qualification, signature.signature_level) == (CertificateQualification.UNKNOWN, "NA")


def test_assess_never_raises(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenRegistry(TSPRegistry):
        def applicable_tsps_on_path(self, path, moment):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR):
        signature = _assessed(pki, BrokenRegistry(), pki.person)
    assert signature.signature_level == "ADESIG"
    assert "boom" in caplog.text


def test_estonian_test_list_qualifies_a_test_id_card_certificate(tmp_path: Path) -> None:
    """The EE_T test list, given directly (operator decision), knows SK's CA/QC and QTST services."""
    path = tmp_path / "EE_T.xml"
    path.write_text(_template("test-tl-EE_T-30.xml.template"))
    loaded = load_trusted_lists([tmp_path])
    assert loaded.problems == ()
    (tl,) = loaded.lists
    assert (tl.territory, tl.sequence_number, tl.verified, tl.lotl) == ("EE_T", 30, False, False)
    names = {a.name.native.get("common_name") for a in loaded.registry.known_certificate_authorities}
    assert {"TEST of ESTEID2018", "TEST of ESTEID-SK 2015", "TEST of SK ID Solutions EID-Q 2024E"} <= names
    assert len(list(loaded.registry.known_timestamp_authorities)) == 10

    leaf, ca, root = (_cert(n) for n in ("sign_RSA_from_TEST_of_ESTEIDSK2015.pem", "TEST_of_ESTEID-SK_2015.pem.crt",
                                         "TESTofEECertificationCentreRootCA.crt"))
    signature = SignatureResult(id="S1", signature_format="XAdES_BASELINE_LT", indication=Indication.TOTAL_PASSED,
                                signing_certificate=leaf, chain=[leaf, ca, root],
                                best_signature_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    assess(signature, ValidationOptions(tsp_registry=loaded.registry))
    assert signature.signature_level == "QESIG"


# -- LOTL and signed national lists ----------------------------------------------------------------

@dataclass
class Signer:
    key: ec.EllipticCurvePrivateKey
    der: bytes

    @property
    def asn1(self) -> x509.Certificate:
        return x509.Certificate.load(self.der)


def _signer(name: str) -> Signer:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, name),
                          cx509.NameAttribute(NameOID.COUNTRY_NAME, "EE")])
    cert = (cx509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(cx509.random_serial_number()).not_valid_before(_now() - timedelta(days=1))
            .not_valid_after(_now() + timedelta(days=30)).sign(key, hashes.SHA256()))
    return Signer(key, cert.public_bytes(serialization.Encoding.DER))


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    return {name: _signer(name) for name in ("lotl", "tlso", "other")}


def _template(name: str, **values: str) -> str:
    text = (TSL_DIR / name).read_text(encoding="utf-8").replace("{TSL_VERSION_IDENTIFIER}", "5")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _cert(name: str) -> x509.Certificate:
    data = (CERT_DIR / name).read_bytes()
    return x509.Certificate.load(pem.unarmor(data)[2] if pem.detect(data) else data)


def _lotl_dir(tmp_path: Path, signers: dict[str, Signer], *, tl_signer: str = "tlso", tamper: bool = False) -> Path:
    """A LOTL (signed by 'lotl') pointing at EE_T.xml, whose signer must be 'tlso'."""
    lotl = _template("test-lotl-EE-4.xml.template",
                     OTHER_TSL_CERTIFICATE_B64=base64.b64encode(signers["tlso"].der).decode(),
                     OTHER_TSL_LOCATION="https://tl.example.test/lists/EE_T.xml")
    (tmp_path / "lotl.xml").write_bytes(sign_trusted_list(lotl.encode(), signers["lotl"].key, signers["lotl"].der))
    tl = sign_trusted_list(_template("test-tl-EE_T-30.xml.template").encode(), signers[tl_signer].key,
                           signers[tl_signer].der)
    if tamper:
        tl = tl.replace(b"AS Sertifitseerimiskeskus", b"AS Sertifitseerimiskeskuz", 1)
    (tmp_path / "EE_T.xml").write_bytes(tl)
    return tmp_path


def test_lotl_pointer_verifies_the_national_list(tmp_path: Path, signers: dict[str, Signer]) -> None:
    loaded = load_trusted_lists([_lotl_dir(tmp_path, signers)], lotl_signers=[signers["lotl"].asn1])
    assert loaded.problems == ()
    by_territory = {t.territory: t for t in loaded.lists}
    assert by_territory["EE"].lotl and by_territory["EE"].verified
    assert by_territory["EE_T"].verified and by_territory["EE_T"].services == 22
    assert len(list(loaded.registry.known_certificate_authorities)) == 13


def test_tampered_list_under_a_lotl_pointer_is_skipped(tmp_path: Path, signers: dict[str, Signer]) -> None:
    loaded = load_trusted_lists([_lotl_dir(tmp_path, signers, tamper=True)], lotl_signers=[signers["lotl"].asn1])
    assert [t.territory for t in loaded.lists] == ["EE"]
    assert not list(loaded.registry.known_certificate_authorities)
    assert any("EE_T.xml" in p and "skipped" in p for p in loaded.problems)


def test_list_signed_by_someone_else_is_skipped(tmp_path: Path, signers: dict[str, Signer]) -> None:
    loaded = load_trusted_lists([_lotl_dir(tmp_path, signers, tl_signer="other")],
                                lotl_signers=[signers["lotl"].asn1])
    assert not list(loaded.registry.known_certificate_authorities)
    assert any("EE_T.xml" in p for p in loaded.problems)


def test_unverified_lotl_trusts_none_of_its_lists(tmp_path: Path, signers: dict[str, Signer]) -> None:
    loaded = load_trusted_lists([_lotl_dir(tmp_path, signers)], lotl_signers=[signers["other"].asn1])
    assert loaded.lists == ()
    assert not list(loaded.registry.known_certificate_authorities)
    assert any("LOTL not trusted" in p for p in loaded.problems)
    assert any("EE_T.xml: skipped" in p for p in loaded.problems)


def test_operator_list_next_to_a_lotl_is_trusted_as_configured(pki: Pki, tmp_path: Path,
                                                               signers: dict[str, Signer]) -> None:
    directory = _lotl_dir(tmp_path, signers)
    _local_tl(pki, directory)
    loaded = load_trusted_lists([directory], lotl_signers=[signers["lotl"].asn1])
    assert {(t.territory, t.verified) for t in loaded.lists} == {("EE", True), ("EE_T", True), ("XX", False)}
    assert _assessed(pki, loaded.registry, pki.person).signature_level == "QESIG"


def test_signed_local_list_verifies(pki: Pki, signers: dict[str, Signer]) -> None:
    from pyhanko.sign.validation.qualified.eutl_parse import trust_list_to_registry

    xml = build_local_trusted_list([pki.ca.issuing.der], operator_name="Test QTSP",
                                   signing_key=signers["tlso"].key, signing_certificate=signers["tlso"].der)
    registry, errors = trust_list_to_registry(xml.decode(), [signers["tlso"].asn1])
    assert errors == [] and len(list(registry.known_certificate_authorities)) == 1


def test_unsafe_or_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "entity.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>'
        '<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#">&e;</TrustServiceStatusList>')
    (tmp_path / "other.xml").write_text("<root/>")
    (tmp_path / "broken.xml").write_text("<TrustServiceStatusList")
    loaded = load_trusted_lists([tmp_path, tmp_path / "missing.xml"])
    assert loaded.lists == ()
    assert len(loaded.problems) == 4
    assert any("document type declaration" in p for p in loaded.problems)


def test_only_the_newest_list_of_a_territory_counts(pki: Pki, tmp_path: Path) -> None:
    _local_tl(pki, tmp_path, name="a-old.xml", sequence_number=1)
    _local_tl(pki, tmp_path, name="b-new.xml", sequence_number=2, qscd=False)
    loaded = load_trusted_lists([tmp_path])
    assert [(t.source.name, t.sequence_number) for t in loaded.lists] == [("b-new.xml", 2)]
    assert any("a-old.xml: skipped: superseded" in p for p in loaded.problems)
    assert _assessed(pki, loaded.registry, pki.person).signature_level == "ADESIG_QC"


def test_results_are_cached_until_a_file_changes(pki: Pki, tmp_path: Path) -> None:
    path = _local_tl(pki, tmp_path)
    first = load_trusted_lists([path])
    assert load_trusted_lists([path]) is first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_trusted_lists([path]) is not first


# -- ETSI TS 119 102-2 report ----------------------------------------------------------------------

def _document(pki: Pki) -> DocumentResult:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    passed = SignatureResult(
        id="S-passed", signature_format="XAdES_BASELINE_T", indication=Indication.TOTAL_PASSED,
        signing_certificate=pki.person, chain=pki.chain(pki.person), claimed_signing_time=at,
        best_signature_time=at - timedelta(minutes=1), signer_roles=["Director"],
        production_place={"city": "Riga", "countryName": "LV"}, commitment_types=["1.2.840.113549.1.9.16.6.1"],
        timestamps=[TimestampResult(kind=TimestampKind.SIGNATURE, gen_time=at - timedelta(minutes=1))],
        qualification=CertificateQualification.QC_FOR_ESIG_QSCD, signature_level="QESIG")
    failed = SignatureResult(
        id="S-failed", signature_format="CAdES_BASELINE_B", indication=Indication.TOTAL_FAILED,
        sub_indication=SubIndication.HASH_FAILURE, signing_certificate=pki.seal, chain=pki.chain(pki.seal),
        errors=["The signed data does not match <digest> & co.\x00"], signature_level="NOT_ADES_QC_QSCD")
    indeterminate = SignatureResult(
        id="3 odd:id", signature_format="PAdES_BASELINE_B", indication=Indication.INDETERMINATE,
        sub_indication=SubIndication.NO_CERTIFICATE_CHAIN_FOUND, signing_certificate=pki.org_auth,
        chain=[pki.org_auth, pki.issuing], signature_level="INDETERMINATE_ADESEAL")
    return DocumentResult(filename="doc.xml", signature_form="XAdES", validation_time=at,
                          signatures=[passed, failed, indeterminate])


def test_etsi_report_indications_and_objects(pki: Pki) -> None:
    document = _document(pki)
    xml = etsi_validation_report(document)
    assert xml == etsi_validation_report(document)      # deterministic
    root = etree.fromstring(xml)
    assert root.tag == f"{VR}ValidationReport"
    reports = root.findall(f"{VR}SignatureValidationReport")
    status = [(r.findtext(f"{VR}SignatureValidationStatus/{VR}MainIndication"),
               r.findtext(f"{VR}SignatureValidationStatus/{VR}SubIndication")) for r in reports]
    assert status == [
        ("urn:etsi:019102:mainindication:total-passed", None),
        ("urn:etsi:019102:mainindication:total-failed", "urn:etsi:019102:subindication:HASH_FAILURE"),
        ("urn:etsi:019102:mainindication:indeterminate", "urn:etsi:019102:subindication:NO_CERTIFICATE_CHAIN_FOUND"),
    ]
    quality = [r.findtext(f"{VR}SignatureQuality/{VR}SignatureQualityInformation") for r in reports]
    assert quality == ["urn:cef:dss:signatureQualification:QESig",
                       "urn:cef:dss:signatureQualification:notAdESbutQCwithQSCD",
                       "urn:cef:dss:signatureQualification:indeterminateAdESeal"]
    assert [r.find(f"{VR}SignatureIdentifier").get("id") for r in reports] == ["S-passed", "S-failed", "sig-3_odd_id"]

    passed = reports[0]
    assert passed.findtext(f"{VR}SignerInformation/{VR}Signer") == "Alice Tester"
    assert passed.findtext(f"{VR}ValidationTimeInfo/{VR}ValidationTime") == "2026-01-02T03:04:05Z"
    assert passed.findtext(f"{VR}ValidationTimeInfo/{VR}BestSignatureTime/{VR}POETime") == "2026-01-02T03:03:05Z"
    attrs = passed.find(f"{VR}SignatureAttributes")
    assert attrs.findtext(f"{VR}SigningTime/{VR}Time") == "2026-01-02T03:04:05Z"
    assert attrs.findtext(f"{VR}SignerRole/{VR}RoleDetails/{VR}Role") == "Director"
    assert [a.text for a in attrs.iterfind(f"{VR}SignatureProductionPlace/{VR}AddressString")] == ["Riga", "LV"]
    assert attrs.findtext(f"{VR}CommitmentTypeIndication/{VR}CommitmentTypeIdentifier") == \
        "urn:oid:1.2.840.113549.1.9.16.6.1"
    assert passed.findtext(f"{VR}SignatureValidationProcess/{VR}SignatureValidationProcessID") == \
        "urn:etsi:019102:validationprocess:LTVM"
    assert "<digest> & co." in reports[1].findtext(f".//{VR}ReportData/{VR}Value")
    assert reports[2].find(f".//{VR}CertificateChain/{VR}TrustAnchor") is None

    objects = {vo.get("id"): vo for vo in root.iterfind(f"{VR}SignatureValidationObjects/{VR}ValidationObject")}
    referenced = {ref for el in root.iter() for ref in (el.get("VOReference") or "").split()}
    assert referenced == set(objects)
    signer_ref = passed.find(f"{VR}SignerInformation/{VR}SignerCertificate").get("VOReference")
    assert base64.b64decode(objects[signer_ref].findtext(f"{VR}ValidationObjectRepresentation/{VR}base64")) == \
        pki.person.dump()
    assert len(objects) == 5   # person, seal, org_auth, issuing, root: each once


def test_signature_quality_uris() -> None:
    assert signature_quality_uri("ADESEAL_QC") == "urn:cef:dss:signatureQualification:AdESealQC"
    assert signature_quality_uri("INDETERMINATE_QES") == "urn:cef:dss:signatureQualification:indeterminateQES"
    assert signature_quality_uri("NA") == "urn:cef:dss:signatureQualification:notApplicable"
