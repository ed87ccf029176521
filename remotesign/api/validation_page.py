"""``/validate``: a web page where anyone can upload a signed file (with its detached content) and
read the validation report, as EU DSS's demo offers; the PDF of the report on request. The page
validates with the operator's trust anchors, trusted lists and policy (no relying party's), keeps
nothing of the upload, and answers errors as pages. ``REMOTESIGN_VALIDATION_PAGE=off`` removes it."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from remotesign.api import readable_report
from remotesign.api.consent_pages import security_headers
from remotesign.api.formdata import FormDataError, read_form
from remotesign.api.html_pages import e, layout
from remotesign.api.openapi_doc import multipart_body, text
from remotesign.api.same_origin import same_origin
from remotesign.service import Services
from remotesign.validation.model import ValidationInputError
from remotesign.validation.options import DetachedDocument

router = APIRouter(tags=["validation page"])
log = logging.getLogger("remotesign")
PATH = "/validate"
MAX_UPLOAD = 50 << 20  # what one public upload may carry in all


def _page(error: str | None = None, status: int = 200) -> HTMLResponse:
    body = (
        (f'<p class="error" role="alert">{e(error)}</p>\n' if error else "")
        + "<p>Upload a signed file (PDF, XML, ASiC-E / ASiC-S container, BDOC, CAdES .p7s / .p7m) to check its "
          "signatures following ETSI EN 319 102-1. The file is validated with this service's trust settings and "
          "is not kept.</p>\n"
        + f'<form method="post" action="{PATH}" enctype="multipart/form-data">\n'
          '<label for="file">Signed file</label>\n<input type="file" id="file" name="file" required>\n'
          '<label for="detached">Detached content (for a detached signature; optional, several allowed)</label>\n'
          '<input type="file" id="detached" name="detached" multiple>\n'
          '<fieldset><legend>Report</legend>\n'
          '<div class="choice"><input type="radio" id="f-html" name="format" value="html" checked> '
          '<label for="f-html">Web page</label></div>\n'
          '<div class="choice"><input type="radio" id="f-pdf" name="format" value="pdf"> '
          '<label for="f-pdf">PDF</label></div>\n</fieldset>\n'
          '<button type="submit">Validate</button>\n</form>\n')
    return HTMLResponse(layout("Validate a signed file", body), status_code=status, headers=security_headers())


def _enabled(svc: Services) -> bool:
    return svc.settings.validation_page


@router.get(PATH, summary="The page where a signed file can be uploaded and validated", response_class=HTMLResponse)
async def page(request: Request) -> Response:
    svc: Services = request.app.state.services
    if not _enabled(svc):
        return _page("This service offers no public validation page.", 404)
    return _page()


@router.post(PATH, summary="Validate the uploaded file; answers the readable report (HTML or PDF)",
             response_class=HTMLResponse, responses=readable_report.DOCUMENTED,
             openapi_extra=multipart_body({"file": "the signed file", "detached": "detached content (repeatable)"},
                                          {"format": text("report", enum=["html", "pdf"])}, ("file",)))
async def upload(request: Request) -> Response:
    svc: Services = request.app.state.services
    if not _enabled(svc):
        return _page("This service offers no public validation page.", 404)
    if not same_origin(request, svc.base_url):
        return _page("This form was sent from another site; open the page and send it from there.", 403)
    validation = svc.validation
    scratch = await run_in_threadpool(validation.temporary_dir)
    try:
        try:
            form = await read_form(request, Path(scratch.name), max_bytes=min(MAX_UPLOAD, svc.settings.file_max_bytes))
        except FormDataError as exc:
            return _page(f"The upload cannot be read: {exc}", 400)
        signed = form.named("file")
        if len(signed) != 1 or not signed[0].path.stat().st_size:
            return _page("Choose the signed file to validate.", 400)
        kind = form.fields.get("format", "html")
        if kind not in readable_report.MEDIA:
            return _page("Choose a web page or a PDF report.", 400)
        detached = [DetachedDocument(name=f.filename, path=f.path) for f in form.named("detached")
                    if f.path.stat().st_size]
        options = await run_in_threadpool(lambda: validation.options(None, detached=detached))
        try:
            document = await validation.validate(signed[0].path, options, filename=signed[0].filename or "document",
                                                 actor="validation-page", tenant_id=None)
        except ValidationInputError as exc:
            return _page(f"{signed[0].filename or 'The file'}: {exc.message}", 422)
    finally:
        await run_in_threadpool(scratch.cleanup)
    return await run_in_threadpool(readable_report.response, document, kind)
