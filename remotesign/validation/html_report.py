"""The validation report people read: HTML (and a PDF of it) with the verdict first, then per
signature who signed, what the signature covers, its time line, the certificate chain up to the
trust anchor with the certificate's qualification, and every failed or warned check with the
EN 319 102-1 building block it belongs to.

Built from the same :class:`DocumentResult` as the JSON reports, so both say the same. The page is
one self-contained file (styles inline, no scripts, no remote resources): it opens offline, prints,
and is what the PDF is made from (WeasyPrint, imported only when a PDF is asked for).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from typing import Any

from asn1crypto import x509

from remotesign.validation.model import (Block, CertificateQualification, DocumentResult, Indication, SignatureResult,
                                         SubIndication, TimestampKind)

#: EN 319 102-1 clause and a reader's name of each building block
BLOCKS: dict[Block, tuple[str, str]] = {
    Block.FORMAT_CHECKING: ("5.2.2", "Format checking"),
    Block.IDENTIFICATION_OF_SIGNING_CERTIFICATE: ("5.2.3", "Identification of the signing certificate"),
    Block.X509_CERTIFICATE_VALIDATION: ("5.2.6", "X.509 certificate validation"),
    Block.CRYPTOGRAPHIC_VERIFICATION: ("5.2.7", "Cryptographic verification"),
    Block.SIGNATURE_ACCEPTANCE_VALIDATION: ("5.2.8", "Signature acceptance validation"),
    Block.TIME_STAMP_VALIDATION: ("5.4", "Time-stamp validation"),
    Block.PROOF_OF_EXISTENCE: ("5.6.2", "Past signature validation (proof of existence)"),
}

#: What each sub-indication means, in words (EN 319 102-1 Table 6)
MEANINGS: dict[SubIndication, str] = {
    SubIndication.FORMAT_FAILURE: "The signature or the document is not in a form the standard allows (or was "
                                  "changed in a way the signature does not permit).",
    SubIndication.HASH_FAILURE: "What is signed has changed: a signed document or part of it does not match the "
                                "digest in the signature.",
    SubIndication.SIG_CRYPTO_FAILURE: "The signature value does not verify with the signer's public key.",
    SubIndication.REVOKED: "The signer's certificate was revoked before the signature was proven to exist.",
    SubIndication.SIG_CONSTRAINTS_FAILURE: "A property of the signature does not meet the validation policy.",
    SubIndication.CHAIN_CONSTRAINTS_FAILURE: "The certificate chain does not meet the validation policy.",
    SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE: "The certificate chain could not be validated (e.g. no usable "
                                                     "revocation data).",
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE: "An algorithm or key size is no longer considered secure.",
    SubIndication.EXPIRED: "The signer's certificate had expired before the signature was proven to exist.",
    SubIndication.NOT_YET_VALID: "The signing time is before the signer's certificate became valid.",
    SubIndication.POLICY_PROCESSING_ERROR: "The signature policy could not be processed.",
    SubIndication.SIGNATURE_POLICY_NOT_AVAILABLE: "The signature policy the signature names is not available.",
    SubIndication.TIMESTAMP_ORDER_FAILURE: "The time-stamps are not in the order the format requires.",
    SubIndication.NO_SIGNING_CERTIFICATE_FOUND: "The signer's certificate could not be found or identified.",
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND: "No chain from the signer's certificate to a trusted anchor was "
                                              "found.",
    SubIndication.REVOKED_NO_POE: "The signer's certificate is revoked and the signature is not proven to exist "
                                  "before that.",
    SubIndication.REVOKED_CA_NO_POE: "A certificate of the chain is revoked and the signature is not proven to "
                                     "exist before that.",
    SubIndication.OUT_OF_BOUNDS_NO_POE: "The signer's certificate is expired or not yet valid at the validation "
                                        "time, and the signature is not proven to exist within its validity.",
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED: "The signer's certificate is expired but was not revoked; the signature "
                                             "is not proven to exist within its validity.",
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE: "An algorithm is no longer secure and the signature is not proven "
                                                     "to exist before that.",
    SubIndication.NO_POE: "A proof that the signature existed at a given time is missing.",
    SubIndication.TRY_LATER: "Revocation information is not available yet; validate again later.",
    SubIndication.SIGNED_DATA_NOT_FOUND: "The signed data could not be found (a detached document is missing, or "
                                         "a reference points nowhere).",
    SubIndication.GENERIC: "The signature could not be validated.",
}

QUALIFICATIONS: dict[CertificateQualification, str] = {
    CertificateQualification.QC_FOR_ESIG_QSCD: "Qualified certificate for electronic signatures, key on a QSCD",
    CertificateQualification.QC_FOR_ESEAL_QSCD: "Qualified certificate for electronic seals, key on a QSCD",
    CertificateQualification.QC_QSCD: "Qualified certificate, key on a QSCD",
    CertificateQualification.QC_FOR_ESIG: "Qualified certificate for electronic signatures",
    CertificateQualification.QC_FOR_ESEAL: "Qualified certificate for electronic seals",
    CertificateQualification.QC: "Qualified certificate",
    CertificateQualification.NOT_QC_FOR_ESIG: "Not a qualified certificate (electronic signatures)",
    CertificateQualification.NOT_QC_FOR_ESEAL: "Not a qualified certificate (electronic seals)",
    CertificateQualification.NOT_QC: "Not a qualified certificate",
    CertificateQualification.UNKNOWN: "Not established (the issuer is on no trusted list the validator has)",
}

TIMESTAMP_KINDS = {TimestampKind.CONTENT: "Content time-stamp", TimestampKind.SIGNATURE: "Signature time-stamp",
                   TimestampKind.VALIDATION_DATA: "Validation-data time-stamp",
                   TimestampKind.ARCHIVE: "Archive time-stamp", TimestampKind.DOCUMENT: "Document time-stamp",
                   TimestampKind.CONTAINER: "Time-stamp of the container (time assertion)"}

#: words that tell which building block a finding without one belongs to, most specific first
_KEYWORDS: tuple[tuple[Block, tuple[str, ...]], ...] = (
    (Block.TIME_STAMP_VALIDATION, ("time-stamp", "timestamp", "tsa")),
    (Block.CRYPTOGRAPHIC_VERIFICATION, ("digest", "hash", "intact", "reference", "signature value", "does not verify",
                                        "signed data", "byte range", "detached")),
    (Block.X509_CERTIFICATE_VALIDATION, ("certificate", "chain", "revocation", "revoked", "ocsp", "crl", "trust",
                                         "expired", "anchor", "issuer")),
    (Block.SIGNATURE_ACCEPTANCE_VALIDATION, ("algorithm", "key size", "sha-1", "sha1", "policy", "signing time",
                                             "commitment", "role", "bits")),
    (Block.FORMAT_CHECKING, ("format", "structure", "container", "mimetype", "manifest", "pdf", "revision", "page",
                             "form field", "annotation", "xml", "asn.1", "der", "changed")),
)


@dataclass(frozen=True)
class Finding:
    """One failed, warned or noted check, with the building block it belongs to."""

    severity: str  # error | warning | note
    block: Block
    message: str

    @property
    def clause(self) -> str:
        return BLOCKS[self.block][0]

    @property
    def block_name(self) -> str:
        return BLOCKS[self.block][1]


def block_of(message: str, blocks: dict[Block, Any]) -> Block:
    """The building block a finding belongs to: the one whose conclusion carries it, else the
    first whose words it uses, else signature acceptance validation."""
    for block, conclusion in blocks.items():
        if any(message == m or (m and m in message) for m in conclusion.messages):
            return block
    lowered = message.lower()
    for block, words in _KEYWORDS:
        if any(w in lowered for w in words):
            return block
    return Block.SIGNATURE_ACCEPTANCE_VALIDATION


def findings(signature: SignatureResult) -> list[Finding]:
    out = []
    for severity, messages in (("error", signature.errors), ("warning", signature.warnings),
                               ("note", signature.infos)):
        for message in messages:
            out.append(Finding(severity, block_of(message, signature.blocks), message))
    return out


def _time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _name_attr(name: x509.Name, *wanted: str) -> str | None:
    for rdn in name.chosen:
        for attr in rdn:
            if attr["type"].native in wanted or attr["type"].dotted in wanted:
                value = attr["value"].native
                return value if isinstance(value, str) else str(value)
    return None


def _certificate(cert: x509.Certificate, role: str) -> dict[str, Any]:
    validity = cert["tbs_certificate"]["validity"]
    return {"role": role, "subject": cert.subject.human_friendly, "issuer": cert.issuer.human_friendly,
            "common_name": _name_attr(cert.subject, "common_name") or cert.subject.human_friendly,
            "serial": format(cert.serial_number, "X"), "not_before": _time(validity["not_before"].native),
            "not_after": _time(validity["not_after"].native), "sha256": cert.sha256.hex(),
            "self_signed": cert.self_signed in ("maybe", "yes")}


def _chain(signature: SignatureResult) -> list[dict[str, Any]]:
    chain = signature.chain or ([signature.signing_certificate] if signature.signing_certificate else [])
    out = []
    for n, cert in enumerate(chain):
        if n == 0:
            role = "signer"
        elif n == len(chain) - 1 and signature.chain and signature.sub_indication not in (
                SubIndication.NO_CERTIFICATE_CHAIN_FOUND,):
            role = "trust anchor"
        else:
            role = "intermediate CA"
        out.append(_certificate(cert, role))
    return out


def _timeline(signature: SignatureResult, validation_time: datetime) -> list[dict[str, Any]]:
    events: list[tuple[datetime, str, str, str]] = []
    cert = signature.signing_certificate
    if cert is not None:
        validity = cert["tbs_certificate"]["validity"]
        events.append((validity["not_before"].native, "Signer's certificate becomes valid", "", "info"))
        events.append((validity["not_after"].native, "Signer's certificate expires", "", "info"))
    if signature.claimed_signing_time:
        events.append((signature.claimed_signing_time, "Signing time claimed by the signer",
                       "stated in the signature, not proven by itself", "info"))
    for stamp in signature.timestamps:
        if stamp.gen_time is None:
            continue
        status = "ok" if stamp.valid else "bad"
        verdict = stamp.conclusion.indication.value + (
            f" / {stamp.conclusion.sub_indication.value}" if stamp.conclusion.sub_indication else "")
        detail = f"by {stamp.tsa_name}; {verdict}" if stamp.tsa_name else verdict
        events.append((stamp.gen_time, TIMESTAMP_KINDS.get(stamp.kind, stamp.kind.value), detail, status))
    for produced in signature.ocsp_produced_at:
        events.append((produced, "Revocation status confirmed (OCSP response produced)", "", "ok"))
    if signature.best_signature_time:
        events.append((signature.best_signature_time, "Best signature time",
                       "the earliest time the signature is proven to have existed", "key"))
    events.append((validation_time, "Validation time", "when this report was made", "info"))
    events.sort(key=lambda e: e[0].astimezone(timezone.utc) if e[0].tzinfo else e[0].replace(tzinfo=timezone.utc))
    return [{"time": _time(t), "event": what, "detail": detail, "status": status} for t, what, detail, status in events]


def verdict_of(indication: Indication | None) -> tuple[str, str]:
    """(css class, words) of an indication; None: no signature at all."""
    if indication is Indication.TOTAL_PASSED:
        return "passed", "Valid"
    if indication is Indication.TOTAL_FAILED:
        return "failed", "Not valid"
    if indication is Indication.INDETERMINATE:
        return "indeterminate", "Cannot be confirmed"
    return "failed", "No signature"


def overall(document: DocumentResult) -> Indication | None:
    """The file's verdict: failed if any signature (or, in a container of time assertions, any
    time-stamp) failed, indeterminate if any is, else passed."""
    found = {s.indication for s in document.signatures} or {t.conclusion.indication for t in document.timestamps}
    for worst in (Indication.TOTAL_FAILED, Indication.INDETERMINATE, Indication.TOTAL_PASSED):
        if worst in found:
            return worst
    return None


def _signature(signature: SignatureResult, n: int, validation_time: datetime) -> dict[str, Any]:
    css, words = verdict_of(signature.indication)
    cert = signature.signing_certificate
    identifier = None
    if cert is not None:
        identifier = _name_attr(cert.subject, "serial_number", "2.5.4.97", "organization_identifier")
    ranges = [{"start": start, "end": start + length - 1, "length": length}
              for start, length in signature.signed_byte_ranges]
    return {
        "number": n, "id": signature.id, "css": css, "verdict": words,
        "indication": signature.indication.value,
        "sub_indication": signature.sub_indication.value if signature.sub_indication else None,
        "meaning": MEANINGS.get(signature.sub_indication) if signature.sub_indication else None,
        "signer": _name_attr(cert.subject, "common_name") if cert is not None else None,
        "subject": cert.subject.human_friendly if cert is not None else None, "identifier": identifier,
        "format": signature.signature_format, "level": signature.signature_level,
        "qualification": QUALIFICATIONS[signature.qualification], "algorithm": signature.signature_algorithm,
        "parent": signature.parent_id, "scope": list(signature.signed_objects), "byte_ranges": ranges,
        "changes": [{"revision": c.revision, "kind": c.kind, "allowed": c.allowed, "page": c.page,
                     "description": c.description} for c in signature.changes],
        "reason": signature.signing_reason, "roles": list(signature.signer_roles),
        "place": ", ".join(v for v in signature.production_place.values() if v),
        "timeline": _timeline(signature, validation_time), "chain": _chain(signature),
        "blocks": [{"clause": BLOCKS[b][0], "name": BLOCKS[b][1], "css": verdict_of(c.indication)[0],
                    "indication": c.indication.value,
                    "sub_indication": c.sub_indication.value if c.sub_indication else None,
                    "messages": list(c.messages)}
                   for b, c in sorted(signature.blocks.items(), key=lambda item: list(BLOCKS).index(item[0]))],
        "findings": findings(signature),
    }


def context(document: DocumentResult, *, service: str = "remotesign") -> dict[str, Any]:
    """Everything the template shows, as plain values (also what tests compare with the JSON report)."""
    worst = overall(document)
    css, words = verdict_of(worst)
    passed = document.valid_count
    total = len(document.signatures)
    stamps = [{"kind": TIMESTAMP_KINDS.get(t.kind, t.kind.value), "time": _time(t.gen_time), "tsa": t.tsa_name,
               "css": verdict_of(t.conclusion.indication)[0], "indication": t.conclusion.indication.value,
               "sub_indication": t.conclusion.sub_indication.value if t.conclusion.sub_indication else None,
               "messages": list(t.conclusion.messages)} for t in document.timestamps]
    if not total and stamps:
        good = sum(1 for t in document.timestamps if t.valid)
        summary = f"{good} of {len(stamps)} time-stamp{'s' if len(stamps) != 1 else ''} valid, no signature"
    else:
        summary = (f"{passed} of {total} signature{'s' if total != 1 else ''} valid" if total
                   else "the file carries no signature")
    return {
        "service": service, "filename": document.filename, "form": document.signature_form,
        "validation_time": _time(document.validation_time), "css": css, "verdict": words,
        "summary": summary, "timestamps": stamps,
        "included": list(document.included_files), "errors": list(document.errors),
        "signatures": [_signature(s, n + 1, document.validation_time) for n, s in enumerate(document.signatures)],
        "report_id": hashlib.sha256(repr((document.filename, document.validation_time,
                                          [(s.id, s.indication) for s in document.signatures])).encode()
                                    ).hexdigest()[:16],
    }


@lru_cache(maxsize=1)
def _template() -> Any:
    import jinja2

    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    source = resources.files("remotesign.validation").joinpath("templates/report.html").read_text(encoding="utf-8")
    return env.from_string(source)


def render_html(document: DocumentResult, *, service: str = "remotesign") -> str:
    return str(_template().render(**context(document, service=service)))


def render_pdf(document: DocumentResult, *, service: str = "remotesign") -> bytes:
    """The HTML report as PDF (A4), for archiving next to the signed file."""
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return bytes(weasyprint.HTML(string=render_html(document, service=service)).write_pdf())

