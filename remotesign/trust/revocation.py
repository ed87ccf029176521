"""Certification paths (the trust store: anchors, intermediates, path building) and the OCSP
request / response helpers. Where revocation data comes from is trust/revocation_source.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path

from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import pem, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as cocsp

from remotesign.asn1_shared import shared_certificate
from remotesign.names import same_name

log = logging.getLogger("remotesign.trust")



class PathError(Exception):
    """No acceptable certification path: ``code`` is stable (certificate_untrusted, certificate_expired,
    certificate_not_yet_valid, certificate_revoked, revocation_unavailable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle or one DER certificate, parsed whole (they are kept as
    trust anchors and read by concurrent requests: asn1_shared)."""
    if pem.detect(data):
        return [shared_certificate(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [shared_certificate(data)]


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.self_signed in ("maybe", "yes")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if not same_name(cert.issuer, issuer.subject):
        return False
    return _signed_by(cert.dump(), issuer.dump())


@lru_cache(maxsize=1024)
def _signed_by(cert_der: bytes, issuer_der: bytes) -> bool:
    """Whether ``issuer_der``'s key signed ``cert_der``. A pure function of the two encodings, so
    remembered: every signing asks it again for the same signer, CA, TSA and OCSP certificates
    (two certificate parses and a signature check each time)."""
    try:
        cx509.load_der_x509_certificate(cert_der).verify_directly_issued_by(
            cx509.load_der_x509_certificate(issuer_der))
        return True
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - any failure means "not issued by"
        return False


@dataclass
class TrustStore:
    """Trust anchors and known intermediates: the built-in CA plus operator-configured files."""

    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]

    @classmethod
    def build(cls, builtin_chain: list[bytes], anchor_files: tuple[Path, ...]) -> "TrustStore":
        certs = [shared_certificate(der) for der in builtin_chain]
        for path in anchor_files:
            certs.extend(load_certificates(path.read_bytes()))
        return cls(roots=[c for c in certs if is_self_signed(c)],
                   intermediates=[c for c in certs if not is_self_signed(c)])

    def path(self, cert: x509.Certificate, at: datetime | None = None,
             extra: list[x509.Certificate] | None = None) -> list[x509.Certificate]:
        """``[cert, issuer, ..., root]`` ending in a trust anchor, each link signature-checked and
        each certificate valid at ``at``; ``extra`` offers more intermediates (a PFX's chain).
        PathError otherwise."""
        at = at or datetime.now(timezone.utc)
        chain = [cert]
        current = cert
        for _ in range(8):
            if any(current.dump() == r.dump() for r in self.roots):
                break
            issuer = next((c for c in (*self.intermediates, *(extra or ()), *self.roots)
                           if issued_by(current, c)), None)
            if issuer is None:
                raise PathError("certificate_untrusted",
                                f"no trusted issuer for {current.subject.human_friendly}")
            chain.append(issuer)
            current = issuer
        else:
            raise PathError("certificate_untrusted", "certification path too long")
        for c in chain:
            validity = c["tbs_certificate"]["validity"]
            if validity["not_before"].native > at:
                raise PathError("certificate_not_yet_valid", f"{c.subject.human_friendly} is not yet valid")
            if validity["not_after"].native < at:
                raise PathError("certificate_expired", f"{c.subject.human_friendly} has expired")
        return chain


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = cocsp.OCSPRequestBuilder().add_certificate(
        cx509.load_der_x509_certificate(cert.dump()), cx509.load_der_x509_certificate(issuer.dump()), hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def ocsp_successful(der: bytes) -> bool:
    try:
        return asn1_ocsp.OCSPResponse.load(der)["response_status"].native == "successful"
    except ValueError:
        return False
