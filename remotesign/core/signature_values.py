"""Signer certificates and signature values as they arrive from relying parties: which algorithm a
certificate implies, and whether a value really is the signature of a prepared digest (checked
before anything is embedded, so a wrong value never reaches a document)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_EC_HASH = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}


class SignerInputError(Exception):
    """Bad certificate or signature value; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignerAlgorithm:
    digest_algorithm: str  # sha256 | sha384 | sha512
    mechanism: str         # rsa | ecdsa

    @property
    def api_algorithm(self) -> str:
        """eParaksts ``algorithm``: SHA256 / SHA384 / SHA512."""
        return self.digest_algorithm.upper()

    @property
    def esigp_algorithm(self) -> str:
        """``signature_algorithm`` for the TrustedX raw-signing calls: rsa-sha256 or ecdsa."""
        return f"rsa-{self.digest_algorithm}" if self.mechanism == "rsa" else "ecdsa"


def decode_b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignerInputError("invalid_base64", f"{what} is not valid base64") from exc


def load_certificate(value: str) -> cx509.Certificate:
    """A certificate given as base64 DER or PEM text."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            return cx509.load_pem_x509_certificate(text.encode())
        return cx509.load_der_x509_certificate(decode_b64(text, "certificate"))
    except SignerInputError:
        raise
    except ValueError as exc:
        raise SignerInputError("invalid_certificate", "the certificate cannot be parsed") from exc


def algorithm_for(cert: cx509.Certificate) -> SignerAlgorithm:
    """RSA -> SHA-256; EC P-256 / P-384 / P-521 -> ECDSA with SHA-256 / SHA-384 / SHA-512."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SignerInputError("unsupported_key", "RSA keys shorter than 2048 bits are not accepted")
        return SignerAlgorithm("sha256", "rsa")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_HASH:
        return SignerAlgorithm(_EC_HASH[key.curve.name], "ecdsa")
    raise SignerInputError("unsupported_key", "only RSA and EC P-256/P-384/P-521 certificates can sign")


def normalize_and_verify(cert: cx509.Certificate, digest: bytes, value: bytes, algorithm: SignerAlgorithm) -> bytes:
    """The value in the form CMS expects (DER for ECDSA, raw r||s accepted), after checking that it
    verifies against ``digest`` with the certificate's key."""
    key = cert.public_key()
    prehashed = utils.Prehashed(HASHES[algorithm.digest_algorithm]())
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if len(value) != (key.key_size + 7) // 8:
                raise SignerInputError("invalid_signature_value",
                                  f"an RSA-{key.key_size} signature has {(key.key_size + 7) // 8} bytes, got {len(value)}")
            key.verify(value, digest, padding.PKCS1v15(), prehashed)
            return value
        assert isinstance(key, ec.EllipticCurvePublicKey)
        size = (key.curve.key_size + 7) // 8
        candidates = [value] if _is_der(value) else []
        if len(value) == 2 * size:
            candidates.append(utils.encode_dss_signature(int.from_bytes(value[:size], "big"),
                                                         int.from_bytes(value[size:], "big")))
        if not candidates:
            raise SignerInputError("invalid_signature_value", "the ECDSA value is neither DER nor raw r||s")
        for der in candidates:
            try:
                key.verify(der, digest, ec.ECDSA(prehashed))
                return der
            except InvalidSignature:
                continue
        raise InvalidSignature()
    except InvalidSignature as exc:
        raise SignerInputError("invalid_signature_value",
                          "the signature value does not verify against the certificate and the prepared digest") from exc


def _is_der(value: bytes) -> bool:
    try:
        utils.decode_dss_signature(value)
        return True
    except ValueError:
        return False
