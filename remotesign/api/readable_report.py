"""The readable validation report over HTTP: which one a caller asked for (``report=html|pdf``,
or ``Accept: text/html`` / ``application/pdf`` preferred over JSON) and the response carrying it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from remotesign.validation.model import DocumentResult

MEDIA = {"html": "text/html", "pdf": "application/pdf"}
#: OpenAPI ``responses`` of an endpoint that can answer the readable report too
DOCUMENTED = {200: {"content": {"text/html": {"schema": {"type": "string"}},
                                "application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                    "description": "the report: JSON, or the readable report when asked for "
                                   "(report=html|pdf, or Accept: text/html / application/pdf)"}}


def _ranges(accept: str) -> list[tuple[str, float]]:
    out = []
    for part in accept.split(",")[:20]:
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out.append((media.strip().lower(), q))
    return out


def asked(request: Request, explicit: str | None = None) -> str | None:
    """``html`` or ``pdf`` when the caller asked for the readable report, else None (JSON). An
    explicit ``report`` wins; else the Accept header, where JSON or a wildcard ranked at least as
    high keeps JSON."""
    if explicit in MEDIA:
        return explicit
    ranked = _ranges(request.headers.get("accept", ""))
    best = {kind: max((q for m, q in ranked if m == media), default=0.0) for kind, media in MEDIA.items()}
    json_q = max((q for m, q in ranked if m in ("application/json", "*/*", "application/*")), default=0.0)
    kind = max(best, key=lambda k: best[k])
    return kind if best[kind] > 0 and best[kind] > json_q else None


def response(document: DocumentResult, kind: str, *, service: str = "remotesign") -> Response:
    """Blocking (the PDF takes a second or more): call it in the thread pool."""
    from remotesign.validation.html_report import render_html, render_pdf

    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"}
    if kind == "pdf":
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in document.filename)[:100] or "document"
        return Response(render_pdf(document, service=service), media_type="application/pdf",
                        headers={**headers, "Content-Disposition": f'inline; filename="{name}-report.pdf"'})
    return HTMLResponse(render_html(document, service=service), headers=headers)


def documented(extra: dict[Any, Any] | None = None) -> dict[Any, Any]:
    return {**DOCUMENTED, **(extra or {})}
