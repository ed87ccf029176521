"""Read-only views of a signature document for the validator and the API: level, values,
time-stamp tokens and their recomputed imprints."""

from __future__ import annotations

import hashlib

from remotesign.formats.base import FormatError
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.archive import ObjectChunks, archive_timestamp_digest
from remotesign.formats.xades.c14n import inclusive_namespaces
from remotesign.formats.xades.model import SignatureValues, TimestampImprint
from remotesign.formats.xades.reading import level_of, read_signature, unsigned_children
from remotesign.formats.xades.timestamps import (encapsulated_tokens, property_c14n, signature_timestamp_input,
                                                 timestamp_elements, token_imprint)
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, find_signature, parse_signatures


def signature_level(xml: bytes, *, signature_id: str | None = None) -> str:
    """'B' | 'T' | 'LT' | 'LTA' from the unsigned properties the signature holds."""
    return level_of(find_signature(parse_signatures(xml, MAX_DOCUMENT_BYTES), signature_id))


def signature_values(xml: bytes, *, signature_id: str | None = None) -> SignatureValues:
    """Decoded parts of the signature (SignedInfo octets, value, certificates, references, ...)."""
    return read_signature(find_signature(parse_signatures(xml, MAX_DOCUMENT_BYTES), signature_id), require_value=False)


def timestamp_imprints(xml: bytes, object_chunks: ObjectChunks | None = None, *,
                       signature_id: str | None = None) -> list[TimestampImprint]:
    """Every signature / archive time-stamp with its imprint and the imprint recomputed from the
    document (archive time-stamps need ``object_chunks`` for the data objects)."""
    sig = find_signature(parse_signatures(xml, MAX_DOCUMENT_BYTES), signature_id)
    props = unsigned_children(sig)
    out = []
    for kind, prop in timestamp_elements(sig):
        algorithm = property_c14n(prop)
        for token in encapsulated_tokens(prop):
            hash_name, imprint = token_imprint(token)
            if hash_name not in ("sha256", "sha384", "sha512"):
                raise FormatError("unsupported_algorithm", f"time-stamp hash {hash_name!r} is not supported")
            if kind == "signature":
                computed = hashlib.new(hash_name, signature_timestamp_input(sig, algorithm)).digest()
            else:
                if object_chunks is None:
                    raise FormatError("missing_data_object", "archive time-stamps need the data objects")
                before = props[:props.index(prop)]
                method = prop.find(c.q(c.DS, "CanonicalizationMethod"))
                computed = archive_timestamp_digest(sig, before, algorithm, object_chunks, hash_name,
                                                    inclusive_namespaces(method))
            out.append(TimestampImprint(kind, prop.get("Id"), token, hash_name, imprint, computed))
    return out
