"""RFC 3161 time-stamp tokens judged per EN 319 102-1 §5.4 with pyHanko's
``ades_timestamp_validation`` against the imprint the *validator* recomputed, so a token copied
from another signature or document is reported invalid and never gives proof of existence.
Format independent: XAdES, CAdES and ASiC time-stamps all come through here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp, x509
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed
from pyhanko.sign.general import CMSExtractionError
from pyhanko.sign.validation import errors as pyhanko_errors
from pyhanko.sign.validation.ades import ades_past_signature_validation, ades_timestamp_validation
from pyhanko.sign.validation.policy_decl import SignatureValidationSpec
from pyhanko_certvalidator.ltv.poe import POEManager
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo

from remotesign.validation.certificates import to_subindication
from remotesign.validation.model import Conclusion, SubIndication, TimestampKind, TimestampResult

log = logging.getLogger(__name__)

#: Current-time outcomes of a time-stamp that past validation may resolve (pyHanko's
#: _LTA_TS_FURTHER_PROC).
_PAST_CANDIDATES = frozenset({
    AdESIndeterminate.REVOKED_CA_NO_POE, AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
    AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED, AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE, AdESIndeterminate.TRY_LATER,
})


class TimestampFormatError(Exception):
    """The octets are not an RFC 3161 TimeStampToken."""


@dataclass(frozen=True)
class TokenInfo:
    """What a token says, read without judging it."""

    der: bytes
    signed_data: cms.SignedData
    hash_algorithm: str
    imprint: bytes
    gen_time: datetime
    tsa_name: str | None
    certificates: tuple[x509.Certificate, ...]
    signature: bytes                     # the TSA's signature value: the token's POE handle
    signer: x509.Certificate | None      # the TSA certificate, when the token carries it


def read_token(der: bytes) -> TokenInfo:
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError("not CMS SignedData")
        signed_data = info["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise ValueError("SignedData does not encapsulate a TSTInfo")
        tst = encap["content"].parsed
        if not isinstance(tst, tsp.TSTInfo):
            raise ValueError("no TSTInfo")
        imprint = tst["message_imprint"]
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise ValueError(f"{len(signer_infos)} signer infos")
        certs = tuple(c.chosen for c in (signed_data["certificates"] or ()) if c.name == "certificate")
        signer = _signer(signer_infos[0], certs)
        tsa = tst["tsa"]
        name = signer.subject.human_friendly if signer is not None else None
        if name is None and tsa.native is not None and tsa.chosen.name == "directory_name":
            name = tsa.chosen.chosen.human_friendly
        return TokenInfo(der=der, signed_data=signed_data, hash_algorithm=imprint["hash_algorithm"]["algorithm"].native,
                         imprint=imprint["hashed_message"].native, gen_time=tst["gen_time"].native,
                         tsa_name=name, certificates=certs, signature=signer_infos[0]["signature"].native,
                         signer=signer)
    except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on malformed DER
        raise TimestampFormatError(f"not a time-stamp token ({exc})") from None


def _signer(signer_info: cms.SignerInfo, certs: tuple[x509.Certificate, ...]) -> x509.Certificate | None:
    sid = signer_info["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if cert.issuer == sid.chosen["issuer"] and cert.serial_number == sid.chosen["serial_number"].native:
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


@dataclass
class TimestampCheck:
    """A judged token: the report entry plus what POE bookkeeping needs."""

    result: TimestampResult
    token: TokenInfo | None = None

    @property
    def valid(self) -> bool:
        return self.result.valid


def _failed(kind: TimestampKind, token: TokenInfo | None, sub: SubIndication, message: str) -> TimestampCheck:
    result = TimestampResult(kind=kind, gen_time=token.gen_time if token else None,
                             message_imprint=token.imprint if token else None,
                             imprint_algorithm=token.hash_algorithm if token else None,
                             tsa_name=token.tsa_name if token else None, conclusion=Conclusion.of(sub, message))
    return TimestampCheck(result, token)


def not_validated(der: bytes, kind: TimestampKind, message: str) -> TimestampCheck:
    """A token this validator cannot judge (e.g. over explicitly included data): INDETERMINATE,
    reported with what the token says."""
    try:
        token = read_token(der)
    except TimestampFormatError as exc:
        return _failed(kind, None, SubIndication.FORMAT_FAILURE, str(exc))
    return _failed(kind, token, SubIndication.GENERIC, message)


_MESSAGES = {
    SubIndication.HASH_FAILURE: "the time-stamp does not cover this data (message imprint mismatch)",
    SubIndication.SIG_CRYPTO_FAILURE: "the time-stamp token's signature does not verify",
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND: "no certificate chain from the TSA to a trusted anchor",
    SubIndication.TRY_LATER: "no sufficiently recent revocation information for the TSA certificate",
    SubIndication.OUT_OF_BOUNDS_NO_POE: "the TSA certificate is outside its validity period and nothing proves "
                                        "the time-stamp existed within it",
}


async def validate_timestamp(der: bytes, kind: TimestampKind, expected_imprint: Callable[[str], bytes | None],
                             spec: SignatureValidationSpec, timing: ValidationTimingInfo, *,
                             poe_manager: POEManager | None = None,
                             unavailable: str = "the time-stamped data is not available") -> TimestampCheck:
    """Judge ``der``; ``expected_imprint(hash_name)`` recomputes the imprint (None when the
    stamped data cannot be rebuilt, e.g. a detached file was not supplied). With a
    ``poe_manager``, an INDETERMINATE time-stamp gets past validation with its POEs."""
    try:
        token = read_token(der)
    except TimestampFormatError as exc:
        return _failed(kind, None, SubIndication.FORMAT_FAILURE, str(exc))
    try:
        expected = expected_imprint(token.hash_algorithm)
    except ValueError as exc:
        return _failed(kind, token, SubIndication.FORMAT_FAILURE, f"time-stamp imprint cannot be computed: {exc}")
    if expected is None:
        return _failed(kind, token, SubIndication.SIGNED_DATA_NOT_FOUND, unavailable)
    try:
        outcome = await ades_timestamp_validation(token.signed_data, spec, lambda _md: expected, timing_info=timing)
        status = outcome.ades_subindic
        if status in _PAST_CANDIDATES and poe_manager is not None:
            status = await ades_past_signature_validation(token.signed_data, spec, poe_manager, status,
                                                          init_control_time=timing.validation_time)
    except pyhanko_errors.SignatureValidationError as exc:
        status = exc.ades_subindication or AdESIndeterminate.GENERIC
    except CMSExtractionError:
        return _failed(kind, token, SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                       "the time-stamp token does not carry the TSA certificate")
    except Exception as exc:  # noqa: BLE001 - malformed tokens make pyHanko raise many types
        log.info("time-stamp validation error", exc_info=exc)
        return _failed(kind, token, SubIndication.GENERIC, f"the time-stamp cannot be validated ({exc})")
    sub = None if status is AdESPassed.OK else to_subindication(status)
    if sub is not None and token.imprint != expected:
        sub = SubIndication.HASH_FAILURE
    message = None if sub is None else _MESSAGES.get(sub, f"the time-stamp is not valid ({sub.value})")
    result = TimestampResult(kind=kind, gen_time=token.gen_time, message_imprint=token.imprint,
                             imprint_algorithm=token.hash_algorithm, tsa_name=token.tsa_name,
                             conclusion=Conclusion.of(sub, *([message] if message else [])))
    return TimestampCheck(result, token)
