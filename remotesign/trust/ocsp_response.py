"""RFC 6960 OCSPResponse (basic) assembled from parts encoded once.

Per response only producedAt, the SingleResponses (the request's CertIDs copied byte for byte,
their statuses and validity), the nonce and the signature change; the responder ID, signature
algorithm and responder certificate are encoded at start-up and reused as bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from asn1crypto import algos, core, ocsp, x509

from remotesign import der

_SUCCESSFUL = ocsp.OCSPResponse({"response_status": "successful"})["response_status"].dump()
_OID_BASIC = core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.1").dump()
_OID_NONCE = core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.2").dump()
GOOD = b"\x80\x00"     # CertStatus good: [0] IMPLICIT NULL
UNKNOWN = b"\x82\x00"  # CertStatus unknown: [2] IMPLICIT NULL


class ResponseTemplate:
    """Encodes signed OCSP responses for one responder certificate and key."""

    def __init__(self, responder_cert: x509.Certificate, responder_key_hash: bytes,
                 signature_algorithm: algos.SignedDigestAlgorithm) -> None:
        self._responder_id = ocsp.ResponderId(name="by_key", value=responder_key_hash).dump()
        self._sig_alg = signature_algorithm.dump()
        self._certs = der.tlv(0xA0, ocsp.Certificates([responder_cert]).dump())  # [0] EXPLICIT

    @staticmethod
    def cert_status(name: str, revoked_at: datetime | None = None, reason: str | None = None) -> bytes:
        """CertStatus: ``good``, ``unknown`` or ``revoked`` (at ``revoked_at``, with an optional CRLReason)."""
        if name == "good":
            return GOOD
        if name == "unknown":
            return UNKNOWN
        if name != "revoked" or revoked_at is None:
            raise ValueError(f"bad certificate status {name!r}")
        info: dict = {"revocation_time": revoked_at.astimezone(timezone.utc).replace(microsecond=0)}
        if reason:
            info["revocation_reason"] = reason
        return der.retag(ocsp.RevokedInfo(info).dump(), 0xA1)  # [1] IMPLICIT RevokedInfo

    def response(self, request: ocsp.OCSPRequest, statuses: list[bytes], now: datetime, next_update: datetime,
                 sign: Callable[[bytes], bytes]) -> bytes:
        """DER OCSPResponse answering every CertID of ``request`` with the matching status;
        ``sign`` turns the DER ResponseData into its signature value."""
        tbs = request["tbs_request"]
        this = der.generalized_time(now)
        until = der.tlv(0xA0, der.generalized_time(next_update))
        singles = [der.tlv(der.SEQUENCE, item["req_cert"].dump(), status, this, until)
                   for item, status in zip(tbs["request_list"], statuses, strict=True)]
        extensions = b""
        for ext in tbs["request_extensions"] or ():
            if ext["extn_id"].native == "nonce":  # copied verbatim, whatever its inner encoding
                nonce = der.tlv(der.SEQUENCE, _OID_NONCE, der.tlv(der.OCTET_STRING, bytes(ext["extn_value"])))
                extensions = der.tlv(0xA1, der.tlv(der.SEQUENCE, nonce))
                break
        response_data = der.tlv(der.SEQUENCE, self._responder_id, this, der.tlv(der.SEQUENCE, *singles), extensions)
        basic = der.tlv(der.SEQUENCE, response_data, self._sig_alg,
                        der.tlv(0x03, b"\x00", sign(response_data)), self._certs)
        return der.tlv(der.SEQUENCE, _SUCCESSFUL,
                       der.tlv(0xA0, der.tlv(der.SEQUENCE, _OID_BASIC, der.tlv(der.OCTET_STRING, basic))))


__all__ = ["GOOD", "UNKNOWN", "ResponseTemplate"]
