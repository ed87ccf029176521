"""RFC 3161 TimeStampResp assembled from parts encoded once.

Per token only the message imprint, serial number, genTime, nonce, signing-time, message-digest
and signature change; everything else (policy, accuracy, TSA name, signer identifier, algorithms,
certificates, signing-certificate-v2) is encoded at start-up with asn1crypto and reused as bytes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from asn1crypto import algos, cms, core, tsp, x509

from remotesign import der

TOKEN_HASH = "sha256"
_OID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
_OID_TST_INFO = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.4").dump()
_OID_SIGNING_TIME = core.ObjectIdentifier("1.2.840.113549.1.9.5").dump()
_OID_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_STATUS_GRANTED = tsp.PKIStatusInfo({"status": "granted"}).dump()
_VERSION_1 = der.integer(1)
_VERSION_3 = der.integer(3)


class TokenTemplate:
    """Encodes TimeStampResp / TSTInfo / signed attributes for one TSA certificate and key."""

    def __init__(self, cert: x509.Certificate, chain: list[x509.Certificate], cert_der: bytes,
                 signature_algorithm: algos.SignedDigestAlgorithm, policy_oid: str,
                 accuracy: dict | None) -> None:
        self._policy = core.ObjectIdentifier(policy_oid).dump()
        self._accuracy = tsp.Accuracy(accuracy).dump() if accuracy else b""
        # tsa [0] EXPLICIT GeneralName (directoryName [4] EXPLICIT Name)
        self._tsa = der.tlv(0xA0, x509.GeneralName(name="directory_name", value=cert.subject).dump())
        self._sid = cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number}).dump()
        self._digest_alg = algos.DigestAlgorithm({"algorithm": TOKEN_HASH}).dump()
        self._sig_alg = signature_algorithm.dump()
        # certificates [0] IMPLICIT CertificateSet
        self._certificates = der.retag(cms.CertificateSet([cert, *chain]).dump(), 0xA0)
        # ESSCertIDv2: hashAlgorithm omitted because SHA-256 is its DEFAULT (DER forbids encoding it).
        self._signing_cert_attr = cms.CMSAttribute({
            "type": "signing_certificate_v2",
            "values": [tsp.SigningCertificateV2({"certs": [{
                "cert_hash": hashlib.sha256(cert_der).digest(),
                "issuer_serial": {
                    "issuer": [x509.GeneralName(name="directory_name", value=cert.issuer)],
                    "serial_number": cert.serial_number,
                },
            }]})],
        }).dump()
        self._content_type_attr = cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump()

    def tst_info(self, imprint_der: bytes, serial: int, gen_time: datetime, nonce: int | None) -> bytes:
        """DER TSTInfo; ``imprint_der`` is the request's MessageImprint, copied as received."""
        return der.tlv(der.SEQUENCE, _VERSION_1, self._policy, imprint_der, der.integer(serial),
                       der.generalized_time(gen_time), self._accuracy,
                       der.integer(nonce) if nonce is not None else b"", self._tsa)

    def signed_attributes(self, tst_info_der: bytes, gen_time: datetime) -> bytes:
        """DER SET OF Attribute the signature covers (content-type, signing-time, message-digest,
        signing-certificate-v2), in DER order."""
        signing_time = der.tlv(der.SEQUENCE, _OID_SIGNING_TIME,
                               der.tlv(der.SET, der.utc_time(gen_time.replace(microsecond=0))))
        digest = hashlib.new(TOKEN_HASH, tst_info_der).digest()
        message_digest = der.tlv(der.SEQUENCE, _OID_MESSAGE_DIGEST,
                                 der.tlv(der.SET, der.tlv(der.OCTET_STRING, digest)))
        return der.set_of(self._content_type_attr, signing_time, message_digest, self._signing_cert_attr)

    def response(self, tst_info_der: bytes, signed_attrs_der: bytes, signature: bytes, cert_req: bool) -> bytes:
        """DER TimeStampResp (status granted) carrying the token."""
        signer_info = der.tlv(der.SEQUENCE, _VERSION_1, self._sid, self._digest_alg,
                              der.retag(signed_attrs_der, 0xA0), self._sig_alg,
                              der.tlv(der.OCTET_STRING, signature))
        encap = der.tlv(der.SEQUENCE, _OID_TST_INFO, der.tlv(0xA0, der.tlv(der.OCTET_STRING, tst_info_der)))
        signed_data = der.tlv(der.SEQUENCE, _VERSION_3, der.tlv(der.SET, self._digest_alg), encap,
                              self._certificates if cert_req else b"", der.tlv(der.SET, signer_info))
        token = der.tlv(der.SEQUENCE, _OID_SIGNED_DATA, der.tlv(0xA0, signed_data))
        return der.tlv(der.SEQUENCE, _STATUS_GRANTED, token)


__all__ = ["TOKEN_HASH", "TokenTemplate"]
