"""Raising every SignerInfo of a CMS signature to T, LT or LTA (EN 319 122-1 baseline):

- T: a signature-time-stamp unsigned attribute over the signature value, where none is.
- LT: the certificates of the signer's path and of every TSA's path into SignedData.certificates,
  their CRLs and OCSP responses into SignedData.crls (OCSP as RevocationInfoChoice ``other``,
  id-ri-ocsp-response).
- LTA: an archive-time-stamp-v3 with its ATSHashIndexV3 (:mod:`ats`), after the validation data
  of the TSA that makes it and of every earlier archive time-stamp; on an LTA input that is the
  renewal.

Only unsigned attributes, certificates and CRLs grow; counter-signatures are left as they are.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from asn1crypto import cms

from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.cades import ats, der
from remotesign.formats.cades.layout import SignedDataLayout, SignerInfoParts, attribute, oid
from remotesign.formats.cms_material import signed_data_material
from remotesign.formats.interface import ExtensionContext, Level

OCSP_RESPONSE_FORMAT = "1.3.6.1.5.5.7.16.2"
CONTENT_TIMESTAMP = "1.2.840.113549.1.9.16.2.20"
REVOCATION_VALUES = "1.2.840.113549.1.9.16.2.24"
#: unsigned attributes that hold time-stamp tokens: signature, CAdES-X and archive (v1, v2, v3)
TIMESTAMP_ATTRIBUTES = (ats.SIGNATURE_TIMESTAMP, "1.2.840.113549.1.9.16.2.25", "1.2.840.113549.1.9.16.2.26",
                        "1.2.840.113549.1.9.16.2.27", "1.2.840.113549.1.9.16.2.48", ats.ARCHIVE_TIMESTAMP_V3)

ContentDigest = Callable[[str], bytes]


def values(encoded_attributes: list[bytes], type_oid: str) -> list[bytes]:
    """The encoded values of every attribute of type ``type_oid``."""
    wanted = oid(type_oid)
    out: list[bytes] = []
    for attr in encoded_attributes:
        fields = der.children_of(attr)
        if len(fields) == 2 and fields[0] == wanted:
            out.extend(der.children_of(fields[1]))
    return out


def has_attribute(signer: SignerInfoParts, type_oid: str) -> bool:
    return bool(values(signer.unsigned_attrs, type_oid))


def timestamp_tokens(signer: SignerInfoParts) -> list[bytes]:
    """Every time-stamp token (ContentInfo DER) the signer carries, content time-stamps included."""
    tokens: list[bytes] = []
    if signer.signed_attrs is not None:
        tokens.extend(values(der.children_of(signer.signed_attrs), CONTENT_TIMESTAMP))
    for type_oid in TIMESTAMP_ATTRIBUTES:
        tokens.extend(values(signer.unsigned_attrs, type_oid))
    return tokens


def signer_level(layout: SignedDataLayout, signer: SignerInfoParts) -> Level:
    """Structure only: T with a signature time-stamp, LT with revocation data in the signature as
    well, LTA with an archive-time-stamp-v3 on top."""
    if not has_attribute(signer, ats.SIGNATURE_TIMESTAMP):
        return Level.B
    if not (layout.crls or has_attribute(signer, REVOCATION_VALUES)):
        return Level.T
    return Level.LTA if has_attribute(signer, ats.ARCHIVE_TIMESTAMP_V3) else Level.LT


def levels(layout: SignedDataLayout) -> list[Level]:
    return [signer_level(layout, s) for s in layout.signer_infos]


async def add_signature_timestamps(layout: SignedDataLayout, context: ExtensionContext) -> None:
    hash_name = context.digest_algorithm
    for signer in layout.signer_infos:
        if has_attribute(signer, ats.SIGNATURE_TIMESTAMP):
            continue
        imprint = hashlib.new(hash_name, signer.signature_value()).digest()
        token = await context.timestamper.async_timestamp(imprint, hash_name)
        signer.unsigned_attrs.append(attribute(ats.SIGNATURE_TIMESTAMP, token.dump()))


async def validation_material(layout: SignedDataLayout, context: ExtensionContext, *,
                              new_tsa: bool) -> ValidationData:
    """Certificates and revocation data of every signer's path and every TSA's path; with
    ``new_tsa`` also of the TSA that will make the next archive time-stamp."""
    data = ValidationData()
    others = layout.x509_certificates()
    for signer in layout.signer_infos:
        cert = layout.signer_certificate(signer)
        if cert is None:
            raise FormatError("signing_certificate_missing",
                              "the signature does not carry its signer's certificate")
        data = data.merged(await context.validation_data(cert, others))
        for token in timestamp_tokens(signer):
            try:
                token_data = cms.ContentInfo.load(token)["content"]
            except ValueError as exc:
                raise FormatError("invalid_cms", f"a time-stamp token of the signature cannot be read: {exc}") from exc
            data = data.merged(await signed_data_material(token_data, context, with_timestamps=False))
    if new_tsa:
        probe = await context.timestamper.async_dummy_response(context.digest_algorithm)
        data = data.merged(await signed_data_material(probe["content"], context, with_timestamps=False))
    return data


def embed(layout: SignedDataLayout, data: ValidationData) -> None:
    for certificate in data.certificates:
        layout.add_certificate(certificate)
    for crl in data.crls:
        layout.add_revocation(crl)
    for response in data.ocsp_responses:
        layout.add_revocation(der.tlv(0xA1, oid(OCSP_RESPONSE_FORMAT), response))


async def add_archive_timestamps(layout: SignedDataLayout, context: ExtensionContext,
                                 content_digest: ContentDigest) -> None:
    hash_name = context.digest_algorithm
    content_hash = content_digest(hash_name)
    for signer in layout.signer_infos:
        index = ats.hash_index(layout.certificates, layout.crls, signer.unsigned_attrs, hash_name)
        message = ats.imprint_input(layout.econtent_type, content_hash, signer.signed_fields(), index)
        token = await context.timestamper.async_timestamp(hashlib.new(hash_name, message).digest(), hash_name)
        stamped = with_unsigned_attribute(token.dump(), attribute(ats.ATS_HASH_INDEX_V3, index))
        signer.unsigned_attrs.append(attribute(ats.ARCHIVE_TIMESTAMP_V3, stamped))


def with_unsigned_attribute(token: bytes, attr: bytes) -> bytes:
    """A time-stamp token with ``attr`` added to its SignerInfo's unsigned attributes (which the
    TSA's signature does not cover); every other byte stays as the TSA made it."""
    layout = SignedDataLayout.read(io.BytesIO(token))
    if len(layout.signer_infos) != 1:
        raise FormatError("invalid_timestamp", "the time-stamp token does not have exactly one signer")
    layout.signer_infos[0].unsigned_attrs.append(attr)
    out = io.BytesIO()
    layout.write(out)
    return out.getvalue()


async def extend_layout(layout: SignedDataLayout, level: Level, context: ExtensionContext,
                        content_digest: ContentDigest | None) -> bool:
    """Raise ``layout`` in memory to ``level``; False when nothing had to change (every signer
    at ``level`` already, below LTA: an LTA request always adds an archive time-stamp)."""
    if not layout.signer_infos:
        raise FormatError("not_signed", "the CMS holds no signer")
    current = levels(layout)
    if level == Level.B or (level < Level.LTA and min(current) >= level):
        return False
    if level == Level.LTA and content_digest is None:
        raise FormatError("detached_content_required",
                          "an archive time-stamp covers the signed content: supply the detached document")
    await add_signature_timestamps(layout, context)
    if level >= Level.LT:
        embed(layout, await validation_material(layout, context, new_tsa=level == Level.LTA))
    if level == Level.LTA:
        assert content_digest is not None
        await add_archive_timestamps(layout, context, content_digest)
    return True
