"""PAdES (and legacy adbe.pkcs7) signature validation per ETSI EN 319 102-1, on pyHanko.

Each signature field is validated with the process its level calls for: pyHanko's LTA
validation when document time-stamps follow the signature (the chain of document time-stamps
is the evidence record), validation with time when it carries a signature time-stamp, basic
validation otherwise (pyHanko gives NO_POE or SIG_CONSTRAINTS_FAILURE when the wrong one is
used on a lower level). The DSS, the CMS-embedded data and the service's own data are fed in as
local knowledge. Document time-stamps are not signatures: they are reported as time-stamps of
the signatures they cover. Every change made after a signature is classified
(:mod:`remotesign.validation.pdf_changes`); one the signature does not permit fails it with
FORMAT_FAILURE, naming the revision, page and object — stricter than DSS's default policy, which
only warns on most of them: a document whose displayed content changed after signing does not
pass. A PDF pyHanko cannot parse is scanned for signature dictionaries so that a damaged signed
file still gets a report."""

from __future__ import annotations

import asyncio
import logging
import mmap
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from asn1crypto import cms, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import errors as pyhanko_errors
from pyhanko.sign.validation.ades import (AdESLTAValidationResult, AdESWithTimeValidationResult,
                                         ades_basic_validation, ades_lta_validation, ades_with_time_validation)
from pyhanko.sign.validation.generic_cms import message_imprint_checker
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import PdfSignatureValidationSpec, SignatureValidationSpec
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo

from remotesign.validation import cms_common as cc
from remotesign.validation.model import (Block, Conclusion, DocumentChange, DocumentResult, Indication,
                                         SignatureResult, SubIndication, TimestampKind, TimestampResult,
                                         ValidationInputError)
from remotesign.validation.pdf_level import PdfLtFacts, is_level_timestamp, lta_timestamp, pdf_lt_complete
from remotesign.validation.pdf_changes import CHECK_BYTE_RANGE, CHECK_UNANALYSABLE, ChangeReview, review_signature
from remotesign.validation.policy import Level, ValidationPolicy, record
from remotesign.validation.options import ValidationOptions

log = logging.getLogger(__name__)

MAX_SIGNATURES = 256
MAX_REVISIONS_SCANNED = 512
SIGNATURE_BUDGET_SECONDS = 300.0
_CADES_DETACHED = "/ETSI.CAdES.detached"
_PKCS7_DETACHED = "/adbe.pkcs7.detached"
_PKCS7_SHA1 = "/adbe.pkcs7.sha1"
_RFC3161 = "/ETSI.RFC3161"
_KNOWN_SUBFILTERS = (_CADES_DETACHED, _PKCS7_DETACHED, _PKCS7_SHA1, _RFC3161)


# --- entry point -----------------------------------------------------------------------------------
async def validate_pdf(path: Path, options: ValidationOptions, *, filename: str) -> DocumentResult:
    """Every signature field of the PDF at ``path``; an empty list when it has none."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ValidationInputError("invalid_document", f"The file cannot be read: {exc}.") from exc
    with handle:
        if handle.read(1) == b"\x30":
            # A DER CMS whose enveloped content is a PDF carries "%PDF-" near its start too.
            from remotesign.validation.cades import looks_like_cms, validate_cms_file
            handle.seek(0)
            if looks_like_cms(handle.read(1 << 16)):
                return await validate_cms_file(path, options, filename=filename)
        handle.seek(0)
        document = DocumentResult(filename=filename, signature_form="PAdES", validation_time=options.at)
        try:
            reader = _open_reader(handle)
            fields = _signature_fields(reader)
        except ValidationInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - pyHanko/hostile input: fall back to a raw scan
            log.info("pyHanko cannot read %s (%s); scanning for signature dictionaries", filename, exc)
            document.signatures = await _salvage(handle, options)
            if not document.signatures:
                raise ValidationInputError("invalid_document", f"The PDF cannot be read: {exc}.") from exc
            document.errors.append(f"The PDF structure is damaged and cannot be parsed: {exc}.")
            return document
        try:
            document.signatures = await _validate_fields(reader, fields, options, filename)
        except Exception as exc:  # noqa: BLE001 - per-signature failures are reported; this is the rest
            log.warning("validation of %s failed", filename, exc_info=True)
            raise ValidationInputError("invalid_document",
                                       f"The PDF's signatures cannot be processed: {exc}.") from exc
    return document


def _open_reader(handle: BinaryIO) -> PdfFileReader:
    reader = PdfFileReader(handle, strict=False)
    if reader.encrypted:
        try:
            auth = reader.decrypt("")
            ok = getattr(getattr(auth, "status", None), "name", "FAILED") != "FAILED"
        except Exception:  # noqa: BLE001
            ok = False
        if not ok:
            raise ValidationInputError("encrypted_document",
                                       "The PDF is encrypted with a password; its signatures cannot be validated.")
    return reader


@dataclass
class _Field:
    name: str
    embedded: EmbeddedPdfSignature | None
    error: str | None = None

    @property
    def is_timestamp(self) -> bool:
        return self.embedded is not None and is_document_timestamp(self.embedded)


def _signature_fields(reader: PdfFileReader) -> list[_Field]:
    """Filled signature fields in signing order; one whose CMS cannot be read (or whose SubFilter
    pyHanko does not support) keeps its error. pyHanko's own list is used when it can be built,
    so that its LTA process and this module share one object (and one digest) per signature."""
    try:
        known = list(reader.embedded_signatures)
    except Exception:  # noqa: BLE001 - one broken signature: build them one by one
        known = []
    by_name = {str(e.field_name): e for e in known}
    out: list[_Field] = []
    for name, _value, field_ref in enumerate_sig_fields(reader, filled_status=True):
        if len(out) >= MAX_SIGNATURES:
            break
        if str(name) in by_name:
            out.append(_Field(str(name), by_name[str(name)]))
            continue
        try:
            embedded = EmbeddedPdfSignature(reader, field_ref, name)
            embedded.signed_revision  # noqa: B018
            subfilter = _subfilter(embedded)
            if subfilter not in _KNOWN_SUBFILTERS:
                raise ValueError(f"the SubFilter {subfilter or '(none)'} is not a supported signature format")
            out.append(_Field(str(name), embedded))
        except Exception as exc:  # noqa: BLE001
            out.append(_Field(str(name), None, str(exc) or type(exc).__name__))
    out.sort(key=lambda f: f.embedded.signed_revision if f.embedded is not None else 1 << 30)
    return out


def is_document_timestamp(embedded: EmbeddedPdfSignature) -> bool:
    """/DocTimeStamp objects, and RFC 3161 tokens some producers file under /Type /Sig."""
    return str(embedded.sig_object_type) == "/DocTimeStamp" or _subfilter(embedded) == _RFC3161


def _subfilter(embedded: EmbeddedPdfSignature) -> str:
    return str(embedded.sig_object.get("/SubFilter", ""))


# --- document-level material -------------------------------------------------------------------------
@dataclass
class _Document:
    """What all signatures of one PDF share."""

    reader: PdfFileReader
    filename: str
    options: ValidationOptions
    timing: ValidationTimingInfo
    dss: cc.Material
    dss_present: bool
    dss_revision: int | None
    stamps: list[EmbeddedPdfSignature] = field(default_factory=list)     # document time-stamps
    stamp_spec: SignatureValidationSpec | None = None
    #: what the document time-stamps' TSAs need beyond the DSS (their certificates, fresh
    #: revocation data): the LTA process of every signature they cover walks them too
    stamp_material: cc.Material = field(default_factory=cc.Material)
    stamp_results: dict[str, TimestampResult] = field(default_factory=dict)
    backend: Any = None
    #: ``options.signature_spec()``, built once per document (trust manager, policies)
    base_spec: SignatureValidationSpec | None = None

    _dss_by_revision: dict[int, cc.Material] = field(default_factory=dict)

    def dss_through(self, revision: int | None = None) -> cc.Material:
        """The content of every DSS dictionary from the first revision that has one up to
        ``revision`` (all revisions when None): EU DSS reads the validation data of every DSS
        revision, and a later update may have dropped entries an earlier one carried."""
        out = cc.Material()
        if self.dss_revision is None:
            return out
        total = cc.safe(lambda: self.reader.xrefs.total_revisions) or 0
        last = min(total - 1 if revision is None else revision, MAX_REVISIONS_SCANNED - 1)
        for number in range(self.dss_revision, last + 1):
            if number not in self._dss_by_revision:
                self._dss_by_revision[number] = dss_material_at(self.reader, number)
            out.extend(self._dss_by_revision[number])
        if revision is None:
            out.extend(self.dss)
        return out

    def spec(self, material: cc.Material) -> SignatureValidationSpec:
        """The validation spec with ``material`` as local knowledge."""
        if self.base_spec is None:
            self.base_spec = self.options.signature_spec()
        return cc.make_spec(self.options, material, self.backend, self.base_spec)


def dss_material(reader: PdfFileReader) -> tuple[cc.Material, bool]:
    """The DSS as validation material: /Certs, /OCSPs, /CRLs and every VRI entry's /Cert,
    /OCSP, /CRL (what pyHanko's private ``_dss_to_local_knowledge`` reads, plus VRI)."""
    return dss_material_of(cc.safe(lambda: reader.root))


def dss_material_at(reader: PdfFileReader, revision: int) -> cc.Material:
    """The DSS as it was in ``revision`` (what a document time-stamp of that revision covers)."""
    root = cc.safe(lambda: reader.get_historical_resolver(revision).root)
    return dss_material_of(root)[0]


def dss_material_of(root: Any) -> tuple[cc.Material, bool]:
    """The DSS of the catalog ``root`` as validation material, and whether there is one."""
    material = cc.Material()
    try:
        dss = root.get("/DSS")
    except Exception:  # noqa: BLE001
        return material, False
    if dss is None:
        return material, False
    dss = dss.get_object() if isinstance(dss, generic.IndirectObject) else dss
    if not isinstance(dss, generic.DictionaryObject):
        return material, False
    _ingest(material, dss, "/Certs", "/OCSPs", "/CRLs")
    vri = cc.safe(lambda: dss.get("/VRI"))
    vri = vri.get_object() if isinstance(vri, generic.IndirectObject) else vri
    if isinstance(vri, generic.DictionaryObject):
        for key in list(vri.keys())[:10_000]:
            entry = cc.safe(lambda k=key: vri[k])
            if isinstance(entry, generic.DictionaryObject):
                _ingest(material, entry, "/Cert", "/OCSP", "/CRL")
    return material, True


def _ingest(material: cc.Material, container: generic.DictionaryObject, certs: str, ocsps: str, crls: str) -> None:
    from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp

    for key, loader in ((certs, lambda d: material.add_cert(x509.Certificate.load(d))),
                        (ocsps, lambda d: material.add_ocsp(asn1_ocsp.OCSPResponse.load(d))),
                        (crls, lambda d: material.add_crl(asn1_crl.CertificateList.load(d)))):
        items = cc.safe(lambda k=key: container.get(k))
        items = items.get_object() if isinstance(items, generic.IndirectObject) else items
        if not isinstance(items, generic.ArrayObject):
            continue
        for item in items:
            data = cc.safe(lambda i=item: i.get_object().data)
            if isinstance(data, bytes):
                cc.safe(lambda d=data, f=loader: f(d))


def _dss_first_revision(reader: PdfFileReader) -> int | None:
    """The first revision whose catalog has a DSS (time-stamps after it cover LT data)."""
    try:
        total = reader.xrefs.total_revisions
    except Exception:  # noqa: BLE001
        return None
    for revision in range(min(total, MAX_REVISIONS_SCANNED)):
        root = cc.safe(lambda r=revision: reader.get_historical_resolver(r).root)
        if isinstance(root, generic.DictionaryObject) and "/DSS" in root:
            return revision
    return None


async def _validate_fields(reader: PdfFileReader, fields: list[_Field], options: ValidationOptions,
                           filename: str) -> list[SignatureResult]:
    dss, present = dss_material(reader)
    doc = _Document(reader, filename, options, options.timing_info(), dss, present,
                    _dss_first_revision(reader) if present else None)
    results: list[SignatureResult] = []
    async with cc.fetching_session(options) as backend:
        doc.backend = backend
        stamps = [item.embedded for item in fields if item.is_timestamp and item.embedded is not None]
        tsa_certs = [c for ts in stamps for c in cc.sd_certificates(ts.signed_data)]
        tsa_signers = [cc.find_signer_cert(ts.signer_info, cc.sd_certificates(ts.signed_data)) for ts in stamps]
        doc.stamp_material = _merged(tsa_certs, cc.provided_material(
            options, cc.chains(tsa_signers, list(dss.certs) + tsa_certs + list(options.trust_anchors))))
        spec = doc.spec(_merged(dss, doc.stamp_material))
        doc.stamps = stamps
        doc.stamp_spec = spec
        for item in fields:
            if item.is_timestamp:
                continue
            if item.embedded is None:
                results.append(_unreadable(item.name, item.error or "unknown error"))
                continue
            results.append(await _guarded(item.name, _validate_signature(item.embedded, doc)))
    return results


async def _document_timestamp(embedded: EmbeddedPdfSignature, spec: SignatureValidationSpec,
                              timing: ValidationTimingInfo) -> TimestampResult:
    return await cc.validate_timestamp(embedded.signed_data, TimestampKind.DOCUMENT,
                                       lambda algo: embedded.compute_digest(algo), spec, timing)


def _unreadable(name: str, error: str) -> SignatureResult:
    result = SignatureResult(name, "PDF_NOT_ETSI", Indication.TOTAL_FAILED)
    message = f"The signature cannot be read: {error}."
    result.conclude(SubIndication.FORMAT_FAILURE, message)
    result.blocks[Block.FORMAT_CHECKING] = Conclusion.of(SubIndication.FORMAT_FAILURE, message)
    return result


async def _guarded(name: str, job: Any) -> SignatureResult:
    try:
        return await asyncio.wait_for(job, SIGNATURE_BUDGET_SECONDS)  # type: ignore[no-any-return]
    except asyncio.TimeoutError:
        result = SignatureResult(name, "PDF_NOT_ETSI", Indication.INDETERMINATE)
        result.conclude(SubIndication.GENERIC, "Validation of this signature took too long and was stopped.")
        return result
    except Exception as exc:  # noqa: BLE001 - hostile input must yield a report, not a crash
        log.warning("PDF signature %s could not be validated", name, exc_info=True)
        return _unreadable(name, str(exc) or type(exc).__name__)


# --- one signature ---------------------------------------------------------------------------------
async def _validate_signature(embedded: EmbeddedPdfSignature, doc: _Document) -> SignatureResult:
    options = doc.options
    signer_info = embedded.signer_info
    signed_data = embedded.signed_data
    result = SignatureResult(embedded.field_name, "PDF_NOT_ETSI", Indication.INDETERMINATE)
    _pdf_facts(result, embedded)

    cms_material = cc.signed_data_material(signed_data, signer_info)
    tst_certs = cc.timestamp_certificates(signer_info)
    pool = list(doc.dss.certs) + list(cms_material.certs) + tst_certs + list(options.trust_anchors)
    signer_cert = _identify_signer(embedded, pool)
    result.signing_certificate = signer_cert

    provided = cc.provided_material(options, cc.chains([signer_cert, *cc.tst_signers(signer_info)], pool))
    knowledge = _merged(doc.dss, cms_material, provided, tst_certs)
    spec = doc.spec(knowledge)

    covering = [ts for ts in doc.stamps if ts.signed_revision > embedded.signed_revision]

    profile = cc.cms_profile(signed_data, signer_info, signer_cert)
    level_stamps = [ts for ts in covering if is_level_timestamp(ts)]
    result.signature_format = pades_level(embedded, profile, covering=level_stamps, facts=PdfLtFacts(
        embedded, signer_cert, options.trust_anchors, doc.dss_through(), doc.dss_present, doc.dss_revision,
        level_stamps, doc.dss_through))

    digest_algorithm = cc.safe(lambda: signer_info["digest_algorithm"]["algorithm"].native)
    ades: Any = None
    if not cc.digest_supported(digest_algorithm):
        cc.unsupported_digest(result, digest_algorithm)
        result.chain = cc.best_effort_chain(signer_cert, pool) if signer_cert is not None else []
    else:
        ades = await _verify(result, embedded, doc, knowledge, cms_material, provided, profile,
                             archived=any(str(ts.sig_object_type) == "/DocTimeStamp" for ts in covering), pool=pool)
    result.timestamps = await _signature_timestamps(embedded, spec, doc.timing, proven=_signature_ts_proven(ades))
    for stamp in covering:
        result.timestamps.append(await _covering_timestamp(doc, stamp, proven=_lta_passed(ades)))
    result.best_signature_time = cc.best_signature_time(result.timestamps)
    result.ocsp_produced_at = cc.ocsp_produced_at(knowledge, result.chain)
    cc.timestamp_blocks(result)
    for stamp in result.timestamps:
        if not stamp.valid and stamp.kind in (TimestampKind.DOCUMENT, TimestampKind.CONTENT):
            check = "timestamp.document_invalid" if stamp.kind is TimestampKind.DOCUMENT else "timestamp.content_invalid"
            record(result, options.policy, check, f"A {stamp.kind.value.replace('_', ' ').lower()} did not validate: "
                   + (" ".join(stamp.conclusion.messages) or stamp.conclusion.indication.value),
                   block=Block.TIME_STAMP_VALIDATION)
    return result


async def _verify(result: SignatureResult, embedded: EmbeddedPdfSignature, doc: _Document, knowledge: cc.Material,
                  cms_material: cc.Material, provided: cc.Material, profile: cc.CmsProfile, *, archived: bool,
                  pool: list[x509.Certificate]) -> Any:
    """Integrity of the document after signing, then pyHanko's AdES process, then the checks
    pyHanko does not make (DER of the signed attributes). Returns pyHanko's result."""
    review = _review_changes(embedded)
    result.changes = review.changes
    result.signed_objects = [_signed_scope(embedded, doc)]
    result.signed_byte_ranges = _byte_ranges(embedded)
    ades = await _run_ades(embedded, doc, knowledge, cms_material, provided, profile.signature_timestamp,
                           archived, result.warnings)
    cc.apply_ades_result(result, ades, pool)
    cc.explain_crypto_refusal(result, embedded.signer_info, doc.options.policy, doc.options.at)
    crypto_failed = result.sub_indication in (SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE)
    if not crypto_failed and cc.non_der_signed_attrs(embedded.signer_info, result.signing_certificate):
        cc.mark_not_intact(result, SubIndication.HASH_FAILURE, cc.NON_DER_MESSAGE)
        crypto_failed = True
    _judge_changes(result, review, doc.options.policy, crypto_failed)
    return ades


def _judge_changes(result: SignatureResult, review: ChangeReview, policy: ValidationPolicy, crypto_failed: bool) -> None:
    """Each change at its check's policy level. A digest that does not match already failed the
    signature (HASH/SIG_CRYPTO_FAILURE), except when the byte range itself is wrong: that is a
    format error whatever the digest says."""
    failed = [c for c in review.changes if policy.level(c.check) is Level.FAIL]
    if failed and (not crypto_failed or any(c.check == CHECK_BYTE_RANGE for c in failed)):
        if crypto_failed:
            result.sub_indication = None
        lead = failed[0]
        record(result, policy, lead.check, "The document was changed after signing in a way this signature does "
                                           f"not permit. {lead.description}")
        for change in failed[1:5]:
            record(result, policy, change.check, change.description)
    for change in review.changes:
        if policy.level(change.check) in (Level.WARN, Level.INFORM):
            record(result, policy, change.check, change.description)


def _pdf_facts(result: SignatureResult, embedded: EmbeddedPdfSignature) -> None:
    facts = cc.signer_facts(embedded.signer_info)
    sig = embedded.sig_object
    result.signature_algorithm = facts.signature_algorithm
    result.commitment_types = facts.commitment_types
    result.signer_roles = facts.signer_roles
    result.policy_id = facts.policy_id
    result.production_place = dict(facts.production_place)
    result.claimed_signing_time = facts.signing_time or cc.safe(lambda: _pdf_date(sig, embedded.reader))
    reason = cc.safe(lambda: str(sig["/Reason"]).strip())
    result.signing_reason = reason or None
    location = cc.safe(lambda: str(sig["/Location"]).strip())
    if location:
        result.production_place.setdefault("city", location)


def _byte_ranges(embedded: EmbeddedPdfSignature) -> list[tuple[int, int]]:
    """The signature's /ByteRange as (first byte, length) pairs; [] when it is not a list of integers."""
    values = cc.safe(lambda: [int(v) for v in embedded.byte_range]) or []
    return [(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]


def _signed_scope(embedded: EmbeddedPdfSignature, doc: _Document) -> str:
    """What the byte range covers: the whole file, or the revision the signature was made on."""
    if embedded.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return doc.filename
    total = cc.safe(lambda: doc.reader.xrefs.total_revisions)
    revision = embedded.signed_revision + 1
    return f"{doc.filename} (revision {revision} of {total})" if total else f"{doc.filename} (revision {revision})"


def _pdf_date(sig: generic.DictionaryObject, reader: PdfFileReader) -> Any:
    return cc.aware(generic.parse_pdf_date(sig["/M"], strict=False))


def _identify_signer(embedded: EmbeddedPdfSignature, pool: list[x509.Certificate]) -> x509.Certificate | None:
    """The signer's certificate; when the CMS does not carry it but the DSS or the trust anchors
    do, it is added to the signature's certificates (which the signature value does not cover)."""
    found = cc.find_signer_cert(embedded.signer_info, cc.sd_certificates(embedded.signed_data))
    if found is not None:
        return found
    found = cc.find_signer_cert(embedded.signer_info, pool)
    if found is not None:
        embedded.signed_data = cc.with_single_signer(embedded.signed_data, embedded.signer_info, found)
        embedded.signer_info = embedded.signed_data["signer_infos"][0]
        embedded._sd_cert_info = None  # noqa: SLF001 - pyHanko caches the signer lookup
    return found


def _merged(*parts: Any) -> cc.Material:
    out = cc.Material()
    for part in parts:
        if isinstance(part, cc.Material):
            out.extend(part)
        else:
            for cert in part:
                out.add_cert(cert)
    return out


async def _signature_timestamps(embedded: EmbeddedPdfSignature, spec: SignatureValidationSpec,
                                timing: ValidationTimingInfo, *, proven: bool = False) -> list[TimestampResult]:
    """Content and signature time-stamps. ``proven``: pyHanko's validation with time (or LTA)
    already passed on the one signature time-stamp, so it is reported, not judged again."""
    out: list[TimestampResult] = []
    signer_info = embedded.signer_info
    for token in cc.timestamp_tokens(signer_info, cc.CONTENT_TIMESTAMP, signed=True):
        out.append(await cc.validate_timestamp(token, TimestampKind.CONTENT,
                                               lambda algo: embedded.compute_digest(algo), spec, timing))
    tokens = cc.timestamp_tokens(signer_info, cc.SIGNATURE_TIMESTAMP, signed=False)
    checker = message_imprint_checker(signer_info)
    for token in tokens:
        stamp = _proven_timestamp(token, TimestampKind.SIGNATURE, checker) if proven and len(tokens) == 1 else None
        out.append(stamp or await cc.validate_timestamp(token, TimestampKind.SIGNATURE, checker, spec, timing))
    return out


async def _covering_timestamp(doc: _Document, stamp: EmbeddedPdfSignature, *, proven: bool) -> TimestampResult:
    """A document time-stamp after the signature; judged once per document, or taken as passed
    when pyHanko's long-term validation of a signature it covers already went through it."""
    name = str(stamp.field_name)
    if name not in doc.stamp_results:
        found = _proven_timestamp(stamp.signed_data, TimestampKind.DOCUMENT,
                                  lambda algo: stamp.compute_digest(algo)) if proven else None
        if found is None:
            assert doc.stamp_spec is not None
            found = await _document_timestamp(stamp, doc.stamp_spec, doc.timing)
        doc.stamp_results[name] = found
    return doc.stamp_results[name]


def _proven_timestamp(token: Any, kind: TimestampKind, expected: Any) -> TimestampResult | None:
    """The report entry of a token pyHanko has validated, if its imprint is the expected one."""
    try:
        info = cc.tst_info(token)
        algorithm = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        imprint = info["message_imprint"]["hashed_message"].native
        if expected(algorithm) != imprint:
            return None
        signer = cc.find_signer_cert(token["signer_infos"][0], cc.sd_certificates(token))
    except Exception:  # noqa: BLE001 - anything odd: judge it the long way
        return None
    return TimestampResult(kind, cc.aware(info["gen_time"].native), imprint, algorithm,
                           signer.subject.human_friendly if signer is not None else None,
                           Conclusion.passed("validated within the signature's long-term validation"))


def _signature_ts_proven(ades: Any) -> bool:
    """pyHanko passed a with-time or LTA validation, which requires a valid signature time-stamp."""
    if ades is None or getattr(ades, "ades_subindic", None) != AdESPassed.OK:
        return False
    lta_ts = getattr(ades, "signature_timestamp_status", None)
    if lta_ts is not None:
        return getattr(lta_ts, "ades_subindic", None) == AdESPassed.OK
    return isinstance(ades, AdESWithTimeValidationResult)


def _lta_passed(ades: Any) -> bool:
    return isinstance(ades, AdESLTAValidationResult) and ades.ades_subindic == AdESPassed.OK


def _review_changes(embedded: EmbeddedPdfSignature) -> ChangeReview:
    """What was changed after signing (:mod:`remotesign.validation.pdf_changes`); a failure of
    the analysis itself is a change nobody can show to be harmless."""
    try:
        return review_signature(embedded)
    except Exception as exc:  # noqa: BLE001 - pyHanko raises on hostile structures
        log.info("change analysis of %s failed", embedded.field_name, exc_info=True)
        review = ChangeReview()
        review.add(DocumentChange(revision=embedded.signed_revision + 2, kind="unreadable update", allowed=False,
                                  check=CHECK_UNANALYSABLE,
                                  description="The changes made to the document after signing cannot be analysed "
                                              f"({str(exc) or type(exc).__name__}), so they cannot be shown to leave "
                                              "the signed content unchanged."))
        return review


async def _run_ades(embedded: EmbeddedPdfSignature, doc: _Document, knowledge: cc.Material,
                    cms_material: cc.Material, provided: cc.Material, timestamped: bool,
                    archived: bool, warnings: list[str]) -> Any:
    """LTA when document time-stamps follow the signature, with time when it has a signature
    time-stamp, basic otherwise."""
    spec = doc.spec(knowledge)
    try:
        if archived:
            try:
                lta = await _lta(embedded, doc, _merged(cms_material, provided, doc.stamp_material))
                if lta.ades_subindic == AdESPassed.OK:
                    return lta
                if not timestamped:
                    return await _basic_fallback(embedded, doc, spec, lta)
                return await _with_time_fallback(embedded, doc, spec, lta, warnings)
            except pyhanko_errors.SignatureValidationError:
                raise
            except Exception as exc:  # noqa: BLE001 - pyHanko's evidence-record walk failed on this file
                log.info("LTA validation of %s failed, falling back", embedded.field_name, exc_info=True)
                warnings.append("The document time-stamp chain could not be processed as an evidence record "
                                f"({exc or type(exc).__name__}); validated without it.")
        digest = embedded.compute_digest()
        if timestamped:
            return await ades_with_time_validation(embedded.signed_data, spec, timing_info=doc.timing,
                                                   raw_digest=digest)
        return await ades_basic_validation(embedded.signed_data, spec, timing_info=doc.timing, raw_digest=digest)
    except pyhanko_errors.SignatureValidationError as exc:
        return cc.FailedAdES(exc.ades_subindication, exc.failure_message)


async def _basic_fallback(embedded: EmbeddedPdfSignature, doc: _Document, spec: SignatureValidationSpec,
                          lta: Any) -> Any:
    """A signature whose time-stamp is a later document time-stamp (B-T per EN 319 142-1 §5.4):
    pyHanko's LTA process validates "with time" at the current time, which insists on a
    signature time-stamp in the CMS and answers SIG_CONSTRAINTS_FAILURE without one. Basic
    validation at the current time is what EN 319 102-1 asks first; its PASSED stands (the
    document time-stamps are judged on their own), anything else keeps the LTA result."""
    if lta.ades_subindic != AdESIndeterminate.SIG_CONSTRAINTS_FAILURE:
        return lta
    basic = await ades_basic_validation(embedded.signed_data, spec, timing_info=doc.timing,
                                        raw_digest=embedded.compute_digest())
    return basic if basic.ades_subindic == AdESPassed.OK else lta


async def _with_time_fallback(embedded: EmbeddedPdfSignature, doc: _Document, spec: SignatureValidationSpec,
                              lta: Any, warnings: list[str]) -> Any:
    """pyHanko's LTA process also runs past signature validation when validation with time has
    already passed, and can then fail (e.g. REVOKED_NO_POE for a signer revoked after a valid
    signature time-stamp). EN 319 102-1 only needs past validation when the current-time result
    is not PASSED, so a PASSED validation with time stands."""
    with_time = await ades_with_time_validation(embedded.signed_data, spec, timing_info=doc.timing,
                                                raw_digest=embedded.compute_digest())
    if with_time.ades_subindic != AdESPassed.OK:
        return lta
    reason = cc.describe(cc.map_subindication(lta.ades_subindic), lta.failure_msg) or ""
    warnings.append("The long-term validation over the document time-stamps did not conclude "
                    f"({reason.rstrip('.')}); the signature is valid on its signature time-stamp.")
    return with_time


async def _lta(embedded: EmbeddedPdfSignature, doc: _Document, material: cc.Material) -> Any:
    """pyHanko reads the DSS itself on this path, so it gets only the rest; its difference
    analysis is skipped here because :func:`_integrity` already ran it (and judges it)."""
    spec = doc.spec(material)
    return await ades_lta_validation(embedded, PdfSignatureValidationSpec(spec, diff_policy=None),
                                     timing_info=doc.timing)


# --- level -------------------------------------------------------------------------------------------
def pades_level(embedded: EmbeddedPdfSignature, profile: cc.CmsProfile, *, covering: list[EmbeddedPdfSignature],
                facts: PdfLtFacts) -> str:
    """DSS-style level name (PAdES_BASELINE_B/T/LT/LTA, PAdES_BES/EPES/LTV, PKCS7_B/T/LT/LTA,
    PDF_NOT_ETSI) from EN 319 142-1 §6 and ISO 32000-1 requirements; LT and LTA as
    :mod:`remotesign.validation.pdf_level` decides them."""
    sig = embedded.sig_object
    subfilter = _subfilter(embedded)
    reason = bool(cc.safe(lambda: str(sig["/Reason"]).strip()))
    keys_ok = all(k in sig for k in ("/Contents", "/Filter", "/ByteRange", "/SubFilter"))
    detached = cc.safe(lambda: embedded.signed_data["encap_content_info"]["content"].native is None) is True
    timestamped = profile.signature_timestamp or bool(covering)
    lt = pdf_lt_complete(facts)
    if subfilter == _CADES_DETACHED:
        bes = (profile.extended_bes and keys_ok and detached and profile.content_type_data
               and not (reason and profile.commitment))
        baseline = (bes and profile.baseline_b_core and not profile.signing_time_present and "/M" in sig
                    and not (reason and profile.policy))
        if baseline:
            if not timestamped:
                return "PAdES_BASELINE_B"
            if not lt:
                return "PAdES_BASELINE_T"
            return "PAdES_BASELINE_LTA" if lta_timestamp(facts, rfc3161=True) else "PAdES_BASELINE_LT"
        if bes:
            if lt and lta_timestamp(facts, rfc3161=False):
                return "PAdES_LTV"
            return "PAdES_EPES" if profile.policy and not reason else "PAdES_BES"
        return "PDF_NOT_ETSI"
    if subfilter in (_PKCS7_DETACHED, _PKCS7_SHA1):
        signer_in_cms = profile.signer_in_certificates
        if subfilter == _PKCS7_DETACHED:
            pkcs7 = signer_in_cms and detached and cc.value_count(embedded.signer_info, cc.MESSAGE_DIGEST,
                                                                   signed=True) == 1
        else:
            pkcs7 = signer_in_cms and not detached
        if not pkcs7:
            return "PDF_NOT_ETSI"
        if not timestamped:
            return "PKCS7_B"
        if not lt:
            return "PKCS7_T"
        return "PKCS7_LTA" if lta_timestamp(facts, rfc3161=False) else "PKCS7_LT"
    return "PDF_NOT_ETSI"


# --- damaged files ------------------------------------------------------------------------------------
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d{1,12})\s+(\d{1,12})\s+(\d{1,12})\s+(\d{1,12})\s*\]")
_CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f\s]{2,2000000})>")
_HEX_STRING = re.compile(rb"<([0-9A-Fa-f\s]{2,2000000})>")
_SALVAGE_WINDOW = 1 << 18


async def _salvage(handle: BinaryIO, options: ValidationOptions) -> list[SignatureResult]:
    """Signatures of a PDF pyHanko cannot parse, found by scanning for signature dictionaries
    (/ByteRange next to /Contents). Their byte ranges are checked against the file; a range that
    does not fit means the signed bytes were altered (HASH_FAILURE); one that fits is verified
    cryptographically, but the document structure stays unverifiable (FORMAT_FAILURE)."""
    try:
        handle.seek(0, 2)
        size = handle.tell()
        if size == 0:
            return []
        view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return []
    results: list[SignatureResult] = []
    try:
        async with cc.fetching_session(options) as backend:
            for index, match in enumerate(_BYTE_RANGE.finditer(view)):
                if index >= MAX_SIGNATURES:
                    break
                ranges = tuple(int(g) for g in match.groups())
                contents = _nearby_contents(view, match.start(), ranges[0] + ranges[1])
                if contents is None:
                    continue
                if _is_timestamp_token(contents[1]):
                    continue  # a document time-stamp, not a signature
                results.append(await _guarded(f"Signature{len(results) + 1}", _salvaged_signature(
                    f"Signature{len(results) + 1}", view, size, ranges, contents, options, backend)))
    finally:
        view.close()
    return results


def _is_timestamp_token(der: bytes) -> bool:
    content_type = cc.safe(lambda: cms.ContentInfo.load(der.rstrip(b"\x00"))["content"]["encap_content_info"]
                           ["content_type"].native)
    return content_type == "tst_info"


def _nearby_contents(view: Any, position: int, gap_start: int) -> tuple[int, bytes] | None:
    """The /Contents hex string of the signature dictionary whose /ByteRange is at ``position``:
    the one starting at the byte range's gap, or failing that the one nearest to it (bytes
    inserted or removed shift it a little), or to the /ByteRange itself."""
    exact = _HEX_STRING.match(view, gap_start) if 0 <= gap_start < len(view) else None
    if exact is not None:
        return gap_start, _unhex(exact.group(1))
    anchor = gap_start if 0 <= gap_start < len(view) else position
    start = max(0, anchor - _SALVAGE_WINDOW)
    window = view[start:anchor + _SALVAGE_WINDOW]
    best = None
    for match in _CONTENTS.finditer(window):
        hex_start = start + match.start(1) - 1
        distance = abs(hex_start - anchor)
        if best is None or distance < best[0]:
            best = (distance, hex_start, match.group(1))
    if best is None:
        return None
    return best[1], _unhex(best[2])


def _unhex(text: bytes) -> bytes:
    digits = re.sub(rb"\s", b"", text)
    return bytes.fromhex((digits + b"0" if len(digits) % 2 else digits).decode())


async def _salvaged_signature(name: str, view: mmap.mmap, size: int, ranges: tuple[int, int, int, int],
                              contents: tuple[int, bytes], options: ValidationOptions, backend: Any) -> SignatureResult:
    result = SignatureResult(name, "PDF_NOT_ETSI", Indication.INDETERMINATE)
    info = cms.ContentInfo.load(contents[1].rstrip(b"\x00") or b"\x30\x00")
    signed_data = info["content"]
    signer_info = signed_data["signer_infos"][0]
    facts = cc.signer_facts(signer_info)
    result.signature_algorithm = facts.signature_algorithm
    result.claimed_signing_time = facts.signing_time
    material = cc.signed_data_material(signed_data, signer_info)
    pool = list(material.certs) + list(options.trust_anchors)
    result.signing_certificate = cc.find_signer_cert(signer_info, pool)
    if result.signing_certificate is not None:
        result.chain = cc.best_effort_chain(result.signing_certificate, pool)
    start1, length1, start2, length2 = ranges
    fits = (start1 == 0 and start2 + length2 <= size and start1 + length1 <= start2
            and start1 + length1 == contents[0])
    if not fits:
        message = ("The signature's byte range does not match the file: bytes were removed or inserted "
                   "inside the signed data after signing.")
        result.conclude(SubIndication.HASH_FAILURE, message)
        result.blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.of(SubIndication.HASH_FAILURE, message)
        return result
    hasher = cc.new_hash(facts.digest_algorithm or "sha256")
    hasher.update(view[start1:start1 + length1])
    hasher.update(view[start2:start2 + length2])
    spec = cc.make_spec(options, material, backend)
    try:
        ades = await ades_basic_validation(signed_data, spec, timing_info=options.timing_info(),
                                           raw_digest=hasher.digest())
    except pyhanko_errors.SignatureValidationError as exc:
        ades = cc.FailedAdES(exc.ades_subindication, exc.failure_message)
    cc.apply_ades_result(result, ades, pool)
    if result.sub_indication not in (SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE):
        message = "The PDF structure is damaged, so changes made after signing cannot be checked."
        result.conclude(SubIndication.FORMAT_FAILURE, message)
        result.blocks[Block.FORMAT_CHECKING] = Conclusion.of(SubIndication.FORMAT_FAILURE, message)
    return result


__all__ = ["dss_material", "dss_material_at", "is_document_timestamp", "pades_level", "validate_pdf"]
