"""Certificate facts the XML needs: the key type and size (SignatureMethod, signature value
length) and the IssuerSerialV2 / CertDigest of SigningCertificateV2."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from remotesign.formats.base import FormatError


@dataclass(frozen=True)
class KeyFacts:
    mechanism: str  # 'rsa' | 'ecdsa'
    size: int  # RSA: modulus octets; ECDSA: octets of one of r, s
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def load_certificate(der: bytes) -> cx509.Certificate:
    try:
        return cx509.load_der_x509_certificate(der)
    except (ValueError, TypeError) as exc:
        raise FormatError("invalid_certificate", f"not a DER X.509 certificate: {exc}") from None


def key_facts(der: bytes) -> KeyFacts:
    key = load_certificate(der).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return KeyFacts("rsa", (key.key_size + 7) // 8, key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyFacts("ecdsa", (key.curve.key_size + 7) // 8, key)
    raise FormatError("unsupported_algorithm", "only RSA and EC signer keys are supported")


def issuer_serial_v2(der: bytes) -> bytes:
    """DER ``IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber }`` (RFC 5035), the
    content of xades:IssuerSerialV2 (EN 319 132-1 §5.2.2)."""
    cert = x509.Certificate.load(der)
    return tsp.IssuerSerial({
        "issuer": [x509.GeneralName(name="directory_name", value=cert.issuer)],
        "serial_number": cert.serial_number,
    }).dump()


def cert_digest(der: bytes, hash_name: str = "sha256") -> bytes:
    return hashlib.new(hash_name, der).digest()


def is_self_signed(der: bytes) -> bool:
    cert = x509.Certificate.load(der)
    return cert.self_signed != "no"
