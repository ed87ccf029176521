"""XAdES baseline signatures (ETSI EN 319 132-1, levels B-B, B-T, B-LT, B-LTA), detached over
the files of an ASiC-E container (EN 319 162-1) and stored as ``META-INF/signatures*.xml``.

Signing is three steps, like every format here: ``prepare_signature`` (document + digest to
sign) -> ``embed_signature_value`` -> extension (``add_signature_timestamp``,
``add_validation_data``, ``add_archive_timestamp``). Each step takes and returns the whole
document as bytes; signed parts are never re-serialized differently. Store the document exactly
as returned: SignedInfo and SignedProperties use inclusive C14N, so moving the ds:Signature under
another root with other namespace declarations would invalidate it.

The same machinery serves standalone XML signatures (``remotesign.formats.xades_xml``) and the
validator (``remotesign.validation.xades``); one copy of each part, used by all three:

- ``xmlio``: the hardened parser (no DTD, entities or network; size-capped) and ``serialize``;
- ``dom``: where the parts of a ds:Signature are, for every XAdES version;
- ``c14n``: canonical XML (1.0, 1.1, exclusive, with/without comments) of node-sets, budgeted;
- ``algorithms``: digest and signature method identifiers, signature value verification;
- ``references`` + ``placement``: XMLDSig reference processing with the anti-wrapping rules;
- ``reading``: embedded values, SigningCertificate and signer identification, level;
- ``build`` / ``prepare`` / ``standalone``: the signature skeleton, ASiC-E and XML signing;
- ``timestamps`` / ``ltdata`` / ``archive`` / ``unsigned``: T, LT and LTA properties;
- ``document``: signatures anywhere in an XML document (checks before extension)."""

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
