"""XAdES baseline signatures (ETSI EN 319 132-1, levels B-B, B-T, B-LT, B-LTA), detached over
the files of an ASiC-E container (EN 319 162-1) and stored as ``META-INF/signatures*.xml``.

Signing is three steps, like every format here: ``prepare_signature`` (document + digest to
sign) -> ``embed_signature_value`` -> extension (``add_signature_timestamp``,
``add_validation_data``, ``add_archive_timestamp``). Each step takes and returns the whole
document as bytes; signed parts are never re-serialized differently. Store the document exactly
as returned: SignedInfo and SignedProperties use inclusive C14N, so moving the ds:Signature under
another root with other namespace declarations would invalidate it."""

from remotesign.formats.xades.archive import add_archive_timestamp, archive_timestamp_digest
from remotesign.formats.xades.views import signature_level, signature_values, timestamp_imprints
from remotesign.formats.xades.ltdata import add_validation_data
from remotesign.formats.xades.model import (DataObjectRef, PreparedXades, ReferenceInfo, SignatureValues,
                                            TimestampImprint)
from remotesign.formats.xades.prepare import prepare_signature
from remotesign.formats.xades.signature_value import embed_signature_value
from remotesign.formats.xades.timestamps import add_signature_timestamp, timestamp_tokens
from remotesign.formats.xades.uris import name_to_uri, uri_to_name
from remotesign.formats.xades.xmlio import parse_signatures, parse_xml

__all__ = [
    "DataObjectRef",
    "PreparedXades",
    "ReferenceInfo",
    "SignatureValues",
    "TimestampImprint",
    "add_archive_timestamp",
    "add_signature_timestamp",
    "add_validation_data",
    "archive_timestamp_digest",
    "embed_signature_value",
    "name_to_uri",
    "parse_signatures",
    "parse_xml",
    "prepare_signature",
    "signature_level",
    "signature_values",
    "timestamp_imprints",
    "timestamp_tokens",
    "uri_to_name",
]
