"""Security schemes of ``/openapi.json``, and which one each operation takes.

Each API authenticates its own way: relying parties' client-credentials tokens and users'
authorization-code tokens from the TrustedX-style authorization server (native, admin, validation,
SignAPI, eSigP), the Fortress-style token endpoint, the CSC authorization server or CSC ``auth/login``,
the Remote Signing API's JWT, device tokens, and HTTP Basic client authentication at the token
endpoints. Declaring them lets Swagger UI offer its Authorize button and tells a generated client
which credentials an operation needs. Routes that check a scope with ``deps.require_scope`` are
read from their dependencies; the others, which authenticate inside their handler, from ``RULES``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from remotesign.api.deps import ScopeCheck
from remotesign.core import scopes

Requirement = list[dict[str, list[str]]]

FORTRESS_WIRE_SCOPES = {scopes.SIGNATURES: "client"}  # fortress/token.py's WIRE_SCOPES, reversed


def schemes(auth_server: str) -> dict[str, dict[str, Any]]:
    """The security schemes; ``auth_server`` names the TrustedX-style authorization server whose
    token endpoint Swagger UI's Authorize dialog uses."""
    token_url = f"/trustedx-authserver/oauth/{auth_server}/token"
    return {
        "oauth2": {"type": "oauth2", "description": "Access token of the TrustedX-style authorization server: a "
                   "relying party's client-credentials token, or a user's authorization-code token (eSigP)",
                   "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": dict(scopes.KNOWN_SCOPES)},
                             "authorizationCode": {"authorizationUrl": f"/trustedx-authserver/oauth/{auth_server}",
                                                   "tokenUrl": token_url, "scopes": dict(scopes.USER_SCOPES)}}},
        "fortressOAuth2": {"type": "oauth2", "description": "Token of the Fortress-style API",
                           "flows": {"clientCredentials": {"tokenUrl": "/fortress/oauth2/v1/token",
                                                           "scopes": {"client": "request and extend signatures"}},
                                     "authorizationCode": {"authorizationUrl": "/fortress/oauth2/v1/auth",
                                                           "tokenUrl": "/fortress/oauth2/v1/token",
                                                           "scopes": {"profile": "the user's profile"}}}},
        "cscOAuth2": {"type": "oauth2", "description": "Token of the CSC API's own authorization server (oauth2/"
                      "authorize and oauth2/token of the version called)",
                      "flows": {"authorizationCode": {"authorizationUrl": "/csc/v2/oauth2/authorize",
                                                      "tokenUrl": "/csc/v2/oauth2/token",
                                                      "scopes": {"service": "the user's credentials",
                                                                 "credential": "sign the given hashes once"}}}},
        "cscLoginToken": {"type": "http", "scheme": "bearer", "description": "Token of CSC auth/login"},
        "remoteSigningJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                             "description": "JWT of POST /remote-signing/clients/login"},
        "deviceToken": {"type": "http", "scheme": "bearer",
                        "description": "Token of an approval device (POST /v1/device/register)"},
        "clientBasic": {"type": "http", "scheme": "basic", "description": "The client's id and secret (RFC 6749 "
                        "§2.3.1); token endpoints also take them as client_id and client_secret parameters"},
        "userBasic": {"type": "http", "scheme": "basic", "description": "The user's name and password"},
    }


# (path pattern, requirement) for routes that authenticate in their handler; first match wins.
RULES: list[tuple[re.Pattern[str], Requirement]] = [
    (re.compile(r"^/trustedx-authserver/oauth/[^/]+/(token|introspect)$"), [{"clientBasic": []}]),
    (re.compile(r"^/fortress/oauth2/v1/token$"), [{"clientBasic": []}]),
    (re.compile(r"^/csc/[^/]+/oauth2/(token|revoke|pushed_authorize)$"), [{"clientBasic": []}]),
    (re.compile(r"^/csc/[^/]+/auth/login$"), [{"userBasic": []}]),
    (re.compile(r"^/csc/[^/]+/(auth/revoke|credentials/|signatures/)"), [{"cscOAuth2": []}, {"cscLoginToken": []}]),
    (re.compile(r"^/remote-signing/(?!clients/login$)"), [{"remoteSigningJwt": []}]),
    (re.compile(r"^/trustedx-resources/"), [{"oauth2": []}]),
    (re.compile(r"^/v1/device/requests"), [{"deviceToken": []}]),
]


def _scopes(dependant: Dependant) -> list[str]:
    found = [dependant.call.scope] if isinstance(dependant.call, ScopeCheck) else []
    for sub in dependant.dependencies:
        found.extend(_scopes(sub))
    return found


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route of ``app`` with its full path: FastAPI 0.12x+ keeps included routers nested
    (``iter_route_contexts`` walks them, each context standing for the route); older ones flatten them."""
    walk = getattr(fastapi_routing, "iter_route_contexts", None)
    for route in (walk(app.routes) if walk is not None else app.routes):
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def requirement(route: APIRoute) -> Requirement | None:
    """What ``route`` needs, or None for a public one (pages, PKI, metadata, the pairing call)."""
    needed = _scopes(route.dependant)
    if needed and route.path_format.startswith("/fortress/"):
        return [{"fortressOAuth2": [FORTRESS_WIRE_SCOPES.get(s, s) for s in needed]}]
    if needed:
        return [{"oauth2": needed}]
    for pattern, required in RULES:
        if pattern.search(route.path_format):
            return required
    return None


def document_security(schema: dict[str, Any], app: FastAPI, auth_server: str) -> dict[str, Any]:
    """Add the schemes and each documented operation's requirement to ``schema`` (in place)."""
    paths = schema.get("paths", {})
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        required = requirement(route)
        operations = paths.get(route.path_format, {})
        for method in route.methods:
            if required is not None and method.lower() in operations:
                operations[method.lower()]["security"] = required
    schema.setdefault("components", {})["securitySchemes"] = schemes(auth_server)
    return schema
