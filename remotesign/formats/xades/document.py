"""Signatures inside any XML document (standalone XML signatures, whoever made them): which
ones a document holds, finding one by Id, its time-stamp tokens, its signing certificate, the
core check before it is extended, and the guard that extending or adding a signature never
breaks another one. All of it reads through the one reader (``reading``/``dom``) and the one
reference processor (``references``)."""

from __future__ import annotations

import base64
import binascii

from asn1crypto import x509
from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.algorithms import signature_method
from remotesign.formats.xades.dom import StructureError, enclosing_signature, is_element, local_name
from remotesign.formats.xades.reading import (canonical_signed_info, identify_signer, key_info_certificates, parts_of,
                                              signing_certificate_refs, values_of)
from remotesign.formats.xades.references import Resolver, signature_references

_SIGNATURE = c.q(c.DS, "Signature")


def no_content(_uri: str) -> None:
    """A resolver that has no detached content (same-document references only)."""
    return None


def all_signatures(tree: etree._ElementTree) -> list[etree._Element]:
    return list(tree.iter(_SIGNATURE))


def top_level_signatures(tree: etree._ElementTree) -> list[etree._Element]:
    """The signatures of the document itself: not counter-signatures (inside another signature's
    properties) and not signatures that are part of content a signature envelops in a ds:Object
    (extending those would change what the outer signature signed)."""
    return [s for s in all_signatures(tree) if enclosing_signature(s) is None]


def signature_by_id(tree: etree._ElementTree, signature_id: str) -> etree._Element:
    found = [s for s in all_signatures(tree) if s.get("Id") == signature_id]
    if len(found) != 1:
        raise FormatError("invalid_xades", f"{len(found)} ds:Signature elements have the Id {signature_id!r}")
    return found[0]


def timestamp_tokens(sig: etree._Element) -> list[bytes]:
    """DER of every time-stamp token of the signature's qualifying properties (content,
    signature, archive and other time-stamps), document order."""
    qp = parts_of(sig).qualifying_properties
    if qp is None:
        return []
    out = []
    for el in qp.iter():
        if is_element(el) and local_name(el) == "EncapsulatedTimeStamp":
            try:
                out.append(base64.b64decode("".join((el.text or "").split()), validate=True))
            except (binascii.Error, ValueError):
                raise FormatError("invalid_timestamp", "an EncapsulatedTimeStamp is not valid base64") from None
    return out


def _certificate(der: bytes) -> x509.Certificate | None:
    try:
        cert = x509.Certificate.load(der)
        cert.native  # noqa: B018 - parse fully
        return cert
    except Exception:  # noqa: BLE001 - asn1crypto raises many types on garbage
        return None


def verify_signature(sig: etree._Element, resolve: Resolver, *,
                     require_detached: bool) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """XMLDSig core check of ``sig`` before it is extended (a tampered signature is not given
    time-stamps): every reference that can be processed must match (detached content that was
    not supplied is only an error with ``require_detached``), and the signature value must
    verify with the certificate SigningCertificate(V2) names. Returns that certificate and the
    other certificates the signature carries."""
    for ref in signature_references(sig, resolve):
        if not ref.found:
            if ref.detached and not require_detached:
                continue
            code = "missing_data_object" if ref.detached else "invalid_xades"
            raise FormatError(code, f"reference {ref.uri!r}: {ref.message or 'not found'}")
        if not ref.intact:
            raise FormatError("digest_mismatch", f"reference {ref.uri!r} does not match its digest: "
                                                 "the signed data was changed")
    parts = parts_of(sig)
    try:
        method = signature_method(parts.signed_info)
    except StructureError as exc:
        raise FormatError("unsupported_algorithm", str(exc)) from None
    text = "".join((parts.signature_value.text or "").split())
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid_xades", "ds:SignatureValue is not valid base64") from None
    if not value:
        raise FormatError("not_signed", "the signature value is empty")
    ders = list(dict.fromkeys(key_info_certificates(parts, []) + list(values_of(parts.unsigned(), []).certificates)))
    candidates = [cert for cert in map(_certificate, ders) if cert is not None]
    refs, _ = signing_certificate_refs(parts)
    ident = identify_signer(candidates, refs, method, canonical_signed_info(sig), value,
                            qualified=parts.qualifying_properties is not None)
    if ident.certificate is None:
        raise FormatError("signing_certificate_missing", ident.message or "the signer's certificate is not available")
    if not ident.signature_valid:
        raise FormatError("invalid_signature", "the signature value does not verify: the signature was changed")
    if ident.message is not None:
        raise FormatError("invalid_signature", ident.message)
    signer = ident.certificate
    return signer, [cert for cert in candidates if cert.dump() != signer.dump()]


def intact_references(tree: etree._ElementTree) -> dict[int, tuple[etree._Element, list[bool]]]:
    """For every signature of the document: which of its same-document references match now
    (a snapshot for :func:`check_still_intact`)."""
    out: dict[int, tuple[etree._Element, list[bool]]] = {}
    for sig in all_signatures(tree):
        try:
            refs = signature_references(sig, no_content)
        except FormatError:
            continue  # a signature we cannot process constrains nothing
        out[id(sig)] = (sig, [r.found and r.intact for r in refs])
    return out


def check_still_intact(before: dict[int, tuple[etree._Element, list[bool]]], changed: str) -> None:
    """FormatError ``breaks_other_signature`` when a reference that matched in ``before`` no
    longer does: ``changed`` (adding a signature, extending one) would invalidate another
    signature of the document (one that signed it without excluding signatures)."""
    for sig, intact in before.values():
        try:
            refs = signature_references(sig, no_content)
        except FormatError:
            refs = []
        now = [r.found and r.intact for r in refs]
        if any(was and not (i < len(now) and now[i]) for i, was in enumerate(intact)):
            raise FormatError("breaks_other_signature",
                              f"{changed} would break the signature {sig.get('Id') or '(without Id)'}, which "
                              "signs this part of the document")
