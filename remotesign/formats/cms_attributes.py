"""The signed attributes of a PAdES signature, encoded directly.

PAdES baseline signed attributes are content-type (id-data), message-digest and
signing-certificate-v2 (one ESSCertIDv2: SHA-256 of the certificate, its issuer and serial). pyHanko
builds them as asn1crypto objects, whose serialisation re-encodes the certificate's issuer name at
every level above it: ~7 ms per signature for ~300 bytes. Encoded here from the certificate's
parsed issuer and serial in microseconds; tests/test_cms_attributes.py checks the bytes are
pyHanko's.
"""

from __future__ import annotations

import hashlib

from asn1crypto import core, x509

from remotesign import der

_OID_CONTENT_TYPE = core.ObjectIdentifier("1.2.840.113549.1.9.3").dump()
_OID_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_OID_SIGNING_CERTIFICATE_V2 = core.ObjectIdentifier("1.2.840.113549.1.9.16.2.47").dump()
_ID_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.1").dump()
_CONTENT_TYPE_DATA = der.tlv(der.SEQUENCE, _OID_CONTENT_TYPE, der.tlv(der.SET, _ID_DATA))


def signing_certificate_v2(cert: x509.Certificate, cert_der: bytes) -> bytes:
    """The signing-certificate-v2 Attribute naming ``cert`` (ESSCertIDv2 with SHA-256, the
    DEFAULT hash, so its AlgorithmIdentifier is omitted as DER requires)."""
    issuer_serial = der.tlv(der.SEQUENCE,
                            der.tlv(der.SEQUENCE, der.tlv(0xA4, cert.issuer.dump())),  # GeneralNames: directoryName
                            der.integer(cert.serial_number))
    ess_cert_id = der.tlv(der.SEQUENCE, der.tlv(der.OCTET_STRING, hashlib.sha256(cert_der).digest()), issuer_serial)
    value = der.tlv(der.SEQUENCE, der.tlv(der.SEQUENCE, ess_cert_id))
    return der.tlv(der.SEQUENCE, _OID_SIGNING_CERTIFICATE_V2, der.tlv(der.SET, value))


def pades_signed_attributes(cert: x509.Certificate, cert_der: bytes, message_digest: bytes) -> bytes:
    """DER SET OF the PAdES baseline signed attributes, as signed."""
    digest = der.tlv(der.SEQUENCE, _OID_MESSAGE_DIGEST, der.tlv(der.SET, der.tlv(der.OCTET_STRING, message_digest)))
    return der.set_of(_CONTENT_TYPE_DATA, digest, signing_certificate_v2(cert, cert_der))


__all__ = ["pades_signed_attributes", "signing_certificate_v2"]
