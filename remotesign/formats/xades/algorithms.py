"""XMLDSig algorithm identifiers a validator accepts, and verification of ds:SignatureValue.

Covers what signatures in the wild use: RSA PKCS#1 v1.5, RSASSA-PSS (RFC 6931 ``*-rsa-MGF1``
and ``rsa-pss`` with explicit RSAPSSParams), ECDSA with raw r||s values (XMLDSig 1.1). MD5,
HMAC and DSA are not accepted: an unknown or refused method is a format failure, never a
silent pass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import algos, x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from remotesign.formats.xades.dom import DS, StructureError, single
from remotesign.pkcs1 import pkcs1v15_verifies
from remotesign.public_keys import load_public_key

MORE = "http://www.w3.org/2001/04/xmldsig-more#"
MORE07 = "http://www.w3.org/2007/05/xmldsig-more#"
XMLENC = "http://www.w3.org/2001/04/xmlenc#"

DIGESTS = {
    DS + "sha1": "sha1",
    MORE + "sha224": "sha224",
    XMLENC + "sha256": "sha256",
    MORE + "sha384": "sha384",
    XMLENC + "sha512": "sha512",
    MORE07 + "sha3-224": "sha3_224",
    MORE07 + "sha3-256": "sha3_256",
    MORE07 + "sha3-384": "sha3_384",
    MORE07 + "sha3-512": "sha3_512",
}
_HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
           "sha512": hashes.SHA512, "sha3_224": hashes.SHA3_224, "sha3_256": hashes.SHA3_256,
           "sha3_384": hashes.SHA3_384, "sha3_512": hashes.SHA3_512}

# URI -> (scheme, digest): scheme is 'rsa' (PKCS#1 v1.5), 'pss' or 'ecdsa'.
SIGNATURE_METHODS: dict[str, tuple[str, str]] = {
    DS + "rsa-sha1": ("rsa", "sha1"),
    MORE + "rsa-sha224": ("rsa", "sha224"),
    MORE + "rsa-sha256": ("rsa", "sha256"),
    MORE + "rsa-sha384": ("rsa", "sha384"),
    MORE + "rsa-sha512": ("rsa", "sha512"),
    MORE + "ecdsa-sha1": ("ecdsa", "sha1"),
    MORE + "ecdsa-sha224": ("ecdsa", "sha224"),
    MORE + "ecdsa-sha256": ("ecdsa", "sha256"),
    MORE + "ecdsa-sha384": ("ecdsa", "sha384"),
    MORE + "ecdsa-sha512": ("ecdsa", "sha512"),
    MORE07 + "sha1-rsa-MGF1": ("pss", "sha1"),
    MORE07 + "sha224-rsa-MGF1": ("pss", "sha224"),
    MORE07 + "sha256-rsa-MGF1": ("pss", "sha256"),
    MORE07 + "sha384-rsa-MGF1": ("pss", "sha384"),
    MORE07 + "sha512-rsa-MGF1": ("pss", "sha512"),
    MORE07 + "sha3-224-rsa-MGF1": ("pss", "sha3_224"),
    MORE07 + "sha3-256-rsa-MGF1": ("pss", "sha3_256"),
    MORE07 + "sha3-384-rsa-MGF1": ("pss", "sha3_384"),
    MORE07 + "sha3-512-rsa-MGF1": ("pss", "sha3_512"),
}
RSA_PSS = MORE07 + "rsa-pss"
MGF1 = MORE07 + "MGF1"


def digest_name(method: etree._Element | None) -> str:
    """hashlib name of a ds:DigestMethod; StructureError for a missing or refused algorithm."""
    if method is None:
        raise StructureError("ds:DigestMethod is missing")
    uri = method.get("Algorithm", "")
    name = DIGESTS.get(uri)
    if name is None:
        raise StructureError(f"digest algorithm {uri!r} is not supported")
    return name


def new_hash(name: str) -> "hashlib._Hash":
    return hashlib.new(name)


@dataclass(frozen=True)
class SignatureMethod:
    """A parsed ds:SignatureMethod: scheme, digest and (PSS) MGF digest and salt length."""

    uri: str
    scheme: str
    digest: str
    mgf_digest: str | None = None
    salt_length: int | None = None

    @property
    def asn1_name(self) -> str:
        """The name asn1crypto / pyHanko use (sha256_rsa, sha256_ecdsa, rsassa_pss)."""
        if self.scheme == "pss":
            return "rsassa_pss"
        return f"{self.digest}_{self.scheme}"

    def asn1(self) -> algos.SignedDigestAlgorithm:
        """As a SignedDigestAlgorithm, for pyHanko's algorithm usage policies."""
        if self.scheme != "pss":
            return algos.SignedDigestAlgorithm({"algorithm": self.asn1_name})
        mgf_digest = self.mgf_digest or self.digest
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": algos.RSASSAPSSParams({
            "hash_algorithm": {"algorithm": self.digest},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": mgf_digest}},
            "salt_length": self.salt_length if self.salt_length is not None else new_hash(self.digest).digest_size,
        })})


def signature_method(signed_info: etree._Element) -> SignatureMethod:
    method = single(signed_info, DS, "SignatureMethod", required=True)
    uri = method.get("Algorithm", "")
    if uri in SIGNATURE_METHODS:
        scheme, digest = SIGNATURE_METHODS[uri]
        return SignatureMethod(uri, scheme, digest)
    if uri == RSA_PSS:
        return _rsa_pss(method)
    raise StructureError(f"signature method {uri!r} is not supported")


def _rsa_pss(method: etree._Element) -> SignatureMethod:
    """RFC 6931 §2.3.10: defaults SHA-256, MGF1 with the same digest, salt = digest length."""
    params = single(method, MORE07, "RSAPSSParams")
    digest = "sha256"
    mgf_digest = None
    salt = None
    if params is not None:
        dm = single(params, DS, "DigestMethod")
        if dm is not None:
            digest = digest_name(dm)
        mgf = single(params, MORE07, "MaskGenerationFunction")
        if mgf is not None:
            if mgf.get("Algorithm", MGF1) != MGF1:
                raise StructureError(f"mask generation function {mgf.get('Algorithm')!r} is not supported")
            mgf_dm = single(mgf, DS, "DigestMethod")
            mgf_digest = digest_name(mgf_dm) if mgf_dm is not None else None
        salt_el = single(params, MORE07, "SaltLength")
        if salt_el is not None:
            salt = _small_int(salt_el.text, "SaltLength")
        trailer = single(params, MORE07, "TrailerField")
        if trailer is not None and _small_int(trailer.text, "TrailerField") != 1:
            raise StructureError("RSASSA-PSS trailer field other than 1 is not supported")
    return SignatureMethod(RSA_PSS, "pss", digest, mgf_digest, salt)


def _small_int(text: str | None, what: str) -> int:
    try:
        value = int((text or "").strip())
    except ValueError:
        raise StructureError(f"{what} is not an integer") from None
    if not 0 <= value <= 4096:
        raise StructureError(f"{what} {value} is out of range")
    return value


def verify_signature_value(cert: x509.Certificate, method: SignatureMethod, data: bytes, value: bytes) -> bool:
    """True when ``value`` is a valid signature of ``data`` by the key of ``cert``."""
    try:
        key = load_public_key(cert.public_key)
    except (ValueError, UnsupportedAlgorithm):
        return False
    digest = _HASHES[method.digest]()
    try:
        if method.scheme in ("rsa", "pss"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            if method.scheme == "rsa":
                try:
                    key.verify(value, data, padding.PKCS1v15(), digest)
                except InvalidSignature:  # a DigestInfo without NULL parameters (remotesign.pkcs1)
                    return pkcs1v15_verifies(key, value, method.digest, data)
            else:
                mgf = _HASHES[method.mgf_digest or method.digest]()
                salt = method.salt_length if method.salt_length is not None else digest.digest_size
                key.verify(value, data, padding.PSS(mgf=padding.MGF1(mgf), salt_length=salt), digest)
            return True
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(_ecdsa_der(value, key), data, ec.ECDSA(digest))
        return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False


def _ecdsa_der(value: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    """XMLDSig ECDSA values are raw r||s; a DER value is accepted too (some producers write it)."""
    size = (key.curve.key_size + 7) // 8
    if len(value) == 2 * size:
        return encode_dss_signature(int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big"))
    return value

