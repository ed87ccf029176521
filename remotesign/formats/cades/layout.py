"""A CMS SignedData as its parts: what extension changes (certificates, CRLs, the signer infos'
unsigned attributes) is held as encoded bytes, what it must not touch (the encapsulated content,
which may be 100 MB, and every signed field) is kept as the original octets and copied.

Reading walks the TLVs of a seekable file (:mod:`der`); writing emits a ContentInfo with
definite lengths and streams the encapsulated content from the source file, so neither step
holds the content in memory, and nothing that is signed is ever re-encoded.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from asn1crypto import cms

from remotesign.names import same_name
from remotesign.formats.cades import der
from remotesign.formats.cades.der import Reader, Tlv, invalid

OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
OID_DATA = bytes.fromhex("06092a864886f70d010701")
#: Certificates, CRLs and signer infos are read into memory; more than this is not a signature.
MAX_STRUCTURE_BYTES = 48 << 20
_COPY_CHUNK = 1 << 20


@dataclass
class SignerInfoParts:
    """One SignerInfo as its encoded fields; ``signed_attrs`` keeps its [0] tag as found."""

    version: bytes
    sid: bytes
    digest_algorithm: bytes
    signed_attrs: bytes | None
    signature_algorithm: bytes
    signature: bytes
    unsigned_attrs: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, encoded: bytes) -> "SignerInfoParts":
        fields = der.children_of(encoded)
        if len(fields) < 5:
            raise invalid("a SignerInfo has too few fields")
        version, sid, digest_algorithm, *rest = fields
        signed_attrs = None
        if rest and rest[0][:1] == b"\xa0":
            signed_attrs = rest.pop(0)
        if len(rest) < 2:
            raise invalid("a SignerInfo lacks its signature")
        signature_algorithm, signature, *tail = rest
        if signature[:1] not in (b"\x04", b"\x24"):
            raise invalid("a SignerInfo's signature is not an OCTET STRING")
        unsigned: list[bytes] = []
        if tail:
            if tail[0][:1] != b"\xa1" or len(tail) > 1:
                raise invalid("unexpected fields after a SignerInfo's signature")
            unsigned = der.children_of(tail[0])
        return cls(version, sid, digest_algorithm, signed_attrs, signature_algorithm, signature, unsigned)

    def signed_fields(self) -> bytes:
        """version, sid, digestAlgorithm, signedAttrs, signatureAlgorithm and signature as they
        are encoded: what an archive-time-stamp-v3 covers of its signer."""
        return b"".join((self.version, self.sid, self.digest_algorithm, self.signed_attrs or b"",
                         self.signature_algorithm, self.signature))

    def encode(self) -> bytes:
        unsigned = der.tlv(0xA1, *self.unsigned_attrs) if self.unsigned_attrs else b""
        return der.tlv(0x30, self.signed_fields(), unsigned)

    def parsed(self) -> cms.SignerInfo:
        """asn1crypto's view, for reading values only (never dumped back)."""
        return cms.SignerInfo.load(self.encode())

    def signature_value(self) -> bytes:
        return der.octets_of(self.signature)

    def attribute_types(self) -> list[bytes]:
        """The encoded OID of each unsigned attribute."""
        return [der.children_of(attr)[0] for attr in self.unsigned_attrs]


def oid(dotted: str) -> bytes:
    """The encoded OBJECT IDENTIFIER (tag and length included)."""
    from asn1crypto import core

    return core.ObjectIdentifier(dotted).dump()


def attribute(type_oid: str, *values: bytes) -> bytes:
    """An Attribute { type, SET OF value } from encoded values (kept as they are)."""
    return der.tlv(0x30, oid(type_oid), der.tlv(0x31, *values))


@dataclass
class SignedDataLayout:
    """A parsed ContentInfo(SignedData). ``encap`` is the encapContentInfo in the source file."""

    reader: Reader
    version: bytes
    digest_algorithms: bytes
    encap: Tlv
    econtent_type: bytes
    econtent: Tlv | None
    certificates: list[bytes]
    crls: list[bytes]
    signer_infos: list[SignerInfoParts]

    @classmethod
    def read(cls, source: BinaryIO) -> "SignedDataLayout":
        reader = Reader(source)
        if reader.size < 2:
            raise invalid("the file is empty")
        top = reader.tlv(0)
        if top.tag != b"\x30":
            raise invalid("it does not start with a SEQUENCE")
        parts = list(reader.children(top))
        if len(parts) != 2 or reader.raw(parts[0]) != OID_SIGNED_DATA or parts[1].tag != b"\xa0":
            raise invalid("the ContentInfo does not hold signed-data")
        explicit = list(reader.children(parts[1]))
        if len(explicit) != 1 or explicit[0].tag != b"\x30":
            raise invalid("the signed-data content is not a SEQUENCE")
        fields = list(reader.children(explicit[0]))
        if len(fields) < 4:
            raise invalid("SignedData has too few fields")
        version, digest_algorithms, encap, *rest = fields
        if version.tag != b"\x02" or digest_algorithms.tag != b"\x31" or encap.tag != b"\x30":
            raise invalid("SignedData fields are not in order")
        certificates: list[bytes] = []
        crls: list[bytes] = []
        budget = _Budget()
        if rest and rest[0].tag == b"\xa0":
            certificates = [reader.raw(c) for c in budget.take(reader, rest.pop(0))]
        if rest and rest[0].tag == b"\xa1":
            crls = [reader.raw(c) for c in budget.take(reader, rest.pop(0))]
        if len(rest) != 1 or rest[0].tag != b"\x31":
            raise invalid("SignerInfos missing or followed by unexpected fields")
        signer_infos = [SignerInfoParts.parse(reader.raw(s)) for s in budget.take(reader, rest[0])]
        encap_fields = list(reader.children(encap))
        if not encap_fields or encap_fields[0].tag != b"\x06" or len(encap_fields) > 2:
            raise invalid("encapContentInfo is malformed")
        econtent = None
        if len(encap_fields) == 2:
            if encap_fields[1].tag != b"\xa0":
                raise invalid("eContent is not [0] tagged")
            inner = list(reader.children(encap_fields[1]))
            if len(inner) != 1 or inner[0].tag not in (b"\x04", b"\x24"):
                raise invalid("eContent is not an OCTET STRING")
            econtent = inner[0]
        return cls(reader, reader.raw(version), reader.raw(digest_algorithms), encap,
                   reader.raw(encap_fields[0]), econtent, certificates, crls, signer_infos)

    # -- reading ----------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self.econtent is not None

    def content_chunks(self) -> Iterator[bytes]:
        """The encapsulated content's octets (what message-digest covers), streamed."""
        if self.econtent is None:
            raise invalid("the signature is detached: it holds no content")
        return self.reader.octets(self.econtent)

    def signer_certificate(self, signer: SignerInfoParts):  # type: ignore[no-untyped-def]
        """The certificate (asn1crypto) that ``signer``'s sid designates, or None."""
        from asn1crypto import x509

        sid = signer.parsed()["sid"]
        for encoded in self.certificates:
            if encoded[:1] != b"\x30":
                continue  # attribute or other certificates
            try:
                cert = x509.Certificate.load(encoded)
                if sid.name == "issuer_and_serial_number":
                    if same_name(cert.issuer, sid.chosen["issuer"]) and cert.serial_number == sid.chosen["serial_number"].native:
                        return cert
                elif cert.key_identifier == sid.chosen.native:
                    return cert
            except ValueError:
                continue
        return None

    def x509_certificates(self) -> list:  # type: ignore[type-arg]
        from asn1crypto import x509

        out = []
        for encoded in self.certificates:
            if encoded[:1] == b"\x30":
                try:
                    out.append(x509.Certificate.load(encoded))
                except ValueError:
                    continue
        return out

    # -- changing ----------------------------------------------------------------------------

    def add_certificate(self, encoded: bytes) -> bool:
        if encoded in self.certificates:
            return False
        self.certificates.append(encoded)
        return True

    def add_revocation(self, encoded: bytes) -> bool:
        """A RevocationInfoChoice (a CRL, or [1] other for OCSP) unless it is there already."""
        if encoded in self.crls:
            return False
        self.crls.append(encoded)
        return True

    # -- writing ----------------------------------------------------------------------------

    def _version(self) -> bytes:
        # RFC 5652 §5.1: a RevocationInfoChoice of type other makes the version 5. The version is
        # not covered by any signature or archive time-stamp, so raising it is safe.
        if any(c[:1] == b"\xa1" for c in self.crls) or any(c[:1] == b"\xa3" for c in self.certificates):
            return b"\x02\x01\x05"
        return self.version

    def write(self, out: BinaryIO, encap: "EncapSource | None" = None) -> None:
        """The ContentInfo, DER lengths, to ``out`` (truncated first); the encapContentInfo comes
        from ``encap`` or is copied from the source file."""
        encap = encap or EncapSource.copy_of(self)
        version = self._version()
        certs = der.tlv(0xA0, *self.certificates) if self.certificates else b""
        crls = der.tlv(0xA1, *self.crls) if self.crls else b""
        signer_infos = der.tlv(0x31, *(s.encode() for s in self.signer_infos))
        head = version + self.digest_algorithms
        tail = certs + crls + signer_infos
        sd_len = len(head) + encap.size + len(tail)
        sd_header = der.header(0x30, sd_len)
        explicit_header = der.header(0xA0, len(sd_header) + sd_len)
        ci_len = len(OID_SIGNED_DATA) + len(explicit_header) + len(sd_header) + sd_len
        out.seek(0)
        out.truncate()
        out.write(der.header(0x30, ci_len) + OID_SIGNED_DATA + explicit_header + sd_header + head)
        encap.write(out)
        out.write(tail)
        out.flush()


class _Budget:
    """Bounds the bytes read into memory from one signature."""

    def __init__(self) -> None:
        self.left = MAX_STRUCTURE_BYTES

    def take(self, reader: Reader, element: Tlv) -> list[Tlv]:
        self.left -= element.size
        if self.left < 0:
            from remotesign.formats.base import FormatError

            raise FormatError("signature_too_large", "the signature's certificates, CRLs and signer infos "
                              f"exceed {MAX_STRUCTURE_BYTES} bytes")
        return list(reader.children(element))


@dataclass
class EncapSource:
    """The encapContentInfo to write: its size and a function that writes it."""

    size: int
    write: Callable[[BinaryIO], None]

    @classmethod
    def copy_of(cls, layout: SignedDataLayout) -> "EncapSource":
        reader, tlv = layout.reader, layout.encap

        def write(out: BinaryIO) -> None:
            reader.fp.seek(tlv.start)
            left = tlv.size
            while left:
                chunk = reader.fp.read(min(_COPY_CHUNK, left))
                if not chunk:
                    raise invalid("the file shrank while it was copied")
                out.write(chunk)
                left -= len(chunk)
        return cls(tlv.size, write)

    @classmethod
    def detached(cls, content_type: bytes = OID_DATA) -> "EncapSource":
        encoded = der.tlv(0x30, content_type)
        return cls(len(encoded), lambda out: out.write(encoded))

    @classmethod
    def attached(cls, source: BinaryIO, length: int, on_chunk: Callable[[bytes], None] | None = None,
                 content_type: bytes = OID_DATA) -> "EncapSource":
        """encapContentInfo { id-data, [0] OCTET STRING } with ``length`` octets streamed from
        ``source``; ``on_chunk`` sees them (to check a digest on the way)."""
        octet_header = der.header(0x04, length)
        explicit = der.header(0xA0, len(octet_header) + length)
        body_len = len(content_type) + len(explicit) + len(octet_header) + length
        prefix = der.header(0x30, body_len) + content_type + explicit + octet_header

        def write(out: BinaryIO) -> None:
            out.write(prefix)
            left = length
            while left:
                chunk = source.read(min(_COPY_CHUNK, left))
                if not chunk:
                    from remotesign.formats.base import FormatError

                    raise FormatError("document_changed", "the document became shorter while it was signed")
                if on_chunk is not None:
                    on_chunk(chunk)
                out.write(chunk)
                left -= len(chunk)
        return cls(len(prefix) + length, write)


def copy(source: BinaryIO, output: BinaryIO) -> None:
    source.seek(0)
    output.seek(0)
    output.truncate()
    shutil.copyfileobj(source, output, _COPY_CHUNK)
    output.flush()
