"""Step 1 of signing: build the XAdESSignatures document around an empty SignatureValue and
return the canonical SignedInfo (and its digest) for the key holder to sign.

Digests over same-document parts are computed on the document as it will be stored (serialized
and parsed back), so inherited namespaces are exactly those a verifier will see."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from remotesign.formats.base import DIGEST_SIZES, FormatError, SignerSpec
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.build import PropertyOptions, RefSpec, check_signer, signature_element
from remotesign.formats.xades.c14n import canonicalize
from remotesign.formats.xades.model import DataObjectRef, PreparedXades
from remotesign.formats.xades.uris import name_to_uri
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, b64, check_id, find_signature, parse_xml, serialize


def _check_objects(objects: Sequence[DataObjectRef]) -> None:
    if not objects:
        raise FormatError("invalid_argument", "nothing to sign: no data objects")
    seen: set[str] = set()
    for obj in objects:
        if obj.digest_algorithm not in DIGEST_SIZES:
            raise FormatError("unsupported_algorithm", f"digest algorithm {obj.digest_algorithm!r} is not supported")
        if not isinstance(obj.digest, bytes) or len(obj.digest) != DIGEST_SIZES[obj.digest_algorithm]:
            raise FormatError("invalid_argument", f"digest of {obj.name!r} has the wrong length")
        if not obj.mime_type or "/" not in obj.mime_type:
            raise FormatError("invalid_argument", f"invalid MIME type {obj.mime_type!r} for {obj.name!r}")
        if obj.name in seen:
            raise FormatError("invalid_argument", f"data object {obj.name!r} listed twice")
        seen.add(obj.name)


def prepare_signature(objects: Sequence[DataObjectRef], signer: SignerSpec, signing_time: datetime, *,
                      signature_id: str | None = None, claimed_role: str | None = None,
                      production_place: dict[str, str] | None = None) -> PreparedXades:
    """Build a XAdES-B-B detached signature over ``objects`` with an empty SignatureValue."""
    _check_objects(objects)
    check_signer(signer)
    sid = check_id(signature_id) if signature_id is not None else f"id-{uuid.uuid4().hex}"
    try:
        root = _build(objects, signer, signing_time, sid, claimed_role, production_place)
    except ValueError as exc:  # lxml refuses text that XML cannot hold (control characters, ...)
        raise FormatError("invalid_argument", str(exc)) from None

    # Re-read what will be stored, then fill the digests on that exact tree.
    tree = parse_xml(serialize(etree.ElementTree(root)), MAX_DOCUMENT_BYTES)
    sig = find_signature(tree, sid)
    signed_props = next(el for el in sig.iter(c.q(c.XADES, "SignedProperties")) if el.get("Id") == f"{sid}-signedprops")
    sp_ref = next(r for r in sig.find(c.q(c.DS, "SignedInfo")).iter(c.q(c.DS, "Reference"))
                  if r.get("Type") == c.SIGNED_PROPERTIES_TYPE)
    sp_octets = canonicalize(signed_props, c.SIGNED_INFO_C14N)
    sp_ref.find(c.q(c.DS, "DigestValue")).text = b64(hashlib.new(signer.digest_algorithm, sp_octets).digest())

    signed_info = canonicalize(sig.find(c.q(c.DS, "SignedInfo")), c.SIGNED_INFO_C14N)
    return PreparedXades(
        xml=serialize(tree),
        data_to_be_signed=signed_info,
        digest=hashlib.new(signer.digest_algorithm, signed_info).digest(),
        signature_id=sid,
    )


def _build(objects: Sequence[DataObjectRef], signer: SignerSpec, signing_time: datetime, sid: str,
           claimed_role: str | None, production_place: dict[str, str] | None) -> etree._Element:
    root = etree.Element(c.q(c.ASIC, "XAdESSignatures"), nsmap={"asic": c.ASIC})
    refs = [RefSpec(id=f"{sid}-ref-{index}", uri=name_to_uri(obj.name), digest_algorithm=obj.digest_algorithm,
                    digest=obj.digest, mime_type=obj.mime_type)
            for index, obj in enumerate(objects, start=1)]
    signature_element(sid, signer, refs, PropertyOptions(signing_time, claimed_role=claimed_role,
                                                         production_place=production_place), parent=root)
    return root
