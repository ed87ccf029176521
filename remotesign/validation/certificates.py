"""The signer's certificate: path building, revocation and proof of existence (EN 319 102-1
§5.2.6 X.509 validation, §5.5 validation with time, §5.6.2.4 past signature validation),
independent of the signature format.

pyHanko implements these steps for CMS ``SignedData`` only; a XAdES (or JAdES) signature has a
bare certificate and a signature value. This module replays pyHanko's logic
(``ades._scoped_ades_with_time_validation`` and ``ades._ades_past_signature_validation``) on
those, using the same pyhanko-certvalidator building blocks, so every format reaches the same
decision for the same certificate, revocation data and time evidence."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp, x509
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation.generic_cms import handle_certvalidator_errors, validate_cert_usage
from pyhanko.sign.validation.policy_decl import (LocalKnowledge, SignatureValidationSpec,
                                                 bootstrap_validation_data_handlers)
from pyhanko_certvalidator.authority import Authority, CertTrustAnchor, TrustAnchor
from pyhanko_certvalidator.context import CertValidationPolicySpec, ValidationDataHandlers
from pyhanko_certvalidator.errors import PathError
from pyhanko_certvalidator.ltv.ades_past import past_validate
from pyhanko_certvalidator.ltv.poe import POEManager, POEType, digest_for_poe
from pyhanko_certvalidator.ltv.time_slide import ades_gather_prima_facie_revinfo
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import RevocationCheckingRule
from pyhanko_certvalidator.registry import PathBuilder, TrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from remotesign.formats.base import ValidationData
from remotesign.validation.model import SubIndication

log = logging.getLogger(__name__)

#: Current-time outcomes that time evidence may still turn into a pass (pyHanko's
#: _WITH_TIME_FURTHER_PROC / _LTA_FURTHER_PROC).
PAST_VALIDATION_CANDIDATES = frozenset({
    SubIndication.REVOKED_NO_POE, SubIndication.REVOKED_CA_NO_POE, SubIndication.OUT_OF_BOUNDS_NO_POE,
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED, SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    SubIndication.TRY_LATER,
})


def to_subindication(value: object) -> SubIndication | None:
    """Our sub-indication for a pyHanko AdES status (None for PASSED)."""
    if value is None or value is AdESPassed.OK:
        return None
    name = getattr(value, "name", str(value))
    if name == "REVOCATION_OUT_OF_BOUNDS_NO_POE":  # EN 319 102-1 v1.1.1 folds it into OUT_OF_BOUNDS
        return SubIndication.OUT_OF_BOUNDS_NO_POE
    try:
        return SubIndication[name]
    except KeyError:
        return SubIndication.GENERIC


def _messages(cert: x509.Certificate) -> dict[SubIndication, str]:
    subject = cert.subject.human_friendly
    validity = cert["tbs_certificate"]["validity"]
    period = f"{validity['not_before'].native:%Y-%m-%d} to {validity['not_after'].native:%Y-%m-%d}"
    return {
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND: f"no certificate chain from '{subject}' to a trusted anchor",
        SubIndication.REVOKED_NO_POE: f"the certificate '{subject}' is revoked and nothing proves the signature "
                                      "existed before the revocation",
        SubIndication.REVOKED_CA_NO_POE: f"a CA certificate in the chain of '{subject}' is revoked",
        SubIndication.REVOKED: f"the certificate '{subject}' was revoked before the signature existed",
        SubIndication.OUT_OF_BOUNDS_NO_POE: f"the certificate '{subject}' is valid from {period}; nothing proves "
                                            "the signature existed within that period",
        SubIndication.NOT_YET_VALID: f"the signature existed before the certificate '{subject}' was valid ({period})",
        SubIndication.TRY_LATER: f"no sufficiently recent revocation information for the chain of '{subject}'",
        SubIndication.CRYPTO_CONSTRAINTS_FAILURE: f"the chain of '{subject}' uses an algorithm that is not accepted",
        SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE: f"the chain of '{subject}' uses an algorithm that is no "
                                                         "longer accepted, and nothing proves it was used in time",
        SubIndication.CHAIN_CONSTRAINTS_FAILURE: f"the chain of '{subject}' violates a certificate constraint",
        SubIndication.NO_POE: f"no proof of existence for the validation data of '{subject}'",
    }


def describe(cert: x509.Certificate, sub: SubIndication | None) -> str | None:
    if sub is None:
        return None
    return _messages(cert).get(sub, f"the certificate chain of '{cert.subject.human_friendly}' could not be "
                                    f"validated ({sub.value})")


@dataclass(frozen=True)
class CertificateCheck:
    """Outcome of validating one certificate; ``current`` is the outcome at the validation time
    before any time evidence was applied."""

    sub: SubIndication | None
    message: str | None = None
    path: ValidationPath | None = None
    revocation_date: datetime | None = None
    current: SubIndication | None = None

    @property
    def passed(self) -> bool:
        return self.sub is None

    @property
    def chain(self) -> list[x509.Certificate]:
        """Leaf first, trust anchor last."""
        if self.path is None:
            return []
        return list(reversed(list(self.path.iter_certs(include_root=True))))


# -- local knowledge --------------------------------------------------------------------------------

def _certificates(ders: Iterable[bytes], problems: list[str]) -> list[x509.Certificate]:
    out = []
    for der in ders:
        try:
            cert = x509.Certificate.load(der, strict=True)
            cert.native  # noqa: B018 - parse fully now; a lazy failure inside pyHanko is worse
        except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on garbage
            problems.append(f"an embedded certificate cannot be parsed ({type(exc).__name__})")
            continue
        out.append(cert)
    return out


def _without_unreadable_certs(response: asn1_ocsp.OCSPResponse, problems: list[str]) -> asn1_ocsp.OCSPResponse:
    """``response`` without the certificates in its ``certs`` field that cannot be parsed (they
    are outside what the responder signs, so the response itself is unchanged; pyHanko would
    fail on them lazily, deep inside path building)."""
    basic = response.basic_ocsp_response
    certs = basic["certs"]
    if not certs:
        return response
    kept = []
    for cert in certs:
        try:
            cert.native  # noqa: B018
            kept.append(x509.Certificate.load(cert.dump()))
        except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on garbage
            problems.append(f"a certificate in an OCSP response cannot be parsed ({type(exc).__name__})")
    if len(kept) == len(certs):
        return response
    rebuilt = asn1_ocsp.BasicOCSPResponse({"tbs_response_data": basic["tbs_response_data"].copy(),
                                           "signature_algorithm": basic["signature_algorithm"].copy(),
                                           "signature": basic["signature"].copy(), "certs": kept})
    return asn1_ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": rebuilt}})


def knowledge_from(data: ValidationData, problems: list[str] | None = None) -> LocalKnowledge:
    """Certificates, OCSP responses and CRLs (DER) as pyHanko local knowledge; unreadable items
    are skipped and described in ``problems``."""
    problems = problems if problems is not None else []
    ocsps: list[OCSPContainer] = []
    for der in data.ocsp_responses:
        try:
            response = asn1_ocsp.OCSPResponse.load(der, strict=True)
            # Not .native: BDOC responders encode the nonce extension in a way asn1crypto refuses,
            # and nothing here needs the extensions.
            response.basic_ocsp_response["tbs_response_data"]["responses"].native  # noqa: B018
            ocsps.extend(OCSPContainer.load_multi(_without_unreadable_certs(response, problems)))
        except Exception as exc:  # noqa: BLE001
            problems.append(f"an embedded OCSP response cannot be used ({type(exc).__name__})")
    crls: list[CRLContainer] = []
    for der in data.crls:
        try:
            crl = asn1_crl.CertificateList.load(der, strict=True)
            crl.native  # noqa: B018
            crls.append(CRLContainer(crl))
        except Exception as exc:  # noqa: BLE001
            problems.append(f"an embedded CRL cannot be parsed ({type(exc).__name__})")
    return LocalKnowledge(known_ocsps=ocsps, known_crls=crls, known_certs=_certificates(data.certificates, problems))


def certificates_of(ders: Sequence[bytes]) -> list[x509.Certificate]:
    return _certificates(ders, [])


# -- validation at the validation time ----------------------------------------------------------------

async def validate_at_time(cert: x509.Certificate, spec: SignatureValidationSpec, timing: ValidationTimingInfo,
                           other_certs: Sequence[x509.Certificate] = ()) -> CertificateCheck:
    """X.509 validation of ``cert`` (path, revocation, key usage) at ``timing.validation_time``."""
    handlers = bootstrap_validation_data_handlers(spec, timing_info=timing)
    context = spec.cert_validation_policy.build_validation_context(timing_info=timing, handlers=handlers)
    context.certificate_registry.register_multiple(list(other_certs))
    try:
        paths = context.path_builder.async_build_paths_lazy(cert)
        result = await validate_cert_usage(cert, context, key_usage_settings=spec.key_usage_settings, paths=paths)
    except (ValueError, PathError) as exc:
        log.info("certificate validation error: %s", exc)
        return CertificateCheck(SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE,
                                f"certificate validation failed: {exc}",
                                current=SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE)
    sub = to_subindication(result.error_subindic)
    if result.success_result is not None:
        sub = None
    revocation = result.revo_details.revocation_date if result.revo_details else None
    return CertificateCheck(sub, describe(cert, sub), result.success_result or result.error_path, revocation, sub)


def apply_best_signature_time(check: CertificateCheck, cert: x509.Certificate,
                              best_signature_time: datetime) -> CertificateCheck:
    """EN 319 102-1 §5.5.4 as pyHanko applies it: a revocation after the best signature time
    no longer stands against the signature; a signature older than its certificate fails.

    Unlike pyHanko's with-time step, an expired certificate is *not* passed on the POE alone:
    certvalidator reports the expiry before it looks at revocation data, so that shortcut would
    accept a certificate whose revocation status was never established (an OCSP response from
    an expired responder, say). Past signature validation decides it instead, with the
    revocation data evaluated at the time of the POE."""
    validity = cert["tbs_certificate"]["validity"]
    if check.sub is SubIndication.REVOKED_NO_POE and check.revocation_date is not None:
        if best_signature_time < check.revocation_date:
            return replace(check, sub=None, message=None)
    elif check.sub is SubIndication.OUT_OF_BOUNDS_NO_POE:
        if best_signature_time < validity["not_before"].native:
            return replace(check, sub=SubIndication.NOT_YET_VALID, message=describe(cert, SubIndication.NOT_YET_VALID))
    return check


# -- past signature validation ------------------------------------------------------------------------

class _TrustNoOne(TrustManager):
    """Lets the registry enumerate candidate issuers without deciding trust."""

    def find_potential_issuers(self, cert: x509.Certificate) -> Iterator[TrustAnchor]:
        return iter(())

    def as_trust_anchor(self, authority: Authority) -> TrustAnchor | None:
        return None


async def _leaf_revinfo_with_poe(cert: x509.Certificate, handlers: ValidationDataHandlers, control_time: datetime,
                                 rule: RevocationCheckingRule) -> bool:
    """True when revocation information for ``cert`` exists whose issuer certificate has POE
    before the certificate's expiry (pyHanko's _find_revinfo_data_for_leaf_in_past)."""
    poe_manager = handlers.poe_manager
    not_after = cert["tbs_certificate"]["validity"]["not_after"].native
    issuers = list(handlers.cert_registry.find_potential_issuers(cert=cert, trust_manager=_TrustNoOne()))

    async def gather(issuer: x509.Certificate) -> tuple[list, list]:
        path = ValidationPath(trust_anchor=CertTrustAnchor(issuer), interm=[], leaf=cert)
        try:
            return await ades_gather_prima_facie_revinfo(path=path, revinfo_manager=handlers.revinfo_manager,
                                                         control_time=control_time, revocation_checking_rule=rule)
        except Exception as exc:  # noqa: BLE001 - revinfo for a wrong candidate issuer is just no revinfo
            log.info("no revocation information via %s: %s", issuer.subject.human_friendly, exc)
            return [], []

    usable = False
    evict: set[bytes] = set()
    for crls, ocsps in await asyncio.gather(*(gather(i) for i in issuers)):
        for crl in crls:
            if any(poe_manager[p.path.leaf] <= not_after for p in crl.prov_paths):
                usable = True
            else:
                evict.add(crl.crl.crl_data.dump())
        for response in ocsps:
            if poe_manager[response.prov_path.leaf] <= not_after:
                usable = True
            else:
                evict.add(response.ocsp_response.ocsp_response_data.dump())
    if usable and evict:
        digests = {digest_for_poe(d) for d in evict}
        handlers.revinfo_manager.evict_crls(digests)
        handlers.revinfo_manager.evict_ocsps(digests)
    return usable


async def validate_in_past(cert: x509.Certificate, spec: SignatureValidationSpec, poe_manager: POEManager,
                           signature_value: bytes, check: CertificateCheck, control_time: datetime,
                           other_certs: Sequence[x509.Certificate] = ()) -> CertificateCheck:
    """EN 319 102-1 §5.6.2.4 past signature validation of a signer certificate whose current
    outcome is ``check``, with the POEs known to ``poe_manager`` (signature value included)."""
    if check.current not in PAST_VALIDATION_CANDIDATES and check.sub not in PAST_VALIDATION_CANDIDATES:
        return check
    current = check.sub or check.current
    handlers = bootstrap_validation_data_handlers(spec, is_historical=True, poe_manager_override=poe_manager)
    handlers.cert_registry.register_multiple(list(other_certs))
    best_signature_time = poe_manager[signature_value]
    policy = spec.cert_validation_policy
    rule = policy.revinfo_policy.revocation_checking_policy.ee_certificate_rule
    try:
        has_revinfo = await _leaf_revinfo_with_poe(cert, handlers, control_time, rule)
        found = await _past_path(cert, policy, handlers)
    except Exception as exc:  # noqa: BLE001 - certvalidator raises many types on odd data
        log.info("past certificate validation error: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return check
    log.debug("past validation of %s: revinfo=%s path=%s best=%s", cert.subject.human_friendly, has_revinfo,
              found, best_signature_time)
    if isinstance(found, SubIndication):
        log.info("past validation of %s failed: %s", cert.subject.human_friendly, found.value)
        return check
    path, validation_time = found
    validity = cert["tbs_certificate"]["validity"]
    passed = False
    if best_signature_time <= validation_time:
        if current in (SubIndication.REVOKED_NO_POE, SubIndication.TRY_LATER):
            passed = has_revinfo
        elif current in (SubIndication.REVOKED_CA_NO_POE, SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE):
            passed = True
        elif current in (SubIndication.OUT_OF_BOUNDS_NO_POE, SubIndication.OUT_OF_BOUNDS_NOT_REVOKED):
            if best_signature_time < validity["not_before"].native:
                return replace(check, sub=SubIndication.NOT_YET_VALID, path=path,
                               message=describe(cert, SubIndication.NOT_YET_VALID))
            passed = best_signature_time <= validity["not_after"].native and has_revinfo
    if passed:
        return replace(check, sub=None, message=None, path=path)
    return check


async def _past_path(cert: x509.Certificate, policy: CertValidationPolicySpec,
                     handlers: ValidationDataHandlers) -> tuple[ValidationPath, datetime] | SubIndication:
    """First candidate path that passes past validation, with its validation time."""
    builder = PathBuilder(trust_manager=policy.trust_manager, registry=handlers.cert_registry)
    paths = builder.async_build_paths_lazy(cert)
    last: SubIndication | None = None
    try:
        async for candidate in paths:
            result = await handle_certvalidator_errors(
                cert=cert, coro=past_validate(path=candidate, validation_policy_spec=policy,
                                              validation_data_handlers=handlers, init_control_time=None))
            if result.error_subindic is None and result.success_result is not None:
                return candidate, result.success_result
            last = to_subindication(result.error_subindic)
    finally:
        await paths.cancel()
    return last or SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def revocation_times(cert: x509.Certificate, ocsp_ders: Sequence[bytes], crl_ders: Sequence[bytes]) -> list[datetime]:
    """When revocation data about ``cert`` was issued (OCSP thisUpdate for its serial, CRLs of
    its issuer), oldest first."""
    times: set[datetime] = set()
    for der in ocsp_ders:
        try:
            data = asn1_ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]
            for single in data["responses"]:
                cert_id = single["cert_id"]
                if (cert_id["serial_number"].native == cert.serial_number and cert_id["issuer_name_hash"].native
                        == _name_hash(cert.issuer, cert_id["hash_algorithm"]["algorithm"].native)):
                    times.add(single["this_update"].native)
        except Exception:  # noqa: BLE001 - unreadable data gives no time
            continue
    for der in crl_ders:
        try:
            tbs = asn1_crl.CertificateList.load(der)["tbs_cert_list"]
            if tbs["issuer"].hashable == cert.issuer.hashable:
                times.add(tbs["this_update"].native)
        except Exception:  # noqa: BLE001
            continue
    return sorted(times)


async def validate_when_revocation_issued(cert: x509.Certificate, spec: SignatureValidationSpec,
                                          best_signature_time: datetime, data: ValidationData,
                                          other_certs: Sequence[x509.Certificate] = ()) -> CertificateCheck | None:
    """Point-in-time validation at the moment the embedded revocation data was issued, for a
    signature proven to exist before it: if the chain was valid and unrevoked then, a later
    expiry or stale data does not count against the signature. Used when pyhanko-certvalidator's
    past validation cannot evaluate the chain (it fails on OCSP responders that are trust anchors
    rather than delegated by the issuing CA)."""
    # Revocation times have whole seconds; data produced in the same second as the time-stamp counts.
    earliest = best_signature_time - timedelta(seconds=1)
    for when in [t for t in revocation_times(cert, data.ocsp_responses, data.crls) if t >= earliest][:3]:
        when = max(when, best_signature_time)
        timing = ValidationTimingInfo(validation_time=when, best_signature_time=best_signature_time,
                                      point_in_time_validation=True)
        check = await validate_at_time(cert, spec, timing, other_certs)
        if check.passed:
            return check
    return None


async def assess_signer(cert: x509.Certificate, spec: SignatureValidationSpec, timing: ValidationTimingInfo, *,
                        other_certs: Sequence[x509.Certificate] = (), signature_value: bytes,
                        poe_manager: POEManager, best_signature_time: datetime,
                        revocation_data: ValidationData = ValidationData()) -> CertificateCheck:
    """The whole time-aware certificate decision for a signer: at the validation time, then
    with the best signature time, then (if still open) past validation with all POEs."""
    check = await validate_at_time(cert, spec, timing, other_certs)
    if check.passed:
        return check
    check = apply_best_signature_time(check, cert, best_signature_time)
    if check.passed or check.sub not in PAST_VALIDATION_CANDIDATES:
        return check
    poe_manager.register(signature_value, POEType.VALIDATION, best_signature_time)
    past = await validate_in_past(cert, spec, poe_manager, signature_value, check, timing.validation_time,
                                  other_certs)
    if past.passed or check.sub not in (SubIndication.OUT_OF_BOUNDS_NO_POE, SubIndication.TRY_LATER):
        return past
    then = await validate_when_revocation_issued(cert, spec, best_signature_time, revocation_data, other_certs)
    if then is None:
        return past
    return replace(then, current=check.current)


# -- revocation coverage (level detection) ------------------------------------------------------------

def _issuer_in(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for candidate in pool:
        if candidate.subject.hashable != cert.issuer.hashable or candidate.dump() == cert.dump():
            continue
        try:
            aki, ski = cert.authority_key_identifier, candidate.key_identifier
        except ValueError:  # an extension that does not parse names no key
            aki = ski = None
        if aki is not None and ski is not None and aki != ski:
            continue
        return candidate
    return None


def _ocsp_subjects(ocsp_ders: Sequence[bytes]) -> tuple[set[tuple[int, bytes, str]], list[x509.Certificate]]:
    """(serial, issuer name hash, hash algorithm) of every SingleResponse, and responder certificates."""
    covered: set[tuple[int, bytes, str]] = set()
    responders: list[x509.Certificate] = []
    for der in ocsp_ders:
        try:
            basic = asn1_ocsp.OCSPResponse.load(der).basic_ocsp_response
            for single in basic["tbs_response_data"]["responses"]:
                cert_id = single["cert_id"]
                covered.add((cert_id["serial_number"].native, cert_id["issuer_name_hash"].native,
                             cert_id["hash_algorithm"]["algorithm"].native))
            responders.extend(basic["certs"] or ())
        except Exception:  # noqa: BLE001 - an unreadable response covers nothing
            continue
    return covered, responders


def _name_hash(name: x509.Name, algorithm: str) -> bytes | None:
    try:
        return hashlib.new(algorithm, name.dump()).digest()
    except ValueError:
        return None


def uncovered_certificates(leaves: Sequence[x509.Certificate], pool: Sequence[x509.Certificate],
                           ocsp_ders: Sequence[bytes], crl_ders: Sequence[bytes],
                           trusted: Callable[[x509.Certificate], bool]) -> list[x509.Certificate]:
    """Certificates in the chains of ``leaves`` (and of the OCSP responders) that need revocation
    data and have none among ``ocsp_ders`` / ``crl_ders``: what EU DSS checks before it calls a
    signature LT. Trusted and self-signed certificates and ocsp-nocheck responders need none."""
    covered, responders = _ocsp_subjects(ocsp_ders)
    crl_issuers = set()
    for der in crl_ders:
        try:
            crl_issuers.add(asn1_crl.CertificateList.load(der)["tbs_cert_list"]["issuer"].hashable)
        except Exception:  # noqa: BLE001
            continue
    pool = [*pool, *responders]
    missing: list[x509.Certificate] = []
    seen: set[bytes] = set()
    todo = [*leaves, *responders]
    while todo:
        cert = todo.pop()
        der = cert.dump()
        if der in seen:
            continue
        seen.add(der)
        if cert.self_signed != "no" or trusted(cert):
            continue
        issuer = _issuer_in(cert, pool)
        if issuer is not None:
            todo.append(issuer)
        try:
            no_check = cert.ocsp_no_check_value is not None
        except ValueError:  # an extension that does not parse
            no_check = False
        if no_check:
            continue
        has_ocsp = any(serial == cert.serial_number and name_hash == _name_hash(cert.issuer, algo)
                       for serial, name_hash, algo in covered)
        if not has_ocsp and cert.issuer.hashable not in crl_issuers:
            missing.append(cert)
    return missing
