"""Cryptographic verification of CMS signature values, as tolerant as EU DSS (BouncyCastle) and no
more: pyHanko's default validator refuses three encodings that DSS accepts and that do not let
anyone sign something other than what the signer signed.

1. Signed attributes re-ordered after signing. RFC 5652 §5.4 has the signer sign the DER encoding
   of signedAttrs (a SET OF, sorted); BouncyCastle verifies exactly that DER encoding, whatever
   order the attributes arrive in. pyHanko verifies the bytes as received. We try the bytes as
   received, then the DER order: both are encodings of the same attribute values. (A signature
   that verifies only over a non-DER order is rejected elsewhere: :func:`cms_common.non_der_signed_attrs`.)
2. RSA PKCS#1 v1.5 DigestInfo whose AlgorithmIdentifier omits the NULL parameters (RFC 8017 §9.2
   note 2; accepted by BouncyCastle and the JDK). The whole encoded message is rebuilt and compared
   byte for byte, so no lenient parsing is involved.
3. RSA PKCS#1 v1.5 with SHA-3 (id-rsassa-pkcs1-v1_5-with-sha3-*, NIST CSOR), which pyHanko does
   not map to a mechanism.
"""

from __future__ import annotations

from asn1crypto import algos, cms
from asn1crypto.keys import PublicKeyInfo
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko_certvalidator.errors import AlgorithmNotSupported
from pyhanko_certvalidator.sig_validate import (DEFAULT_VALIDATION_CONTEXT, DefaultSignatureValidator,
                                                SignatureValidationContext, SignatureValidator)

from remotesign.pkcs1 import pkcs1v15_verifies, tlv
from remotesign.public_keys import minimal_rsa_key_info

#: id-rsassa-pkcs1-v1_5-with-sha3-* (NIST CSOR sigAlgs) -> digest algorithm
RSA_SHA3_OIDS = {
    "2.16.840.1.101.3.4.3.13": "sha3_224",
    "2.16.840.1.101.3.4.3.14": "sha3_256",
    "2.16.840.1.101.3.4.3.15": "sha3_384",
    "2.16.840.1.101.3.4.3.16": "sha3_512",
}
_MAX_SIGNED_ATTRS = 1 << 20


class CmsSignatureValidator(SignatureValidator):
    """pyHanko's validator plus the three accepted variants of the module docstring."""

    def validate_signature(self, signature: bytes, signed_data: bytes, public_key_info: PublicKeyInfo,
                           signature_algorithm: algos.SignedDigestAlgorithm,
                           context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT) -> None:
        failure: Exception | None = None
        for message in _signed_encodings(signed_data, context.prehashed):
            try:
                _verify_one(signature, message, public_key_info, signature_algorithm, context)
                return
            except InvalidSignature as exc:
                failure = exc
        raise failure or InvalidSignature()


CMS_SIGNATURE_VALIDATOR = CmsSignatureValidator()


def der_signed_attrs(signed_data: bytes) -> bytes | None:
    """The DER (sorted SET OF) encoding of an encoded signedAttrs SET, or None when ``signed_data``
    is not one or is already in DER order. Only the order and the outer header change: every
    attribute keeps its own encoding, so the values are the same."""
    if not signed_data or signed_data[0] != 0x31 or len(signed_data) > _MAX_SIGNED_ATTRS:
        return None
    try:
        attrs = cms.CMSAttributes.load(signed_data, strict=True)
        children = [attr.dump() for attr in attrs]
    except Exception:  # noqa: BLE001 - not a SET OF Attribute: nothing to re-order
        return None
    der = tlv(0x31, b"".join(sorted(children)))
    return None if der == signed_data else der


def _signed_encodings(signed_data: bytes, prehashed: bool) -> list[bytes]:
    if prehashed:
        return [signed_data]
    der = der_signed_attrs(signed_data)
    return [signed_data] if der is None else [signed_data, der]


def _verify_one(signature: bytes, message: bytes, key: PublicKeyInfo, algorithm: algos.SignedDigestAlgorithm,
                context: SignatureValidationContext) -> None:
    sha3 = RSA_SHA3_OIDS.get(algorithm["algorithm"].dotted)
    if sha3 is not None:
        _verify_pkcs1v15(signature, message, key, sha3, context.prehashed)
        return
    try:
        DefaultSignatureValidator().validate_signature(signature, message, key, algorithm, context)
    except InvalidSignature:
        digest = _pkcs1v15_digest(algorithm, key, context)
        if digest is None:
            raise
        _verify_pkcs1v15(signature, message, key, digest, context.prehashed)


def _pkcs1v15_digest(algorithm: algos.SignedDigestAlgorithm, key: PublicKeyInfo,
                     context: SignatureValidationContext) -> str | None:
    """The digest of an RSA PKCS#1 v1.5 signature algorithm, None for any other mechanism."""
    try:
        if key.algorithm != "rsa" or algorithm.signature_algo != "rsassa_pkcs1v15":
            return None
    except ValueError:
        return None
    try:
        return str(algorithm.hash_algo)
    except ValueError:
        return context.contextual_md_algorithm


def _verify_pkcs1v15(signature: bytes, message: bytes, key: PublicKeyInfo, digest_algorithm: str,
                     prehashed: bool) -> None:
    """RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) accepting the DigestInfo with NULL or with
    absent parameters (:mod:`remotesign.pkcs1`)."""
    try:
        public = serialization.load_der_public_key((minimal_rsa_key_info(key) or key).dump())
        if not isinstance(public, rsa.RSAPublicKey):
            raise InvalidSignature()
        if pkcs1v15_verifies(public, signature, digest_algorithm, message, prehashed=prehashed):
            return
    except (ValueError, TypeError) as exc:
        raise AlgorithmNotSupported(f"RSA with {digest_algorithm} cannot be verified: {exc}") from exc
    raise InvalidSignature()


__all__ = ["CMS_SIGNATURE_VALIDATOR", "CmsSignatureValidator", "RSA_SHA3_OIDS", "der_signed_attrs"]
