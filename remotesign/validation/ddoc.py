"""Validation of legacy Estonian DigiDoc files (DDOC: SK-XML 1.0, DIGIDOC-XML 1.1, 1.2, 1.3) as
digidoc4j validates them, reported in EN 319 102-1 terms like every other format.

A DigiDoc signature is an XML-DSig signature with XAdES 1.1.1-style properties whose references
are digested by DigiDoc's own rules (``ddoc_digests``), time-marked by one OCSP response whose
nonce binds the signature value (``ddoc_ocsp``). Per signature: format checking, identification of
the signing certificate (which also verifies the signature value, as for XAdES), the reference
digests, then the time-mark as proof of existence, certificate validation with that time and
signature acceptance. The first failing block decides the outcome. DigiDoc mandates RSA-SHA1:
SHA-1 past the policy's date is a warning here, as digidoc4j and SiVa report it; every other
cryptographic constraint of the policy applies."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from datetime import datetime
from pathlib import Path

from asn1crypto import algos, x509
from lxml import etree
from pyhanko.sign.validation.policy_decl import LocalKnowledge, SignatureValidationSpec
from pyhanko_certvalidator.ltv.poe import POEManager

from remotesign.formats.base import FormatError, ValidationData
from remotesign.formats.xades.algorithms import SignatureMethod, digest_name, signature_method
from remotesign.formats.xades.c14n import Budget, BudgetExceeded, work_budget
from remotesign.formats.xades.dom import DS, StructureError, children, single, text_of
from remotesign.formats.xades.reading import identify_signer
from remotesign.validation.certificates import assess_signer, certificates_of, describe, knowledge_from
from remotesign.validation.ddoc_digests import (data_file_digests, mime_digest, signed_info_octets,
                                                signed_properties_octets)
from remotesign.validation.ddoc_ocsp import read_notary, time_mark
from remotesign.validation.ddoc_parts import (DdocParts, cert_references, claimed_roles, decode,
                                              issuer_namespace_warnings, locate, parse_time, production_place)
from remotesign.validation.ddoc_xml import DdocDocument, read_ddoc
from remotesign.validation.fetching import fetching_session, with_backend
from remotesign.validation.model import (Block, Conclusion, DocumentResult, Indication, SignatureResult, SubIndication,
                                         ValidationInputError)
from remotesign.validation.options import ValidationOptions

log = logging.getLogger(__name__)

SIGNATURE_FORM = "DIGIDOC_XML"


async def validate_ddoc_file(path: Path, options: ValidationOptions, *, filename: str) -> DocumentResult:
    limit = options.limits.max_xml_bytes
    try:
        if path.stat().st_size > limit:
            raise ValidationInputError("invalid_document", f"the DigiDoc file is larger than {limit} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationInputError("invalid_document", f"the document cannot be read: {exc}") from None
    return await validate_ddoc(data, options, filename=filename)


async def validate_ddoc(data: bytes, options: ValidationOptions, *, filename: str) -> DocumentResult:
    """Validate every signature of a DigiDoc file."""
    try:
        doc = read_ddoc(data, options.limits.max_xml_bytes)
    except FormatError as exc:
        raise ValidationInputError("invalid_document", exc.message) from None
    result = DocumentResult(filename=filename, signature_form=SIGNATURE_FORM, validation_time=options.at,
                            included_files=[df.get("Filename") or df.get("Id") or "" for df in doc.data_files])
    if doc.format == "SK-XML" or doc.version in ("1.1", "1.2"):
        result.errors.append(f"Old and unsupported format: {doc.format} version: {doc.version}")
    budget = work_budget(len(data))
    async with fetching_session(options) as backend:
        for index, sig in enumerate(doc.signatures, 1):
            check = _SignatureCheck(doc, sig, index, options, budget, backend)
            try:
                result.signatures.append(await check.run())
            except BudgetExceeded as exc:
                raise ValidationInputError("invalid_document", f"the document needs too much processing ({exc})") \
                    from None
            except Exception as exc:  # noqa: BLE001 - one broken signature must not hide the others
                log.exception("DigiDoc validation of signature %d failed", index)
                check.result.conclude(SubIndication.GENERIC,
                                      f"the signature could not be validated ({type(exc).__name__})")
                result.signatures.append(check.result)
    return result


class _SignatureCheck:
    """The building blocks for one DigiDoc signature, filling one SignatureResult."""

    def __init__(self, doc: DdocDocument, sig: etree._Element, index: int, options: ValidationOptions,
                 budget: Budget, backend: object) -> None:
        self.doc, self.sig, self.options, self.budget, self.backend = doc, sig, options, budget, backend
        self.result = SignatureResult(id=sig.get("Id") or f"S{index - 1}", signature_format=doc.name,
                                      indication=Indication.TOTAL_PASSED)
        self.outcome: tuple[SubIndication, str] | None = None

    def block(self, block: Block, sub: SubIndication | None, message: str | None = None) -> None:
        self.result.blocks[block] = Conclusion.of(sub, *([message] if message else []))
        if sub is not None and self.outcome is None:
            self.outcome = (sub, message or sub.value)
        elif sub is not None and message and message not in self.result.errors:
            self.result.errors.append(message)

    def warn(self, message: str) -> None:
        if message not in self.result.warnings:
            self.result.warnings.append(message)

    def finish(self) -> SignatureResult:
        self.result.conclude(*(self.outcome or (None,)))
        return self.result

    async def run(self) -> SignatureResult:
        try:
            parts = locate(self.doc, self.sig)
            method = signature_method(parts.signed_info)
            value = decode(parts.signature_value, "SignatureValue")
            signed_info = signed_info_octets(self.doc, parts.signed_info, self.budget)
            candidates = certificates_of([decode(c, "X509Certificate") for c in parts.key_info_certificates])
        except (StructureError, FormatError) as exc:
            message = exc.message if isinstance(exc, FormatError) else str(exc)
            self.block(Block.FORMAT_CHECKING, SubIndication.FORMAT_FAILURE, f"the signature is malformed: {message}")
            return self.finish()
        self.block(Block.FORMAT_CHECKING, None)
        self.describe(parts, method)
        ident = identify_signer(candidates, cert_references(parts), method, signed_info, value, qualified=True)
        self.result.signing_certificate = ident.certificate
        self.block(Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE,
                   None if ident.identified else SubIndication.NO_SIGNING_CERTIFICATE_FOUND, ident.message)
        for warning in ident.warnings + (issuer_namespace_warnings(parts) if not self.doc.sk_xml else []):
            self.warn(warning)
        digests = self.cryptographic_verification(parts, ident.signature_valid)
        try:
            notary = read_notary(parts, check_ocsp_digest=not (self.doc.sk_xml or self.doc.version == "1.1"))
        except StructureError as exc:
            self.block(Block.FORMAT_CHECKING, SubIndication.FORMAT_FAILURE, f"the signature is malformed: {exc}")
            return self.finish()
        for problem in notary.problems:
            self.block(Block.FORMAT_CHECKING, SubIndication.FORMAT_FAILURE, problem)
        if self.outcome is not None or ident.certificate is None:
            return self.finish()
        best = self.proof_of_existence(notary.responses, value, ident.certificate)
        data = ValidationData(tuple(notary.certificates), tuple(notary.responses))
        await self.certificate_validation(ident.certificate, candidates, data, value, best)
        self.acceptance(method, digests, ident.certificate, best)
        return self.finish()

    # -- description ------------------------------------------------------------------------------------
    def describe(self, parts: DdocParts, method: SignatureMethod) -> None:
        result = self.result
        result.signature_algorithm = method.asn1_name
        times = parts.signed("SigningTime")
        result.claimed_signing_time = parse_time(text_of(times[0])) if times else None
        result.signer_roles = claimed_roles(parts)
        result.production_place = production_place(parts)

    # -- cryptographic verification ---------------------------------------------------------------------
    def cryptographic_verification(self, parts: DdocParts, signature_valid: bool) -> list[str]:
        """Check every reference by DigiDoc's digest rules; returns the digest algorithms used."""
        block = Block.CRYPTOGRAPHIC_VERIFICATION
        by_id = {df.get("Id"): df for df in self.doc.data_files}
        props_id = parts.signed_properties.get("Id") or ""
        covered: set[str] = set()
        props_covered = False
        missing: list[str] = []
        broken: list[str] = []
        algorithms: list[str] = []
        try:
            for ref in children(parts.signed_info, DS, "Reference"):
                uri = ref.get("URI") or ""
                algorithm = digest_name(single(ref, DS, "DigestMethod"))
                algorithms.append(algorithm)
                expected = decode(single(ref, DS, "DigestValue", required=True), "DigestValue")
                target = _data_file_id(uri, by_id)
                if target is not None:
                    covered.add(target)
                    self.result.signed_objects.append(by_id[target].get("Filename") or target)
                    found = data_file_digests(self.doc, by_id[target], algorithm, self.budget)
                    if found[:1] != [expected]:
                        if expected in found[1:] and not self.doc.sk_xml:
                            self.warn(f"Bad digest for DataFile: {target} alternate digest matches!")
                        elif expected not in found:
                            broken.append(f"Bad digest for DataFile: {target}")
                elif uri in (f"#{props_id}", props_id) and props_id.lstrip("#"):
                    props_covered = True
                    octets = signed_properties_octets(self.doc, parts.signed_properties, self.budget)
                    if _digest(algorithm, octets) != expected:
                        broken.append(f"Bad digest for SignedProperties: {props_id.lstrip('#')}")
                elif self.doc.sk_xml and uri.endswith("-MIME") and uri[1:-5] in by_id:
                    if mime_digest(by_id[uri[1:-5]], algorithm) != expected:
                        broken.append(f"Bad digest for the MimeType of DataFile: {uri[1:-5]}")
                else:
                    missing.append(f"Missing DataFile for signature: {self.result.id} reference {uri}")
        except (StructureError, FormatError) as exc:
            message = exc.message if isinstance(exc, FormatError) else str(exc)
            self.block(Block.FORMAT_CHECKING, SubIndication.FORMAT_FAILURE, f"the signature is malformed: {message}")
            return algorithms
        unsigned = [i for i in by_id if i not in covered]
        if missing:
            self.block(block, SubIndication.SIGNED_DATA_NOT_FOUND, missing[0])
        elif broken:
            self.block(block, SubIndication.HASH_FAILURE, broken[0])
        elif not signature_valid:
            self.block(block, SubIndication.SIG_CRYPTO_FAILURE, "Invalid signature value!")
        elif unsigned or not props_covered:
            what = f"DataFile {unsigned[0]}" if unsigned else "SignedProperties"
            self.block(Block.FORMAT_CHECKING, SubIndication.FORMAT_FAILURE, f"{what} is not covered by the signature")
        else:
            self.block(block, None)
        for message in broken[1:]:
            if message not in self.result.errors:
                self.result.errors.append(message)
        return algorithms

    # -- proof of existence -----------------------------------------------------------------------------
    def proof_of_existence(self, responses: list[bytes], value: bytes, signer: x509.Certificate) -> datetime:
        """The time-mark's producedAt, when the OCSP response's nonce binds this signature value."""
        at = self.options.at
        marks = [m for m in (time_mark(der, value, signer) for der in responses[:1]) if m is not None]
        self.result.ocsp_produced_at = marks
        if not responses:
            self.warn("Signature has no OCSP confirmation!")
        elif not marks:
            self.warn("OCSP response's nonce doesn't match the requests nonce!")
        best = min([at, *marks])
        self.result.best_signature_time = best if best < at else None
        self.block(Block.PROOF_OF_EXISTENCE, None,
                   f"the signature existed at {best:%Y-%m-%d %H:%M:%S} UTC (OCSP time-mark)" if best < at
                   else "nothing proves the signature existed before the validation time")
        return best

    # -- certificate validation and acceptance --------------------------------------------------------
    def spec(self, data: ValidationData) -> SignatureValidationSpec:
        knowledge = knowledge_from(data, [])
        spec = self.options.signature_spec(LocalKnowledge(known_ocsps=knowledge.known_ocsps,
                                                          known_crls=knowledge.known_crls,
                                                          known_certs=knowledge.known_certs))
        return with_backend(spec, self.backend)  # type: ignore[arg-type]

    async def certificate_validation(self, cert: x509.Certificate, candidates: list[x509.Certificate],
                                     data: ValidationData, value: bytes, best: datetime) -> None:
        data = data.merged(self.options.provided_validation_data([cert]))
        poe = POEManager(current_dt_override=self.options.at)
        check = await assess_signer(cert, self.spec(data), self.options.timing_info(),
                                    other_certs=candidates + certificates_of(data.certificates),
                                    signature_value=value, poe_manager=poe, best_signature_time=best,
                                    revocation_data=data)
        self.result.chain = check.chain
        messages = [m for m in [describe(cert, check.current)] if m]
        self.result.blocks[Block.X509_CERTIFICATE_VALIDATION] = Conclusion.of(check.sub, *messages)
        if check.sub is not None and self.outcome is None:
            self.outcome = (check.sub, check.message or describe(cert, check.sub) or check.sub.value)
        key_usage = cert.key_usage_value
        if key_usage is not None and "non_repudiation" not in key_usage.native:
            self.block(Block.SIGNATURE_ACCEPTANCE_VALIDATION, SubIndication.SIG_CONSTRAINTS_FAILURE,
                       "Signers cert does not have non-repudiation bit set!")

    def acceptance(self, method: SignatureMethod, digests: list[str], cert: x509.Certificate, best: datetime) -> None:
        """Cryptographic constraints at the best signature time, by the policy's suite; SHA-1
        past its date is DigiDoc's mandated algorithm: a warning."""
        if Block.SIGNATURE_ACCEPTANCE_VALIDATION in self.result.blocks:
            return
        policy = self.options.policy.crypto.algorithm_policy()
        checks = [(policy.signature_algorithm_allowed(method.asn1(), best, cert.public_key), method.digest,
                   f"the signature algorithm {method.asn1_name} is not accepted")]
        for name in dict.fromkeys(digests):
            checks.append((policy.digest_algorithm_allowed(algos.DigestAlgorithm({"algorithm": name}), best), name,
                           f"the digest algorithm {name} is not accepted"))
        for allowed, digest, message in checks:
            if allowed:
                continue
            if digest == "sha1" and allowed.not_allowed_after is not None and _sha1_only_refused(method, cert, best,
                                                                                                 policy):
                self.warn("The algorithm SHA1 used in DDOC is no longer considered reliable for signature creation!")
                continue
            sub = (SubIndication.CRYPTO_CONSTRAINTS_FAILURE if allowed.not_allowed_after is None
                   else SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE)
            self.block(Block.SIGNATURE_ACCEPTANCE_VALIDATION, sub, message)
            return
        self.block(Block.SIGNATURE_ACCEPTANCE_VALIDATION, None)


def _sha1_only_refused(method: SignatureMethod, cert: x509.Certificate, when: datetime, policy: object) -> bool:
    """Whether the signature would be accepted with SHA-256 instead: then only the date of SHA-1
    refuses it (the key type and size still meet the policy)."""
    stronger = dataclasses.replace(method, digest="sha256")
    return bool(policy.signature_algorithm_allowed(stronger.asn1(), when, cert.public_key))  # type: ignore[attr-defined]


def _digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def _data_file_id(uri: str, by_id: dict[str | None, etree._Element]) -> str | None:
    """The DataFile a reference URI names, as DigiDoc matches them (``#D0``, ``/D0``, ``D0``, or
    the file name)."""
    candidate = uri[1:] if uri.startswith(("#", "/")) else uri
    if candidate in by_id:
        return candidate
    names = {df.get("Filename"): i for i, df in by_id.items() if df.get("Filename")}
    return names.get(uri)
