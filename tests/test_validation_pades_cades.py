"""PAdES and CMS/CAdES validation (remotesign.validation.pades / .cades) against real files:
the conformance corpus rows of DSS and pyHanko, and signatures made here with pyHanko over the
in-process CA, TSA and OCSP responder (B-B to B-LTA, tampering, unknown roots, revocation,
expiry, validation at a past time, detached CAdES, counter-signatures, broken input)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import pytest
from asn1crypto import cms, x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from remotesign.trust.timestamping import BuiltinTimeStamper
from remotesign.validation.cades import validate_cms, validate_cms_file
from remotesign.validation.model import (Block, DocumentResult, Indication, SignatureResult, SubIndication,
                                         TimestampKind, ValidationInputError)
from remotesign.validation.options import DetachedDocument, ValidationOptions
from remotesign.validation.pades import validate_pdf
from tests.conformance import Case, cases, options_for
from tests.pades_pki import Alice, Pki, make_pki, sign_pdf
from tests.pdfgen import pdf_bytes

POLICY = "1.3.6.1.4.1.59999.1.3.1"
T = TypeVar("T")


def run(coro):
    return asyncio.run(coro)


# =================================================================================================
# Conformance corpus rows owned by the PAdES / CAdES validators
# =================================================================================================

ROWS = [c for c in cases() if c.id.startswith(("dss-pades-", "pyh-", "dss-cades-"))]


def _validate_case(case: Case) -> DocumentResult:
    options = options_for(case)
    if case.file.suffix.lower() == ".pdf":
        return run(validate_pdf(case.file, options, filename=case.file.name))
    return run(validate_cms_file(case.file, options, filename=case.file.name))


def test_cades_claims_are_reported() -> None:
    """dss-cades-pass-01 carries commitment types, a claimed role (signer-attributes-v2, as a plain
    string), a signer location and a signing time."""
    case = next(c for c in ROWS if c.id == "dss-cades-pass-01")
    signature = _validate_case(case).signatures[0]
    assert signature.commitment_types == ["1.2.3", "2.4.5.6"]
    assert signature.signer_roles == ["supplier"]
    assert signature.production_place == {"countryName": "LU", "city": "Kehlen", "postalAddress": "Line1, Line2"}
    assert signature.claimed_signing_time == datetime(2020, 1, 8, 10, 9, 36, tzinfo=timezone.utc)
    assert signature.signing_certificate is not None
    assert signature.chain[0].dump() == signature.signing_certificate.dump()


def test_document_timestamps_are_not_signatures() -> None:
    case = next(c for c in ROWS if c.id == "dss-pades-lta-03")
    document = _validate_case(case)
    assert [s.id for s in document.signatures] == ["Signature1"]
    kinds = [t.kind for t in document.signatures[0].timestamps]
    assert kinds == [TimestampKind.SIGNATURE, TimestampKind.DOCUMENT]
    stamp = document.signatures[0].timestamps[0]
    assert stamp.message_imprint and stamp.imprint_algorithm == "sha256" and stamp.tsa_name


# =================================================================================================
# Signatures made here: the in-process CA, TSA and OCSP responder, pyHanko signing
# =================================================================================================

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("pades-cades-pki")) as made:
        yield made


@pytest.fixture(scope="module")
def alice(pki: Pki) -> Alice:
    return pki.signer()


def only(document: DocumentResult) -> SignatureResult:
    assert len(document.signatures) == 1, [s.id for s in document.signatures]
    return document.signatures[0]


@pytest.mark.parametrize("level", ["B", "T", "LT", "LTA"])
def test_pades_levels_pass(pki: Pki, alice: Alice, level: str, tmp_path: Path) -> None:
    signer, issued, _ = alice
    path = run(sign_pdf(pki, signer, level, tmp_path / f"{level}.pdf", reason="Approved", location="Riga"))
    # B-LT and B-LTA must validate from what they embed: no service-provided revocation data.
    options = pki.options(revocation_provider=None) if level in ("LT", "LTA") else pki.options()
    document = run(validate_pdf(path, options, filename=path.name))
    assert document.signature_form == "PAdES"
    signature = only(document)
    assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_PASSED, None), signature.errors
    assert signature.signature_format == f"PAdES_BASELINE_{level}"
    assert signature.id == "Signature1"
    assert signature.signing_certificate.dump() == issued.der
    assert [c.dump() for c in signature.chain] == [issued.der, pki.issuing.dump(), pki.root.dump()]
    assert signature.signature_algorithm == "sha256_ecdsa"
    assert signature.signing_reason == "Approved" and signature.production_place == {"city": "Riga"}
    assert signature.claimed_signing_time is not None
    assert signature.ocsp_produced_at
    assert all(c.indication is Indication.TOTAL_PASSED for c in signature.blocks.values())
    kinds = [t.kind for t in signature.timestamps]
    if level == "B":
        assert kinds == [] and signature.best_signature_time is None
    else:
        assert kinds[0] is TimestampKind.SIGNATURE and all(t.valid for t in signature.timestamps)
        stamp = signature.timestamps[0]
        assert stamp.tsa_name and "Time-Stamping Unit" in stamp.tsa_name
        assert stamp.message_imprint and len(stamp.message_imprint) == 32 and stamp.imprint_algorithm == "sha256"
        assert signature.best_signature_time == stamp.gen_time
        assert Block.TIME_STAMP_VALIDATION in signature.blocks and Block.PROOF_OF_EXISTENCE in signature.blocks
    assert (TimestampKind.DOCUMENT in kinds) == (level == "LTA")


def test_b_level_without_revocation_data_is_indeterminate(pki: Pki, alice: Alice, tmp_path: Path) -> None:
    path = run(sign_pdf(pki, alice[0], "B", tmp_path / "b.pdf"))
    signature = only(run(validate_pdf(path, pki.options(revocation_provider=None), filename="b.pdf")))
    assert signature.indication is Indication.INDETERMINATE
    assert signature.sub_indication is SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE


def test_tampered_pdf_is_hash_failure(pki: Pki, alice: Alice, tmp_path: Path) -> None:
    path = run(sign_pdf(pki, alice[0], "T", tmp_path / "t.pdf"))
    data = path.read_bytes()
    at = data.index(b"remotesign test document")
    path.write_bytes(data[:at] + b"R" + data[at + 1:])
    signature = only(run(validate_pdf(path, pki.options(), filename=path.name)))
    assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert signature.blocks[Block.CRYPTOGRAPHIC_VERIFICATION].sub_indication is SubIndication.HASH_FAILURE


def test_wrong_signature_value_is_sig_crypto_failure(pki: Pki, alice: Alice, tmp_path: Path) -> None:
    path = run(sign_pdf(pki, alice[0], "B", tmp_path / "b.pdf"))
    from pyhanko.pdf_utils.reader import PdfFileReader

    with open(path, "rb") as handle:
        value = PdfFileReader(handle).embedded_signatures[0].signer_info["signature"].native
    data = path.read_bytes()
    hex_value = value.hex().encode()
    at = data.lower().index(hex_value) + len(hex_value) // 2
    flipped = b"0" if data[at:at + 1] != b"0" else b"1"
    path.write_bytes(data[:at] + flipped + data[at + 1:])
    signature = only(run(validate_pdf(path, pki.options(), filename=path.name)))
    assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_FAILED,
                                                                 SubIndication.SIG_CRYPTO_FAILURE)


def test_unknown_root_is_no_certificate_chain_found(pki: Pki, alice: Alice, tmp_path: Path) -> None:
    path = run(sign_pdf(pki, alice[0], "LT", tmp_path / "lt.pdf"))
    signature = only(run(validate_pdf(path, ValidationOptions(), filename=path.name)))
    assert (signature.indication, signature.sub_indication) == (Indication.INDETERMINATE,
                                                                 SubIndication.NO_CERTIFICATE_CHAIN_FOUND)
    assert signature.signature_format == "PAdES_BASELINE_LT"
    assert signature.chain[0].dump() == signature.signing_certificate.dump()


def test_validation_at_a_past_time(pki: Pki, alice: Alice, tmp_path: Path) -> None:
    path = run(sign_pdf(pki, alice[0], "LT", tmp_path / "lt.pdf"))
    signature_time = only(run(validate_pdf(path, pki.options(revocation_provider=None),
                                           filename=path.name))).best_signature_time
    assert signature_time is not None
    shortly_after = signature_time + timedelta(seconds=1)
    document = run(validate_pdf(path, pki.options(revocation_provider=None, validation_time=shortly_after),
                                filename=path.name))
    assert document.validation_time == shortly_after
    assert only(document).passed, only(document).errors
    before_issuance = alice[1].not_before - timedelta(days=1)
    early = only(run(validate_pdf(path, pki.options(revocation_provider=None, validation_time=before_issuance),
                                  filename=path.name)))
    assert early.indication is Indication.INDETERMINATE


@dataclass
class Aged:
    revoked_b: Path
    revoked_t: Path
    revoked_lta: Path
    expired_b: Path
    expired_t: Path


@pytest.fixture(scope="module")
def aged(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Aged:
    """Signatures whose certificate expired, or whose signer was revoked, after signing: one wait
    until the short-lived certificate is past its notAfter plus pyHanko's one-second tolerance
    (revocation times have whole-second precision, so that wait covers them too)."""
    directory = tmp_path_factory.mktemp("aged")
    expiring_signer, expiring_cert, _ = pki.signer(validity=timedelta(seconds=2))
    revoked_signer, revoked_cert, _ = pki.signer()
    signed = {name: run(sign_pdf(pki, s, level, directory / f"{name}.pdf")) for s, level, name in (
        (expiring_signer, "B", "expired_b"), (expiring_signer, "T", "expired_t"),
        (revoked_signer, "B", "revoked_b"), (revoked_signer, "T", "revoked_t"), (revoked_signer, "LTA", "revoked_lta"))}
    wait = max(expiring_cert.not_after + timedelta(seconds=1.6) - datetime.now(timezone.utc), timedelta(seconds=1.1))
    time.sleep(wait.total_seconds())
    pki.ca.revoke(revoked_cert, "key_compromise")
    return Aged(**signed)


def test_revoked_signer(pki: Pki, aged: Aged) -> None:
    b = only(run(validate_pdf(aged.revoked_b, pki.options(), filename="b.pdf")))
    assert (b.indication, b.sub_indication) == (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE)
    # A signature time-stamp from before the revocation is the proof of existence that saves it.
    for path in (aged.revoked_t, aged.revoked_lta):
        signature = only(run(validate_pdf(path, pki.options(), filename=path.name)))
        assert signature.passed, (path.name, signature.errors)


def test_expired_signer(pki: Pki, aged: Aged) -> None:
    b = only(run(validate_pdf(aged.expired_b, pki.options(), filename="b.pdf")))
    assert (b.indication, b.sub_indication) == (Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE)
    t = only(run(validate_pdf(aged.expired_t, pki.options(), filename="t.pdf")))
    assert t.passed, t.errors


def test_broken_cms_in_pdf_is_format_failure(pki: Pki, alice: Alice, tmp_path: Path) -> None:
    path = run(sign_pdf(pki, alice[0], "B", tmp_path / "b.pdf"))
    data = path.read_bytes()
    at = data.index(b"/Contents <") + len(b"/Contents <")
    path.write_bytes(data[:at] + b"0000" + data[at + 4:])
    signature = only(run(validate_pdf(path, pki.options(), filename=path.name)))
    assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)


def test_unsigned_pdf_has_no_signatures(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    path.write_bytes(pdf_bytes(pages=2))
    assert run(validate_pdf(path, pki.options(), filename="plain.pdf")).signatures == []


@pytest.mark.parametrize("payload", [b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", b"%PDF-1.7\n" + b"\xff" * 500])
def test_unreadable_pdf_is_an_input_error(pki: Pki, tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(payload)
    with pytest.raises(ValidationInputError) as raised:
        run(validate_pdf(path, pki.options(), filename="broken.pdf"))
    assert raised.value.code == "invalid_document"


# --- CAdES --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timestamped", [False, True])
def test_detached_cades_with_and_without_content(pki: Pki, alice: Alice, timestamped: bool, tmp_path: Path) -> None:
    content = tmp_path / "report.txt"
    content.write_bytes(b"the signed report\n" * 5000)
    stamper = BuiltinTimeStamper(pki.tsa) if timestamped else None
    info = run(alice[0].async_sign_general_data(content.read_bytes(), "sha256", detached=True, use_cades=True,
                                                timestamper=stamper))
    p7s = tmp_path / "report.txt.p7s"
    p7s.write_bytes(info.dump())
    level = "CAdES_BASELINE_T" if timestamped else "CAdES_BASELINE_B"

    missing = only(run(validate_cms_file(p7s, pki.options(), filename=p7s.name)))
    assert (missing.indication, missing.sub_indication) == (Indication.INDETERMINATE,
                                                             SubIndication.SIGNED_DATA_NOT_FOUND)
    assert missing.signature_format == level and missing.signing_certificate is not None

    options = pki.options(detached=(DetachedDocument("report.txt", content),))
    document = run(validate_cms_file(p7s, options, filename=p7s.name))
    assert document.signature_form == "CAdES" and document.included_files == ["report.txt"]
    signature = only(document)
    assert signature.passed, signature.errors
    assert signature.signature_format == level and signature.id == "S0"
    assert signature.claimed_signing_time is not None
    assert (signature.best_signature_time is not None) == timestamped

    wrong = tmp_path / "other.txt"
    wrong.write_bytes(b"something else")
    # With several detached documents the one named like the signature (minus .p7s) is used.
    both = (DetachedDocument("other.txt", wrong), DetachedDocument("report.txt", content))
    assert only(run(validate_cms_file(p7s, pki.options(detached=both), filename=p7s.name))).passed
    altered = only(run(validate_cms_file(p7s, pki.options(detached=(DetachedDocument("report.txt", wrong),)),
                                         filename=p7s.name)))
    assert (altered.indication, altered.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)


def _counter_signed(parent: cms.ContentInfo, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
                    *, corrupt: bool = False) -> cms.ContentInfo:
    """``parent`` with an RFC 5652 §11.4 counter-signature over its signer's signature value."""
    signer_info = parent["content"]["signer_infos"][0]
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "message_digest",
                          "values": [hashlib.sha256(signer_info["signature"].native).digest()]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(timezone.utc).replace(
            microsecond=0)})]}),
    ])
    value = key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
    if corrupt:
        value = key.sign(attrs.dump() + b"x", ec.ECDSA(hashes.SHA256()))
    counter = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": {"issuer": cert.issuer,
                                                                  "serial_number": cert.serial_number}}),
        "digest_algorithm": {"algorithm": "sha256"}, "signed_attrs": attrs,
        "signature_algorithm": {"algorithm": "sha256_ecdsa"}, "signature": value,
    })
    signer_info["unsigned_attrs"] = cms.CMSAttributes([cms.CMSAttribute({"type": "counter_signature",
                                                                         "values": [counter]})])
    return parent


@pytest.mark.parametrize("corrupt", [False, True])
def test_enveloping_cades_with_counter_signature(pki: Pki, alice: Alice, corrupt: bool, tmp_path: Path) -> None:
    signer, issued, key = alice
    info = run(signer.async_sign_general_data(b"enveloped content", "sha256", detached=False, use_cades=True))
    path = tmp_path / "signed.p7m"
    path.write_bytes(_counter_signed(info, key, issued.asn1(), corrupt=corrupt).dump())
    document = run(validate_cms_file(path, pki.options(), filename=path.name))
    assert [(s.id, s.parent_id) for s in document.signatures] == [("S0", None), ("S0-CS0", "S0")]
    main, counter = document.signatures
    assert main.passed and main.signature_format == "CAdES_BASELINE_B", main.errors
    if corrupt:
        assert (counter.indication, counter.sub_indication) == (Indication.TOTAL_FAILED,
                                                                 SubIndication.SIG_CRYPTO_FAILURE)
    else:
        assert counter.passed, counter.errors
        assert counter.signing_certificate.dump() == issued.der and len(counter.chain) == 3


def test_validate_cms_for_containers(pki: Pki, alice: Alice) -> None:
    """The ASiC validator's entry point: content from an opener, ids from a prefix."""
    data = b"<ASiCManifest/>"
    info = run(alice[0].async_sign_general_data(data, "sha256", detached=True, use_cades=True))
    found = run(validate_cms(info.dump(), pki.options(), content=lambda: io.BytesIO(data), id_prefix="S1"))
    assert [s.id for s in found] == ["S10"] and found[0].passed
    missing = run(validate_cms(info.dump(), pki.options(), content=None, id_prefix="S"))
    assert missing[0].sub_indication is SubIndication.SIGNED_DATA_NOT_FOUND


def test_pem_armoured_cms(pki: Pki, alice: Alice, tmp_path: Path) -> None:
    from asn1crypto import pem

    info = run(alice[0].async_sign_general_data(b"armoured", "sha256", detached=False, use_cades=True))
    path = tmp_path / "signed.p7m"
    path.write_bytes(pem.armor("PKCS7", info.dump()))
    assert only(run(validate_cms_file(path, pki.options(), filename=path.name))).passed


@pytest.mark.parametrize("payload", [b"\x30\x03\x02\x01\x01", b"\x30\x84\x7f\xff\xff\xff\x06\x09", b"not cms at all"])
def test_garbage_cms_is_an_input_error(pki: Pki, tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "garbage.p7s"
    path.write_bytes(payload)
    with pytest.raises(ValidationInputError) as raised:
        run(validate_cms_file(path, pki.options(), filename=path.name))
    assert raised.value.code == "invalid_document"


def test_cms_with_pdf_content_is_not_mistaken_for_a_pdf() -> None:
    """dss-cades-hash-01 envelopes a PDF, so "%PDF-" appears in its first KiB."""
    case = next(c for c in ROWS if c.id == "dss-cades-hash-01")
    document = run(validate_pdf(case.file, options_for(case), filename=case.file.name))
    assert document.signature_form == "CAdES"
    assert only(document).sub_indication is SubIndication.HASH_FAILURE

