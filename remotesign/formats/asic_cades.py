"""ASiC containers with CAdES signatures (EN 319 162-1) behind the format interface.

``asic-s``: one data object and META-INF/signature.p7s, a CAdES signature detached over it.
``asic-e-cades``: data objects, META-INF/ASiCManifest.xml listing them with their digests, and
META-INF/signature.p7s, a CAdES signature detached over that manifest (the XAdES flavour of
ASiC-E is the separate ``asic-e`` format).

Signing makes a new container from the documents (two steps, through :class:`CadesFormat`).
Extension raises every CAdES signature of a container to T, LT or LTA with :mod:`cades.extend`,
the data object (ASiC-S) or the manifest (ASiC-E) being the detached content its archive
time-stamp covers, and rewrites the container once: data files are copied compressed as they
are, only signature files change. Reading uses the ASiC reader and its zip-bomb and entry limits.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, BinaryIO

from remotesign.formats import asic
from remotesign.formats.asic import asic_manifest, asics
from remotesign.formats.asic.names import META_INF, guess_mime_type
from remotesign.formats.base import FormatError, Limits
from remotesign.formats.cades import extend as extension
from remotesign.formats.cades.format import MALFORMED, CadesFormat, content_digest, document_digest, read_layout
from remotesign.formats.cades.layout import copy
from remotesign.formats.interface import (DataToSign, Document, ExtensionContext, Level, Packaging,
                                          SignatureFormat, SignParameters)

_CHUNK = 1 << 20
_ZIP64_FROM = (1 << 31) - (1 << 20)
MANIFEST_NAME = "META-INF/ASiCManifest.xml"
SIGNATURE_NAME = "META-INF/signature.p7s"
CADES = CadesFormat()


class _Borrowed:
    """The caller's file for :class:`AsicContainer`, which closes what it opens: closing this
    leaves the caller's file open."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


def _entry_document(container: asic.AsicContainer, entry: asic.Entry) -> Document:
    return Document(name=entry.name, mime_type=entry.mime_type,
                    open=lambda: container.open_entry(entry.name))


def _bytes_document(name: str, data: bytes, mime_type: str = "text/xml") -> Document:
    return Document(name=name, mime_type=mime_type, open=lambda: io.BytesIO(data))


def _chunks(document: Document) -> Iterator[bytes]:
    with document.content() as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _size(document: Document) -> int:
    with document.content() as fh:
        return int(fh.seek(0, 2))


def _detached(parameters: SignParameters) -> SignParameters:
    return replace(parameters, packaging=Packaging.DETACHED)


async def _extended_signature(signature: bytes, level: Level, context: ExtensionContext,
                              content: Document) -> bytes | None:
    """``signature`` (a detached CMS over ``content``) raised to ``level``; None if unchanged."""
    layout = read_layout(io.BytesIO(signature))
    try:
        digest = content_digest(layout, [content], context.digest_algorithm) if level == Level.LTA else None
        changed = await extension.extend_layout(layout, level, context, digest)
    except MALFORMED as exc:
        raise FormatError("invalid_cms", f"the CMS signature cannot be read: {exc}") from exc
    if not changed:
        return None
    out = io.BytesIO()
    layout.write(out)
    return out.getvalue()


def _levels_of(signatures: list[bytes]) -> list[Level]:
    levels: list[Level] = []
    for signature in signatures:
        levels.extend(extension.levels(read_layout(io.BytesIO(signature))))
    return levels


class AsicSFormat(SignatureFormat):
    name = "asic-s"

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def recognizes(self, source: BinaryIO) -> bool:
        return asics.is_asic_s(source)

    def _open(self, source: BinaryIO) -> asic.AsicContainer:
        return asics.open_container(_Borrowed(source), self.limits)  # type: ignore[arg-type]

    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        if len(documents) != 1:
            raise FormatError("one_document_per_signature", "an ASiC-S container holds exactly one document")
        if documents[0].open is None:
            raise FormatError("content_required", f"{documents[0].name} is known only by its digest")
        return await CADES.data_to_sign(documents, _detached(parameters), scratch)

    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        document = documents[0]
        signature = io.BytesIO()
        await CADES.sign(documents, _detached(parameters), prepared, signature_value, scratch, signature)
        output.seek(0)
        output.truncate()
        asics.write_new(output, document.name, document.mime_type or guess_mime_type(document.name),
                        _chunks(document), signature.getvalue(), zip64=_size(document) >= _ZIP64_FROM)

    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        with self._open(source) as container:
            if asics.SIGNATURE_NAME not in container.names:
                raise FormatError("not_signed", "the ASiC-S container holds no CAdES signature (META-INF/signature.p7s)")
            signature = container.read_small(asics.SIGNATURE_NAME)
            content = _entry_document(container, container.data_objects[0])
            extended = await _extended_signature(signature, level, context, content)
            if extended is not None:
                output.seek(0)
                output.truncate()
                asics.write_replacing(container, output, {asics.SIGNATURE_NAME: extended})
                output.flush()
                return
        copy(source, output)

    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        await self.extend(source, output, Level.LTA, context, detached)

    def signature_levels(self, source: BinaryIO) -> list[Level]:
        try:
            with self._open(source) as container:
                if asics.SIGNATURE_NAME not in container.names:
                    return []
                return _levels_of([container.read_small(asics.SIGNATURE_NAME)])
        except (FormatError, *MALFORMED):
            return []


def _manifests(container: asic.AsicContainer) -> dict[str, bytes]:
    """ASiCManifest files by the signature file they name."""
    found: dict[str, bytes] = {}
    for name in container.names:
        base = name[len(META_INF):] if name.startswith(META_INF) else ""
        if name.startswith(asic_manifest.MANIFEST_PREFIX) and name.endswith(".xml") and "/" not in base:
            raw = container.read_small(name)
            target = asic_manifest.signature_reference(raw)
            if target is not None:
                found.setdefault(target, raw)
    return found


def is_cades_container(source: BinaryIO) -> bool:
    """An ASiC-E whose signatures are CAdES (META-INF/*signature*.p7s) and none XAdES."""
    import zipfile

    try:
        if not asic.is_asic_e(source):
            return False
        position = source.tell()
        try:
            source.seek(0)
            with zipfile.ZipFile(source) as zf:
                names = [n for n in zf.namelist()[:Limits().max_entries] if n.startswith(META_INF)]
        finally:
            source.seek(position)
        return any(n.endswith(".p7s") and "signature" in n for n in names) and \
            not any(n.endswith(".xml") and "signatures" in n for n in names)
    except Exception:  # noqa: BLE001 - garbage is simply not this format
        return False


class AsicECadesFormat(SignatureFormat):
    name = "asic-e-cades"

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def recognizes(self, source: BinaryIO) -> bool:
        return is_cades_container(source)

    def _open(self, source: BinaryIO) -> asic.AsicContainer:
        source.seek(0)
        return asic.AsicContainer.open(_Borrowed(source), self.limits)  # type: ignore[arg-type]

    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        if not documents:
            raise FormatError("invalid_argument", "nothing to sign: no documents")
        hash_name = parameters.signer.digest_algorithm
        entries = []
        for document in documents:
            if document.open is None:
                raise FormatError("content_required", f"{document.name} is known only by its digest")
            entries.append((document.name, document.mime_type or guess_mime_type(document.name),
                            document_digest(document, hash_name)))
        manifest = asic_manifest.build(SIGNATURE_NAME, entries, hash_name)
        prepared = await CADES.data_to_sign([_bytes_document(MANIFEST_NAME, manifest)], _detached(parameters),
                                            scratch)
        return DataToSign(prepared.digest, {**prepared.state, "manifest": base64.b64encode(manifest).decode()})

    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        manifest = base64.b64decode(str(prepared.state["manifest"]))
        signature = io.BytesIO()
        await CADES.sign([_bytes_document(MANIFEST_NAME, manifest)], _detached(parameters), prepared,
                         signature_value, scratch, signature)
        files = [(d.name, d.mime_type or guess_mime_type(d.name), _chunks(d)) for d in documents]
        output.seek(0)
        output.truncate()
        asic.write_new(output, files, {MANIFEST_NAME: manifest, SIGNATURE_NAME: signature.getvalue()},
                       zip64=any(_size(d) >= _ZIP64_FROM for d in documents))

    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        replaced: dict[str, bytes] = {}
        with self._open(source) as container:
            if not container.cades_signature_names:
                raise FormatError("not_signed", "the container holds no CAdES signature")
            manifests = _manifests(container)
            for name in container.cades_signature_names:
                manifest = manifests.get(name)
                if manifest is None:
                    raise FormatError("invalid_container", f"no ASiCManifest names the signature {name!r}")
                extended = await _extended_signature(container.read_small(name), level, context,
                                                     _bytes_document(MANIFEST_NAME, manifest))
                if extended is not None:
                    replaced[name] = extended
            if replaced:
                output.seek(0)
                output.truncate()
                asic.write_replacing(container, output, replaced)
                output.flush()
                return
        copy(source, output)

    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        await self.extend(source, output, Level.LTA, context, detached)

    def signature_levels(self, source: BinaryIO) -> list[Level]:
        try:
            with self._open(source) as container:
                return _levels_of([container.read_small(n) for n in container.cades_signature_names])
        except (FormatError, *MALFORMED):
            return []
