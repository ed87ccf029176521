"""``/signing/hash`` and ``/signing/hash/authorize`` (core/signing_transactions.py).

``hash`` (one) and ``hashs`` (several) are the digests to sign, in hexadecimal (as the spec's
example) or base64, of the ``hashAlgorithm`` that ``mimeType`` (``application/sha256-binary`` ...)
names too. ``encryption`` RSA answers PKCS#1 v1.5 signature values, ECDSA (or EC) DER-encoded
ECDSA values, base64. ``EXPLICIT/PIN`` signs at once with the passcode in ``authorizeCode``
(0, or 1018 while the passcode the service made is unchanged); ``EXPLICIT/OTP-SMS`` and
``EXPLICIT/OTP-EMAIL`` answer 1007 with a ``billCode`` and send a code to the owner, which
``…/authorize`` takes with that ``billCode`` to sign exactly those digests, once.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from remotesign.api.openapi_doc import json_body
from remotesign.api.remote_signing.answers import Refusal, RsHashAnswer, RsHashAuthorizedAnswer, answer, documented
from remotesign.api.remote_signing.auth import Caller
from remotesign.api.remote_signing.calls import handle
from remotesign.api.remote_signing.wire import RsAuthorize, RsSignHash, decode_hash
from remotesign.core import scopes
from remotesign.core.signing_transactions import DigestsToSign
from remotesign.keystore.base import HASH_SIZES
from remotesign.service import Services

router = APIRouter(prefix="/signing", tags=["remote-signing"])
AUTH_MODES = {"EXPLICIT/PIN": "passcode", "EXPLICIT/OTP-SMS": "otp-sms", "EXPLICIT/OTP-EMAIL": "otp-email"}
HASHES = {"SHA-256": "sha256", "SHA256": "sha256", "SHA-384": "sha384", "SHA384": "sha384",
          "SHA-512": "sha512", "SHA512": "sha512"}
KINDS = {"RSA": "rsa", "ECDSA": "ecdsa", "EC": "ecdsa"}


def _b64(values: tuple[bytes, ...]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


def _sign_hash(svc: Services, who: Caller, body: RsSignHash) -> JSONResponse:
    method = AUTH_MODES.get(body.authMode.upper())
    if method is None:
        raise Refusal(1002, f"authMode is one of {', '.join(AUTH_MODES)}")
    hash_name = HASHES.get(body.hashAlgorithm.upper())
    if hash_name is None:
        raise Refusal(1002, "hashAlgorithm is SHA-256, SHA-384 or SHA-512")
    if body.mimeType.lower() != f"application/{hash_name}-binary":
        raise Refusal(1002, f"mimeType must be application/{hash_name}-binary for {body.hashAlgorithm}")
    kind = KINDS.get(body.encryption.upper())
    if kind is None:
        raise Refusal(1011, f"encryption {body.encryption!r} is not supported (RSA or ECDSA)")
    size = HASH_SIZES[hash_name]
    single = [decode_hash(body.hash, size, "hash")] if body.hash else []
    several = [decode_hash(h, size, f"hashs[{n}]") for n, h in enumerate(body.hashs or [])]
    if not single and not several:
        raise Refusal(1002, "hash or hashs is required")
    outcome = svc.signing_transactions.request(
        who.tenant.id, body.agreementUUID, DigestsToSign(tuple(single + several), hash_name, kind), method=method,
        passcode=body.authorizeCode, app=body.signingApp, client_address=who.address,
        message=(body.notificationTemplate, body.notificationSubject), actor=who.actor)
    if outcome.accepted:
        return answer(1007, billCode=outcome.transaction_id, authorizeCredential=outcome.sent_to,
                      notificationTemplate=body.notificationTemplate, notificationSubject=body.notificationSubject)
    values = _b64(outcome.signatures)
    return answer(1018 if outcome.passcode_must_change else 0, billCode=outcome.transaction_id,
                  signatureValue=values[0] if single else None, signatureValues=values[len(single):] if several else None)


def _authorize(svc: Services, who: Caller, body: RsAuthorize) -> JSONResponse:
    outcome = svc.signing_transactions.authorize(who.tenant.id, body.agreementUUID, body.billCode,
                                                 body.authorizeCode, who.actor, kind="hash")
    values = _b64(outcome.signatures)
    return answer(0, billCode=outcome.transaction_id, signatureValue=values[0], signatureValues=values)


@router.post("/hash", summary="Sign hashes with an agreement (passcode at once, or a code sent to the owner)",
             openapi_extra=json_body(RsSignHash), responses=documented(RsHashAnswer))
async def sign_hash(request: Request) -> JSONResponse:
    return await handle(request, RsSignHash, scopes.SIGNATURES, _sign_hash)


@router.post("/hash/authorize", summary="Sign the hashes of a billCode with the code the owner received",
             openapi_extra=json_body(RsAuthorize), responses=documented(RsHashAuthorizedAnswer))
async def authorize_hash(request: Request) -> JSONResponse:
    return await handle(request, RsAuthorize, scopes.SIGNATURES, _authorize)
