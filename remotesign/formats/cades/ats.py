"""archive-time-stamp-v3 (ETSI EN 319 122-1 §5.5.2, §5.5.3): the ATSHashIndexV3 and the input of
the time-stamp's message imprint. Shared by the extender (which makes them) and the validator
(which recomputes them), both working on the encoded elements as they are in the file.

The imprint covers, concatenated: the encoded eContentType; the hash of the signed content (the
same octets message-digest covers, with the time-stamp's hash algorithm); the encoded version,
sid, digestAlgorithm, signedAttrs, signatureAlgorithm and signature of the SignerInfo; the
encoded ATSHashIndexV3, which lists a hash of every CertificateChoices and RevocationInfoChoice
of the SignedData and of every unsigned attribute value (type OID || value) present when the
time-stamp was made. The hash index travels as the ats-hash-index-v3 unsigned attribute of the
time-stamp token's own SignerInfo.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import algos

from remotesign.formats.cades import der

ARCHIVE_TIMESTAMP_V3 = "0.4.0.1733.2.4"
ATS_HASH_INDEX_V3 = "0.4.0.19122.1.5"
ATS_HASH_INDEX_V2 = "0.4.0.1733.2.5"
SIGNATURE_TIMESTAMP = "1.2.840.113549.1.9.16.2.14"


def attribute_value_hashes(attribute: bytes, hash_name: str) -> list[bytes]:
    """hash(type || value) of each value of one encoded Attribute."""
    type_oid, values = der.children_of(attribute)[:2]
    return [hashlib.new(hash_name, type_oid + value).digest() for value in der.children_of(values)]


def hash_index(certificates: Sequence[bytes], crls: Sequence[bytes], unsigned_attrs: Sequence[bytes],
               hash_name: str) -> bytes:
    """The DER ATSHashIndexV3 (hashIndAlgorithm omitted when it is the default SHA-256)."""
    def octets(items: Sequence[bytes]) -> bytes:
        return der.tlv(0x30, *(der.tlv(0x04, hashlib.new(hash_name, item).digest()) for item in items))

    algorithm = b"" if hash_name == "sha256" else algos.DigestAlgorithm({"algorithm": hash_name}).dump()
    attr_hashes = [h for attr in unsigned_attrs for h in attribute_value_hashes(attr, hash_name)]
    return der.tlv(0x30, algorithm, octets(certificates), octets(crls),
                   der.tlv(0x30, *(der.tlv(0x04, h) for h in attr_hashes)))


def imprint_input(econtent_type: bytes, content_digest: bytes, signed_fields: bytes, index: bytes) -> bytes:
    return econtent_type + content_digest + signed_fields + index


@dataclass(frozen=True)
class HashIndex:
    """A parsed ATSHashIndexV3: its algorithm and the three lists of hashes."""

    encoded: bytes
    hash_name: str
    certificates: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    unsigned_attr_values: tuple[bytes, ...]

    @classmethod
    def parse(cls, encoded: bytes) -> "HashIndex":
        fields = der.children_of(encoded)
        hash_name = "sha256"
        if len(fields) == 4:
            hash_name = algos.DigestAlgorithm.load(fields[0])["algorithm"].native
            fields = fields[1:]
        if len(fields) != 3:
            raise der.invalid("ATSHashIndexV3 has the wrong number of fields")
        lists = [tuple(der.octets_of(item) for item in der.children_of(f)) for f in fields]
        return cls(encoded, hash_name, lists[0], lists[1], lists[2])

    def missing(self, certificates: Sequence[bytes], crls: Sequence[bytes],
                unsigned_attrs: Sequence[bytes]) -> list[str]:
        """What the index lists that is no longer in the signature (elements may be added after
        an archive time-stamp, never removed or changed)."""
        problems = []
        present_certs = {hashlib.new(self.hash_name, c).digest() for c in certificates}
        present_crls = {hashlib.new(self.hash_name, c).digest() for c in crls}
        present_attrs = {h for attr in unsigned_attrs for h in attribute_value_hashes(attr, self.hash_name)}
        if any(h not in present_certs for h in self.certificates):
            problems.append("a certificate it covers is missing or altered")
        if any(h not in present_crls for h in self.crls):
            problems.append("revocation data it covers is missing or altered")
        if any(h not in present_attrs for h in self.unsigned_attr_values):
            problems.append("an unsigned attribute it covers is missing or altered")
        return problems
