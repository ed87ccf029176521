"""The console's HTML: Jinja2 templates (``templates/``, autoescaped, strict about undefined
names), one stylesheet served by the console itself, and the headers every console answer carries
(no caching, no framing, no scripts at all: the CSP allows none)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from remotesign.api.display import visible

TEMPLATES = Path(__file__).parent / "templates"
PREFIX = "/console"

NAV = (("overview", "Overview", "/"), ("clients", "Relying parties", "/clients"), ("users", "Users", "/users"),
       ("identities", "Identities", "/identities"), ("devices", "Devices", "/devices"),
       ("certificates", "Certificates", "/certificates"), ("audit", "Audit log", "/audit"),
       ("health", "Health", "/health"))


def security_headers() -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # same-origin: a form posted from a console page carries an Origin the CSRF check can read
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                   "frame-ancestors 'none'; base-uri 'none'",
    }


def when(value: datetime | None, empty: str = "—") -> str:
    if value is None:
        return empty
    at = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _shown(value: object, limit: int = 200) -> str:
    """An untrusted string made safe to read: control and bidi characters visible, bounded
    (escaping is the template's autoescape)."""
    return visible(value, limit)


_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                          lstrip_blocks=True, undefined=jinja2.StrictUndefined)
_ENV.filters["when"] = when
_ENV.filters["shown"] = _shown
_ENV.globals.update(prefix=PREFIX, nav=NAV)


def page(template: str, status: int = 200, headers: dict[str, str] | None = None, /, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` (``session`` None on pages shown before sign-in)."""
    context.setdefault("session", None)
    context.setdefault("notice", None)
    context.setdefault("error", None)
    body = _ENV.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**security_headers(), **(headers or {})})


def redirect(path: str) -> Response:
    """303 to a console path (always ours: ``path`` starts with the prefix)."""
    assert path.startswith(PREFIX + "/") or path == PREFIX
    return RedirectResponse(path, status_code=303, headers=security_headers())


def error(message: str, status: int, *, session: Any = None, title: str = "Not done") -> HTMLResponse:
    return page("error.html", status, title=title, message=message, session=session)


def stylesheet() -> Response:
    return Response((TEMPLATES / "console.css").read_bytes(), media_type="text/css",
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})
