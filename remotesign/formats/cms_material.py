"""Validation material of a CMS signature: the certificates and revocation data of its signer's
path and of the TSA of every time-stamp it carries. PAdES and CAdES extension (LT, LTA) both
embed exactly this; the data comes from the context's one revocation source."""

from __future__ import annotations

from asn1crypto import cms, x509
from pyhanko.sign.general import extract_certificate_info, extract_signer_info, match_issuer_serial
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.interface import ExtensionContext


def signer_and_others(signed_data: cms.SignedData) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The certificate of the signer and the other certificates the SignedData carries.

    pyHanko's ``extract_certificate_info`` compares every certificate's issuer name with the
    signer's first, and names of different encodings go through asn1crypto's stringprep
    comparison: ~3 % of a node's CPU under signing load, for the CA and TSA certificates that are
    obviously not the signer. Here the serial number (an integer) is compared first and pyHanko's
    issuer-and-serial match runs only for a certificate with the signer's serial."""
    try:
        sid = extract_signer_info(signed_data)["sid"]
        if sid.name != "issuer_and_serial_number":
            info = extract_certificate_info(signed_data)
            return info.signer_cert, list(info.other_certs)
        serial = sid.chosen["serial_number"].native
        signer = None
        others = []
        for choice in signed_data["certificates"] or []:
            if choice.name != "certificate":
                continue
            cert = choice.chosen.untag()
            if signer is None and cert.serial_number == serial and match_issuer_serial(sid.chosen, cert):
                signer = cert
            else:
                others.append(cert)
    except Exception as exc:  # noqa: BLE001 - asn1crypto and pyHanko raise several types on a malformed SignedData
        raise FormatError("signing_certificate_missing", f"the signature does not carry its signer's certificate: {exc}") from exc
    if signer is None:
        raise FormatError("signing_certificate_missing", "the signature does not carry its signer's certificate")
    return signer, others


def timestamp_tokens(signer_info: cms.SignerInfo) -> list[cms.SignedData]:
    """SignedData of every time-stamp in the signer info: content time-stamps (signed attributes)
    and signature / archive time-stamps (unsigned attributes)."""
    tokens: list[cms.SignedData] = []
    for signed in (True, False):
        tokens.extend(extract_tst_data_iter(signer_info, signed=signed))
    return tokens


async def signed_data_material(signed_data: cms.SignedData, context: ExtensionContext, *,
                               with_timestamps: bool = True) -> ValidationData:
    """Certificates, OCSP responses and CRLs for the signer of ``signed_data`` and, with
    ``with_timestamps``, for the TSA of each of its time-stamps."""
    cert, others = signer_and_others(signed_data)
    data = await context.validation_data(cert, others)
    if with_timestamps:
        for info in signed_data["signer_infos"]:
            for token in timestamp_tokens(info):
                data = data.merged(await signed_data_material(token, context, with_timestamps=False))
    return data
