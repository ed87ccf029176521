"""The one revocation source: where signing, extension and validation get OCSP responses and CRLs.

Two origins, asked in this order: the built-in CA answers for what it issued, in-process (fresh
OCSP for leaves, its CRL for CA certificates; reused while its revocation state is unchanged, so a
revocation shows at once); any other issuer over the network — OCSP first, then the CRL
distribution points — with a timeout, a size cap, no redirects, and answers (also failures,
briefly) cached across requests so a busy service does not ask a CA again per document.

Signing and extension ask with :meth:`RevocationSource.collect` (the network allowed; every
certificate of the path must have good status or it is a ``PathError``); validation asks with
:meth:`RevocationSource.provider`, online only when the operator allows it (pyHanko's fetcher
interface is the model: one call per set of certificates, data back, no decisions).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache

import httpx
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509

from remotesign.asn1_shared import shared_certificate
from remotesign.names import same_name
from remotesign.formats.base import ValidationData
from remotesign.trust.revocation import PathError, is_self_signed, issued_by, ocsp_request, ocsp_successful

MAX_FETCHED_BYTES = 16 << 20
_MAX_URLS = 3


class BuiltinRevocation:
    """Fresh OCSP responses (leaves) and CRLs (CA certificates) from the built-in CA, produced
    in-process: the service can always prove the status of what its own CA issued."""

    def __init__(self, chain_ders: Sequence[bytes], ocsp_respond: Callable[[bytes], bytes],
                 crl_for_ca: Callable[[x509.Certificate], bytes], *,
                 state: Callable[[], object] = lambda: None, ttl_seconds: float = 60.0) -> None:
        self._cas = [shared_certificate(d) for d in chain_ders]
        self._ocsp_respond = ocsp_respond
        self._crl_for_ca = crl_for_ca
        self._state = state
        self._ttl = ttl_seconds
        self._cache: dict[bytes, tuple[float, object, bytes | None, bool]] = {}
        self._issuers: dict[bytes, x509.Certificate | None] = {}
        self._lock = threading.Lock()

    def issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        """The built-in CA certificate that issued ``cert`` (signature-checked, remembered)."""
        key = cert.sha256
        with self._lock:
            if key in self._issuers:
                return self._issuers[key]
        issuer = next((ca for ca in self._cas if issued_by(cert, ca) and cert.dump() != ca.dump()), None)
        with self._lock:
            if len(self._issuers) > 10_000:
                self._issuers.clear()
            self._issuers[key] = issuer
        return issuer

    def __call__(self, certificates: Sequence[x509.Certificate]) -> ValidationData:
        ocsps: list[bytes] = []
        crls: list[bytes] = []
        state: object = _UNSET
        for cert in certificates:
            issuer = self.issuer_of(cert)
            if issuer is None:
                continue
            if state is _UNSET:
                state = self._state()    # one query, and only when the built-in CA is involved
            der, is_crl = self._answer(cert, issuer, state)
            if der is not None:
                (crls if is_crl else ocsps).append(der)
        if state is _UNSET:
            return ValidationData()
        return ValidationData(certificates=tuple(dict.fromkeys(c.dump() for c in self._cas)),
                              ocsp_responses=tuple(dict.fromkeys(ocsps)), crls=tuple(dict.fromkeys(crls)))

    def _answer(self, cert: x509.Certificate, issuer: x509.Certificate, state: object) -> tuple[bytes | None, bool]:
        key = cert.sha256
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now and hit[1] == state:
            return hit[2], hit[3]
        try:
            der = self._crl_for_ca(issuer) if cert.ca else self._ocsp_respond(ocsp_request(cert, issuer))
        except Exception:  # noqa: BLE001 - a missing response only means less evidence
            der = None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, state, der, bool(cert.ca))
        return der, bool(cert.ca)


_UNSET = object()


class OnlineRevocation:
    """OCSP (else CRL) over the network for certificates whose issuer is among those given."""

    def __init__(self, timeout: float, ttl_seconds: float = 300.0, failure_ttl_seconds: float = 60.0,
                 max_entries: int = 10_000) -> None:
        self.timeout = timeout
        self.ttl = ttl_seconds
        self.failure_ttl = failure_ttl_seconds
        self.max_entries = max_entries
        self._cache: dict[tuple[bytes, int], tuple[float, bytes | None, bytes | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, certificates: Sequence[x509.Certificate],
                 skip: Callable[[x509.Certificate], bool] = lambda _c: False) -> ValidationData:
        ocsps: list[bytes] = []
        crls: list[bytes] = []
        for cert in certificates:
            if skip(cert) or is_self_signed(cert):
                continue
            issuer = next((c for c in certificates if c is not cert and issued_by(cert, c)), None)
            if issuer is None:
                continue
            ocsp_der, crl_der = self._lookup(cert, issuer)
            if ocsp_der:
                ocsps.append(ocsp_der)
            elif crl_der:
                crls.append(crl_der)
        return ValidationData(ocsp_responses=tuple(ocsps), crls=tuple(crls))

    def _lookup(self, cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes | None, bytes | None]:
        key = (issuer.sha256, cert.serial_number)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        ocsp_der, crl_der = self._fetch(cert, issuer)
        ttl = self.ttl if (ocsp_der or crl_der) else self.failure_ttl
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = (now + ttl, ocsp_der, crl_der)
        return ocsp_der, crl_der

    def _fetch(self, cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes | None, bytes | None]:
        with httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as client:
            for url in cert.ocsp_urls[:_MAX_URLS]:
                body = _get(client, "POST", url, ocsp_request(cert, issuer))
                if body and ocsp_successful(body):
                    return body, None
            for point in cert.crl_distribution_points[:_MAX_URLS]:
                body = _get(client, "GET", point.url, None) if point.url else None
                if body:
                    return None, body
        return None, None


def _get(client: httpx.Client, method: str, url: str, body: bytes | None) -> bytes | None:
    """The body of a 200 answer, read up to MAX_FETCHED_BYTES (None past it or on any failure)."""
    if not url.startswith(("http://", "https://")):
        return None
    headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
    try:
        with client.stream(method, url, content=body, headers=headers) as response:
            if response.status_code != 200:
                return None
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_FETCHED_BYTES:
                    return None
            return bytes(data)
    except httpx.HTTPError:
        return None


class RevocationSource:
    def __init__(self, builtin: BuiltinRevocation, online: OnlineRevocation) -> None:
        self.builtin = builtin
        self.online = online

    @classmethod
    def online_only(cls, timeout: float = 10.0) -> "RevocationSource":
        """No built-in CA: everything over the network (tools and tests outside a service)."""
        return cls(BuiltinRevocation([], lambda _req: b"", lambda _ca: b""), OnlineRevocation(timeout))

    def for_certificates(self, certificates: Sequence[x509.Certificate], *, online: bool) -> ValidationData:
        """What can be had for ``certificates``: the built-in CA's answers, and with ``online``
        the network's for the certificates of other issuers."""
        data = self.builtin(certificates)
        if online:
            data = data.merged(self.online(certificates, skip=lambda c: self.builtin.issuer_of(c) is not None))
        return data

    def provider(self, *, online: bool) -> Callable[[Sequence[x509.Certificate]], ValidationData]:
        """The ``revocation_provider`` of a validation (ValidationOptions)."""
        return lambda certificates: self.for_certificates(certificates, online=online)

    async def collect(self, path: list[x509.Certificate]) -> ValidationData:
        """Validation data for ``path`` ([leaf, ..., root]) to embed in a signature: every
        certificate but the root must have good status; PathError when one is revoked, unknown,
        or has no revocation information at all."""
        data = await asyncio.to_thread(self.for_certificates, path, online=True)
        for cert, issuer in zip(path, path[1:]):
            check_status(data, cert, issuer)
        return ValidationData(certificates=tuple(c.dump() for c in path)).merged(data)


def check_status(data: ValidationData, cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """``cert``'s status from ``data``: an OCSP response for it (by serial and issuer key), else a
    CRL of its issuer. PathError when revoked, unknown to the responder, or not covered."""
    key_hash = issuer.public_key.sha1
    for der in data.ocsp_responses:
        for serial, hash_algorithm, issuer_key_hash, status in _ocsp_answers(der):
            if serial != cert.serial_number or (hash_algorithm == "sha1" and issuer_key_hash != key_hash):
                continue
            if status == "revoked":
                raise PathError("certificate_revoked", f"{cert.subject.human_friendly} is revoked")
            if status != "good":
                raise PathError("certificate_untrusted",
                                f"the OCSP responder does not know {cert.subject.human_friendly}")
            return
    for der in data.crls:
        crl = asn1_crl.CertificateList.load(der)
        if not same_name(crl["tbs_cert_list"]["issuer"], issuer.subject):
            continue
        for entry in crl["tbs_cert_list"]["revoked_certificates"]:
            if entry["user_certificate"].native == cert.serial_number:
                raise PathError("certificate_revoked", f"{cert.subject.human_friendly} is revoked")
        return
    raise PathError("revocation_unavailable", f"no revocation information for {cert.subject.human_friendly}")


@lru_cache(maxsize=1024)
def _ocsp_answers(der: bytes) -> tuple[tuple[int, str, bytes, str], ...]:
    """(serial, CertID hash algorithm, issuer key hash, status) of each answer of a successful OCSP
    response; none for any other. A pure function of the DER, remembered: the source hands out
    the same cached responses to every signing until they are refreshed."""
    response = asn1_ocsp.OCSPResponse.load(der)
    if response["response_status"].native != "successful":
        return ()
    return tuple((single["cert_id"]["serial_number"].native, single["cert_id"]["hash_algorithm"]["algorithm"].native,
                  single["cert_id"]["issuer_key_hash"].native, single["cert_status"].name)
                 for single in response.basic_ocsp_response["tbs_response_data"]["responses"])
