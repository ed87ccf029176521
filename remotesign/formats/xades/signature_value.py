"""Step 2 of signing: put the value the key holder returned into ds:SignatureValue.

RSA values are PKCS#1 v1.5 octets of exactly the modulus length. ECDSA values may come from
the key holder as DER (PKCS#11 wrappers, cryptography) or raw r||s (PKCS#11 CKM_ECDSA); XMLDSig
wants raw r||s, zero-padded to the curve size. The value is verified against the signer
certificate before it is written, so a wrong key or a garbled value never leaves this module."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.certs import KeyFacts, key_facts
from remotesign.formats.xades.reading import read_signature
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, b64, find_signature, parse_signatures, serialize

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def der_to_raw(der: bytes, size: int) -> bytes | None:
    """Raw r||s from a strict DER ECDSA-Sig-Value, or None if ``der`` is not one."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        return None
    if encode_dss_signature(r, s) != der or not (0 < r < 1 << (8 * size) and 0 < s < 1 << (8 * size)):
        return None
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_to_der(raw: bytes) -> bytes:
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def _verifies(facts: KeyFacts, value: bytes, data: bytes, hash_name: str) -> bool:
    try:
        if isinstance(facts.public_key, rsa.RSAPublicKey):
            facts.public_key.verify(value, data, padding.PKCS1v15(), _HASHES[hash_name]())
        else:
            facts.public_key.verify(raw_to_der(value), data, ec.ECDSA(_HASHES[hash_name]()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _candidates(facts: KeyFacts, value: bytes) -> list[bytes]:
    """Possible XMLDSig encodings of ``value`` (an exactly 2n-octet value may be either form)."""
    if facts.mechanism == "rsa":
        if len(value) != facts.size:
            raise FormatError("invalid_signature_value",
                              f"RSA signature value must be {facts.size} octets, got {len(value)}")
        return [value]
    out = []
    if len(value) == 2 * facts.size:
        out.append(value)
    converted = der_to_raw(value, facts.size)
    if converted is not None and converted not in out:
        out.append(converted)
    if not out:
        raise FormatError("invalid_signature_value",
                          f"ECDSA signature value must be {2 * facts.size} octets r||s or DER, got {len(value)} octets")
    return out


def embed_value(sig: etree._Element, signature_value: bytes, *, verify: bool = True) -> None:
    """Write ``signature_value`` into the (empty) ds:SignatureValue of ``sig``, in place.

    With ``verify`` (the default) the value must verify over the canonical SignedInfo with the
    signer certificate's key; otherwise FormatError('invalid_signature_value')."""
    if not isinstance(signature_value, (bytes, bytearray)) or not signature_value:
        raise FormatError("invalid_signature_value", "empty signature value")
    info = read_signature(sig, require_value=False)
    if info.signature_value:
        raise FormatError("already_signed", "the signature already holds a signature value")
    if info.signer_certificate is None:
        raise FormatError("invalid_xades", "the signature has no signer certificate in ds:KeyInfo")
    facts = key_facts(info.signer_certificate)
    if facts.mechanism != info.mechanism:
        raise FormatError("invalid_xades", "SignatureMethod does not match the signer certificate key")

    candidates = _candidates(facts, bytes(signature_value))
    chosen = candidates[-1] if len(candidates) > 1 else candidates[0]  # prefer strict DER if ambiguous
    if verify:
        good = [v for v in candidates if _verifies(facts, v, info.signed_info, info.digest_algorithm)]
        if not good:
            raise FormatError("invalid_signature_value",
                              "the signature value does not verify with the signer certificate")
        chosen = good[0]
    sig.find(c.q(c.DS, "SignatureValue")).text = b64(chosen)


def embed_signature_value(xml: bytes, signature_value: bytes, *, signature_id: str | None = None,
                          verify: bool = True) -> bytes:
    """``xml`` (a signature document) with ``signature_value`` written into its (empty)
    ds:SignatureValue (see :func:`embed_value`)."""
    if not isinstance(signature_value, (bytes, bytearray)) or not signature_value:
        raise FormatError("invalid_signature_value", "empty signature value")
    tree = parse_signatures(xml, MAX_DOCUMENT_BYTES)
    embed_value(find_signature(tree, signature_id), signature_value, verify=verify)
    return serialize(tree)
