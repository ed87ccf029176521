"""The API documentation, served by the service itself: a landing page at ``/`` that links each API's
description, Swagger UI at ``/docs`` and ReDoc at ``/redoc`` (for all APIs, or ``/docs/{api}`` for
one), and the per-API descriptions at ``/openapi/{api}.json``.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a host without internet access they
are blank. Here the scripts and styles come from the fastapi-offline package, served under
``ASSETS``; the pages' Content-Security-Policy allows nothing but this origin, so a page that
reached for a CDN would fail in the browser, not work by luck. (Swagger UI 4, the one the
swagger-ui-bundle package ships, cannot read the OpenAPI 3.1 document FastAPI writes; the
fastapi-offline package ships Swagger UI 5 and ReDoc 2. ReDoc's bundle fetches its "API docs by
Redocly" badge from a CDN: it is served with that one URL made a blank inline image.)
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from remotesign.api.api_catalog import BY_SLUG, CATALOG, ApiEntry, describe
from remotesign.api.errors import ApiError
from remotesign.api.html_pages import e, layout

ASSETS = "/static/api-docs"
REDOC_JS = ASSETS + "/redoc.js"
_REDOC_BADGE = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_BLANK_GIF = b"data:image/gif;base64,R0lGODlhAQABAIAAAAAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
SWAGGER_PARAMETERS = {"validatorUrl": None,  # else Swagger UI asks validator.swagger.io to judge the document
                      "persistAuthorization": False, "displayRequestDuration": True}
_DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
             "frame-ancestors 'none'; base-uri 'none'")
_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

router = APIRouter(include_in_schema=False)


def _headers(csp: str) -> dict[str, str]:
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _entry(slug: str) -> ApiEntry:
    entry = BY_SLUG.get(slug)
    if entry is None:
        raise ApiError(404, "not_found", f"no API named {slug[:40]!r} (see /)")
    return entry


def _swagger(request: Request, openapi_url: str, title: str) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(openapi_url=root + openapi_url, title=title,
                               swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                               swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
                               oauth2_redirect_url=root + OAUTH2_REDIRECT,
                               init_oauth={"usePkceWithAuthorizationCodeGrant": True},
                               swagger_ui_parameters=SWAGGER_PARAMETERS)
    return HTMLResponse(page.body, headers=_headers(_DOCS_CSP))


def _redoc(request: Request, openapi_url: str, title: str) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_redoc_html(openapi_url=root + openapi_url, title=title, redoc_js_url=root + REDOC_JS,
                          redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)
    return HTMLResponse(page.body, headers=_headers(_DOCS_CSP))


def _assets() -> Any:
    return files("fastapi_offline") / "static"


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    return bytes((_assets() / "redoc.standalone.js").read_bytes().replace(_REDOC_BADGE, _BLANK_GIF))


@router.get(REDOC_JS)
async def redoc_js() -> Response:
    return Response(_redoc_bundle(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/")
async def landing(request: Request) -> HTMLResponse:
    """What the service offers, with links to each API's description and documentation."""
    root = e(request.scope.get("root_path", ""))
    rows = "".join(
        f'<h2>{e(api.title)}</h2>\n<p class="muted">{e(api.summary)}</p>\n'
        f'<p><a href="{root}/docs/{e(api.slug)}">Swagger UI</a> · <a href="{root}/redoc/{e(api.slug)}">ReDoc</a> · '
        f'<a href="{root}/openapi/{e(api.slug)}.json">OpenAPI description</a></p>\n' for api in CATALOG)
    body = (f'<p>Remote electronic-signature service, version {e(request.app.version)}. Each API has its own '
            'OpenAPI description and documentation; all of them together: '
            f'<a href="{root}/docs">Swagger UI</a> · <a href="{root}/redoc">ReDoc</a> · '
            f'<a href="{root}/openapi.json">/openapi.json</a>.</p>\n{rows}'
            f'<p class="muted">Service state: <a href="{root}/health">/health</a>.</p>\n')
    return HTMLResponse(layout(request.app.title, body), headers=_headers(_PAGE_CSP))


@router.get("/docs")
async def swagger_all(request: Request) -> HTMLResponse:
    return _swagger(request, request.app.openapi_url, f"{request.app.title}: all APIs")


@router.get(OAUTH2_REDIRECT)
async def oauth2_redirect() -> HTMLResponse:
    """Where Swagger UI's Authorize dialog comes back to after an authorization-code login."""
    page = get_swagger_ui_oauth2_redirect_html()
    return HTMLResponse(page.body, headers=_headers(_DOCS_CSP))


@router.get("/docs/{slug}")
async def swagger_one(slug: str, request: Request) -> HTMLResponse:
    entry = _entry(slug)
    return _swagger(request, f"/openapi/{entry.slug}.json", f"{request.app.title}: {entry.title}")


@router.get("/redoc")
async def redoc_all(request: Request) -> HTMLResponse:
    return _redoc(request, request.app.openapi_url, f"{request.app.title}: all APIs")


@router.get("/redoc/{slug}")
async def redoc_one(slug: str, request: Request) -> HTMLResponse:
    entry = _entry(slug)
    return _redoc(request, f"/openapi/{entry.slug}.json", f"{request.app.title}: {entry.title}")


@router.get("/openapi/{slug}.json")
async def description(slug: str, request: Request) -> JSONResponse:
    """One API's description, built once from the whole one."""
    entry = _entry(slug)
    cache: dict[str, dict[str, Any]] = request.app.state.api_descriptions
    if slug not in cache:
        cache[slug] = describe(request.app.openapi(), entry)
    return JSONResponse(cache[slug])


def install(app: FastAPI) -> None:
    """Serve the pages and their assets; ``app`` is made with ``docs_url=None, redoc_url=None``."""
    app.state.api_descriptions = {}
    app.include_router(router)  # first: REDOC_JS lies under the mount's prefix
    app.mount(ASSETS, StaticFiles(directory=str(_assets())), name="api-docs-assets")
