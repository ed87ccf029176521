"""Direct validation for relying parties (native API): upload a signed file, with its detached
content and extra trust anchors where needed, and get the simple report (eParaksts v1 shape), the
detailed report, or the ETSI TS 119 102-2 XML report. Also the relying party's trust anchors."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asn1crypto import x509
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from remotesign.api import readable_report
from remotesign.api.deps import require_scope, services
from remotesign.api.errors import ApiError
from remotesign.api.utc import UtcDateTime
from remotesign.api.formdata import FormDataError, read_form
from remotesign.api.openapi_doc import errors, multipart_body, text
from remotesign.api.validation_answers import ValidationAnswer
from remotesign.core import scopes
from remotesign.core.tenants import TokenInfo
from remotesign.core.validation import TrustAnchorError
from remotesign.service import Services
from remotesign.trust.revocation import load_certificates
from remotesign.validation.model import DocumentResult, ValidationInputError
from remotesign.validation.options import DetachedDocument, ValidationOptions
from remotesign.validation.policy import MAX_POLICY_BYTES, PolicyError, ValidationPolicy, parse_policy
from remotesign.validation.reports import detailed_report, report_v1

router = APIRouter(prefix="/v1", tags=["validation"])
Validator = Depends(require_scope(scopes.VALIDATE))
REPORTS = ("simple", "detailed", "etsi", "html", "pdf")


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 validation time; naive values are UTC."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_time", f"'at' must be an ISO 8601 date-time, got {value[:40]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _anchors(paths: list[Path]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            found = load_certificates(path.read_bytes())  # parsed whole: a broken one fails here
        except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on garbage
            raise ApiError(400, "invalid_certificate", f"a 'trust' part is not a PEM or DER certificate ({exc})") from exc
        certs.extend(found)
    return certs


def _policy(validation: Any, name: str | None, files: list[Any]) -> ValidationPolicy:
    """The caller's validation policy: an uploaded policy file (TOML), a built-in policy by name,
    or the instance's own."""
    try:
        if len(files) > 1:
            raise PolicyError("send at most one 'policy' part")
        if not files:
            return validation.named_policy(name)
        part = files[0]
        if part.path.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyError(f"{part.filename or 'policy'}: a policy file is at most {MAX_POLICY_BYTES // 1024} KiB")
        return parse_policy(part.path.read_bytes(), source=part.filename or "policy")
    except PolicyError as exc:
        raise ApiError(400, "invalid_policy", str(exc)) from exc


def input_error_status(exc: ValidationInputError) -> int:
    return 503 if exc.code == "validation_timeout" else 422


# the JSON report (its model), the readable report, or the ETSI XML report (report=etsi)
_REPORTS = {200: {"model": ValidationAnswer,
                  "description": readable_report.DOCUMENTED[200]["description"] + "; report=etsi: the ETSI TS "
                                 "119 102-2 validation report (XML)",
                  "content": {**readable_report.DOCUMENTED[200]["content"],
                              "application/xml": {"schema": {"type": "string"}}}}}


@router.post("/validations", responses={**errors(422), **_REPORTS}, openapi_extra=multipart_body(
                 {"file": "the signed file", "detached": "detached content (repeatable)",
                  "trust": "an extra trust anchor, PEM or DER (repeatable)", "policy": "a validation policy (TOML)"},
                 {"at": text("validation time, ISO 8601"), "report": text("report", enum=list(REPORTS))}, ("file",)),
             summary="Validate a signed file (multipart: file, detached*, trust*, at, report, policy)")
async def validate(request: Request, caller: TokenInfo = Validator, svc: Services = Depends(services)) -> Response:
    validation = svc.validation
    scratch = await run_in_threadpool(validation.temporary_dir)
    try:
        try:
            form = await read_form(request, Path(scratch.name), max_bytes=svc.settings.file_max_bytes)
        except FormDataError as exc:
            raise ApiError(400, "invalid_multipart", str(exc)) from exc
        signed = form.named("file")
        if len(signed) != 1:
            raise ApiError(400, "invalid_request", "send exactly one 'file' part with the signed document")
        report = form.fields.get("report", request.query_params.get("report"))
        report = readable_report.asked(request, report) or report or "simple"
        if report not in REPORTS:
            raise ApiError(400, "invalid_request", f"'report' must be one of {', '.join(REPORTS)}")

        def options() -> ValidationOptions:  # reads the uploaded anchors and policy, and the database
            return validation.options(
                caller.tenant_id, extra_anchors=_anchors([f.path for f in form.named("trust")]),
                at=parse_time(form.fields.get("at")),
                detached=[DetachedDocument(name=f.filename, path=f.path) for f in form.named("detached")],
                policy=_policy(validation, form.fields.get("policy", request.query_params.get("policy")),
                               form.named("policy")))

        chosen = await run_in_threadpool(options)
        try:
            document = await validation.validate(signed[0].path, chosen, filename=signed[0].filename or "document",
                                                 actor=caller.client_id, tenant_id=caller.tenant_id)
        except ValidationInputError as exc:
            raise ApiError(input_error_status(exc), exc.code, exc.message) from exc
    finally:
        await run_in_threadpool(scratch.cleanup)
    return await run_in_threadpool(_answer, svc, caller, document, report)


def _answer(svc: Services, caller: TokenInfo, document: DocumentResult, report: str) -> Response:
    """The report (an XML or JSON document to build): in the thread pool."""
    if report in readable_report.MEDIA:
        return readable_report.response(document, report)
    if report == "etsi":
        from remotesign.validation.etsi_report import etsi_validation_report
        return Response(etsi_validation_report(document), media_type="application/xml")
    body: dict[str, Any] = {"simpleReport": report_v1(document)}
    if report == "detailed":
        body["detailedReport"] = detailed_report(document)
    return JSONResponse(body)


class AnchorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certificate: str = Field(description="PEM, or base64 of the DER certificate", max_length=64 << 10)


class AnchorOut(BaseModel):
    id: str
    subject: str
    sha256: str
    created_at: UtcDateTime


def _anchor_out(row: Any) -> AnchorOut:
    return AnchorOut(id=row.id, subject=row.subject, sha256=row.sha256_hex, created_at=row.created_at)


@router.post("/trust-anchors", status_code=201, response_model=list[AnchorOut],
             summary="Add trust anchors used for your validations")
def add_anchor(body: AnchorIn, caller: TokenInfo = Validator, svc: Services = Depends(services)) -> list[AnchorOut]:
    text = body.certificate.strip()
    if text.startswith("-----BEGIN"):
        data = text.encode("ascii", "replace")
    else:
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "invalid_certificate", "certificate must be PEM or base64 DER") from None
    try:
        rows = svc.trust_anchors.add(caller.tenant_id, data)
    except TrustAnchorError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return [_anchor_out(r) for r in rows]


@router.get("/trust-anchors", response_model=list[AnchorOut], summary="Your trust anchors")
def list_anchors(caller: TokenInfo = Validator, svc: Services = Depends(services)) -> list[AnchorOut]:
    return [_anchor_out(r) for r in svc.trust_anchors.list(caller.tenant_id)]


@router.delete("/trust-anchors/{anchor_id}", status_code=204, summary="Remove one of your trust anchors")
def remove_anchor(anchor_id: str, caller: TokenInfo = Validator, svc: Services = Depends(services)) -> Response:
    try:
        svc.trust_anchors.remove(caller.tenant_id, anchor_id)
    except TrustAnchorError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return Response(status_code=204)
