"""``info``: what this CSC service is and offers, in the fields of the version asked (v1.0.4.0 or
v2.0.0.2), without authentication."""

from __future__ import annotations

import base64
from typing import Any

from asn1crypto import algos
from fastapi import APIRouter, Request
from fastapi.responses import Response

from remotesign.api.csc import wire
from remotesign.api.csc.answers import CscAuthorizationServerMetadata, CscInfo
from remotesign.api.csc.calls import no_store
from remotesign.api.openapi_doc import json_body_schema
from remotesign.service import Services

router = APIRouter(tags=["csc"])

_COMMON = ["credentials/list", "credentials/info", "credentials/authorize", "credentials/extendTransaction",
           "signatures/signHash", "signatures/timestamp", "oauth2/authorize", "oauth2/token", "oauth2/revoke"]
METHODS = {"v1": _COMMON + ["credentials/sendOTP"],
           "v2": _COMMON + ["credentials/getChallenge", "credentials/authorizeCheck", "signatures/signDoc",
                            "signatures/signPolling", "oauth2/pushed_authorize"]}
LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        '<rect width="64" height="64" rx="12" fill="#1d4e89"/><path d="M14 44c8-4 12-20 18-20s4 14 10 14 '
        '6-8 8-8" stroke="#fff" stroke-width="4" fill="none" stroke-linecap="round"/></svg>')


def _pss_params(name: str) -> str:
    params = algos.RSASSAPSSParams({
        "hash_algorithm": {"algorithm": name},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": name}},
        "salt_length": {"sha256": 32, "sha384": 48, "sha512": 64}[name], "trailer_field": "trailer_field_bc"})
    return base64.b64encode(params.dump()).decode()


def describe(svc: Services, version: str, lang: str | None) -> dict[str, Any]:
    base = svc.base_url
    methods = list(METHODS[version])
    auth_types = ["oauth2code"]
    if svc.settings.csc_basic_login:
        auth_types.insert(0, "basic")
        methods += ["auth/login", "auth/revoke"]
    out: dict[str, Any] = {
        "specs": wire.VERSIONS[version], "name": "remotesign", "logo": f"{base}/csc/logo.svg",
        "region": svc.identities.country, "lang": lang or "en-US",
        "description": "Remote signing service: server-held keys of qualified and advanced signatures, "
                       "authorized by their signers (SCAL2)",
        "authType": auth_types, "oauth2": f"{base}/csc/{version}", "methods": methods,
    }
    if version == "v2":
        out |= {
            "oauth2Issuer": f"{base}/csc/{version}", "asynchronousOperationMode": True, "validationInfo": True,
            "signAlgorithms": {"algos": [wire.RSA_ENCRYPTION, "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12",
                                         "1.2.840.113549.1.1.13", wire.RSA_PSS, wire.EC_PUBLIC_KEY,
                                         "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"],
                               "algoParams": [_pss_params(n) for n in ("sha256", "sha384", "sha512")]},
            "signature_formats": {"formats": ["C", "X", "P"],
                                  "envelope_properties": [["Attached", "Detached"],
                                                          ["Enveloped", "Enveloping", "Detached"], ["Revision"]]},
            "conformance_levels": ["Ades-B-B", "Ades-B-T", "Ades-B-LT", "Ades-B-LTA"],
        }
    return out


@router.post("/csc/{version}/info", summary="CSC info: the service, its authorization types and methods",
             openapi_extra=json_body_schema({"lang": "string"}),
             responses={200: {"model": CscInfo, "description": "The service, in the fields of the version asked"}})
async def info(version: str, request: Request) -> Response:
    svc: Services = request.app.state.services
    wire.check_version(version)
    data = await wire.body(request)
    lang = wire.text(data, "lang", required=False, max_length=20)
    return no_store(describe(svc, version, lang))


@router.get("/csc/logo.svg", summary="The logo info names", response_class=Response,
            responses={200: {"description": "The logo (SVG)",
                             "content": {"image/svg+xml": {"schema": {"type": "string"}}}}})
async def logo() -> Response:
    return Response(LOGO, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def authorization_server_metadata(svc: Services, version: str) -> dict[str, Any]:
    """RFC 8414 metadata of the CSC authorization server whose issuer is ``{base}/csc/{version}``."""
    issuer = f"{svc.base_url}/csc/{version}"
    out: dict[str, Any] = {
        "issuer": issuer, "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token", "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"], "scopes_supported": ["service", "credential"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
    if version == "v2":
        out |= {"pushed_authorization_request_endpoint": f"{issuer}/oauth2/pushed_authorize",
                "authorization_details_types_supported": ["credential"]}
    return out


@router.get("/.well-known/oauth-authorization-server/csc/{version}",
            summary="RFC 8414 metadata of the CSC authorization server (info.oauth2Issuer)",
            responses={200: {"model": CscAuthorizationServerMetadata, "description": "The metadata"}})
async def metadata(version: str, request: Request) -> Response:
    wire.check_version(version)
    return no_store(authorization_server_metadata(request.app.state.services, version))


@router.get("/csc/{version}/.well-known/oauth-authorization-server",
            summary="The same metadata, where clients that append the well-known path look for it",
            responses={200: {"model": CscAuthorizationServerMetadata, "description": "The metadata"}})
async def metadata_appended(version: str, request: Request) -> Response:
    wire.check_version(version)
    return no_store(authorization_server_metadata(request.app.state.services, version))
