"""CMS signature values and CAdES / PAdES levels as EU DSS decides them.

* Signed attributes sent in another order than the DER one the signer signed, an RSA DigestInfo
  without NULL parameters and RSA with SHA-3 verify (as in DSS); one changed byte still fails.
* The level ladder names CAdES-A, BASELINE-LT/LTA, PKCS7_LT and PAdES LTA/LT as DSS does for the
  corpus files (tests/data/conformance) whose DSS tests assert it."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import datetime
from pathlib import Path

import pytest
from asn1crypto import algos, cms, keys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko_certvalidator.sig_validate import SignatureValidationContext

from remotesign.validation import cms_common as cc
from remotesign.validation.cades import validate_cms_file
from remotesign.validation.cms_level import CadesForms, cades_level
from remotesign.validation.cms_signature import CMS_SIGNATURE_VALIDATOR, der_signed_attrs
from remotesign.validation.model import SubIndication
from tests.conformance import cases, options_for, run_case

CASES = {c.id: c for c in cases()}
BROKEN = (SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE, SubIndication.FORMAT_FAILURE)


def _levels(case_id: str) -> list[str]:
    document = asyncio.run(run_case(CASES[case_id]))
    return [s.signature_format for s in document.signatures]


def _validate_bytes(case_id: str, data: bytes, tmp_path: Path) -> list:
    case = CASES[case_id]
    path = tmp_path / case.file.name
    path.write_bytes(data)
    document = asyncio.run(validate_cms_file(path, options_for(case), filename=path.name))
    return document.signatures


# --- signature values ------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", ["dss-cades-ber-01", "dss-cades-b-06", "dss-cades-lta-04"])
def test_dss_accepted_encodings_are_intact(case_id: str, tmp_path: Path) -> None:
    """Re-ordered signed attributes, SHA3-256withRSA, DigestInfo without NULL: intact, as in DSS."""
    signatures = _validate_bytes(case_id, CASES[case_id].file.read_bytes(), tmp_path)
    assert signatures and all(s.sub_indication not in BROKEN for s in signatures)


@pytest.mark.parametrize("case_id", ["dss-cades-ber-01", "dss-cades-b-06", "dss-cades-lta-04"])
def test_one_changed_signed_attribute_byte_fails(case_id: str, tmp_path: Path) -> None:
    data = CASES[case_id].file.read_bytes()
    signer_info = cms.ContentInfo.load(data)["content"]["signer_infos"][0]
    signing_time = next(a for a in signer_info["signed_attrs"] if a["type"].dotted == cc.SIGNING_TIME).dump()
    at = data.index(signing_time) + len(signing_time) - 3  # a digit of the seconds
    changed = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]
    signatures = _validate_bytes(case_id, changed, tmp_path)
    assert signatures[0].sub_indication in (SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE)


def test_changed_signature_value_fails(tmp_path: Path) -> None:
    data = CASES["dss-cades-lta-04"].file.read_bytes()
    value = cms.ContentInfo.load(data)["content"]["signer_infos"][0]["signature"].native
    at = data.index(value) + 17
    changed = data[:at] + bytes([data[at] ^ 0x80]) + data[at + 1:]
    assert _validate_bytes("dss-cades-lta-04", changed, tmp_path)[0].sub_indication is SubIndication.SIG_CRYPTO_FAILURE


def test_der_signed_attrs_reorders_only() -> None:
    signer_info = cms.ContentInfo.load(CASES["dss-cades-ber-01"].file.read_bytes())["content"]["signer_infos"][0]
    received = signer_info["signed_attrs"].untag().dump()
    der = der_signed_attrs(received)
    assert der is not None and der != received and len(der) == len(received)
    assert sorted(a.dump() for a in cms.CMSAttributes.load(der)) == [a.dump() for a in cms.CMSAttributes.load(der)]
    assert der_signed_attrs(der) is None  # already DER
    assert der_signed_attrs(b"\x30\x03\x02\x01\x01") is None  # not a SET


# --- RSA PKCS#1 v1.5 encodings ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _raw_sign(key: rsa.RSAPrivateKey, encoded_message: bytes) -> bytes:
    numbers = key.private_numbers()
    size = (key.key_size + 7) // 8
    return pow(int.from_bytes(encoded_message, "big"), numbers.d, numbers.public_numbers.n).to_bytes(size, "big")


def _em(size: int, digest_info: bytes, *, block_type: int = 1) -> bytes:
    return b"\x00" + bytes([block_type]) + b"\xff" * (size - 3 - len(digest_info)) + b"\x00" + digest_info


def _digest_info(digest: bytes, *, null: bool) -> bytes:
    oid = algos.DigestAlgorithmId("sha256").dump()
    ident = oid + (b"\x05\x00" if null else b"")
    ident = b"\x30" + bytes([len(ident)]) + ident
    body = ident + b"\x04\x20" + digest
    return b"\x30" + bytes([len(body)]) + body


def _verify(key: rsa.RSAPrivateKey, signature: bytes, message: bytes, algorithm: str = "sha256_rsa") -> None:
    public = keys.PublicKeyInfo.load(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    CMS_SIGNATURE_VALIDATOR.validate_signature(signature, message, public, algos.SignedDigestAlgorithm(
        {"algorithm": algorithm}), SignatureValidationContext(contextual_md_algorithm="sha256"))


@pytest.mark.parametrize("null", [True, False])
def test_digest_info_with_or_without_null(rsa_key: rsa.RSAPrivateKey, null: bool) -> None:
    message = b"signed attributes"
    em = _em(256, _digest_info(hashlib.sha256(message).digest(), null=null))
    _verify(rsa_key, _raw_sign(rsa_key, em), message)
    with pytest.raises(InvalidSignature):
        _verify(rsa_key, _raw_sign(rsa_key, em), message + b"!")


@pytest.mark.parametrize("null", [True, False])
def test_xml_signature_value_digest_info_with_or_without_null(rsa_key: rsa.RSAPrivateKey, null: bool) -> None:
    """XMLDSig verification takes the same two DigestInfo forms (Latvian eID software omits NULL)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509 as crypto_x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from remotesign.formats.xades.algorithms import SignatureMethod, verify_signature_value

    name = crypto_x509.Name([crypto_x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    cert = (crypto_x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(rsa_key.public_key())
            .serial_number(7).not_valid_before(datetime(2020, 1, 1)).not_valid_after(datetime(2040, 1, 1))
            .sign(rsa_key, hashes.SHA256()))
    asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    method = SignatureMethod(uri="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", scheme="rsa", digest="sha256")
    signed_info = b"<SignedInfo/>"
    value = _raw_sign(rsa_key, _em(256, _digest_info(hashlib.sha256(signed_info).digest(), null=null)))
    assert verify_signature_value(asn1_cert, method, signed_info, value)
    assert not verify_signature_value(asn1_cert, method, signed_info + b" ", value)
    garbage = _raw_sign(rsa_key, b"\x00\x01" + b"\xff" * 200 + b"\x00" + b"\x01" * 53)
    assert not verify_signature_value(asn1_cert, method, signed_info, garbage)


@pytest.mark.parametrize("variant", ["block_type_2", "garbage_after", "zero_in_padding", "null_and_garbage"])
def test_malformed_pkcs1_encodings_fail(rsa_key: rsa.RSAPrivateKey, variant: str) -> None:
    """Only the exact encodings verify: no lenient parsing of the encoded message."""
    message = b"signed attributes"
    info = _digest_info(hashlib.sha256(message).digest(), null=False)
    if variant == "block_type_2":
        em = _em(256, info, block_type=2)
    elif variant == "garbage_after":
        em = b"\x00\x01" + b"\xff" * (256 - 7 - len(info)) + b"\x00" + info + b"junk"
    elif variant == "zero_in_padding":
        em = bytearray(_em(256, info))
        em[20] = 0
        em = bytes(em)
    else:
        em = b"\x00\x01" + b"\xff" * (256 - 5 - len(info)) + b"\x00" + info + b"\x05\x00"
    assert len(em) == 256
    with pytest.raises(InvalidSignature):
        _verify(rsa_key, _raw_sign(rsa_key, em), message)


def test_rsa_with_sha3(rsa_key: rsa.RSAPrivateKey) -> None:
    message = b"signed attributes"
    oid = algos.DigestAlgorithmId("sha3_256").dump()
    ident = b"\x30" + bytes([len(oid) + 2]) + oid + b"\x05\x00"
    body = ident + b"\x04\x20" + hashlib.sha3_256(message).digest()
    signature = _raw_sign(rsa_key, _em(256, b"\x30" + bytes([len(body)]) + body))
    _verify(rsa_key, signature, message, "2.16.840.1.101.3.4.3.14")
    with pytest.raises(InvalidSignature):
        _verify(rsa_key, signature, message, "2.16.840.1.101.3.4.3.15")  # SHA3-384: another digest


# --- validation data -------------------------------------------------------------------------------
def test_basic_ocsp_in_signed_data_crls_is_read() -> None:
    """id-pkix-ocsp-basic RevocationInfoChoice (EN 319 122-1, as DSS writes it) counts as OCSP data."""
    signed_data = cms.ContentInfo.load(CASES["dss-cades-lt-01"].file.read_bytes())["content"]
    assert len(cc.signed_data_material(signed_data).ocsps) == 4


# --- levels ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("case_id", "level"), [
    ("dss-cades-a-02", "CAdES_A"),             # C + XL data + archive-time-stamp-v3
    ("dss-cades-a-05", "CAdES_A"),             # C + XL data (in the time-stamp token) + archive v2
    ("dss-cades-lt-01", "CAdES_BASELINE_LT"),  # OCSP responses as id-pkix-ocsp-basic
    ("dss-cades-lta-08", "CAdES_BASELINE_LTA"),
    ("dss-pdf-pkcs7-lt-01", "PKCS7_LT"),       # the TSA's data was added after the only time-stamp
    ("dss-pades-lta-02", "PAdES_BASELINE_LTA"),  # document time-stamp without /Type
    ("dss-pades-lt-03", "PAdES_BASELINE_LT"),  # /Type /Sig with ETSI.RFC3161: not a time-stamp for DSS
    ("dss-pades-ltv-02", "PAdES_LTV"),         # validation data in an earlier DSS revision
])
def test_levels_as_dss_names_them(case_id: str, level: str) -> None:
    assert level in _levels(case_id)


def _profile(**changes: object) -> cc.CmsProfile:
    base = cc.CmsProfile(extended_bes=True, baseline_b_core=True, signing_time_present=True, policy=False,
                         signature_timestamp=True, archive_v3=False, archive_any=False, complete_refs=False,
                         x_timestamps=False, lt_forbidden_attrs=False, commitment=False, content_type_data=True,
                         signer_in_certificates=True)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(("profile", "lt", "c_form", "expected"), [
    (_profile(signature_timestamp=False), False, False, "CAdES_BASELINE_B"),
    (_profile(), False, False, "CAdES_BASELINE_T"),
    (_profile(), True, False, "CAdES_BASELINE_LT"),
    (_profile(archive_v3=True, archive_any=True), True, False, "CAdES_BASELINE_LTA"),
    (_profile(lt_forbidden_attrs=True, complete_refs=True), False, True, "CAdES_C"),
    (_profile(lt_forbidden_attrs=True, complete_refs=True, x_timestamps=True), False, True, "CAdES_X"),
    (_profile(lt_forbidden_attrs=True, complete_refs=True, x_timestamps=True), True, True, "CAdES_XL"),
    (_profile(lt_forbidden_attrs=True, complete_refs=True, archive_v3=True, archive_any=True), True, True, "CAdES_A"),
    (_profile(lt_forbidden_attrs=True, archive_any=True), True, False, "CAdES_A"),
    (_profile(lt_forbidden_attrs=True, archive_any=True), False, False, "CAdES_BASELINE_T"),
    (_profile(lt_forbidden_attrs=True), True, False, "CAdES_LT"),
    (_profile(extended_bes=False), True, False, "CMS_NOT_ETSI"),
])
def test_cades_ladder(profile: cc.CmsProfile, lt: bool, c_form: bool, expected: str) -> None:
    assert cades_level(CadesForms(profile, lt, True, c_form)) == expected


def test_timestamp_after_expiry_is_not_t() -> None:
    assert cades_level(CadesForms(_profile(), True, t_before_expiry=False)) == "CAdES_BASELINE_B"
