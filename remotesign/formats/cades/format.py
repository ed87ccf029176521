"""CAdES behind the format interface (EN 319 122-1 baseline B, T, LT, LTA; .p7s detached, .p7m
attached).

Signing is two steps: ``data_to_sign`` streams the document once for its digest and returns the
digest of the DER signed attributes (pyHanko builds them); ``sign`` lets pyHanko's
``ExternalSigner`` package the SignerInfo with the signature value and writes the ContentInfo,
streaming an attached document into it with definite lengths (never the whole content in
memory). ``extend`` works on any CMS signature, whoever made it (:mod:`extend`), copying the
content and every signed octet as they are.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from asn1crypto import cms

from remotesign.formats.base import FormatError
from remotesign.formats.cades import attributes
from remotesign.formats.cades import extend as extension
from remotesign.formats.cades.layout import OID_SIGNED_DATA, EncapSource, SignedDataLayout, copy
from remotesign.formats.interface import (DataToSign, Document, ExtensionContext, Level, Packaging,
                                          SignatureFormat, SignParameters)

_CHUNK = 1 << 20
_SUPPORTED_DIGESTS = ("sha256", "sha384", "sha512")


def _one(documents: Sequence[Document]) -> Document:
    if len(documents) != 1:
        raise FormatError("one_document_per_signature", "a CAdES signature signs exactly one document")
    return documents[0]


def digests(chunks: Iterable[bytes], names: Iterable[str]) -> dict[str, bytes]:
    """Several digests of one stream, read once."""
    hashers = {name: hashlib.new(name) for name in dict.fromkeys(names)}
    for chunk in chunks:
        for hasher in hashers.values():
            hasher.update(chunk)
    return {name: h.digest() for name, h in hashers.items()}


def document_chunks(document: Document) -> Iterable[bytes]:
    with document.content() as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


def document_digest(document: Document, hash_name: str) -> bytes:
    if hash_name == "sha256" and document.sha256 is not None:
        return document.sha256
    return digests(document_chunks(document), [hash_name])[hash_name]


MALFORMED = (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError)


def read_layout(source: BinaryIO) -> SignedDataLayout:
    try:
        return SignedDataLayout.read(source)
    except FormatError:
        raise
    except MALFORMED as exc:
        raise FormatError("invalid_cms", f"not a readable CMS signature: {exc}") from exc


def _message_digests(layout: SignedDataLayout) -> list[tuple[str, bytes]]:
    """(digest algorithm, message-digest value) of each signer that has signed attributes."""
    out = []
    for signer in layout.signer_infos:
        try:
            info = signer.parsed()
            algorithm = info["digest_algorithm"]["algorithm"].native
            for attr in info["signed_attrs"] or ():
                if attr["type"].native == "message_digest":
                    out.append((algorithm, attr["values"][0].native))
        except (ValueError, TypeError, KeyError, IndexError):
            continue
    return out


def content_digest(layout: SignedDataLayout, detached: Sequence[Document],
                   hash_name: str) -> extension.ContentDigest | None:
    """The digest of the signed content for an archive time-stamp: the encapsulated content, or
    the detached document whose digest the signature's message-digest attribute names."""
    claimed = _message_digests(layout)
    needed = [hash_name, *(a for a, _ in claimed if a in hashlib.algorithms_available)]
    if layout.attached:
        found = digests(layout.content_chunks(), needed)
    elif not detached:
        return None
    else:
        found = {}
        for document in detached:
            candidate = digests(document_chunks(document), needed)
            if not claimed or any(candidate.get(a) == v for a, v in claimed):
                found = candidate
                break
        if not found:
            raise FormatError("detached_content_mismatch",
                              "none of the documents supplied is the content this signature signs")
    return lambda name: found[name] if name in found else digests(layout.content_chunks(), [name])[name]


def looks_like_signed_data(head: bytes) -> bool:
    """ContentInfo SEQUENCE (DER or BER) whose first field is the signed-data OID."""
    try:
        if head[:1] != b"\x30" or len(head) < 2:
            return False
        i = 2
        if head[1] & 0x80 and head[1] != 0x80:
            i += head[1] & 0x7F
        return head[i:i + len(OID_SIGNED_DATA)] == OID_SIGNED_DATA
    except (IndexError, TypeError):
        return False


class CadesFormat(SignatureFormat):
    name = "cades"

    def recognizes(self, source: BinaryIO) -> bool:
        try:
            source.seek(0)
            return looks_like_signed_data(source.read(32))
        except (OSError, ValueError):
            return False

    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        document = _one(documents)
        if parameters.packaging not in (Packaging.DETACHED, Packaging.ENVELOPING):
            raise FormatError("packaging_unsupported", "CAdES signatures are detached or enveloping (attached)")
        if parameters.packaging is Packaging.ENVELOPING and document.open is None:
            raise FormatError("content_required", f"{document.name} is known only by its digest: it cannot be "
                              "enveloped")
        hash_name = parameters.signer.digest_algorithm
        if hash_name not in _SUPPORTED_DIGESTS:
            raise FormatError("unsupported_digest", f"digest algorithm {hash_name!r} is not supported")
        signed_attrs = await attributes.signed_attributes(parameters, document_digest(document, hash_name))
        return DataToSign(hashlib.new(hash_name, signed_attrs).digest(),
                          {"signed_attrs": signed_attrs.hex(), "packaging": parameters.packaging.value})

    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        document = _one(documents)
        signer = parameters.signer
        signed_attrs = cms.CMSAttributes.load(bytes.fromhex(str(prepared.state["signed_attrs"])))
        packaged = await attributes.external_signer(signer, signature_value).async_sign_prescribed_attributes(
            signer.digest_algorithm, signed_attrs=signed_attrs)
        layout = SignedDataLayout.read(io.BytesIO(packaged.dump()))
        if prepared.state.get("packaging") != Packaging.ENVELOPING.value:
            layout.write(output)
            return
        expected = next((v for a in signed_attrs if a["type"].native == "message_digest" for v in a["values"].native),
                        None)
        hasher = hashlib.new(signer.digest_algorithm)
        with document.content() as content:
            length = content.seek(0, 2)
            content.seek(0)
            layout.write(output, EncapSource.attached(content, length, hasher.update))
        if hasher.digest() != expected:
            output.seek(0)
            output.truncate()
            raise FormatError("document_changed", f"{document.name} changed between the two signing steps")

    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        layout = read_layout(source)
        try:
            digest = content_digest(layout, detached, context.digest_algorithm) if level == Level.LTA else None
            changed = await extension.extend_layout(layout, level, context, digest)
        except MALFORMED as exc:  # asn1crypto reading a field of a well-framed but malformed signature
            raise FormatError("invalid_cms", f"the CMS signature cannot be read: {exc}") from exc
        if changed:
            layout.write(output)
        else:
            copy(source, output)

    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        """An archive time-stamp on every signer (with T and LT first where they are missing)."""
        await self.extend(source, output, Level.LTA, context, detached)

    def signature_levels(self, source: BinaryIO) -> list[Level]:
        try:
            return extension.levels(read_layout(source))
        except (FormatError, *MALFORMED):
            return []


__all__ = ["CadesFormat"]
