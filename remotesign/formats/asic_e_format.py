"""ASiC-E with XAdES (EN 319 162-1 + EN 319 132-1, the .asice / .bdoc / .edoc of the eParaksts
world) behind the format interface.

Signing: one ASiC-E document -> a parallel signature added to that container (unless a new
container is asked for with ``SignParameters.container``); any other documents -> a new container
holding them (digest-only documents are signed by digest and left out of the ZIP). Extension
takes any container, whoever made it: every XAdES signature in it is raised to the level (T: a
signature time-stamp where missing, LT: certificate and revocation values of the signer and of
every TSA, LTA: an archive time-stamp over the container's files, which renews an LTA), and the
container is rewritten once with the files copied as they are.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath
from typing import BinaryIO

from asn1crypto import cms, x509

from remotesign.formats import asic, xades
from remotesign.formats.base import FormatError, Limits, ValidationData
from remotesign.formats.cms_material import signed_data_material
from remotesign.formats.interface import (Container, DataToSign, Document, ExtensionContext, Level,
                                          SignatureFormat, SignParameters, timestamp_function)
from remotesign.formats.xades.archive import ObjectChunks
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, parse_signatures, signature_elements

EDOC_SUFFIX = ".edoc"
_CHUNK = 1 << 20


def _chunks(doc: Document) -> Iterator[bytes]:
    with doc.content() as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _sha256(doc: Document) -> bytes:
    if doc.sha256 is not None:
        return doc.sha256
    digest = hashlib.sha256()
    for chunk in _chunks(doc):
        digest.update(chunk)
    return digest.digest()


def _is_container(doc: Document) -> bool:
    if doc.open is None:
        return False
    with doc.open() as fh:
        return asic.is_asic_e(fh)


def container_name(documents: Sequence[Document]) -> str:
    """The name a new container gets: the first file's stem + .edoc (as eParaksts names them)."""
    return PurePosixPath(documents[0].name).stem + EDOC_SUFFIX


def signature_ids(xml: bytes) -> list[str | None]:
    """Ids of the ds:Signature elements of a signature file (None for the one of a single-signature
    file without Id; several signatures without Ids cannot be told apart)."""
    signatures = signature_elements(parse_signatures(xml, MAX_DOCUMENT_BYTES))
    if len(signatures) > 1 and any(s.get("Id") is None for s in signatures):
        raise FormatError("invalid_xades", "a signature file with several signatures needs an Id on each")
    return [s.get("Id") if len(signatures) > 1 else None for s in signatures]


async def xades_material(xml: bytes, context: ExtensionContext, signature_id: str | None) -> ValidationData:
    """Certificates and revocation data of the signer and of every time-stamp's TSA."""
    values = xades.signature_values(xml, signature_id=signature_id)
    if values.signer_certificate is None:
        raise FormatError("signing_certificate_missing", "the signature does not carry its signer's certificate")
    signer = x509.Certificate.load(values.signer_certificate)
    extra = [x509.Certificate.load(d) for d in values.certificates if d != values.signer_certificate]
    data = await context.validation_data(signer, extra)
    for _kind, token in xades.timestamp_tokens(xml, signature_id=signature_id):
        data = data.merged(await signed_data_material(cms.ContentInfo.load(token)["content"], context,
                                                      with_timestamps=False))
    return data


async def raise_level(xml: bytes, level: Level, context: ExtensionContext, object_chunks: ObjectChunks,
                      signature_id: str | None = None) -> bytes:
    """One XAdES signature to ``level`` (each step only when the signature is below it)."""
    stamper = timestamp_function(context.timestamper)
    current = Level[xades.signature_level(xml, signature_id=signature_id)]
    if level >= Level.T and current < Level.T:
        xml = await xades.add_signature_timestamp(xml, stamper, context.digest_algorithm, signature_id=signature_id)
    if level >= Level.LT and current < Level.LT:  # an LT signature carries its values already
        xml = xades.add_validation_data(xml, await xades_material(xml, context, signature_id),
                                        signature_id=signature_id)
    if level >= Level.LTA:
        probe = await context.timestamper.async_dummy_response(context.digest_algorithm)
        tsa = await signed_data_material(probe["content"], context, with_timestamps=False)
        xml = await xades.add_archive_timestamp(xml, object_chunks, stamper, tsa, context.digest_algorithm,
                                                signature_id=signature_id)
    return xml


class AsicEXadesFormat(SignatureFormat):
    name = "asic-e"

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def recognizes(self, source: BinaryIO) -> bool:
        try:
            return asic.is_asic_e(source)
        except Exception:  # noqa: BLE001 - garbage is simply not this format
            return False

    def _open(self, source: BinaryIO) -> asic.AsicContainer:
        source.seek(0)
        return asic.AsicContainer.open(source, self.limits)

    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        if not documents:
            raise FormatError("invalid_argument", "nothing to sign: no documents")
        parallel = (len(documents) == 1 and parameters.container is not Container.ASIC_E
                    and _is_container(documents[0]))
        if parallel:
            with documents[0].content() as fh, self._open(fh) as container:
                objects = [xades.DataObjectRef(e.name, container.digest(e.name, "sha256"), "sha256", e.mime_type)
                           for e in container.data_objects]
                signature_name = container.next_signature_name()
            if not objects:
                raise FormatError("empty_container", "the container holds no files to sign")
        else:
            objects = [xades.DataObjectRef(d.name, _sha256(d), "sha256", d.mime_type) for d in documents]
            signature_name = parameters.signature_file or "META-INF/signatures0.xml"
        prepared = xades.prepare_signature(objects, parameters.signer, parameters.signing_time)
        return DataToSign(prepared.digest, {"mode": "parallel" if parallel else "new",
                                            "signature_name": signature_name,
                                            "xml": base64.b64encode(prepared.xml).decode()})

    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        await self.sign_at_level(documents, parameters, prepared, signature_value, scratch, output, Level.B, None)

    async def sign_at_level(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                            signature_value: bytes, scratch: BinaryIO, output: BinaryIO, level: Level,
                            context: ExtensionContext | None) -> None:
        if level > Level.B and context is None:
            raise FormatError("timestamp_required", f"level {level.name} needs a time-stamping authority")
        state = prepared.state
        xml = xades.embed_signature_value(base64.b64decode(state["xml"]), signature_value)
        raising = context is not None and level > Level.B
        name = state["signature_name"]
        output.seek(0)
        output.truncate()
        if state["mode"] == "parallel":
            with documents[0].content() as fh, self._open(fh) as container:
                if raising:
                    xml = await raise_level(xml, level, context, container.stream)  # type: ignore[arg-type]
                asic.write_with_signature(container, output, name, xml)
        else:
            by_name = {d.name: d for d in documents}

            def chunks(name: str) -> Iterator[bytes]:
                if name not in by_name:
                    raise FormatError("archive_needs_content", f"{name} is not among the signed documents")
                return _chunks(by_name[name])

            if raising:
                xml = await raise_level(xml, level, context, chunks)  # type: ignore[arg-type]
            asic.write_new(output, [(d.name, d.mime_type, _chunks(d)) for d in documents if d.open is not None],
                           {name: xml})
        output.flush()

    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        with self._open(source) as container:
            names = {e.name for e in container.data_objects}
            if not container.signature_names:
                raise FormatError("not_signed", "the container holds no XAdES signature to extend")

            def chunks(name: str) -> Iterator[bytes]:
                if name not in names:
                    raise FormatError("archive_needs_content", f"{name} is not in the container")
                return container.stream(name)

            replaced: dict[str, bytes] = {}
            for signature_name in container.signature_names:
                xml = container.read_small(signature_name)
                for signature_id in signature_ids(xml):
                    xml = await raise_level(xml, level, context, chunks, signature_id)
                replaced[signature_name] = xml
            output.seek(0)
            output.truncate()
            asic.write_replacing(container, output, replaced)
            output.flush()

    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        """An archive time-stamp on every signature that is at LT or above (B-LT -> B-LTA, or an
        LTA renewal); signatures below LT are left as they are (they need ``extend``)."""
        stamper = timestamp_function(context.timestamper)
        with self._open(source) as container:
            names = {e.name for e in container.data_objects}

            def chunks(name: str) -> Iterator[bytes]:
                if name not in names:
                    raise FormatError("archive_needs_content",
                                      f"{name} is not in the container (digest-only); it cannot be archived")
                return container.stream(name)

            probe = await context.timestamper.async_dummy_response(context.digest_algorithm)
            tsa = await signed_data_material(probe["content"], context, with_timestamps=False)
            replaced: dict[str, bytes] = {}
            for signature_name in container.signature_names:
                xml = original = container.read_small(signature_name)
                for signature_id in signature_ids(xml):
                    if Level[xades.signature_level(xml, signature_id=signature_id)] >= Level.LT:
                        xml = await xades.add_archive_timestamp(xml, chunks, stamper, tsa, context.digest_algorithm,
                                                                signature_id=signature_id)
                if xml != original:
                    replaced[signature_name] = xml
            if not replaced:
                raise FormatError("not_long_term", "no signature of the container is at LT; extend it to LT first")
            output.seek(0)
            output.truncate()
            asic.write_replacing(container, output, replaced)
            output.flush()

    def signature_levels(self, source: BinaryIO) -> list[Level]:
        try:
            with self._open(source) as container:
                levels = []
                for signature_name in container.signature_names:
                    xml = container.read_small(signature_name)
                    levels.extend(Level[xades.signature_level(xml, signature_id=sid)] for sid in signature_ids(xml))
                return levels
        except (FormatError, KeyError, ValueError):
            return []
