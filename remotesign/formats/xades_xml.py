"""Standalone XML signatures (XAdES, EN 319 132-1 baseline B, T, LT, LTA) behind the format
interface, name ``"xades"``.

Signing (two steps) creates XAdES-B-B in the three XMLDSig packagings (``xades.standalone``):
enveloped in the signed XML document, enveloping the content in ds:Object elements, or
detached, referencing the documents by name. ``SignParameters.xml`` chooses the SignedInfo and
SignedProperties canonicalization (the C14N family: inclusive 1.0 / 1.1 and exclusive, with or
without comments), extra transforms, and for enveloped signatures the signed element
(``reference_uri``) and where the signature goes (``xpath``); ``claimed_roles`` become a
SignerRoleV2 and ``policy`` a SignaturePolicyIdentifier (B-EPES).

Extension raises EVERY signature of the document (``xades.document.top_level_signatures``),
whoever made it: T adds a signature time-stamp where missing, LT the certificates and revocation
data of the signer and of every time-stamp's TSA (``ExtensionContext.validation_data``), LTA an
archive time-stamp whose input is processed by the same reference processor the validator uses
(detached content comes from the ``detached`` documents, matched by name); an LTA input gets a
new archive time-stamp that renews it. Before a signature is extended it is checked (references
and signature value), and no step may break another signature of the document. Plain XMLDSig
(no QualifyingProperties) cannot become XAdES: FormatError ``not_xades``. Untrusted XML is read
only through the hardened parser (no DTD, no entities, no network, size-capped)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import BinaryIO

from asn1crypto import cms, x509
from lxml import etree

from remotesign.formats.base import FormatError, Limits, ValidationData
from remotesign.formats.cms_material import signed_data_material
from remotesign.formats.interface import (DataToSign, Document, ExtensionContext, Level, Packaging, SignatureFormat,
                                          SignParameters, timestamp_function)
from remotesign.formats.xades.archive import archive_signature
from remotesign.formats.xades.build import PropertyOptions
from remotesign.formats.xades.document import (all_signatures, check_still_intact, intact_references,
                                               signature_by_id, timestamp_tokens, top_level_signatures,
                                               verify_signature)
from remotesign.formats.xades.ltdata import incorporate
from remotesign.formats.xades.reading import level_of
from remotesign.formats.xades.references import ContentOpener, Resolver
from remotesign.formats.xades.signature_value import embed_value
from remotesign.formats.xades.signed_properties import PolicyId
from remotesign.formats.xades.standalone import (Content, XmlChoices, prepare_detached,
                                                 prepare_enveloped, prepare_enveloping)
from remotesign.formats.xades.timestamps import timestamp_signature
from remotesign.formats.xades.unsigned import Ids, check_writable
from remotesign.formats.xades.uris import uri_to_name
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, parse_xml, serialize

_SNIFF = 4096
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def looks_like_xml(head: bytes) -> bool:
    """Whether the first bytes of a file are those of an XML document (not a PDF, ZIP or DER):
    optional BOM and whitespace, then a declaration, comment, PI or start tag."""
    if head.startswith((b"%PDF", b"PK\x03\x04", b"PK\x05\x06")):
        return False
    text = None
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            text = head[len(bom):].decode(encoding, "ignore")
            break
    if text is None:
        if head[:2] in (b"<\x00", b"\x00<"):  # UTF-16 without BOM
            text = head.decode("utf-16-le" if head[0] == 0x3C else "utf-16-be", "ignore")
        else:
            text = head.decode("utf-8", "ignore")
    text = text.lstrip(" \t\r\n")
    if not text.startswith("<") or len(text) < 2:
        return False
    second = text[1]
    return second in "?!" or second.isalpha() or second in "_:"


def _resolver(documents: Sequence[Document]) -> Resolver:
    """Detached references resolved to the supplied documents: by decoded name, else by the
    last path segment when exactly one document has it (a signature made elsewhere may
    reference ``../data/file.pdf`` or a full URL)."""
    by_name = {d.name: d for d in documents}
    by_base: dict[str, list[Document]] = {}
    for doc in documents:
        by_base.setdefault(PurePosixPath(doc.name).name, []).append(doc)

    def resolve(uri: str) -> ContentOpener | None:
        try:
            name = uri_to_name(uri) or uri
        except FormatError:
            name = uri.split("?", 1)[0].split("#", 1)[0]
        doc = by_name.get(name)
        if doc is None:
            candidates = by_base.get(PurePosixPath(name).name, [])
            doc = candidates[0] if len(candidates) == 1 else None
        return None if doc is None else doc.open
    return resolve


def _write(output: BinaryIO, data: bytes) -> None:
    output.seek(0)
    output.truncate()
    output.write(data)
    output.flush()


def _policy(parameters: SignParameters) -> PolicyId | None:
    policy = parameters.policy
    if policy is None:
        return None
    return PolicyId(identifier=policy.identifier, digest_algorithm=policy.digest_algorithm, digest=policy.digest,
                    description=policy.description, uri=policy.uri)


class XadesXmlFormat(SignatureFormat):
    name = "xades"

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    # -- sniffing and reading -----------------------------------------------------------------------
    def recognizes(self, source: BinaryIO) -> bool:
        try:
            source.seek(0)
            return looks_like_xml(source.read(_SNIFF))
        except Exception:  # noqa: BLE001 - garbage (or an unreadable stream) is simply not XML
            return False

    def _parse(self, source: BinaryIO) -> tuple[bytes, etree._ElementTree]:
        limit = self.limits.max_xml_bytes
        try:
            source.seek(0)
            data = source.read(limit + 1)
        except (OSError, ValueError) as exc:
            raise FormatError("invalid_xml", f"the document cannot be read: {exc}") from None
        if len(data) > limit:
            raise FormatError("document_too_large", f"the XML document is larger than {limit} bytes")
        return data, parse_xml(data, limit)

    def signature_levels(self, source: BinaryIO) -> list[Level]:
        try:
            _data, tree = self._parse(source)
            return [Level[level_of(sig)] for sig in top_level_signatures(tree)]
        except (FormatError, KeyError, ValueError):
            return []

    # -- signing --------------------------------------------------------------------------------------
    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        if parameters.container is not None:
            raise FormatError("unsupported_container", "XAdES signatures in ASiC containers are the ASiC formats' job")
        xml = parameters.xml
        choices = XmlChoices.of(xml.signed_info_c14n, xml.signed_properties_c14n, xml.transforms, xml.xpath,
                                xml.reference_uri, plain=xml.plain, default_namespace=xml.default_namespace,
                                signature_id=xml.signature_id, signing_time_format=xml.signing_time_format,
                                signing_time_zone=xml.signing_time_zone,
                                more_reference_uris=xml.more_reference_uris, xpath_filter_id=xml.xpath_filter_id)
        if (xml.plain or xml.signing_time_format) and parameters.packaging is not Packaging.ENVELOPED:
            raise FormatError("invalid_argument", "plain XMLDSig and a signing-time object are made enveloped only")
        properties = PropertyOptions(signing_time=parameters.signing_time,
                                     claimed_roles=tuple(parameters.claimed_roles), policy=_policy(parameters))
        contents = [Content(d.name, d.mime_type, d.open, d.sha256) for d in documents]
        limit = self.limits.max_xml_bytes
        if parameters.packaging is Packaging.ENVELOPED:
            if len(contents) != 1:
                raise FormatError("one_document_per_signature", "an enveloped signature signs exactly one XML document")
            prepared = prepare_enveloped(contents[0], parameters.signer, properties, choices, limit)
        else:
            if choices.xpath is not None or choices.reference_uri is not None:
                raise FormatError("invalid_argument", "xpath and reference_uri apply to enveloped signatures only")
            if parameters.packaging is Packaging.ENVELOPING:
                prepared = prepare_enveloping(contents, parameters.signer, properties, choices, limit)
            else:
                prepared = prepare_detached(contents, parameters.signer, properties, choices)
        _write(scratch, prepared.xml)
        return DataToSign(prepared.digest, {"signature_id": prepared.signature_id,
                                            "xml_sha256": hashlib.sha256(prepared.xml).hexdigest(),
                                            "packaging": parameters.packaging.value})

    def _embed(self, prepared: DataToSign, signature_value: bytes, scratch: BinaryIO) -> tuple[etree._ElementTree,
                                                                                             etree._Element]:
        scratch.seek(0)
        xml = scratch.read(MAX_DOCUMENT_BYTES + 1)
        if hashlib.sha256(xml).hexdigest() != prepared.state.get("xml_sha256"):
            raise FormatError("invalid_state", "the prepared signature document changed between the two steps")
        tree = parse_xml(xml, MAX_DOCUMENT_BYTES)
        sig = signature_by_id(tree, prepared.state["signature_id"])
        embed_value(sig, signature_value)
        return tree, sig

    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        tree, _sig = self._embed(prepared, signature_value, scratch)
        _write(output, serialize(tree))

    async def sign_at_level(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                            signature_value: bytes, scratch: BinaryIO, output: BinaryIO, level: Level,
                            context: ExtensionContext | None) -> None:
        """Only the new signature is raised (other signatures of the document are the ``extend``
        caller's)."""
        if level > Level.B and context is None:
            raise FormatError("timestamp_required", f"level {level.name} needs a time-stamping authority")
        tree, sig = self._embed(prepared, signature_value, scratch)
        if context is not None and level > Level.B:
            detached = documents if parameters.packaging is Packaging.DETACHED else ()
            await self._raise(tree, [sig], level, context, _resolver(detached))
        _write(output, serialize(tree))

    # -- extension ------------------------------------------------------------------------------------
    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        data, tree = self._parse(source)
        signatures = top_level_signatures(tree)
        if not signatures:
            raise FormatError("not_signed", "the XML document holds no signature to extend")
        for sig in signatures:
            check_writable(sig)  # all or nothing: a plain XMLDSig signature stops the whole extension
        if level == Level.B:
            _write(output, data)
            return
        await self._raise(tree, signatures, level, context, _resolver(detached))
        _write(output, serialize(tree))

    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        """An archive time-stamp on every signature that is at LT or above (B-LT -> B-LTA, or an
        LTA renewal); signatures below LT are left as they are (they need ``extend``)."""
        _data, tree = self._parse(source)
        signatures = [s for s in top_level_signatures(tree) if Level[level_of(s)] >= Level.LT]
        if not signatures:
            raise FormatError("not_long_term", "no signature of the document is at LT; extend it to LT first")
        await self._raise(tree, signatures, Level.LTA, context, _resolver(detached))
        _write(output, serialize(tree))

    async def _raise(self, tree: etree._ElementTree, signatures: list[etree._Element], level: Level,
                     context: ExtensionContext, resolve: Resolver) -> None:
        """Each of ``signatures`` to ``level`` (each step only where the signature is below it;
        LTA always adds an archive time-stamp), in place."""
        stamper = timestamp_function(context.timestamper)
        hash_name = context.digest_algorithm
        # Another signature of the document may sign (part of) these; a lone signature cannot.
        before = intact_references(tree) if len(all_signatures(tree)) > 1 else {}
        tsa_data: ValidationData | None = None
        for sig in signatures:
            check_writable(sig)
            signer, others = verify_signature(sig, resolve, require_detached=level >= Level.LTA)
            if level >= Level.T and Level[level_of(sig)] < Level.T:
                await timestamp_signature(sig, stamper, hash_name)
            if level >= Level.LT:
                incorporate(sig, await self._material(sig, signer, others, context), Ids(sig))
            if level >= Level.LTA:
                if tsa_data is None:
                    probe = await context.timestamper.async_dummy_response(hash_name)
                    tsa_data = await signed_data_material(probe["content"], context, with_timestamps=False)
                await archive_signature(sig, resolve, stamper, tsa_data, hash_name)
            check_still_intact(before, f"extending the signature {sig.get('Id') or '(without Id)'}")

    @staticmethod
    async def _material(sig: etree._Element, signer: x509.Certificate, others: list[x509.Certificate],
                        context: ExtensionContext) -> ValidationData:
        """Certificates and revocation data of the signer and of every time-stamp's TSA."""
        data = await context.validation_data(signer, others)
        for token in timestamp_tokens(sig):
            try:
                signed_data = cms.ContentInfo.load(token)["content"]
                signed_data["signer_infos"]  # noqa: B018 - a token that cannot be read fails here
            except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on garbage
                raise FormatError("invalid_timestamp", f"a time-stamp token cannot be read: {exc}") from None
            data = data.merged(await signed_data_material(signed_data, context, with_timestamps=False))
        return data


__all__ = ["XadesXmlFormat", "looks_like_xml"]
