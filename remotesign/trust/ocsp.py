"""RFC 6960 OCSP responder for certificates of the issuing CA.

The responder is *delegated*: its certificate is issued by the issuing CA with the OCSPSigning EKU
and id-pkix-ocsp-nocheck, so validators accept its answers without further revocation checks.

Design choices:

* Everything that does not change between requests (the issuing CA's name and key hashes for each
  supported CertID hash algorithm, the responder certificate, its key hash and signature
  algorithm, the pre-encoded error responses) is computed once, at construction.
* Nothing about *status* is cached: every CertID is looked up in the database, so a revocation is
  visible on the very next request.
* A CertID whose hash algorithm is not SHA-1 or SHA-256, or that names another issuer (the root
  CA, a foreign CA), is answered ``unknown`` rather than failing the whole request: RFC 6960
  section 2.2 defines ``unknown`` for "the responder doesn't know about the certificate", and one
  odd CertID must not hide the answers for the others in the same request.
* Bad input never raises: garbage, trailing data, a wrong version, no CertID, too many CertIDs or
  an oversized request give ``malformed_request``; failures while answering (database, key store)
  give ``internal_error``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from asn1crypto import ocsp

from remotesign.keystore import KeyStore
from remotesign.trust.ca import CertificateAuthority, IssuedCertificate
from remotesign.trust.ocsp_response import GOOD, UNKNOWN, ResponseTemplate
from remotesign.trust.signing import sign_der, signature_algorithm

log = logging.getLogger(__name__)

# CertID hash algorithms we can match (RFC 6960 clients use SHA-1; RFC 5019 / newer ones SHA-256).
CERT_ID_HASHES = ("sha1", "sha256")
# Upper bounds against absurd requests; a real client sends one CertID in a few hundred bytes.
MAX_REQUEST_BYTES = 64 * 1024
MAX_CERT_IDS = 100
# CertificateRecord.serial_hex holds at most 64 hex digits; a larger serial cannot be ours.
MAX_SERIAL = (1 << 256) - 1


@dataclass(frozen=True)
class OcspReply:
    """A DER OCSPResponse and its OCSPResponseStatus name (for logging and metrics)."""

    der: bytes
    status: str


class _Malformed(Exception):
    """The request cannot be understood; answered with malformed_request."""


def _status_only(status: str) -> OcspReply:
    return OcspReply(ocsp.OCSPResponse({"response_status": status}).dump(), status)


def error_reply(server_fault: bool) -> OcspReply:
    """The unsigned OCSPResponse for a request refused before the responder saw it (too large,
    malformed URL) — ``malformedRequest`` — or for a fault of the service — ``internalError``."""
    return _status_only("internal_error" if server_fault else "malformed_request")


def _now() -> datetime:
    # OCSP times are GeneralizedTime; whole seconds keep every client's parser happy.
    return datetime.now(timezone.utc).replace(microsecond=0)


class OcspResponder:
    """Answers OCSP requests about certificates issued by the issuing CA, signed by the OCSP key."""

    def __init__(self, ca: CertificateAuthority, keystore: KeyStore, validity_minutes: int = 60) -> None:
        self.ca = ca
        self.keystore = keystore
        self.validity = timedelta(minutes=validity_minutes)
        issuing: IssuedCertificate = ca.issuing
        self._issuer_id = issuing.id
        issuer_cert = issuing.asn1()
        name_der = issuer_cert.subject.dump()
        key_bits = issuer_cert.public_key["public_key"].contents[1:]  # BIT STRING value, no unused-bits byte
        # (hash algorithm name) -> (issuerNameHash, issuerKeyHash) of the issuing CA.
        self._issuer_hashes: dict[str, tuple[bytes, bytes]] = {
            alg: (hashlib.new(alg, name_der).digest(), hashlib.new(alg, key_bits).digest())
            for alg in CERT_ID_HASHES
        }
        cert, key = ca.ocsp_signer()
        self._key = key
        responder = cert.asn1()
        self._template = ResponseTemplate(responder, hashlib.sha1(responder.public_key["public_key"].contents[1:]).digest(),
                                          signature_algorithm(key))
        self._malformed = _status_only("malformed_request")
        self._internal_error = _status_only("internal_error")

    # -- entry point ------------------------------------------------------------------------------
    def respond(self, request_der: bytes) -> OcspReply:
        """DER OCSPResponse for ``request_der``; never raises."""
        try:
            request = self._parse(request_der)
        except _Malformed:
            return self._malformed
        except Exception:  # noqa: BLE001 - asn1crypto raises many types on hostile input
            return self._malformed
        try:
            return self._answer(request)
        except Exception:  # noqa: BLE001 - a database or HSM failure must become a response
            log.exception("OCSP responder failed")
            return self._internal_error

    # -- parsing ----------------------------------------------------------------------------------
    def _parse(self, request_der: bytes) -> ocsp.OCSPRequest:
        if not isinstance(request_der, (bytes, bytearray)) or not request_der:
            raise _Malformed("empty request")
        if len(request_der) > MAX_REQUEST_BYTES:
            raise _Malformed("request too large")
        request = ocsp.OCSPRequest.load(bytes(request_der), strict=True)  # strict: no trailing data
        tbs = request["tbs_request"]
        tbs.native  # noqa: B018 - force a full parse now, so later access cannot fail half-way
        if tbs["version"].native != "v1":
            raise _Malformed("unsupported version")
        count = len(tbs["request_list"])
        if count == 0 or count > MAX_CERT_IDS:
            raise _Malformed("bad number of CertIDs")
        for ext in tbs["request_extensions"] or ():
            # Unknown critical extensions must not be silently ignored.
            if ext["critical"].native and ext["extn_id"].native != "nonce":
                raise _Malformed("unsupported critical extension")
        return request

    # -- answering --------------------------------------------------------------------------------
    def _answer(self, request: ocsp.OCSPRequest) -> OcspReply:
        now = _now()
        statuses = [self._status(item["req_cert"]) for item in request["tbs_request"]["request_list"]]
        der = self._template.response(request, statuses, now, now + self.validity,
                                      lambda tbs: sign_der(self.keystore, self._key, tbs))
        return OcspReply(der, "successful")

    def _status(self, cert_id: ocsp.CertId) -> bytes:
        """The DER CertStatus of one CertID, read from the database on every request."""
        hashes = self._issuer_hashes.get(cert_id["hash_algorithm"]["algorithm"].native)
        if hashes is None:
            return UNKNOWN
        if (cert_id["issuer_name_hash"].native, cert_id["issuer_key_hash"].native) != hashes:
            return UNKNOWN
        serial = cert_id["serial_number"].native
        if not isinstance(serial, int) or serial <= 0 or serial > MAX_SERIAL:
            return UNKNOWN
        found = self.ca.revocation_status(serial, self._issuer_id)
        if found is None:
            return UNKNOWN
        revoked_at, reason = found
        if revoked_at is None:
            return GOOD
        return self._template.cert_status("revoked", revoked_at,
                                          reason if reason and reason != "unspecified" else None)


__all__ = ["MAX_CERT_IDS", "MAX_REQUEST_BYTES", "OcspReply", "OcspResponder"]
