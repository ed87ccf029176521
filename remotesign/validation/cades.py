"""CMS / CAdES signature validation (.p7s, .p7m; enveloping or detached; counter-signatures)
per ETSI EN 319 102-1, on pyHanko's AdES building blocks.

pyHanko validates one SignerInfo at a time: basic validation for signatures without a
signature time-stamp, validation with time when one is present. Everything the signature
carries (certificates, CRLs, OCSP responses, CAdES certificate-values / revocation-values) and
what the service can add goes in as local knowledge. Archive time-stamps (CAdES-A / LTA) are
reported; the imprint of archive-time-stamp-v3 (baseline LTA) is recomputed from its ATSHashIndexV3,
that of the older v1/v2 forms is not: the report says so in a warning."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, BinaryIO

from asn1crypto import cms, core, pem, x509
from pyhanko.sign.validation import errors as pyhanko_errors
from pyhanko.sign.validation.ades import ades_basic_validation, ades_with_time_validation
from pyhanko.sign.validation.generic_cms import message_imprint_checker, validate_cert_usage
from pyhanko.sign.validation.policy_decl import SignatureValidationSpec, bootstrap_validation_data_handlers
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.sig_validate import SignatureValidationContext

from remotesign.validation import cms_common as cc
from remotesign.validation.cades_ats import expected_imprint
from remotesign.validation.cms_level import CadesForms, c_form, cades_level, cades_lt_complete, timestamps_before_expiry
from remotesign.validation.cms_signature import CMS_SIGNATURE_VALIDATOR
from remotesign.validation.model import (Block, Conclusion, DocumentResult, Indication, SignatureResult,
                                         SubIndication, TimestampKind, TimestampResult, ValidationInputError)
from remotesign.validation.options import ContentOpener, ValidationOptions
from remotesign.validation.policy import ValidationPolicy, record

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: Counter-signatures nest; more than this is not a signature any more but an attack.
MAX_COUNTER_SIGNATURE_DEPTH = 4
MAX_SIGNERS = 64
#: One signature's validation must not take longer than this (network fetching included).
SIGNATURE_BUDGET_SECONDS = 300.0
_CMS_SUFFIXES = (".p7s", ".p7m", ".pkcs7", ".p7", ".cms")


# --- entry points ----------------------------------------------------------------------------------
async def validate_cms_file(path: Path, options: ValidationOptions, *, filename: str) -> DocumentResult:
    """Validate a .p7s / .p7m file; detached content comes from ``options.detached``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationInputError("invalid_document", f"The file cannot be read: {exc}.") from exc
    content, content_name = _detached_content(options, filename)
    signatures = await validate_cms(_unarmor(data), options, content=content, id_prefix="S")
    document = DocumentResult(filename=filename, signature_form="CAdES", validation_time=options.at,
                              signatures=signatures)
    if content_name:
        document.included_files.append(content_name)
        for signature in signatures:
            if signature.parent_id is None:
                signature.signed_objects.append(content_name)
    return document


async def validate_cms(cms_der: bytes, options: ValidationOptions, *, content: ContentOpener | None,
                       id_prefix: str = "S") -> list[SignatureResult]:
    """One SignatureResult per SignerInfo (ids ``{id_prefix}0``, ``{id_prefix}1``, ...) plus one
    per counter-signature (``{parent}-CS0``, ... with ``parent_id``). ``content`` opens the
    detached signed content; None for an enveloping signature or when it was not supplied."""
    signed_data = _parse_signed_data(cms_der)
    try:
        signer_infos = list(signed_data["signer_infos"])
    except Exception as exc:  # noqa: BLE001
        raise ValidationInputError("invalid_document", f"The CMS signer information cannot be read: {exc}.") from exc
    if not signer_infos:
        return []
    digests = _ContentDigests(signed_data, content)
    results: list[SignatureResult] = []
    try:
        async with cc.fetching_session(options) as backend:
            for index, signer_info in enumerate(signer_infos[:MAX_SIGNERS]):
                signature_id = f"{id_prefix}{index}"
                results.extend(await _guarded(signature_id, _validate_signer(
                    signed_data, signer_info, signature_id, options, digests, backend)))
    except Exception as exc:  # noqa: BLE001 - per-signer failures are reported; this is the rest
        log.warning("CMS validation failed", exc_info=True)
        raise ValidationInputError("invalid_document", f"The CMS signatures cannot be processed: {exc}.") from exc
    return results


async def _guarded(signature_id: str, job: Any) -> list[SignatureResult]:
    """Run one signer's validation; any failure becomes a report entry, never an exception."""
    try:
        return await asyncio.wait_for(job, SIGNATURE_BUDGET_SECONDS)  # type: ignore[no-any-return]
    except asyncio.TimeoutError:
        result = SignatureResult(signature_id, "CMS_NOT_ETSI", Indication.INDETERMINATE)
        result.conclude(SubIndication.GENERIC, "Validation of this signature took too long and was stopped.")
        return [result]
    except Exception as exc:  # noqa: BLE001 - hostile input must yield a report, not a crash
        log.warning("CMS signature %s could not be validated", signature_id, exc_info=True)
        result = SignatureResult(signature_id, "CMS_NOT_ETSI", Indication.TOTAL_FAILED)
        result.conclude(SubIndication.FORMAT_FAILURE, f"The signature structure cannot be processed: {exc}.")
        result.blocks[Block.FORMAT_CHECKING] = Conclusion.of(SubIndication.FORMAT_FAILURE, str(exc))
        return [result]


# --- input ----------------------------------------------------------------------------------------
def _unarmor(data: bytes) -> bytes:
    """DER from DER or PEM (PKCS7 / CMS armour) input."""
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"-----BEGIN"):
        try:
            _, _, der = pem.unarmor(stripped)
            return bytes(der)
        except Exception as exc:  # noqa: BLE001
            raise ValidationInputError("invalid_document", f"The PEM-armoured CMS cannot be decoded: {exc}.") from exc
    return data


def looks_like_cms(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts a DER ContentInfo of signed-data."""
    try:
        info = cms.ContentInfo.load(head, strict=False)
        return info["content_type"].dotted == "1.2.840.113549.1.7.2"
    except Exception:  # noqa: BLE001 - truncated input parses lazily; fall back to the header bytes
        marker = bytes.fromhex("06092a864886f70d010702")  # OID signed-data
        return head[:1] == b"\x30" and marker in head[:24]


def _parse_signed_data(der: bytes) -> cms.SignedData:
    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            raise ValueError(f"content type is {info['content_type'].native}, not signed-data")
        signed_data = info["content"]
        signed_data["encap_content_info"]["content_type"].native  # noqa: B018 - parse now, fail early
        return signed_data
    except ValidationInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on garbage
        raise ValidationInputError("invalid_document",
                                   f"The file is not a CMS / PKCS#7 signed-data structure: {exc}.") from exc


def _detached_content(options: ValidationOptions, filename: str) -> tuple[ContentOpener | None, str | None]:
    """The one detached document given, else the one named like the signature without its
    .p7s / .p7m suffix."""
    chosen = None
    if len(options.detached) == 1:
        chosen = options.detached[0]
    else:
        lower = filename.lower()
        for suffix in _CMS_SUFFIXES:
            if lower.endswith(suffix):
                chosen = options.detached_named(filename[: -len(suffix)])
                break
    if chosen is None:
        return None, None
    doc_path = chosen.path
    return (lambda: open(doc_path, "rb")), chosen.name


class _ContentDigests:
    """Digests of the signed content, computed once per algorithm by streaming it."""

    def __init__(self, signed_data: cms.SignedData, content: ContentOpener | None) -> None:
        self._signed_data = signed_data
        self._content = content
        self._cache: dict[str, bytes] = {}

    @property
    def enveloped(self) -> bool:
        return cc.safe(lambda: self._signed_data["encap_content_info"]["content"].native is not None) is True

    @property
    def available(self) -> bool:
        return self.enveloped or self._content is not None

    def digest(self, algorithm: str) -> bytes:
        if algorithm not in self._cache:
            hasher = cc.new_hash(algorithm)
            if self.enveloped:
                hasher.update(bytes(self._signed_data["encap_content_info"]["content"]))
            else:
                if self._content is None:
                    raise LookupError("the detached content was not supplied")
                with self._content() as stream:
                    _feed(hasher, stream)
            self._cache[algorithm] = hasher.digest()
        return self._cache[algorithm]


def _feed(hasher: Any, stream: BinaryIO) -> None:
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        hasher.update(chunk)


# --- one signer -----------------------------------------------------------------------------------
async def _validate_signer(signed_data: cms.SignedData, signer_info: cms.SignerInfo, signature_id: str,
                           options: ValidationOptions, digests: _ContentDigests,
                           backend: Any) -> list[SignatureResult]:
    result = SignatureResult(signature_id, "CMS_NOT_ETSI", Indication.INDETERMINATE)
    facts = cc.signer_facts(signer_info)
    _copy_facts(result, facts)
    timing = options.timing_info()

    material = cc.signed_data_material(signed_data, signer_info)
    tst_certs = cc.timestamp_certificates(signer_info)
    pool = list(material.certs) + tst_certs + list(options.trust_anchors)
    signer_cert = cc.find_signer_cert(signer_info, cc.sd_certificates(signed_data)) or \
        cc.find_signer_cert(signer_info, pool)
    result.signing_certificate = signer_cert
    in_signature = signer_cert is not None and any(
        c.sha256 == signer_cert.sha256 for c in cc.sd_certificates(signed_data))
    single = cc.with_single_signer(signed_data, signer_info, None if in_signature else signer_cert)

    knowledge = cc.Material()
    knowledge.extend(material)
    for cert in tst_certs:
        knowledge.add_cert(cert)
    knowledge.extend(cc.provided_material(options, cc.chains([signer_cert, *cc.tst_signers(signer_info)], pool)))
    spec = cc.make_spec(options, knowledge, backend)

    profile = cc.cms_profile(signed_data, signer_info, signer_cert)
    result.timestamps = await _timestamps(signed_data, signer_info, digests, spec, timing)
    result.signature_format = cades_level(CadesForms(
        profile, cades_lt_complete(signed_data, signer_info, signer_cert, options.trust_anchors),
        timestamps_before_expiry(signer_info, signer_cert), c_form(signed_data, signer_info)))
    _level_warnings(result, profile, any(cc.attribute_count(signer_info, oid, signed=False)
                                         for oid in (cc.ARCHIVE_TIMESTAMP_V1, cc.ARCHIVE_TIMESTAMP_V2)))

    if not cc.digest_supported(facts.digest_algorithm):
        cc.unsupported_digest(result, facts.digest_algorithm)
    elif not digests.available:
        _content_missing(result, signer_cert, pool)
    else:
        raw_digest = None if digests.enveloped else digests.digest(facts.digest_algorithm or "sha256")
        ades = await _run_ades(single, spec, timing, raw_digest, profile.signature_timestamp)
        cc.apply_ades_result(result, ades, pool)
        cc.explain_crypto_refusal(result, signer_info, options.policy, options.at)
        if result.sub_indication not in (SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE) \
                and cc.non_der_signed_attrs(signer_info, result.signing_certificate):
            cc.mark_not_intact(result, SubIndication.HASH_FAILURE, cc.NON_DER_MESSAGE)
    if signer_cert is not None and not result.chain:
        result.chain = cc.best_effort_chain(signer_cert, pool)
    result.best_signature_time = cc.best_signature_time(result.timestamps)
    result.ocsp_produced_at = cc.ocsp_produced_at(knowledge, result.chain)
    cc.timestamp_blocks(result)
    _timestamp_warnings(result, options.policy)

    results = [result]
    results.extend(await _counter_signatures(signer_info, signed_data, signature_id, options, knowledge,
                                             pool, spec, timing, depth=1))
    return results


def _copy_facts(result: SignatureResult, facts: cc.SignerFacts) -> None:
    result.claimed_signing_time = facts.signing_time
    result.commitment_types = facts.commitment_types
    result.signer_roles = facts.signer_roles
    result.production_place = facts.production_place
    result.policy_id = facts.policy_id
    result.signature_algorithm = facts.signature_algorithm


async def _timestamps(signed_data: cms.SignedData, signer_info: cms.SignerInfo, digests: _ContentDigests,
                      spec: SignatureValidationSpec, timing: ValidationTimingInfo) -> list[TimestampResult]:
    """Every time-stamp on the signature, each validated on its own for the report."""
    out: list[TimestampResult] = []
    for token in cc.timestamp_tokens(signer_info, cc.CONTENT_TIMESTAMP, signed=True):
        checker = digests.digest if digests.available else None
        out.append(await cc.validate_timestamp(
            token, TimestampKind.CONTENT, checker, spec, timing,
            unchecked_reason="The content time-stamp's imprint was not verified: the signed content was not supplied."))
    for token in cc.timestamp_tokens(signer_info, cc.SIGNATURE_TIMESTAMP, signed=False):
        out.append(await cc.validate_timestamp(token, TimestampKind.SIGNATURE, message_imprint_checker(signer_info),
                                               spec, timing))
    for oid in (cc.ESC_TIMESTAMP, cc.CERT_CRL_TIMESTAMP):
        for token in cc.timestamp_tokens(signer_info, oid, signed=False):
            out.append(await cc.validate_timestamp(
                token, TimestampKind.VALIDATION_DATA, None, spec, timing,
                unchecked_reason="The validation-data time-stamp's imprint was not recomputed (CAdES-X "
                                 "references are not verified)."))
    for token in cc.timestamp_tokens(signer_info, cc.ARCHIVE_TIMESTAMP_V3, signed=False):
        problems: list[str] = []
        checker = expected_imprint(signed_data, signer_info, token,
                                   digests.digest if digests.available else None, problems)
        stamp = await cc.validate_timestamp(token, TimestampKind.ARCHIVE, checker, spec, timing)
        if problems and stamp.valid is False:
            stamp.conclusion.messages.extend(m for m in problems if m not in stamp.conclusion.messages)
        out.append(stamp)
    for oid in (cc.ARCHIVE_TIMESTAMP_V1, cc.ARCHIVE_TIMESTAMP_V2):
        for token in cc.timestamp_tokens(signer_info, oid, signed=False):
            out.append(await cc.validate_timestamp(
                token, TimestampKind.ARCHIVE, None, spec, timing,
                unchecked_reason="The imprint of this archive time-stamp (CAdES-A v1/v2) was not recomputed; "
                                 "its token signature and TSA chain were checked."))
    return out


async def _run_ades(single: cms.SignedData, spec: SignatureValidationSpec, timing: ValidationTimingInfo,
                    raw_digest: bytes | None, timestamped: bool) -> Any:
    """pyHanko's EN 319 102-1 process for this signer: with time when a signature time-stamp is
    present (basic validation would ignore it), basic otherwise (with-time would fail a B-B)."""
    try:
        if timestamped:
            return await ades_with_time_validation(single, spec, timing_info=timing, raw_digest=raw_digest)
        return await ades_basic_validation(single, spec, timing_info=timing, raw_digest=raw_digest)
    except pyhanko_errors.SignatureValidationError as exc:
        return cc.FailedAdES(exc.ades_subindication, exc.failure_message)


def _content_missing(result: SignatureResult, signer_cert: x509.Certificate | None,
                     pool: list[x509.Certificate]) -> None:
    if signer_cert is None:
        result.conclude(SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                        cc.describe(SubIndication.NO_SIGNING_CERTIFICATE_FOUND))
        result.blocks[Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE] = Conclusion.of(
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND, cc.describe(SubIndication.NO_SIGNING_CERTIFICATE_FOUND) or "")
    else:
        result.chain = cc.best_effort_chain(signer_cert, pool)
        result.blocks[Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE] = Conclusion.passed(
            f"Signing certificate: {signer_cert.subject.human_friendly}.")
    message = "The signature is detached and its signed content was not supplied."
    result.conclude(SubIndication.SIGNED_DATA_NOT_FOUND, message)
    result.blocks[Block.FORMAT_CHECKING] = Conclusion.passed()
    result.blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.of(SubIndication.SIGNED_DATA_NOT_FOUND, message)


def _level_warnings(result: SignatureResult, profile: cc.CmsProfile, older_archive_timestamps: bool) -> None:
    if older_archive_timestamps:
        result.warnings.append(
            "Archive time-stamps of the older forms (CAdES-A v1/v2) are reported, but their message imprint over "
            "the archived data is not recomputed; long-term validity rests on the signature time-stamp and the "
            "embedded validation data.")
    if profile.complete_refs:
        result.warnings.append("CAdES-C complete certificate and revocation references are not matched "
                               "against the validation data.")


def _timestamp_warnings(result: SignatureResult, policy: ValidationPolicy) -> None:
    for stamp in result.timestamps:
        if stamp.kind is TimestampKind.CONTENT and not stamp.valid:
            record(result, policy, "timestamp.content_invalid", "A content time-stamp did not validate: "
                   + (" ".join(stamp.conclusion.messages) or stamp.conclusion.indication.value),
                   block=Block.TIME_STAMP_VALIDATION)


# --- counter-signatures ---------------------------------------------------------------------------
async def _counter_signatures(parent: cms.SignerInfo, signed_data: cms.SignedData, parent_id: str,
                              options: ValidationOptions, knowledge: cc.Material, pool: list[x509.Certificate],
                              spec: SignatureValidationSpec, timing: ValidationTimingInfo,
                              depth: int) -> list[SignatureResult]:
    if depth > MAX_COUNTER_SIGNATURE_DEPTH:
        return []
    out: list[SignatureResult] = []
    for index, value in enumerate(cc.attribute_values(parent, cc.COUNTER_SIGNATURE, signed=False)):
        signature_id = f"{parent_id}-CS{index}"
        counter = cc.safe(lambda v=value: cc.reparse(v, cms.SignerInfo))
        if counter is None:
            result = SignatureResult(signature_id, "CMS_NOT_ETSI", Indication.TOTAL_FAILED, parent_id=parent_id)
            result.conclude(SubIndication.FORMAT_FAILURE, "The counter-signature cannot be read.")
            out.append(result)
            continue
        try:
            out.append(await _validate_counter_signature(parent, counter, signed_data, signature_id, parent_id,
                                                         pool, spec, timing))
        except Exception as exc:  # noqa: BLE001
            result = SignatureResult(signature_id, "CMS_NOT_ETSI", Indication.TOTAL_FAILED, parent_id=parent_id)
            result.conclude(SubIndication.FORMAT_FAILURE, f"The counter-signature cannot be processed: {exc}.")
            out.append(result)
            continue
        out.extend(await _counter_signatures(counter, signed_data, signature_id, options, knowledge, pool,
                                             spec, timing, depth + 1))
    return out


async def _validate_counter_signature(parent: cms.SignerInfo, counter: cms.SignerInfo, signed_data: cms.SignedData,
                                      signature_id: str, parent_id: str, pool: list[x509.Certificate],
                                      spec: SignatureValidationSpec, timing: ValidationTimingInfo) -> SignatureResult:
    """A counter-signature signs the parent's signature value (RFC 5652 §11.4): check its
    message digest and signature, then its certificate; pyHanko's AdES entry points insist on
    a content-type attribute that counter-signatures must not have, hence the direct route."""
    result = SignatureResult(signature_id, "CMS_NOT_ETSI", Indication.INDETERMINATE, parent_id=parent_id)
    facts = cc.signer_facts(counter)
    _copy_facts(result, facts)
    cert = cc.find_signer_cert(counter, pool)
    result.signing_certificate = cert
    profile = cc.cms_profile(signed_data, counter, cert, counter_signature=True)
    result.signature_format = cades_level(CadesForms(profile, False, timestamps_before_expiry(counter, cert),
                                                     c_form(signed_data, counter)))
    if cert is None:
        result.conclude(SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                        cc.describe(SubIndication.NO_SIGNING_CERTIFICATE_FOUND))
        cc.fill_blocks(result, SubIndication.NO_SIGNING_CERTIFICATE_FOUND, None)
        return result
    result.blocks[Block.FORMAT_CHECKING] = Conclusion.passed()
    result.blocks[Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE] = Conclusion.passed(
        f"Signing certificate: {cert.subject.human_friendly}.")
    crypto = _counter_crypto(parent, counter, cert, facts.digest_algorithm or "sha256")
    if crypto is not None:
        result.conclude(crypto, cc.describe(crypto))
        result.blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.of(crypto, cc.describe(crypto) or "")
        result.chain = cc.best_effort_chain(cert, pool)
        return result
    result.blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.passed(
        "The counter-signature value and the digest of the countersigned signature verify.")
    sub, path = await _certificate_validation(cert, spec, timing, pool)
    result.chain = _path_chain(cert, path) or cc.best_effort_chain(cert, pool)
    result.conclude(sub, cc.describe(sub))
    result.blocks[Block.X509_CERTIFICATE_VALIDATION] = (Conclusion.passed() if sub is None
                                                        else Conclusion.of(sub, cc.describe(sub) or ""))
    if sub is None:
        result.blocks[Block.SIGNATURE_ACCEPTANCE_VALIDATION] = Conclusion.passed()
    return result


def _counter_crypto(parent: cms.SignerInfo, counter: cms.SignerInfo, cert: x509.Certificate,
                    digest_algorithm: str) -> SubIndication | None:
    """None when intact and valid, else HASH_FAILURE / SIG_CRYPTO_FAILURE / FORMAT_FAILURE."""
    expected = cc.new_hash(digest_algorithm)
    expected.update(parent["signature"].native)
    if not cc.has_signed_attrs(counter):
        signed_bytes, prehashed, digest_ok = expected.digest(), True, True
    else:
        digests = cc.attribute_values(counter, cc.MESSAGE_DIGEST, signed=True)
        if len(digests) != 1:
            return SubIndication.FORMAT_FAILURE
        digest_ok = cc.reparse(digests[0], core.OctetString).native == expected.digest()
        signed_bytes, prehashed = counter["signed_attrs"].untag().dump(), False
    try:
        CMS_SIGNATURE_VALIDATOR.validate_signature(
            counter["signature"].native, signed_bytes, cert.public_key, counter["signature_algorithm"],
            context=SignatureValidationContext(contextual_md_algorithm=digest_algorithm, prehashed=prehashed))
    except Exception:  # noqa: BLE001 - InvalidSignature or an unsupported algorithm
        return SubIndication.SIG_CRYPTO_FAILURE
    return None if digest_ok else SubIndication.HASH_FAILURE


async def _certificate_validation(cert: x509.Certificate, spec: SignatureValidationSpec,
                                  timing: ValidationTimingInfo,
                                  pool: list[x509.Certificate]) -> tuple[SubIndication | None, Any]:
    handlers = bootstrap_validation_data_handlers(spec, timing_info=timing)
    context = spec.cert_validation_policy.build_validation_context(timing_info=timing, handlers=handlers)
    context.certificate_registry.register_multiple(pool)
    outcome = await validate_cert_usage(cert, context, key_usage_settings=spec.key_usage_settings,
                                        paths=context.path_builder.async_build_paths_lazy(cert))
    path = outcome.success_result or outcome.error_path
    return cc.map_subindication(outcome.error_subindic), path


def _path_chain(cert: x509.Certificate, path: Any) -> list[x509.Certificate]:
    if path is None:
        return []
    chain = list(path.iter_certs(include_root=True))
    chain.reverse()
    if chain and chain[0].sha256 != cert.sha256:
        chain.insert(0, cert)
    return chain


__all__ = ["cades_level", "validate_cms", "validate_cms_file"]
