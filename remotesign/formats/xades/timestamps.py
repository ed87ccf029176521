"""Signature time-stamps (B-T) and the token plumbing shared with archive time-stamps: a token
coming back from the TSA is checked to stamp exactly the imprint we asked for before it is
embedded, because a wrong token would only be noticed by a validator years later."""

from __future__ import annotations

import hashlib

from asn1crypto import cms, tsp
from lxml import etree

from remotesign.formats.base import DIGEST_SIZES, FormatError, TimestampFn
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.c14n import canonicalization_of, canonicalize
from remotesign.formats.xades.reading import ATS, STS, read_signature, unsigned_children
from remotesign.formats.xades.unsigned import Ids, append_timestamp, check_writable, ensure_usp
from remotesign.formats.xades.xmlio import (MAX_DOCUMENT_BYTES, child, find_signature, parse_signatures,
                                            serialize, unb64)


def check_hash_name(hash_name: str) -> str:
    if hash_name not in DIGEST_SIZES:
        raise FormatError("unsupported_algorithm", f"time-stamp hash {hash_name!r} is not supported")
    return hash_name


def token_imprint(token: bytes) -> tuple[str, bytes]:
    """(hash name, hashed message) of a DER TimeStampToken."""
    try:
        info = cms.ContentInfo.load(token, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError("not SignedData")
        encap = info["content"]["encap_content_info"]
        tst = encap["content"].parsed if encap["content_type"].native == "tst_info" else None
        if not isinstance(tst, tsp.TSTInfo):
            raise ValueError("SignedData does not encapsulate a TSTInfo")
        imprint = tst["message_imprint"]
        return imprint["hash_algorithm"]["algorithm"].native, imprint["hashed_message"].native
    except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on malformed DER
        raise FormatError("invalid_timestamp", f"not a time-stamp token: {exc}") from None


async def stamp(timestamp: TimestampFn, digest: bytes, hash_name: str) -> bytes:
    """Ask the TSA for a token over ``digest`` and insist that it stamps exactly that."""
    token = await timestamp(digest, hash_name)
    if not isinstance(token, (bytes, bytearray)):
        raise FormatError("invalid_timestamp", "the time-stamp callback returned no DER token")
    name, value = token_imprint(bytes(token))
    if name != hash_name or value != digest:
        raise FormatError("invalid_timestamp", "the time-stamp token does not stamp the requested imprint")
    return bytes(token)


def signature_timestamp_input(sig: etree._Element, c14n_algorithm: str) -> bytes:
    """EN 319 132-1 §5.3: the ds:SignatureValue element, canonicalized."""
    return canonicalize(child(sig, c.DS, "SignatureValue"), c14n_algorithm)


async def timestamp_signature(sig: etree._Element, timestamp: TimestampFn, hash_name: str = "sha256") -> None:
    """B-B -> B-T of ``sig`` in place: append a xades:SignatureTimeStamp over the canonical
    ds:SignatureValue."""
    check_hash_name(hash_name)
    check_writable(sig)
    if not "".join((child(sig, c.DS, "SignatureValue").text or "").split()):
        raise FormatError("not_signed", "the signature value is empty; embed it first")
    digest = hashlib.new(hash_name, signature_timestamp_input(sig, c.TIMESTAMP_C14N)).digest()
    token = await stamp(timestamp, digest, hash_name)
    ids = Ids(sig)
    append_timestamp(ensure_usp(sig, ids), STS, token, c.TIMESTAMP_C14N, ids, "sigtst")


async def add_signature_timestamp(xml: bytes, timestamp: TimestampFn, hash_name: str = "sha256", *,
                                  signature_id: str | None = None) -> bytes:
    """:func:`timestamp_signature` on a signature document (``asic:XAdESSignatures``)."""
    check_hash_name(hash_name)
    tree = parse_signatures(xml, MAX_DOCUMENT_BYTES)
    sig = find_signature(tree, signature_id)
    read_signature(sig)  # refuses an unsigned or unreadable signature
    await timestamp_signature(sig, timestamp, hash_name)
    return serialize(tree)


def timestamp_elements(sig: etree._Element) -> list[tuple[str, etree._Element]]:
    """('signature' | 'archive', property element) in document order."""
    kinds = {STS: "signature", ATS: "archive"}
    return [(kinds[p.tag], p) for p in unsigned_children(sig) if p.tag in kinds]


def encapsulated_tokens(prop: etree._Element) -> list[bytes]:
    return [unb64(e.text, "EncapsulatedTimeStamp") for e in prop.findall(c.q(c.XADES, "EncapsulatedTimeStamp"))]


def property_c14n(prop: etree._Element) -> str:
    return canonicalization_of(prop)


def timestamp_tokens(xml: bytes, *, signature_id: str | None = None) -> list[tuple[str, bytes]]:
    """('signature' | 'archive', DER TimeStampToken) in document order."""
    sig = find_signature(parse_signatures(xml, MAX_DOCUMENT_BYTES), signature_id)
    return [(kind, token) for kind, prop in timestamp_elements(sig) for token in encapsulated_tokens(prop)]
