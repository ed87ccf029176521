"""PAdES behind the format interface (EN 319 142-1 baseline B, T, LT, LTA).

Signing is the two steps of formats/pades.py. Extension works on any signed PDF, whoever made
it, in incremental updates only (earlier signatures stay intact): T adds a document time-stamp
when some signature has no time-stamp yet (EN 319 142-1 §5.4 allows either kind); LT one DSS
revision with the certificates and revocation data of every signature and time-stamp; LTA the
DSS data of the new time-stamp's TSA and a document time-stamp. An LTA input thus gets renewed.
All steps append to the output file in place: the document is copied once and never read into
memory.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime, timezone
from collections.abc import Sequence
from typing import Any, BinaryIO

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext

from remotesign.formats import pades
from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.cms_material import signed_data_material
from remotesign.formats.interface import (DataToSign, Document, ExtensionContext, Level, SignatureFormat,
                                          SignParameters)
from remotesign.formats.stamps import add_stamp_field

_PDF_ERRORS = (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError)


def _one(documents: Sequence[Document]) -> Document:
    if len(documents) != 1:
        raise FormatError("one_pdf_per_signature", "a PAdES signature signs exactly one PDF")
    return documents[0]


def _copy(source: BinaryIO, output: BinaryIO) -> None:
    source.seek(0)
    output.seek(0)
    output.truncate()
    shutil.copyfileobj(source, output, 1 << 20)
    output.flush()


def _signatures(document: BinaryIO) -> list[EmbeddedPdfSignature]:
    try:
        return list(pades._reader(document).embedded_signatures)
    except _PDF_ERRORS as exc:
        raise FormatError("invalid_pdf", f"the PDF cannot be read: {exc}") from exc


def _is_doc_timestamp(sig: EmbeddedPdfSignature) -> bool:
    return str(sig.sig_object.get("/Type", "")) == "/DocTimeStamp"


def _has_signature_timestamp(sig: EmbeddedPdfSignature) -> bool:
    attrs = sig.signer_info["unsigned_attrs"]
    return bool(attrs) and any(a["type"].native == "signature_time_stamp_token" for a in attrs)


def _levels(signatures: list[EmbeddedPdfSignature], has_dss: bool) -> list[Level]:
    """Structural level of each signature (document time-stamps are not listed): T needs a
    signature time-stamp or a later document time-stamp, LT a DSS, LTA one more document
    time-stamp than T used up."""
    levels = []
    for i, sig in enumerate(signatures):
        if _is_doc_timestamp(sig):
            continue
        later = sum(1 for s in signatures[i + 1:] if _is_doc_timestamp(s))
        archival = later - (0 if _has_signature_timestamp(sig) else 1)
        if archival < 0:
            levels.append(Level.B)
        elif not has_dss:
            levels.append(Level.T)
        else:
            levels.append(Level.LTA if archival >= 1 else Level.LT)
    return levels


def _context(trust_roots: tuple[bytes, ...], data: ValidationData) -> ValidationContext:
    return pades.validation_context(list(trust_roots), data)


class PadesFormat(SignatureFormat):
    name = "pades"

    def recognizes(self, source: BinaryIO) -> bool:
        try:
            source.seek(0)
            return pades.is_pdf(source.read(1024))
        except (OSError, ValueError):
            return False

    async def data_to_sign(self, documents: Sequence[Document], parameters: SignParameters,
                           scratch: BinaryIO) -> DataToSign:
        doc = _one(documents)
        with doc.content() as src:
            if not pades.is_pdf(src.read(1024)):
                raise FormatError("not_a_pdf", f"{doc.name} is not a PDF")
            prepared = await pades.prepare(src, scratch, parameters.signer, parameters.signing_time,
                                           reason=parameters.reason, location=parameters.location,
                                           stamp=parameters.stamp, lock=parameters.lock)
        return DataToSign(prepared.digest, prepared.to_state())

    async def sign(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                   signature_value: bytes, scratch: BinaryIO, output: BinaryIO) -> None:
        await self.sign_at_level(documents, parameters, prepared, signature_value, scratch, output, Level.B, None)

    async def sign_at_level(self, documents: Sequence[Document], parameters: SignParameters, prepared: DataToSign,
                            signature_value: bytes, scratch: BinaryIO, output: BinaryIO, level: Level,
                            context: ExtensionContext | None) -> bytes | None:
        """B-T puts the signature time-stamp into the new CMS itself; LT then adds the DSS data of
        this signature only (earlier signatures of the document are the ``extend`` caller's).

        The prepared document is streamed once into ``output`` with the placeholder filled on the
        way (``scratch`` stays as it was, so a finalize that dies can be run again), and LT works
        from the CMS just built: its material goes into a DSS revision appended in place, so
        nothing written is read back or parsed again (the DSS revision itself excepted). Returns
        the SHA-256 of ``output``, hashed while writing (at LTA: None, the document time-stamp is
        pyHanko's)."""
        if level > Level.B and context is None:
            raise FormatError("timestamp_required", f"level {level.name} needs a time-stamping authority")
        state = pades.PreparedPades.from_state(prepared.state, prepared.digest)
        hasher = hashlib.sha256()
        sig_cms = await pades.embed_copy(scratch, output, state, parameters.signer, signature_value,
                                         context.timestamper if context is not None and level >= Level.T else None,
                                         hasher)
        if context is None or level < Level.LT:
            return hasher.digest()
        data = await signed_data_material(sig_cms["content"], context)
        pades.append_dss(output, data, hasher)
        if level >= Level.LTA:
            await self._document_timestamp(output, context)
            return None
        return hasher.digest()

    async def extend(self, source: BinaryIO, output: BinaryIO, level: Level, context: ExtensionContext,
                     detached: Sequence[Document] = ()) -> None:
        _copy(source, output)
        signatures = _signatures(output)
        if not any(not _is_doc_timestamp(s) for s in signatures):
            raise FormatError("not_signed", "the PDF holds no signature to extend")
        if level == Level.B:
            return
        regular = [i for i, s in enumerate(signatures) if not _is_doc_timestamp(s)]
        covered = all(_has_signature_timestamp(signatures[i])
                      or any(_is_doc_timestamp(s) for s in signatures[i + 1:]) for i in regular)
        if level == Level.T:
            if not covered or context.stamp is not None:
                await self._document_timestamp(output, context, with_dss=False, stamp=context.stamp)
            return
        # LT (and the start of LTA): validation data of every signature and time-stamp present;
        # a signature without any time-stamp gets one first (LT presupposes T), which also carries
        # the stamp if one is asked for.
        stamp = context.stamp
        if not covered:
            await self._document_timestamp(output, context, with_dss=False, stamp=stamp)
            stamp = None
            signatures = _signatures(output)
        data = ValidationData()
        reader = pades._reader(output)
        levels = iter(_levels(signatures, "/DSS" in reader.root))
        needed = []
        for sig in signatures:
            long_term = _is_doc_timestamp(sig) or next(levels) >= Level.LT
            try:
                data = data.merged(await signed_data_material(sig.signed_data, context))
                needed.append(sig)
            except Exception as exc:
                # a signature (or time-stamp) at LT carries its data already and validation passed
                # on it: fresh data that cannot be had (an offline CA, a path this service cannot
                # build) is not needed. A revoked certificate is always an error.
                code = getattr(exc, "code", None)
                if not (long_term and isinstance(code, str) and code != "certificate_revoked"):
                    raise
        if needed:
            await self._add_dss(output, needed, context, data)
        if level >= Level.LTA or stamp is not None:  # a stamp needs a new field: a time-stamp's
            await self._document_timestamp(output, context, stamp=stamp)

    async def timestamp(self, source: BinaryIO, output: BinaryIO, context: ExtensionContext,
                        detached: Sequence[Document] = ()) -> None:
        _copy(source, output)
        await self._document_timestamp(output, context, stamp=context.stamp)

    def signature_levels(self, source: BinaryIO) -> list[Level]:
        try:
            reader = pades._reader(source)
            signatures = list(reader.embedded_signatures)
            has_dss = "/DSS" in reader.root
        except (FormatError, *_PDF_ERRORS):
            return []
        return _levels(signatures, has_dss)

    # -- steps, each one incremental update appended to ``document`` -----------------------------

    async def _add_dss(self, document: BinaryIO, signatures: list[EmbeddedPdfSignature],
                       context: ExtensionContext, data: ValidationData) -> None:
        """One DSS revision with ``data``, the paths of ``signatures`` checked against it first
        (pyHanko refuses a path it cannot validate with the data: nothing is written then)."""
        from pyhanko.sign.validation.dss import collect_validation_info

        vc = _context(context.trust_roots, data)
        paths: list[Any] = []
        try:
            for sig in signatures:
                paths.extend(await collect_validation_info(sig, vc))
        except Exception as exc:  # noqa: BLE001 - certvalidator raises many types for a bad path
            raise FormatError("validation_data_incomplete",
                              f"the validation data does not validate every signature's path: {exc}") from exc
        writer = IncrementalPdfFileWriter(document)
        DocumentSecurityStore.supply_dss_in_writer(writer, None, paths=paths, validation_context=vc)
        writer.write_in_place()
        document.flush()

    async def _document_timestamp(self, document: BinaryIO, context: ExtensionContext, *,
                                  with_dss: bool = True, stamp: Any = None) -> None:
        """A document time-stamp; with ``with_dss`` also the DSS data of its TSA (LTA); with
        ``stamp`` its field is visible and shows the stamp (a new field in the time-stamp's own
        revision: a change earlier signatures permit)."""
        vc = None
        if with_dss:
            probe = await context.timestamper.async_dummy_response(context.digest_algorithm)
            data = await signed_data_material(probe["content"], context, with_timestamps=False)
            vc = _context(context.trust_roots, data)
        try:
            field_name = pades.next_field_name(document, "Timestamp") if stamp is not None else None
            writer = IncrementalPdfFileWriter(document)
            if stamp is not None:
                add_stamp_field(writer, stamp, field_name, datetime.now(timezone.utc))
        except _PDF_ERRORS as exc:
            raise FormatError("invalid_pdf", f"the PDF cannot be updated: {exc}") from exc
        await PdfTimeStamper(context.timestamper, field_name=field_name).async_timestamp_pdf(
            writer, context.digest_algorithm, validation_context=vc, in_place=True)
        document.flush()
