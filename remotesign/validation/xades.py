"""XAdES validation per ETSI EN 319 102-1 (XAdES 1.1.1 / 1.3.2 / 1.4.1; enveloped, enveloping
and detached; baseline B/T/LT/LTA, the older T/C/X/XL/A forms and the BDOC time-mark).

Every ds:Signature of the document is validated, counter-signatures included (reported with
``parent_id``). Per signature the building blocks run in the order EU DSS concludes them:
format checking, identification of the signing certificate, cryptographic verification, then
certificate validation with time (signature and archive time-stamps, time-marks) and signature
acceptance. The first failing block decides the outcome; later blocks still fill the report
where they can. Hostile input never escapes as anything but :class:`ValidationInputError`."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
from datetime import datetime
from pathlib import Path, PurePosixPath

from asn1crypto import algos, x509
from lxml import etree
from pyhanko.sign.validation.policy_decl import LocalKnowledge, SignatureValidationSpec
from pyhanko_certvalidator.authority import AuthorityWithCert
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.ltv.poe import POEManager, POEType
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.xades.algorithms import SignatureMethod, signature_method
from remotesign.formats.xades.c14n import (Budget, BudgetExceeded, check_algorithm, element_octets,
                                           inclusive_namespaces, work_budget)
from remotesign.formats.xades.dom import (DS, SignatureParts, StructureError, enclosing_signature, id_index,
                                          is_counter_signature, is_element, local_name, q, signature_parts, single)
from remotesign.formats.xades.placement import countersignature_problem, partial_scope
from remotesign.formats.xades.reading import (CertReference, embedded_data, identify_signer, key_info_certificates,
                                              signing_certificate_refs, values_of)
from remotesign.formats.xades.references import (ContentOpener, ReferenceContext, ReferenceOutcome, Resolver,
                                                 manifest_entries,
                                                 detached_name, process_references)
from remotesign.formats.xades.xmlio import parse_xml
from remotesign.validation.certificates import (assess_signer, certificates_of, describe, knowledge_from,
                                                uncovered_certificates)
from remotesign.validation.fetching import fetching_session, with_backend
from remotesign.validation.model import (Block, Conclusion, DocumentResult, Indication, SignatureResult, SubIndication,
                                         TimestampKind, ValidationInputError)
from remotesign.validation.options import DetachedDocument, ValidationOptions
from remotesign.validation.policy import CHECKS, Level
from remotesign.validation.timestamps import (TimestampCheck, TimestampFormatError, TokenInfo, not_validated,
                                              read_token, validate_timestamp)
from remotesign.validation.xades_level import LevelFacts, is_epes, signature_format
from remotesign.validation.xades_props import signed_facts
from remotesign.validation.xades_tst import StampInputs, StampProperty, stamp_properties
from remotesign.validation.xades_values import produced_at, revocation_values_ocsp, time_mark

log = logging.getLogger(__name__)

MAX_SIGNATURES = 200


# -- entry points -----------------------------------------------------------------------------------

async def validate_xml_file(path: Path, options: ValidationOptions, *, filename: str) -> DocumentResult:
    """Validate every signature of the XML file at ``path``; detached references are looked up
    in ``options.detached`` by decoded URI, then by file name."""
    limit = options.limits.max_xml_bytes
    try:
        size = path.stat().st_size
        if size > limit:
            raise ValidationInputError("invalid_document", f"the XML document is larger than {limit} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationInputError("invalid_document", f"the document cannot be read: {exc}") from None
    signatures = await validate_xades(data, options, resolve=detached_resolver(options.detached))
    return DocumentResult(filename=filename, signature_form="XAdES", validation_time=options.at,
                          signatures=signatures)


def detached_resolver(documents: tuple[DetachedDocument, ...]) -> Resolver:
    """Resolve a reference URI to a supplied detached document: by decoded name, else by the
    last path segment (a signature made elsewhere may reference ``../data/file.pdf``)."""
    by_name = {d.name: d for d in documents}
    by_base: dict[str, list[DetachedDocument]] = {}
    for doc in documents:
        by_base.setdefault(PurePosixPath(doc.name).name, []).append(doc)

    def resolve(uri: str) -> ContentOpener | None:
        name = detached_name(uri)
        doc = by_name.get(name)
        if doc is None:
            candidates = by_base.get(PurePosixPath(name).name, [])
            doc = candidates[0] if len(candidates) == 1 else None
        if doc is None:
            return None
        path = doc.path
        return lambda: open(path, "rb")
    return resolve


async def validate_xades(xml: bytes, options: ValidationOptions, *, resolve: Resolver) -> list[SignatureResult]:
    """Validate every ds:Signature in ``xml`` (counter-signatures included)."""
    limit = options.limits.max_xml_bytes
    try:
        tree = parse_xml(xml, limit)
    except FormatError as exc:
        raise ValidationInputError("invalid_document", exc.message) from None
    signatures = list(tree.iter(q(DS, "Signature")))
    if len(signatures) > MAX_SIGNATURES:
        raise ValidationInputError("invalid_document", f"the document holds {len(signatures)} signatures, "
                                                       f"more than {MAX_SIGNATURES}")
    if not signatures:
        return []
    document = _Document(tree=tree, ids=id_index(tree), resolve=resolve, options=options,
                         budget=work_budget(len(xml)))
    results = []
    async with fetching_session(options) as backend:
        document.backend = backend
        for index, sig in enumerate(signatures, 1):
            try:
                results.append(await _SignatureValidation(document, sig, index).run())
            except BudgetExceeded as exc:
                raise ValidationInputError("invalid_document",
                                           f"the document needs too much processing ({exc})") from None
            except ValidationInputError:
                raise
            except FormatError as exc:  # a signed data object cannot be read whole (a corrupt entry)
                results.append(_unreadable(sig, index, exc))
            except Exception as exc:  # noqa: BLE001 - one broken signature must not hide the others
                log.exception("XAdES validation of signature %d failed", index)
                results.append(_internal_error(sig, index, exc))
    return results


def _signature_id(sig: etree._Element, index: int) -> str:
    return sig.get("Id") or f"signature-{index}"


def _unreadable(sig: etree._Element, index: int, exc: FormatError) -> SignatureResult:
    result = SignatureResult(id=_signature_id(sig, index), signature_format="XML_NOT_ETSI",
                             indication=Indication.INDETERMINATE)
    result.blocks[Block.FORMAT_CHECKING] = Conclusion.of(SubIndication.FORMAT_FAILURE, exc.message)
    result.conclude(SubIndication.FORMAT_FAILURE, f"signed data cannot be read: {exc.message}")
    return result


def _internal_error(sig: etree._Element, index: int, exc: Exception) -> SignatureResult:
    result = SignatureResult(id=_signature_id(sig, index), signature_format="XML_NOT_ETSI",
                             indication=Indication.INDETERMINATE)
    result.conclude(SubIndication.GENERIC, f"the signature could not be validated ({type(exc).__name__})")
    return result


@dataclasses.dataclass
class _Document:
    tree: etree._ElementTree
    ids: dict[str, list[etree._Element]]
    resolve: Resolver
    options: ValidationOptions
    budget: Budget
    backend: AIOHttpFetcherBackend | None = None

    def spec(self, knowledge: LocalKnowledge) -> SignatureValidationSpec:
        return with_backend(self.options.signature_spec(knowledge), self.backend)


# -- one signature ----------------------------------------------------------------------------------

def declared_media_types(parts: SignatureParts, refs: list[ReferenceOutcome]) -> dict[str, str]:
    """Signed file name -> the MimeType of the DataObjectFormat whose ObjectReference names its
    ds:Reference (EN 319 132-1 §5.2.4)."""
    by_id = {r.id: r.name for r in refs if r.detached and r.name and r.id}
    out: dict[str, str] = {}
    for dof in parts.data_object_properties("DataObjectFormat"):
        name = by_id.get((dof.get("ObjectReference") or "").lstrip("#"))
        mime = next((e for e in dof if is_element(e) and local_name(e) == "MimeType"), None)
        if name and mime is not None and (mime.text or "").strip():
            out.setdefault(name, (mime.text or "").strip())
    return out


class _SignatureValidation:
    """The building blocks for one ds:Signature, filling one SignatureResult."""

    def __init__(self, document: _Document, sig: etree._Element, index: int) -> None:
        self.doc = document
        self.options = document.options
        self.sig = sig
        self.result = SignatureResult(id=_signature_id(sig, index), signature_format="XML_NOT_ETSI",
                                      indication=Indication.TOTAL_PASSED)
        if is_counter_signature(sig):
            parent = enclosing_signature(sig)
            self.result.parent_id = parent.get("Id") if parent is not None else None
        self.outcome: tuple[SubIndication, str] | None = None   # first failing block decides
        self.problems: list[str] = []
        self.acceptance_problem: tuple[SubIndication, str] | None = None   # found early, concluded in SAV
        self._anchors: set[bytes] | None = None
        self._trust_manager = None

    # -- bookkeeping ------------------------------------------------------------------------------------
    def block(self, block: Block, sub: SubIndication | None, message: str | None = None) -> None:
        self.result.blocks[block] = Conclusion.of(sub, *([message] if message else []))
        if sub is not None and self.outcome is None:
            self.outcome = (sub, message or sub.value)

    def warn(self, message: str) -> None:
        if message not in self.result.warnings:
            self.result.warnings.append(message)

    def check(self, check_id: str, message: str, block: Block = Block.FORMAT_CHECKING) -> None:
        """A finding of a policy check, at the policy's level (a FAIL joins the outcome: the
        first failing block still decides)."""
        level = self.options.policy.level(check_id)
        if level is Level.FAIL:
            failure = CHECKS[check_id].failure
            conclusion = self.result.blocks.get(block)
            if conclusion is None or conclusion.sub_indication is None:
                self.result.blocks[block] = Conclusion.of(failure, message)
            if self.outcome is None:
                self.outcome = (failure, message)
            elif message not in self.result.errors:
                self.result.errors.append(message)
        elif level is Level.WARN:
            self.warn(message)
        elif level is Level.INFORM and message not in self.result.infos:
            self.result.infos.append(message)

    def finish(self) -> SignatureResult:
        for problem in self.problems:
            self.warn(problem)
        if self.outcome is None:
            self.result.conclude(None)
        else:
            self.result.conclude(*self.outcome)
        return self.result

    # -- the pipeline ---------------------------------------------------------------------------------
    async def run(self) -> SignatureResult:
        try:
            parts, method, signed_info, value, refs, stamps = self.format_checking()
        except StructureError as exc:
            self.block(Block.FORMAT_CHECKING, SubIndication.FORMAT_FAILURE, f"the signature is malformed: {exc}")
            return self.finish()
        self.describe(parts, method, refs)
        embedded = embedded_data(parts, self.problems)
        tokens = self.read_tokens(stamps)
        token_certs = [c for t in tokens.values() for c in t.certificates]
        provided = self.provided(certificates_of(embedded.certificates) + token_certs)
        candidates = certificates_of(_unique(embedded.certificates + provided.certificates))

        cert_refs, _ = signing_certificate_refs(parts)
        ident = identify_signer(candidates, cert_refs, method, signed_info, value,
                                qualified=parts.qualifying_properties is not None)
        for warning in ident.warnings:
            self.check("xades.signing_certificate_unprotected", warning, Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE)
        self.result.signing_certificate = ident.certificate
        if ident.identified:
            self.block(Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE, None)
        else:
            self.block(Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                       ident.message)
        self.cryptographic_verification(parts, refs, ident.signature_valid)
        self.result.signature_format = self.level(parts, refs, ident.certificate, cert_refs, stamps, tokens,
                                                  embedded, token_certs)
        if self.outcome is not None or ident.certificate is None:
            return self.finish()

        knowledge = knowledge_from(embedded.merged(provided), self.problems)
        spec = self.doc.spec(LocalKnowledge(known_ocsps=knowledge.known_ocsps, known_crls=knowledge.known_crls,
                                            known_certs=knowledge.known_certs + token_certs))
        poe = POEManager(current_dt_override=self.options.at)
        best = await self.timestamps(parts, refs, stamps, tokens, spec, poe, value)
        best = self.time_mark(parts, ident.certificate, value, best)
        # Without a time-stamp or time-mark there is no proof of existence: the API leaves
        # bestSignatureTime empty for B-level signatures rather than echoing the validation time.
        self.result.best_signature_time = best if best < self.options.at else None
        self.block(Block.PROOF_OF_EXISTENCE, None,
                   f"the signature existed at {best:%Y-%m-%d %H:%M:%S} UTC" if best < self.options.at
                   else "nothing proves the signature existed before the validation time")
        await self.certificate_validation(ident.certificate, spec, candidates + token_certs, value, poe, best,
                                          embedded.merged(provided))
        self.acceptance(method, refs, ident.certificate, spec, best)
        return self.finish()

    # -- format checking ---------------------------------------------------------------------------------
    def format_checking(self) -> tuple[SignatureParts, SignatureMethod, bytes, bytes, list[ReferenceOutcome],
                                       list[StampProperty]]:
        parts = signature_parts(self.sig)
        for warning in parts.warnings:
            self.check("xades.target_mismatch", warning)
        method = signature_method(parts.signed_info)
        c14n = single(parts.signed_info, DS, "CanonicalizationMethod", required=True)
        algorithm = check_algorithm(c14n.get("Algorithm"))
        signed_info = element_octets(parts.signed_info, algorithm, self.doc.budget, inclusive_namespaces(c14n))
        value = _signature_value(parts)
        if parts.qualifying_properties is not None and parts.signed_properties is None:
            raise StructureError("xades:QualifyingProperties has no SignedProperties")
        context = ReferenceContext(parts=parts, tree=self.doc.tree, ids=self.doc.ids, resolve=self.doc.resolve,
                                   budget=self.doc.budget, max_xml_bytes=self.options.limits.max_xml_bytes)
        refs = process_references(context)
        refs = refs + manifest_entries(context, refs)
        stamps = stamp_properties(parts)
        self.block(Block.FORMAT_CHECKING, None)
        return parts, method, signed_info, value, refs, stamps

    def describe(self, parts: SignatureParts, method: SignatureMethod, refs: list[ReferenceOutcome]) -> None:
        result = self.result
        result.signature_algorithm = method.asn1_name
        result.signed_objects = list(dict.fromkeys(r.name for r in refs if r.detached and r.name))
        result.declared_media_types = declared_media_types(parts, refs)
        facts = signed_facts(parts)
        result.claimed_signing_time = facts.claimed_signing_time
        result.signer_roles = facts.signer_roles
        result.production_place = facts.production_place
        result.commitment_types = facts.commitment_types
        result.policy_id = facts.policy_id
        for problem in facts.policy_problems:
            self.check("xades.policy_identifier", problem)

    def read_tokens(self, stamps: list[StampProperty]) -> dict[bytes, TokenInfo]:
        tokens = {}
        for prop in stamps:
            for der in prop.tokens:
                try:
                    tokens[der] = read_token(der)
                except TimestampFormatError:
                    continue
        return tokens

    def provided(self, certificates: list[x509.Certificate]) -> ValidationData:
        """Validation data the service provides (after what the signature embeds). Asked again
        with the CA certificates it returned, so a signature that embeds only its signer's
        certificate still gets revocation data for the whole chain."""
        data = ValidationData()
        known = {c.dump() for c in certificates}
        for _ in range(3):
            try:
                data = data.merged(self.options.provided_validation_data(certificates))
            except Exception as exc:  # noqa: BLE001 - a failing provider only means less evidence
                log.warning("revocation provider failed: %s", exc)
                return data
            new = [c for c in certificates_of([d for d in data.certificates if d not in known])]
            if not new:
                return data
            known |= {c.dump() for c in new}
            certificates = certificates + new
        return data

    # -- cryptographic verification -------------------------------------------------------------------
    def cryptographic_verification(self, parts: SignatureParts, refs: list[ReferenceOutcome],
                                   signature_valid: bool) -> None:
        missing = [r for r in refs if not r.found]
        broken = [r for r in refs if r.found and not r.intact]
        data = [r for r in refs if r.kind in ("data", "countersigned", "manifest_entry")]
        covered = [r for r in refs if r.kind == "signed_properties"]
        counter_problem = countersignature_problem(parts, refs)
        block = Block.CRYPTOGRAPHIC_VERIFICATION
        if missing:
            self.block(block, SubIndication.SIGNED_DATA_NOT_FOUND, missing[0].message)
        elif not data:
            kinds = ", ".join(sorted({r.kind.replace("_", " ") for r in refs})) or "nothing"
            self.block(block, SubIndication.SIGNED_DATA_NOT_FOUND,
                       f"the signature references no signed data object (only: {kinds})")
        elif broken:
            self.block(block, SubIndication.HASH_FAILURE, broken[0].message)
        elif counter_problem is not None:
            self.block(block, SubIndication.HASH_FAILURE, counter_problem)
        elif not signature_valid:
            self.block(block, SubIndication.SIG_CRYPTO_FAILURE,
                       "the signature value does not verify with the signing certificate")
        elif parts.qualifying_properties is not None and not covered:
            self.result.blocks[block] = Conclusion.passed()
            self.block(Block.FORMAT_CHECKING, SubIndication.FORMAT_FAILURE,
                       "xades:SignedProperties is not covered by the signature")
        else:
            self.block(block, None)
        if any(r.kind == "manifest_entry" for r in refs):
            if "data is signed through a ds:Manifest: each of its references was checked" not in self.result.infos:
                self.result.infos.append("data is signed through a ds:Manifest: each of its references was checked")
        for ident in partial_scope(parts, refs):
            self.warn(f"the signature covers element {ident!r} only, not the whole document")

    # -- level ----------------------------------------------------------------------------------------
    def level(self, parts: SignatureParts, refs: list[ReferenceOutcome], signer: x509.Certificate | None,
              cert_refs: list[CertReference], stamps: list[StampProperty], tokens: dict[bytes, TokenInfo],
              embedded: ValidationData, token_certs: list[x509.Certificate]) -> str:
        sts = [p for p in stamps if p.name == "SignatureTimeStamp"]
        times = [tokens[d].gen_time for p in sts for d in p.tokens if d in tokens]
        archives = [p for p in stamps if p.name == "ArchiveTimeStamp"]
        last_archive = set(archives[-1].tokens) if archives else set()
        earlier = [t for d, t in tokens.items() if d not in last_archive]
        pool = certificates_of(embedded.certificates) + token_certs
        leaves = ([signer] if signer is not None else []) + [t.signer for t in earlier if t.signer is not None]
        missing = uncovered_certificates(leaves, pool, embedded.ocsp_responses, embedded.crls, self.trusted)
        facts = LevelFacts(parts=parts, references=refs, signing_certificate=signer,
                           keyinfo_certificates=certificates_of(key_info_certificates(parts, [])),
                           cert_refs=cert_refs, signature_timestamp_tokens=[len(p.tokens) for p in sts],
                           signature_timestamp_times=times,
                           certificates=certificates_of(embedded.certificates) + [
                               c for t in earlier for c in t.certificates],
                           has_revocation_data=bool(embedded.ocsp_responses or embedded.crls),
                           revocation_complete=not missing,
                           has_ocsp_values=bool(revocation_values_ocsp(parts, [])))
        name = signature_format(facts)
        if name.startswith("XAdES_BASELINE") and is_epes(facts):
            self.warn("the signature names a signature policy (B-EPES); the policy itself is not validated")
        return name

    def trusted(self, cert: x509.Certificate) -> bool:
        """Whether ``cert`` is a trust anchor or an OCSP responder a trusted list names (then it
        needs no revocation data)."""
        if self._anchors is None:
            self._anchors = {a.dump() for a in self.options.trust_anchors}
            self._trust_manager = self.options.trust_manager()
        if cert.dump() in self._anchors:
            return True
        try:
            listed = getattr(self._trust_manager, "is_ocsp_authority", None)
            if listed is not None and listed(cert):
                return True
            return self._trust_manager.as_trust_anchor(AuthorityWithCert(cert)) is not None
        except Exception:  # noqa: BLE001 - a trust manager that cannot tell does not trust
            return False

    # -- time-stamps and proof of existence -------------------------------------------------------------
    async def timestamps(self, parts: SignatureParts, refs: list[ReferenceOutcome], stamps: list[StampProperty],
                         tokens: dict[bytes, TokenInfo], spec: SignatureValidationSpec, poe: POEManager,
                         value: bytes) -> datetime:
        """Judge every time-stamp (archive ones newest first, each giving POE to what it covers)
        and return the best signature time."""
        inputs = StampInputs(parts, refs, self.doc.budget)
        timing = self.options.timing_info()
        checks: dict[int, list[TimestampCheck]] = {}
        order = sorted(range(len(stamps)), key=lambda i: (stamps[i].name != "ArchiveTimeStamp", -i))
        for i in order:
            prop = stamps[i]
            checks[i] = []
            for der in prop.tokens:
                check = await self.one_timestamp(prop, der, inputs, spec, timing, poe)
                checks[i].append(check)
                if check.valid and check.token is not None and prop.kind is TimestampKind.ARCHIVE:
                    self.register_archive_poe(parts, prop, tokens, value, check.token.gen_time, poe)
        all_checks = [c for i in range(len(stamps)) for c in checks.get(i, [])]
        self.result.timestamps = [c.result for c in all_checks]
        best = self.options.at
        for i, prop in enumerate(stamps):
            for check in checks[i]:
                if check.valid and check.result.gen_time and prop.name in ("SignatureTimeStamp", "SigAndRefsTimeStamp",
                                                                            "SigAndRefsTimeStampV2"):
                    best = min(best, check.result.gen_time)
        best = min(best, poe[value])
        self.timestamp_block(stamps, checks, best)
        return best

    async def one_timestamp(self, prop: StampProperty, der: bytes, inputs: StampInputs,
                            spec: SignatureValidationSpec, timing: ValidationTimingInfo,
                            poe: POEManager) -> TimestampCheck:
        if prop.problem is not None:
            return not_validated(der, prop.kind, prop.problem)
        return await validate_timestamp(
            der, prop.kind, lambda hash_name: inputs.imprint(prop, hash_name), spec, timing, poe_manager=poe,
            unavailable="the time-stamped data is not available (a signed data object was not supplied)")

    def register_archive_poe(self, parts: SignatureParts, prop: StampProperty, tokens: dict[bytes, TokenInfo],
                             value: bytes, when: datetime, poe: POEManager) -> None:
        """An archive time-stamp proves everything it covers existed at its time: the signature
        value, the validation data and the time-stamps before it, and the KeyInfo certificates."""
        poe.register(value, POEType.VALIDATION, when)
        before = parts.unsigned()[:prop.position]
        covered = values_of(before, []).merged(ValidationData(tuple(key_info_certificates(parts, []))))
        knowledge = knowledge_from(covered, [])
        for known in knowledge.assert_existence_known_at(when):
            poe.register_known_poe(dataclasses.replace(known, poe_type=POEType.VALIDATION))
        for el in before:
            for der, token in tokens.items():
                if _holds_token(el, der):
                    poe.register(token.signature, POEType.VALIDATION, when)
                    for cert in token.certificates:
                        poe.register(cert, POEType.VALIDATION, when)

    def timestamp_block(self, stamps: list[StampProperty], checks: dict[int, list[TimestampCheck]],
                        best: datetime) -> None:
        content = [c.result.gen_time for i in checks for c in checks[i]
                   if stamps[i].kind is TimestampKind.CONTENT and c.valid and c.result.gen_time]
        if content and max(content) > best:
            self.acceptance_problem = (SubIndication.TIMESTAMP_ORDER_FAILURE,
                                       "a content time-stamp is later than the signature's time-stamps")
        failed = [(stamps[i], c) for i in checks for c in checks[i] if not c.valid]
        if not failed:
            if checks:
                self.result.blocks[Block.TIME_STAMP_VALIDATION] = Conclusion.passed()
            return
        for prop, check in failed:
            self.warn(f"{prop.name} is not valid: {'; '.join(check.result.conclusion.messages)}")
        prop, check = failed[0]
        conclusion = check.result.conclusion
        self.result.blocks[Block.TIME_STAMP_VALIDATION] = Conclusion(
            conclusion.indication, conclusion.sub_indication,
            [f"{prop.name}: {'; '.join(conclusion.messages) or 'not valid'}"])
        covering = [p for p, c in failed if c.result.conclusion.sub_indication in
                    (SubIndication.HASH_FAILURE, SubIndication.FORMAT_FAILURE)]
        if covering:
            self.acceptance_problem = (SubIndication.SIG_CONSTRAINTS_FAILURE,
                                       f"the signature's {covering[0].name} does not time-stamp this signature's data")

    def time_mark(self, parts: SignatureParts, signer: x509.Certificate, value: bytes, best: datetime) -> datetime:
        """BDOC time-mark: an OCSP response bound to this signature value gives its time."""
        responses = revocation_values_ocsp(parts, [])
        self.result.ocsp_produced_at = [t for t in (produced_at(der) for der in responses) if t is not None]
        has_signature_ts = any(t.kind is TimestampKind.SIGNATURE and t.valid for t in self.result.timestamps)
        if has_signature_ts or not responses:
            return best
        marks = [m for m in (time_mark(der, value, signer) for der in responses) if m is not None]
        if not marks:
            if self.result.signature_format == "XAdES_BASELINE_LT_TM":
                self.warn("no OCSP response is bound to this signature (time-mark nonce), so it proves no signing time")
            return best
        return min(best, min(m.produced_at for m in marks))

    # -- certificate validation and acceptance --------------------------------------------------------
    async def certificate_validation(self, cert: x509.Certificate, spec: SignatureValidationSpec,
                                     others: list[x509.Certificate], value: bytes, poe: POEManager,
                                     best: datetime, data: ValidationData) -> None:
        check = await assess_signer(cert, spec, self.options.timing_info(), other_certs=others,
                                    signature_value=value, poe_manager=poe, best_signature_time=best,
                                    revocation_data=data)
        self.result.chain = check.chain
        messages = [describe(cert, check.current)] if check.current else []
        if check.current is not None and check.passed:
            messages.append("resolved with the proof of existence of the signature")
        self.result.blocks[Block.X509_CERTIFICATE_VALIDATION] = Conclusion.of(
            check.sub, *[m for m in messages if m])
        if check.sub is not None and self.outcome is None:
            self.outcome = (check.sub, check.message or describe(cert, check.sub) or check.sub.value)

    def acceptance(self, method: SignatureMethod, refs: list[ReferenceOutcome], cert: x509.Certificate,
                   spec: SignatureValidationSpec, best: datetime) -> None:
        """Signature acceptance: cryptographic constraints at the best signature time, by the
        validation policy's suite for signatures (certificates have their own)."""
        if self.acceptance_problem is not None:
            self.block(Block.SIGNATURE_ACCEPTANCE_VALIDATION, *self.acceptance_problem)
            return
        claimed = self.result.claimed_signing_time
        if claimed is not None and claimed > best and best < self.options.at:
            self.check("signing_time.after_timestamp", "the claimed signing time is later than the signature time-stamp",
                       Block.SIGNATURE_ACCEPTANCE_VALIDATION)
        policy = (spec.signature_algorithm_policy or spec.cert_validation_policy.algorithm_usage_policy
                  or DisallowWeakAlgorithmsPolicy())
        checks = [(policy.signature_algorithm_allowed(method.asn1(), best, cert.public_key),
                   f"the signature algorithm {method.asn1_name} is not accepted")]
        for name in dict.fromkeys(r.digest_algorithm for r in refs if r.digest_algorithm):
            checks.append((policy.digest_algorithm_allowed(algos.DigestAlgorithm({"algorithm": name}), best),
                           f"the digest algorithm {name} is not accepted"))
        for allowed, message in checks:
            if not allowed:
                sub = (SubIndication.CRYPTO_CONSTRAINTS_FAILURE if allowed.not_allowed_after is None
                       else SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE)
                self.block(Block.SIGNATURE_ACCEPTANCE_VALIDATION, sub, message)
                return
        self.block(Block.SIGNATURE_ACCEPTANCE_VALIDATION, None)


def _signature_value(parts: SignatureParts) -> bytes:
    text = "".join((parts.signature_value.text or "").split())
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise StructureError("ds:SignatureValue is not valid base64") from None
    if not value:
        raise StructureError("ds:SignatureValue is empty")
    return value


def _holds_token(el: etree._Element, der: bytes) -> bool:
    for node in el.iter():
        if isinstance(node.tag, str) and etree.QName(node).localname == "EncapsulatedTimeStamp":
            try:
                if base64.b64decode("".join((node.text or "").split())) == der:
                    return True
            except (binascii.Error, ValueError):
                continue
    return False


def _unique(items: tuple[bytes, ...]) -> tuple[bytes, ...]:
    return tuple(dict.fromkeys(items))
