"""Extension of any signed document, whoever made it (EU DSS's extender): T -> LT -> LTA, and
renewal of LTA, for every signature of the document, with the time-stamping authority the caller
chose.

An extension adds this service's time-stamps and its revocation evidence to a signature: done
on a forged, altered, revoked or untrusted signature it would lend that signature a credibility
it never had. So the document is validated first (the relying party's trust anchors, the
instance's policy) and every signature must pass; anything else is refused with the reason.
Wire APIs call only :meth:`ExtensionService.extend`; the format is chosen by the registry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import shutil
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from asn1crypto import x509
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError

from remotesign.core.offload import off_loop
from remotesign.formats.base import FormatError
from remotesign.formats.interface import Document, ExtensionContext, Level
from remotesign.formats.registry import FormatRegistry
from remotesign.storage.audit import AuditLog
from remotesign.trust.revocation import PathError, TrustStore, is_self_signed
from remotesign.validation.model import DocumentResult, Indication, ValidationInputError
from remotesign.validation.options import DetachedDocument

log = logging.getLogger("remotesign.extension")


class ExtensionError(Exception):
    """Why a document was not extended; ``status`` is the HTTP status the facades answer with."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Extended:
    """What an extension produced: the format, each signature's level before and after, and the
    SHA-256 of input and output (for the audit trail and the caller's records)."""

    format: str
    levels_before: list[Level]
    levels_after: list[Level]
    input_sha256: str
    output_sha256: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tsa_failure(exc: TimestampRequestError) -> ExtensionError:
    """A TSA failure with its precise code when the client says it (trust.tsa_clients.TsaError:
    unreachable, refused, bad response, not allowed, unknown credential), else ``tsa_failed``."""
    code, status = getattr(exc, "code", None), getattr(exc, "status", None)
    if isinstance(code, str) and isinstance(status, int):
        return ExtensionError(code, str(getattr(exc, "message", exc)), status)
    return ExtensionError("tsa_failed", f"the time-stamping authority failed: {exc}", 502)


def reported_level(signature_format: str) -> Level | None:
    """``PAdES_BASELINE_LT`` -> LT (also PKCS7_LTA, XAdES_BASELINE_T, ...); None for the
    pre-baseline names (XAdES_A, CAdES_C, PAdES_BES), which say nothing comparable."""
    match = re.search(r"_(B|T|LT|LTA)$", signature_format)
    return Level[match.group(1)] if match else None


def refusal(result: DocumentResult) -> str | None:
    """The reason not to extend ``result``'s document, or None when every signature passed."""
    for sig in result.signatures:
        if sig.indication is not Indication.TOTAL_PASSED:
            sub = f"/{sig.sub_indication.value}" if sig.sub_indication else ""
            reason = "; ".join(sig.errors[:3]) or "it did not pass validation"
            return f"signature {sig.id} is {sig.indication.value}{sub}: {reason}"
    return None


class ExtensionService:
    def __init__(self, registry: FormatRegistry, validation: Any, revocation: Any, default_timestamper: TimeStamper,
                 audit: AuditLog) -> None:
        self.registry = registry
        self.validation = validation
        self.revocation = revocation
        self.default_timestamper = default_timestamper
        self.audit = audit

    async def extend_bytes(self, tenant_id: str, data: bytes, name: str, level: Level,
                           **options: Any) -> tuple[bytes, Extended]:
        """:meth:`extend` for a document that arrived whole (a JSON API's Base64): scratch files
        on the blob volume, removed afterwards."""
        with self.validation.temporary_dir() as tmp:
            source, output = Path(tmp) / "input", Path(tmp) / "output"
            source.write_bytes(data)
            extended = await self.extend(tenant_id, source, name, level, output, **options)
            return output.read_bytes(), extended

    async def timestamp_value(self, tenant_id: str, value: bytes, *, timestamper: TimeStamper | None = None,
                              digest_algorithm: str = "sha256") -> bytes:
        """A time-stamp token (DER) over a bare signature value (PKCS#1 / ECDSA): the only way
        such a signature can be given a proof of existence."""
        if not value or len(value) > 16384:
            raise ExtensionError("invalid_signature_value", "a signature value is 1 to 16384 bytes")
        stamper = timestamper or self.default_timestamper
        try:
            token = await stamper.async_timestamp(hashlib.new(digest_algorithm, value).digest(), digest_algorithm)
        except TimestampRequestError as exc:
            raise tsa_failure(exc) from exc
        der: bytes = token.dump()
        self.audit.append("signature.timestamped", actor="extension", tenant_id=tenant_id, subject="signature value",
                          details={"value_sha256": hashlib.sha256(value).hexdigest(),
                                   "token_sha256": hashlib.sha256(der).hexdigest()})
        return der

    async def extend(self, tenant_id: str, source: Path, name: str, level: Level, output: Path, *,
                     timestamper: TimeStamper | None = None, detached: Sequence[Path] = (),
                     accepted_formats: Collection[str] | None = None, digest_algorithm: str = "sha256",
                     stamp: Any = None) -> Extended:
        """Validate ``source``, then write it extended to ``level`` to ``output``. ``detached``
        are the signed files of a detached signature (by their names); ``accepted_formats``
        makes a document of another format a clear error (the caller asked for e.g. PAdES);
        new time-stamps use ``digest_algorithm``; ``stamp`` (a formats.stamps.StampSpec) makes the
        new time-stamp visible on the page (PAdES)."""
        if level == Level.B:
            raise ExtensionError("invalid_level", "a signature can only be extended to T, LT or LTA")
        with open(source, "rb") as fh:
            try:
                fmt = self.registry.detect(fh)
            except FormatError as exc:
                raise ExtensionError(exc.code, exc.message) from exc
        if accepted_formats is not None and fmt.name not in accepted_formats:
            raise ExtensionError("format_mismatch",
                                 f"the document is {fmt.name}, not {' or '.join(sorted(accepted_formats))}")
        await self._check_signatures(tenant_id, source, name, detached)
        options = self.validation.options(tenant_id)
        context = dataclasses.replace(
            self._context(options.trust_anchors, timestamper or self.default_timestamper, digest_algorithm), stamp=stamp)
        documents = [Document(name=p.name, mime_type="application/octet-stream", open=lambda p=p: open(p, "rb"))
                     for p in detached]

        async def work() -> Extended:
            with open(source, "rb") as src:
                before = fmt.signature_levels(src)
            try:
                with open(source, "rb") as src, open(output, "w+b") as out:
                    await fmt.extend(src, out, level, context, documents)
            except FormatError as exc:
                raise ExtensionError(exc.code, exc.message) from exc
            except PathError as exc:
                raise ExtensionError(exc.code, f"validation data cannot be had: {exc.message}", 422) from exc
            except TimestampRequestError as exc:
                raise tsa_failure(exc) from exc
            with open(output, "rb") as out:
                after = fmt.signature_levels(out)
            return Extended(fmt.name, before, after, _sha256(source), _sha256(output))

        try:
            extended = await off_loop(work)
            await self._check_result(tenant_id, output, name, detached, level)
        except BaseException:
            output.unlink(missing_ok=True)  # nothing half-written stays behind
            raise
        self.audit.append("signature.extended", actor="extension", tenant_id=tenant_id, subject=name[:200],
                          details={"format": extended.format, "level": level.name,
                                   "before": [lv.name for lv in extended.levels_before],
                                   "after": [lv.name for lv in extended.levels_after],
                                   "input_sha256": extended.input_sha256, "output_sha256": extended.output_sha256})
        return extended

    async def check_stream(self, tenant_id: str, source: BinaryIO, name: str) -> None:
        """The validation :meth:`extend` makes first, for a document another service step is about
        to time-stamp (the SignAPI's addArchive of a document signed elsewhere)."""
        with self.validation.temporary_dir() as tmp:
            path = Path(tmp) / "document"
            with open(path, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            await self._check_signatures(tenant_id, path, name, ())

    async def _check_signatures(self, tenant_id: str, source: Path, name: str, detached: Sequence[Path]) -> None:
        options = self.validation.options(tenant_id, detached=[DetachedDocument(p.name, p) for p in detached])
        try:
            result = await self.validation.validate(source, options, filename=name)
        except ValidationInputError as exc:
            raise ExtensionError(exc.code, exc.message) from exc
        reason = refusal(result)
        if reason is not None:
            raise ExtensionError("signature_not_valid", f"not extended: {reason}", 422)

    async def _check_result(self, tenant_id: str, output: Path, name: str, detached: Sequence[Path],
                            level: Level) -> None:
        """The promise of an extension, checked on what it wrote: every signature validates, at
        the requested level or above. A signature whose validation data cannot be had (an
        offline CA of another provider) would otherwise come back silently below it."""
        options = self.validation.options(tenant_id, detached=[DetachedDocument(p.name, p) for p in detached])
        result = await self.validation.validate(output, options, filename=name)
        reason = refusal(result)
        if reason is not None:
            raise ExtensionError("extension_failed", f"the extended document does not validate: {reason}", 422)
        for sig in result.signatures:
            reached = reported_level(sig.signature_format)
            if reached is not None and reached < level:
                raise ExtensionError("extension_incomplete",
                                     f"signature {sig.id} reaches only {reached.name} ({sig.signature_format}): "
                                     "its validation data cannot be had now", 422)

    def _context(self, anchors: Sequence[x509.Certificate], timestamper: TimeStamper,
                 digest_algorithm: str) -> ExtensionContext:
        roots = [c for c in anchors if is_self_signed(c)]
        store = TrustStore(roots=roots, intermediates=[c for c in anchors if not is_self_signed(c)])
        return ExtensionContext(timestamper=timestamper, revocation=self.revocation,
                                trust_roots=tuple(c.dump() for c in roots),
                                path_of=lambda cert, extra: store.path(cert, extra=extra),
                                digest_algorithm=digest_algorithm)
