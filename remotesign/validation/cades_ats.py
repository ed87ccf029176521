"""The expected message imprint of a CAdES archive-time-stamp-v3 (EN 319 122-1 §5.5.3), recomputed
from the signature as it is now: the token's own ATSHashIndexV3 gives what it covered, and every
element it lists must still be there (validation data may be added after an archive time-stamp,
nothing it covers may be removed or changed). The computation is the one the extender uses
(:mod:`remotesign.formats.cades.ats`), over the encoded elements as they are in the file."""

from __future__ import annotations

from collections.abc import Callable

from asn1crypto import cms, core

from remotesign.formats.base import FormatError
from remotesign.formats.cades import ats, der
from remotesign.formats.cades.layout import SignerInfoParts, oid


def _encoded(value: object) -> list[bytes]:
    if value is None or isinstance(value, core.Void):
        return []
    return [item.dump() for item in value]  # type: ignore[attr-defined]


def hash_index_of(token: cms.SignedData) -> ats.HashIndex:
    """The ATSHashIndexV3 in the token's SignerInfo unsigned attributes; ValueError without one."""
    wanted = oid(ats.ATS_HASH_INDEX_V3)
    signer_infos = list(token["signer_infos"])
    if len(signer_infos) != 1:
        raise ValueError("the archive time-stamp does not have exactly one signer")
    found = []
    for attr in _encoded(signer_infos[0]["unsigned_attrs"]):
        fields = der.children_of(attr)
        if fields[0] == wanted:
            found.extend(der.children_of(fields[1]))
    if len(found) != 1:
        raise ValueError("the archive-time-stamp-v3 carries no (or more than one) ats-hash-index-v3")
    return ats.HashIndex.parse(found[0])


def expected_imprint(signed_data: cms.SignedData, signer_info: cms.SignerInfo, token: cms.SignedData,
                     content_digest: Callable[[str], bytes] | None,
                     problems: list[str]) -> Callable[[str], bytes | None]:
    """``imprint(hash_name)`` for :func:`remotesign.validation.timestamps.validate_timestamp`:
    None when the signed content is not available, ValueError when the token or the signature
    cannot be read, and a value that cannot match when the index lists elements that are gone
    (their description is appended to ``problems``)."""

    def imprint(hash_name: str) -> bytes | None:
        try:
            index = hash_index_of(token)
            signer = SignerInfoParts.parse(signer_info.dump())
            certificates = _encoded(signed_data["certificates"])
            crls = _encoded(signed_data["crls"])
            econtent_type = signed_data["encap_content_info"]["content_type"].dump()
        except (FormatError, ValueError, TypeError, KeyError) as exc:
            message = exc.message if isinstance(exc, FormatError) else str(exc)
            raise ValueError(message) from exc
        if content_digest is None:
            return None
        missing = index.missing(certificates, crls, signer.unsigned_attrs)
        if missing:
            problems.extend(f"archive time-stamp: {m}" for m in missing)
            return b""
        import hashlib

        message = ats.imprint_input(econtent_type, content_digest(hash_name), signer.signed_fields(), index.encoded)
        return hashlib.new(hash_name, message).digest()

    return imprint
