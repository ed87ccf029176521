"""Cross-site request forgery defence for the HTML forms. Browsers say where a form POST comes
from: ``Sec-Fetch-Site`` (Chromium, Firefox, Safari) is trusted first — our pages send
``Referrer-Policy: no-referrer``, under which a browser posts even same-origin forms with
``Origin: null``, so only ``Sec-Fetch-Site`` tells those apart from a cross-site post. Without it,
an ``Origin`` (or ``Referer``) naming another site, or ``null``, is refused. Requests with none of
these come from non-browser clients, which cannot be forged into carrying the user's cookies."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{parts.hostname.lower()}:{port or default}"


def own_origins(request: Request, base_url: str) -> set[str]:
    """The service's public origin and the origin this request was addressed to."""
    found = {_origin_of(base_url), _origin_of(str(request.base_url))}
    return {o for o in found if o}


def same_origin(request: Request, base_url: str) -> bool:
    """False when the browser says the form was posted from another origin."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is not None:
        if origin.strip().lower() == "null":
            return False
        return _origin_of(origin.strip()) in own_origins(request, base_url)
    referer = request.headers.get("referer")
    if referer:
        return _origin_of(referer) in own_origins(request, base_url)
    return True


def client_address(request: Request) -> str:
    """The peer's address as the throttles count it."""
    return request.client.host if request.client else "unknown"
