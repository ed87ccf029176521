"""Public PKI endpoints of the built-in trust services: CA certificates, CRLs, the RFC 6960 OCSP
responder and the RFC 3161 TSA. These are unauthenticated, as relying parties' validators fetch
them from URLs embedded in certificates."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from remotesign.api.deps import services
from remotesign.api.errors import ApiError, register_protocol_errors
from remotesign.api.openapi_doc import binary_answer, binary_body, errors
from remotesign.service import Services
from remotesign.trust.ocsp import error_reply as ocsp_error_reply
from remotesign.trust.tsa import error_reply as tsa_error_reply

router = APIRouter(prefix="/pki", tags=["pki"])

OCSP_RESPONSE = "application/ocsp-response"
TS_REPLY = "application/timestamp-reply"
PROTOCOL_BODY_LIMIT = 64 * 1024


def _ocsp_error(status: int, _message: str) -> Response:
    return Response(ocsp_error_reply(status >= 500).der, status_code=status, media_type=OCSP_RESPONSE,
                    headers={"Cache-Control": "no-cache"})


def _tsa_error(status: int, message: str) -> Response:
    return Response(tsa_error_reply(status >= 500, message).der, status_code=status, media_type=TS_REPLY)


# Every error on the protocol endpoints — a size limit, a malformed URL, an unexpected fault —
# answers in the protocol, as clients of OCSP and RFC 3161 can read nothing else.
register_protocol_errors("/pki/ocsp", _ocsp_error)
register_protocol_errors("/pki/tsa", _tsa_error)


class PemResponse(PlainTextResponse):
    """PEM certificates, documented with the media type they are served with."""

    media_type = "application/x-pem-file"


@router.get("/ca.pem", summary="Root and issuing CA certificates (PEM)", response_class=PemResponse)
def ca_bundle(svc: Services = Depends(services)) -> PemResponse:
    return PemResponse(svc.ca.issuing.pem() + svc.ca.root.pem())


@router.get("/tsa.pem", summary="The TSA certificate (PEM)", response_class=PemResponse)
def tsa_cert(svc: Services = Depends(services)) -> PemResponse:
    return PemResponse(svc.ca.tsa_signer()[0].pem())


@router.get("/ocsp.pem", summary="The OCSP responder certificate (PEM)", response_class=PemResponse)
def ocsp_cert(svc: Services = Depends(services)) -> PemResponse:
    return PemResponse(svc.ca.ocsp_signer()[0].pem())


@router.get("/ca/{ca_id}.crt", summary="A CA certificate (DER), as named in caIssuers", response_class=Response,
            responses=binary_answer("application/pkix-cert", description="The DER certificate"))
def ca_certificate(ca_id: str, svc: Services = Depends(services)) -> Response:
    for cert in svc.ca.chain():
        if cert.id == ca_id:
            return Response(cert.der, media_type="application/pkix-cert")
    raise ApiError(404, "not_found", f"no CA certificate {ca_id}")


@router.get("/crl/{ca_id}.crl", summary="Current CRL of a CA (DER), as named in CRL distribution points",
            response_class=Response, responses={**binary_answer("application/pkix-crl", description="The DER CRL"),
                                                **errors(503)})  # read from (or made into) the database
def crl(ca_id: str, svc: Services = Depends(services)) -> Response:
    if ca_id not in {c.id for c in svc.ca.chain()}:
        raise ApiError(404, "not_found", f"no CA {ca_id}")
    return Response(svc.crls.current(ca_id), media_type="application/pkix-crl",
                    headers={"Cache-Control": "no-cache"})


@router.get("/pds", summary="PKI disclosure statement", response_class=PlainTextResponse)
def pds(svc: Services = Depends(services)) -> PlainTextResponse:
    return PlainTextResponse(
        "remotesign built-in PKI disclosure statement\n\n"
        f"CA certificates: {svc.base_url}/pki/ca.pem\nOCSP: {svc.ca.ocsp_url}\nTSA: {svc.ca.tsa_url}\n"
        "Certificates are issued by the operator of this service under the profiles documented in its README.\n"
    )


_OCSP_ANSWER = binary_answer(OCSP_RESPONSE, description="DER OCSPResponse, status successful")


def _ocsp_response(svc: Services, der: bytes) -> Response:
    reply = svc.ocsp.respond(der)
    status = 200 if reply.status == "successful" else 400
    return Response(reply.der, status_code=status, media_type=OCSP_RESPONSE,
                    headers={"Cache-Control": "no-cache"})


@router.post("/ocsp", summary="OCSP responder (RFC 6960, POST)",
             response_class=Response, responses=_OCSP_ANSWER,
             openapi_extra=binary_body("application/ocsp-request", "DER OCSPRequest"))
async def ocsp_post(request: Request, svc: Services = Depends(services)) -> Response:
    body = await _read_limited(request)
    return await run_in_threadpool(_ocsp_response, svc, body)


@router.get("/ocsp/{encoded:path}", summary="OCSP responder (RFC 6960, GET with base64 request)",
            response_class=Response, responses=_OCSP_ANSWER)
async def ocsp_get(encoded: str, svc: Services = Depends(services)) -> Response:
    try:
        der = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        der = b""  # the responder answers malformedRequest
    return await run_in_threadpool(_ocsp_response, svc, der)


@router.post("/tsa", summary="Time-stamping authority (RFC 3161)",
             response_class=Response,
             responses=binary_answer(TS_REPLY, description="DER TimeStampResp, status granted (or grantedWithMods)"),
             openapi_extra=binary_body("application/timestamp-query", "DER TimeStampReq"))
async def tsa(request: Request, svc: Services = Depends(services)) -> Response:
    body = await _read_limited(request)
    reply = await run_in_threadpool(svc.tsa.respond, body)
    status = 200 if reply.status in ("granted", "granted_with_mods") else 400
    return Response(reply.der, status_code=status, media_type=TS_REPLY)


async def _read_limited(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > PROTOCOL_BODY_LIMIT:
            raise ApiError(413, "payload_too_large", f"request body exceeds {PROTOCOL_BODY_LIMIT} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
