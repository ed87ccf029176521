"""B-LTA: xadesv141:ArchiveTimeStamp, computed as EN 319 132-1 §5.5.2.2 (not distributed case)
prescribes. The message imprint input is the concatenation of

1. the output of every ds:Reference of SignedInfo, in order, processed per XMLDSig §4.4.3.2
   (container files: their raw octets, streamed; same-document references: their transforms'
   output, or the node set canonicalized with the time-stamp's algorithm),
2. the canonical ds:SignedInfo, ds:SignatureValue and ds:KeyInfo,
3. every unsigned signature property before this time-stamp, canonicalized, in order,
4. every ds:Object except the one holding xades:QualifyingProperties, canonicalized.

File digests are checked while streaming, so a time-stamp is never put over the wrong file."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from lxml import etree

from remotesign.formats.base import FormatError, TimestampFn, ValidationData
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.canonical import canonicalize, is_c14n
from remotesign.formats.xades.ltdata import incorporate
from remotesign.formats.xades.reading import (ATS, CERT_VALUES, REV_VALUES, embedded_validation_data,
                                              read_signature, unsigned_children)
from remotesign.formats.xades.timestamps import check_hash_name, stamp
from remotesign.formats.xades.unsigned import Ids, append_timestamp, append_timestamp_validation_data, ensure_usp
from remotesign.formats.xades.uris import uri_to_name
from remotesign.formats.xades.xmlio import (MAX_DOCUMENT_BYTES, child, find_signature, parse_signatures,
                                            serialize, unb64)

ObjectChunks = Callable[[str], Iterable[bytes]]
# A same-document reference dereferences to a node set without comments (XMLDSig §4.4.3.3),
# so a "#WithComments" transform on it has no comments left to keep.
_NO_COMMENTS = {c.C14N_10_COMMENTS: c.C14N_10, c.C14N_11_COMMENTS: c.C14N_11, c.EXC_C14N_COMMENTS: c.EXC_C14N}


def _by_id(sig: etree._Element, ident: str) -> etree._Element:
    found = [el for el in sig.getroottree().iter() if isinstance(el.tag, str) and el.get("Id") == ident]
    if len(found) != 1:
        raise FormatError("invalid_xades", f"reference to #{ident} matches {len(found)} elements")
    return found[0]


def _reference_octets(sig: etree._Element, ref: etree._Element, c14n_algorithm: str,
                      object_chunks: ObjectChunks) -> Iterable[bytes]:
    """The reference's output (XMLDSig reference processing) as a stream of octet chunks."""
    uri = ref.get("URI")
    if uri is None:
        raise FormatError("invalid_xades", "ds:Reference without URI")
    transforms_el = ref.find(c.q(c.DS, "Transforms"))
    transforms = [] if transforms_el is None else [
        t.get("Algorithm", "") for t in transforms_el.findall(c.q(c.DS, "Transform"))]
    name = uri_to_name(uri)
    if name is None:
        if len(transforms) > 1 or (transforms and not is_c14n(transforms[0])):
            raise FormatError("unsupported_algorithm", f"transforms {transforms} on {uri} are not supported")
        algorithm = _NO_COMMENTS.get(transforms[0], transforms[0]) if transforms else c14n_algorithm
        return [canonicalize(_by_id(sig, uri[1:]), algorithm)]
    if transforms:
        raise FormatError("unsupported_algorithm", f"transforms on the data object reference {uri} are not supported")
    try:
        return object_chunks(name)
    except (LookupError, FileNotFoundError):
        raise FormatError("missing_data_object", f"data object {name!r} is not available") from None


def archive_timestamp_digest(sig: etree._Element, before: list[etree._Element], c14n_algorithm: str,
                             object_chunks: ObjectChunks, hash_name: str,
                             inclusive_prefixes: list[str] | None = None) -> bytes:
    """Message imprint of an archive time-stamp placed after the properties ``before``."""
    out = hashlib.new(hash_name)

    def c14n(el: etree._Element) -> bytes:
        return canonicalize(el, c14n_algorithm, inclusive_prefixes)

    signed_info = child(sig, c.DS, "SignedInfo")
    for ref in signed_info.findall(c.q(c.DS, "Reference")):  # step 1
        method = child(ref, c.DS, "DigestMethod").get("Algorithm", "")
        if method not in c.DIGEST_NAMES:
            raise FormatError("unsupported_algorithm", f"digest method {method!r} is not supported")
        check = hashlib.new(c.DIGEST_NAMES[method])
        try:
            for chunk in _reference_octets(sig, ref, c14n_algorithm, object_chunks):
                out.update(chunk)
                check.update(chunk)
        except (LookupError, FileNotFoundError):
            raise FormatError("missing_data_object", f"data object {ref.get('URI')!r} is not available") from None
        if check.digest() != unb64(child(ref, c.DS, "DigestValue").text, "DigestValue"):
            raise FormatError("digest_mismatch", f"reference {ref.get('URI')!r} does not match its digest")
    out.update(c14n(signed_info))  # step 2
    out.update(c14n(child(sig, c.DS, "SignatureValue")))
    key_info = child(sig, c.DS, "KeyInfo", required=False)
    if key_info is not None:
        out.update(c14n(key_info))
    for prop in before:  # step 3
        out.update(c14n(prop))
    for obj in sig.findall(c.q(c.DS, "Object")):  # step 4
        if obj.find(c.q(c.XADES, "QualifyingProperties")) is None:
            out.update(c14n(obj))
    return out.digest()


async def add_archive_timestamp(xml: bytes, object_chunks: ObjectChunks, timestamp: TimestampFn,
                                validation_data: ValidationData | None = None, hash_name: str = "sha256", *,
                                signature_id: str | None = None) -> bytes:
    """B-LT -> B-LTA (or renewal of B-LTA): validation data not yet embedded goes into a
    TimeStampValidationData first (or, on a signature with no LT values at all, into
    CertificateValues / RevocationValues), then an ArchiveTimeStamp covers everything."""
    check_hash_name(hash_name)
    tree = parse_signatures(xml, MAX_DOCUMENT_BYTES)
    sig = find_signature(tree, signature_id)
    info = read_signature(sig)
    if info.level == "B":
        raise FormatError("not_timestamped", "an archive time-stamp needs a signature time-stamp first (B-T)")
    ids = Ids(sig)
    if validation_data is not None:
        tags = {p.tag for p in unsigned_children(sig)}
        if not tags & {ATS, CERT_VALUES, REV_VALUES}:
            incorporate(sig, validation_data, ids)  # the LT step EN 319 132-1 §5.5.2.2 3a/3b asks for
        else:
            missing = validation_data.without(embedded_validation_data(sig, include_key_info=True))
            if not missing.is_empty():
                append_timestamp_validation_data(ensure_usp(sig, ids), missing, ids)
    usp = ensure_usp(sig, ids)
    digest = archive_timestamp_digest(sig, list(unsigned_children(sig)), c.TIMESTAMP_C14N, object_chunks, hash_name)
    token = await stamp(timestamp, digest, hash_name)
    append_timestamp(usp, ATS, token, c.TIMESTAMP_C14N, ids, "arctst")
    return serialize(tree)
