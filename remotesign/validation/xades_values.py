"""The BDOC time-mark: an OCSP response of the signature's own RevocationValues whose nonce is
the digest of the signature value, which proves the signature existed when the response was
produced. Reading the validation data a XAdES signature carries is the one XAdES reader's job
(``remotesign.formats.xades.reading.values_of`` / ``embedded_data``)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, core, ocsp, x509

from remotesign.formats.xades.dom import SignatureParts
from remotesign.formats.xades.reading import values_of


def revocation_values_ocsp(parts: SignatureParts, problems: list[str]) -> list[bytes]:
    """OCSP responses of the signature's own RevocationValues (not of time-stamp data)."""
    return list(values_of(parts.unsigned_named("RevocationValues"), problems).ocsp_responses)


class _RawExtension(core.Sequence):
    # extnValue as plain octets: SK's responders put a bare DigestInfo in the nonce, which
    # asn1crypto's OCSP nonce spec refuses to parse.
    _fields = [("extn_id", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("extn_value", core.OctetString)]


@dataclass(frozen=True)
class TimeMark:
    produced_at: datetime
    serial_number: int


def _digest_info(value: bytes) -> algos.DigestInfo | None:
    """The nonce's DigestInfo: SK's responders put it bare in the extension, RFC 6960 ones
    wrap the nonce in an OCTET STRING."""
    for candidate in (value, _octets(value)):
        if candidate is None:
            continue
        try:
            info = algos.DigestInfo.load(candidate, strict=True)
            info.native  # noqa: B018 - parse fully
            return info
        except Exception:  # noqa: BLE001 - not this encoding
            continue
    return None


def _octets(value: bytes) -> bytes | None:
    try:
        return core.OctetString.load(value, strict=True).native
    except Exception:  # noqa: BLE001
        return None


def produced_at(der: bytes) -> datetime | None:
    try:
        return ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]["produced_at"].native
    except Exception:  # noqa: BLE001 - asn1crypto raises many types on garbage
        return None


def time_mark(der: bytes, signature_value: bytes, signer: x509.Certificate) -> TimeMark | None:
    """The OCSP response as a BDOC time-mark: its nonce is DigestInfo(H(SignatureValue)) and it
    answers for the signing certificate. None when it does not bind this signature."""
    try:
        data = ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]
        serials = [r["cert_id"]["serial_number"].native for r in data["responses"]]
        if signer.serial_number not in serials:
            return None
        for ext in data["response_extensions"] or ():
            raw = _RawExtension.load(ext.dump())
            if raw["extn_id"].native != "1.3.6.1.5.5.7.48.1.2":
                continue
            info = _digest_info(raw["extn_value"].native)
            if info is None:
                continue
            algorithm = info["digest_algorithm"]["algorithm"].native
            if hmac.compare_digest(info["digest"].native, hashlib.new(algorithm, signature_value).digest()):
                return TimeMark(data["produced_at"].native, signer.serial_number)
    except Exception:  # noqa: BLE001 - a response that cannot be read is simply no time-mark
        return None
    return None
