"""Certification paths and the revocation data that LT / LTA signatures embed.

For certificates of the built-in CA the data is produced in-process (OCSP for end-entity
certificates, the CRL for CA certificates); for anything else it is fetched over HTTP from the
certificate's AIA OCSP URL, else its CRL distribution point, with a timeout, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import pem, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as cocsp

from remotesign.formats.base import ValidationData

log = logging.getLogger("remotesign.trust")

MAX_FETCH_BYTES = 8 << 20


class PathError(Exception):
    """No acceptable certification path: ``code`` is stable (certificate_untrusted, certificate_expired,
    certificate_not_yet_valid, certificate_revoked, revocation_unavailable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle or one DER certificate."""
    if pem.detect(data):
        return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [x509.Certificate.load(data)]


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.self_signed in ("maybe", "yes")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cx509.load_der_x509_certificate(cert.dump()).verify_directly_issued_by(
            cx509.load_der_x509_certificate(issuer.dump()))
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
        certs = [x509.Certificate.load(der) for der in builtin_chain]
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


class RevocationCollector:
    """Gathers OCSP responses / CRLs for every non-root certificate of a path."""

    def __init__(self, builtin_ca_ders: list[bytes], ocsp_respond, crl_for_ca,  # type: ignore[no-untyped-def]
                 timeout: float = 10.0) -> None:
        self._builtin = {x509.Certificate.load(d).subject.dump(): x509.Certificate.load(d) for d in builtin_ca_ders}
        self._ocsp_respond = ocsp_respond  # request DER -> response DER (built-in responder)
        self._crl_for_ca = crl_for_ca      # CA certificate (asn1crypto) -> CRL DER (built-in publisher)
        self.timeout = timeout

    async def collect(self, path: list[x509.Certificate]) -> ValidationData:
        """Validation data for ``path`` ([leaf, ..., root]); PathError when a certificate is revoked
        or no revocation information can be had."""
        ocsps: list[bytes] = []
        crls: list[bytes] = []
        for cert, issuer in zip(path, path[1:]):
            ocsp_der, crl_der = await self._for(cert, issuer)
            if ocsp_der:
                _check_ocsp(ocsp_der, cert)
                ocsps.append(ocsp_der)
            elif crl_der:
                _check_crl(crl_der, cert)
                crls.append(crl_der)
            else:
                raise PathError("revocation_unavailable",
                                f"no revocation information for {cert.subject.human_friendly}")
        return ValidationData(certificates=tuple(c.dump() for c in path), ocsp_responses=tuple(ocsps),
                              crls=tuple(crls))

    async def _for(self, cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes | None, bytes | None]:
        builtin_issuer = self._builtin.get(issuer.subject.dump())
        if builtin_issuer is not None and builtin_issuer.dump() == issuer.dump():
            if cert.ca:
                return None, await asyncio.to_thread(self._crl_for_ca, issuer)
            return await asyncio.to_thread(self._ocsp_respond, ocsp_request(cert, issuer)), None
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            for url in cert.ocsp_urls:
                der = await _fetch(client, "POST", url, ocsp_request(cert, issuer), "application/ocsp-request")
                if der and ocsp_successful(der):
                    return der, None
            for point in cert.crl_distribution_points:
                der = await _fetch(client, "GET", point.url, None, None) if point.url else None
                if der:
                    return None, der
        return None, None


async def _fetch(client: httpx.AsyncClient, method: str, url: str, body: bytes | None,
                 content_type: str | None) -> bytes | None:
    if not url.startswith(("http://", "https://")):
        return None
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        async with client.stream(method, url, content=body, headers=headers) as response:
            if response.status_code != 200:
                return None
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_FETCH_BYTES:
                    return None
            return bytes(data)
    except httpx.HTTPError as exc:
        log.info("fetching %s failed: %s", url, exc)
        return None


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = cocsp.OCSPRequestBuilder().add_certificate(
        cx509.load_der_x509_certificate(cert.dump()), cx509.load_der_x509_certificate(issuer.dump()), hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def ocsp_successful(der: bytes) -> bool:
    try:
        return asn1_ocsp.OCSPResponse.load(der)["response_status"].native == "successful"
    except ValueError:
        return False


def _check_ocsp(der: bytes, cert: x509.Certificate) -> None:
    response = asn1_ocsp.OCSPResponse.load(der)
    if response["response_status"].native != "successful":
        raise PathError("revocation_unavailable", "the OCSP responder did not answer successfully")
    for single in response.basic_ocsp_response["tbs_response_data"]["responses"]:
        if single["cert_id"]["serial_number"].native == cert.serial_number:
            status = single["cert_status"].name
            if status == "revoked":
                raise PathError("certificate_revoked", f"{cert.subject.human_friendly} is revoked")
            if status != "good":
                raise PathError("certificate_untrusted", f"the OCSP responder does not know {cert.subject.human_friendly}")
            return
    raise PathError("revocation_unavailable", "the OCSP response does not cover the certificate")


def _check_crl(der: bytes, cert: x509.Certificate) -> None:
    crl = asn1_crl.CertificateList.load(der)
    for entry in crl["tbs_cert_list"]["revoked_certificates"]:
        if entry["user_certificate"].native == cert.serial_number:
            raise PathError("certificate_revoked", f"{cert.subject.human_friendly} is revoked")
