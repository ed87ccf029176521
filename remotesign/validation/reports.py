"""Render a :class:`DocumentResult` for people and programs: the eParaksts Validation API v1
and v2 ``data`` objects, a detailed report with per-building-block conclusions, and text."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from asn1crypto import x509

from remotesign.validation.model import DocumentResult, SignatureResult, TimestampKind

_ORG_ID = "2.5.4.97"


def eparaksts_time(value: datetime | None) -> str | None:
    """The v1 API's date format ("11.11.2019. 08:32:04"), in UTC."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%d.%m.%Y. %H:%M:%S")


def iso_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _subject_attr(cert: x509.Certificate | None, name: str) -> str | None:
    if cert is None:
        return None
    for rdn in cert.subject.chosen:
        for attr in rdn:
            if attr["type"].native == name or attr["type"].dotted == name:
                value = attr["value"].native
                return value if isinstance(value, str) else str(value)
    return None


def signed_by(signature: SignatureResult) -> str | None:
    """The CN of the signer's certificate, the API's ``signedBy``."""
    return _subject_attr(signature.signing_certificate, "common_name")


def _signature_timestamp(signature: SignatureResult):
    stamps = [t for t in signature.timestamps if t.kind is TimestampKind.SIGNATURE and t.gen_time]
    valid = [t for t in stamps if t.valid] or stamps
    return min(valid, key=lambda t: t.gen_time) if valid else None


def _info(signature: SignatureResult, fmt) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    info: dict[str, Any] = {}
    stamp = _signature_timestamp(signature)
    values = {
        "bestSignatureTime": fmt(signature.best_signature_time),
        "timestampCreationTime": fmt(stamp.gen_time) if stamp else None,
        "ocspResponseCreationTime": fmt(min(signature.ocsp_produced_at)) if signature.ocsp_produced_at else None,
        "timeAssertionMessageImprint": (base64.b64encode(stamp.message_imprint).decode()
                                        if stamp and stamp.message_imprint else None),
        "signingReason": signature.signing_reason,
    }
    info.update({k: v for k, v in values.items() if v is not None})
    if signature.signer_roles:
        info["signerRole"] = [{"claimedRole": role} for role in signature.signer_roles]
    if signature.production_place:
        info["signatureProductionPlace"] = dict(signature.production_place)
    return info


def signature_v1(signature: SignatureResult) -> dict[str, Any]:
    cert = signature.signing_certificate
    return {
        "id": signature.id,
        "info": _info(signature, eparaksts_time),
        "errors": [{"content": e} for e in signature.errors],
        "warnings": [{"content": w} for w in signature.warnings],
        "signedBy": signed_by(signature),
        "indication": signature.indication.value,
        "subIndication": signature.sub_indication.value if signature.sub_indication else None,
        "signatureLevel": signature.signature_level,
        "signatureFormat": signature.signature_format,
        "signerSerialNumber": _subject_attr(cert, "serial_number"),
        "registrationNumber": _subject_attr(cert, _ORG_ID) or _subject_attr(cert, "organization_identifier"),
    }


def report_v1(document: DocumentResult) -> dict[str, Any]:
    """The v1 ``data`` object (signaturesExt first, as the API documents it)."""
    return {
        "signaturesExt": [signature_v1(s) for s in document.signatures],
        "signatureForm": document.signature_form,
        "includedFiles": [{"filename": name} for name in document.included_files],
        "validationTime": eparaksts_time(document.validation_time),
        "signaturesCount": len(document.signatures),
        "validSignaturesCount": document.valid_count,
        "validationLevel": document.validation_level,
        "validatedDocument": {"filename": document.filename},
    }


def _certificate(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": cert.subject.human_friendly,
        "issuer": cert.issuer.human_friendly,
        "serialNumber": format(cert.serial_number, "x"),
        "notBefore": iso_time(cert["tbs_certificate"]["validity"]["not_before"].native),
        "notAfter": iso_time(cert["tbs_certificate"]["validity"]["not_after"].native),
        "sha256": cert.sha256.hex(),
    }


def signature_v2(signature: SignatureResult) -> dict[str, Any]:
    """v2: the signer under ``signerExt``, ISO 8601 times, signing and revocation times and the
    files each signature covers."""
    cert = signature.signing_certificate
    out = signature_v1(signature)
    out["info"] = _info(signature, iso_time)
    signer = _certificate(cert) if cert is not None else {}
    if cert is not None:  # "serialNumber" is the subject's (as v1's signerSerialNumber); the certificate's:
        signer["certificateSerialNumber"] = signer["serialNumber"]
    signer.update({
        "commonName": signed_by(signature),
        "serialNumber": out.pop("signerSerialNumber"),
        "registrationNumber": out.pop("registrationNumber"),
        "certificate": base64.b64encode(cert.dump()).decode() if cert is not None else None,
        "qualification": signature.qualification.value,
    })
    out.pop("signedBy")
    out["signerExt"] = signer
    out["claimedSigningTime"] = iso_time(signature.claimed_signing_time)
    out["revocationTimes"] = [iso_time(t) for t in sorted(signature.ocsp_produced_at)]
    out["timestamps"] = [{
        "type": t.kind.value, "creationTime": iso_time(t.gen_time), "tsa": t.tsa_name,
        "indication": t.conclusion.indication.value,
        "subIndication": t.conclusion.sub_indication.value if t.conclusion.sub_indication else None,
    } for t in signature.timestamps]
    out["signedFiles"] = list(signature.signed_objects)
    if signature.parent_id:
        out["counterSignatureOf"] = signature.parent_id
    return out


def report_v2(document: DocumentResult) -> dict[str, Any]:
    data = report_v1(document)
    data["signaturesExt"] = [signature_v2(s) for s in document.signatures]
    data["validationTime"] = iso_time(document.validation_time)
    data["errors"] = [{"content": e} for e in document.errors]
    return data


def detailed_report(document: DocumentResult) -> dict[str, Any]:
    """Per-signature building-block conclusions (EN 319 102-1 §5.2), certificate chain and
    time-stamps: what an integrator needs to see why a signature got its indication."""
    signatures = []
    for s in document.signatures:
        signatures.append({
            "id": s.id,
            "signatureFormat": s.signature_format,
            "indication": s.indication.value,
            "subIndication": s.sub_indication.value if s.sub_indication else None,
            "signatureLevel": s.signature_level,
            "qualification": s.qualification.value,
            "signatureAlgorithm": s.signature_algorithm,
            "claimedSigningTime": iso_time(s.claimed_signing_time),
            "bestSignatureTime": iso_time(s.best_signature_time),
            "buildingBlocks": {block.value: {
                "indication": c.indication.value,
                "subIndication": c.sub_indication.value if c.sub_indication else None,
                "messages": list(c.messages),
            } for block, c in s.blocks.items()},
            "certificateChain": [_certificate(c) for c in s.chain] or (
                [_certificate(s.signing_certificate)] if s.signing_certificate is not None else []),
            "timestamps": [{
                "type": t.kind.value, "creationTime": iso_time(t.gen_time), "tsa": t.tsa_name,
                "messageImprint": t.message_imprint.hex() if t.message_imprint else None,
                "imprintAlgorithm": t.imprint_algorithm,
                "indication": t.conclusion.indication.value,
                "subIndication": t.conclusion.sub_indication.value if t.conclusion.sub_indication else None,
                "messages": list(t.conclusion.messages),
            } for t in s.timestamps],
            "signedFiles": list(s.signed_objects),
            "signedByteRanges": [list(r) for r in s.signed_byte_ranges],
            "counterSignatureOf": s.parent_id,
            "changesAfterSigning": [{
                "revision": c.revision, "kind": c.kind, "allowed": c.allowed, "page": c.page, "object": c.obj,
                "check": c.check, "description": c.description,
            } for c in s.changes],
            "errors": list(s.errors),
            "warnings": list(s.warnings),
            "infos": list(s.infos),
        })
    return {
        "document": document.filename,
        "signatureForm": document.signature_form,
        "validationTime": iso_time(document.validation_time),
        "includedFiles": list(document.included_files),
        "errors": list(document.errors),
        "signatures": signatures,
        "containerTimestamps": [{
            "type": t.kind.value, "creationTime": iso_time(t.gen_time), "tsa": t.tsa_name,
            "indication": t.conclusion.indication.value,
            "subIndication": t.conclusion.sub_indication.value if t.conclusion.sub_indication else None,
            "messages": list(t.conclusion.messages),
        } for t in document.timestamps],
    }


def text_report(document: DocumentResult) -> str:
    """A readable summary for the ``remotesign validate`` command."""
    lines = [f"{document.filename}: {document.signature_form}, {len(document.signatures)} signature(s), "
             f"{document.valid_count} TOTAL-PASSED (validated at {iso_time(document.validation_time)})"]
    if document.included_files:
        lines.append(f"  files: {', '.join(document.included_files)}")
    for problem in document.errors:
        lines.append(f"  ! {problem}")
    for n, t in enumerate(document.timestamps, 1):
        lines.append(f"  container time-stamp {n}: {iso_time(t.gen_time)} {t.conclusion.indication.value}"
                     f"{' / ' + t.conclusion.sub_indication.value if t.conclusion.sub_indication else ''}")
    for s in document.signatures:
        verdict = s.indication.value + (f" / {s.sub_indication.value}" if s.sub_indication else "")
        lines.append("")
        lines.append(f"  signature {s.id}{' (counter-signature of ' + s.parent_id + ')' if s.parent_id else ''}")
        lines.append(f"    result:    {verdict}")
        lines.append(f"    format:    {s.signature_format}    level: {s.signature_level}")
        lines.append(f"    signed by: {signed_by(s) or '-'}")
        if s.best_signature_time:
            lines.append(f"    existed at: {iso_time(s.best_signature_time)} (proof of existence)")
        elif s.claimed_signing_time:
            lines.append(f"    claimed signing time: {iso_time(s.claimed_signing_time)} (not proven)")
        for t in s.timestamps:
            lines.append(f"    time-stamp {t.kind.value}: {iso_time(t.gen_time)} {t.conclusion.indication.value}"
                         f"{' / ' + t.conclusion.sub_indication.value if t.conclusion.sub_indication else ''}")
        for e in s.errors:
            lines.append(f"    error:   {e}")
        for w in s.warnings:
            lines.append(f"    warning: {w}")
        for note in s.infos:
            lines.append(f"    note:    {note}")
    return "\n".join(lines) + "\n"
