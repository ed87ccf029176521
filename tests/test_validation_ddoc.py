"""Legacy Estonian DigiDoc (DDOC) validation: DigiDoc's own digest rules for DataFiles,
SignedInfo and SignedProperties in every version, the OCSP time-mark, and hostile input. Inputs
are the conformance corpus's digidoc4j files, copied and altered."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from remotesign.validation.ddoc_ocsp import time_mark
from remotesign.validation.ddoc_parts import decode, locate
from remotesign.validation.ddoc_xml import read_ddoc
from remotesign.validation.engine import validate_path
from remotesign.validation.model import Block, DocumentResult, Indication, SubIndication, ValidationInputError
from tests.conformance import cases, options_for

CASES = {c.id: c for c in cases() if c.id.startswith("dd4j-ddoc-")}
PASS_13 = "dd4j-ddoc-pass-07"   # DIGIDOC-XML 1.3, TEST chain, time-marked 2014


def _validate(row: str, path: Path | None = None) -> DocumentResult:
    case = CASES[row]
    target = path or case.file
    return asyncio.run(validate_path(target, options_for(case), filename=target.name))


def _altered(tmp_path: Path, row: str, old: bytes, new: bytes) -> Path:
    data = CASES[row].file.read_bytes()
    assert data.count(old) == 1, old
    target = tmp_path / f"{row}.ddoc"
    target.write_bytes(data.replace(old, new))
    return target


def test_digidoc_13_passes_with_its_time_mark() -> None:
    document = _validate(PASS_13)
    assert document.signature_form == "DIGIDOC_XML"
    [signature] = document.signatures
    assert (signature.indication, signature.signature_format) == (Indication.TOTAL_PASSED, "DIGIDOC_XML_1.3")
    assert signature.best_signature_time is not None and signature.best_signature_time.year == 2014


@pytest.mark.parametrize("row", ["dd4j-ddoc-pass-01", "dd4j-ddoc-pass-03", "dd4j-ddoc-pass-04"])
def test_older_versions_digests_and_signature_value_verify(row: str) -> None:
    """SK-XML 1.0 (embedded and hashcode) and DIGIDOC-XML 1.2: every reference and the signature
    value check out (the chain is another matter: the 2002-2003 CAs are not trusted here)."""
    for signature in _validate(row).signatures:
        assert signature.blocks[Block.CRYPTOGRAPHIC_VERIFICATION].indication is Indication.TOTAL_PASSED
        assert signature.best_signature_time is not None   # the nonce binds the signature value


def test_changed_data_file_is_a_hash_failure(tmp_path: Path) -> None:
    target = _altered(tmp_path, PASS_13, b">c2VlIG9u", b">c2VlIG9v")
    [signature] = _validate(PASS_13, target).signatures
    assert signature.sub_indication is SubIndication.HASH_FAILURE
    assert "Bad digest for DataFile: D0" in signature.errors


def test_changed_signed_properties_is_a_hash_failure(tmp_path: Path) -> None:
    data = CASES[PASS_13].file.read_bytes()
    start = data.index(b"<SigningTime>") + len(b"<SigningTime>")
    target = tmp_path / "changed.ddoc"
    target.write_bytes(data[:start] + (b"1" if data[start:start + 1] != b"1" else b"2") + data[start + 1:])
    [signature] = _validate(PASS_13, target).signatures
    assert signature.sub_indication is SubIndication.HASH_FAILURE
    assert any("SignedProperties" in e for e in signature.errors)


def test_corrupt_signature_value_is_a_crypto_failure(tmp_path: Path) -> None:
    target = _altered(tmp_path, PASS_13, b'Id="S0-SIG">\nYoBS9', b'Id="S0-SIG">\nYoBS8')
    [signature] = _validate(PASS_13, target).signatures
    assert signature.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


def test_ocsp_nonce_must_bind_the_signature_value() -> None:
    doc = read_ddoc(CASES[PASS_13].file.read_bytes(), 1 << 24)
    parts = locate(doc, doc.signatures[0])
    from asn1crypto import x509
    signer = x509.Certificate.load(decode(parts.key_info_certificates[0], "X509Certificate"))
    ocsp = decode(parts.unsigned("RevocationValues", "OCSPValues", "EncapsulatedOCSPValue")[0], "OCSP")
    value = decode(parts.signature_value, "SignatureValue")
    assert time_mark(ocsp, value, signer) is not None
    assert time_mark(ocsp, value[:-1] + bytes([value[-1] ^ 1]), signer) is None
    assert hashlib.sha1(value).digest() != hashlib.sha1(value[1:]).digest()


def test_byte_order_marks_are_read(tmp_path: Path) -> None:
    target = tmp_path / "bom.ddoc"
    target.write_bytes(b"\xef\xbb\xbf" * 5 + CASES[PASS_13].file.read_bytes())
    [signature] = _validate(PASS_13, target).signatures
    assert signature.indication is Indication.TOTAL_PASSED
    bom_file = _validate("dd4j-ddoc-pass-06").signatures   # starts with 19 BOMs
    assert bom_file[0].blocks[Block.CRYPTOGRAPHIC_VERIFICATION].indication is Indication.TOTAL_PASSED


@pytest.mark.parametrize("content", [
    b'<?xml version="1.0"?>\n<SignedDoc format="DIGIDOC-XML" version="1.3" xmlns="http://www.sk.ee/DigiDoc/v1.3.0#">'
    b'<DataFile',                                                                       # truncated
    b'<?xml version="1.0"?><!DOCTYPE SignedDoc [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b'<SignedDoc format="DIGIDOC-XML" version="1.3">&b;</SignedDoc>',                   # entities
    b'<SignedDoc format="DIGIDOC-XML" version="1.3" xmlns="http://www.sk.ee/DigiDoc/v1.3.0#">'
    + b"<a>" * 5000 + b"</a>" * 5000 + b"</SignedDoc>",                                  # deeply nested
    b'<SignedDoc format="DIGIDOC-XML" version="9.9"></SignedDoc>',                      # unknown version
])
def test_hostile_or_broken_input_is_refused_cleanly(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "bad.ddoc"
    target.write_bytes(content)
    with pytest.raises(ValidationInputError):
        _validate(PASS_13, target)


def test_signature_without_parts_is_a_format_failure(tmp_path: Path) -> None:
    data = CASES[PASS_13].file.read_bytes()
    start, end = data.index(b"<KeyInfo>"), data.index(b"</KeyInfo>") + len(b"</KeyInfo>")
    target = tmp_path / "nokeyinfo.ddoc"
    target.write_bytes(data[:start] + data[end:])
    [signature] = _validate(PASS_13, target).signatures
    assert signature.sub_indication is SubIndication.FORMAT_FAILURE
