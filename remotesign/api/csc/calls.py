"""How every authenticated CSC call runs: the bearer token first (401 before the body is read),
then the JSON body, then the work off the event loop with the core's refusals answered as CSC
errors (``{"error", "error_description"}``, HTTP 400 unless the failure is the caller's token,
a lock or the service)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from remotesign.api.csc import wire
from remotesign.api.deps import bearer_token
from remotesign.api.errors import OAuthError
from remotesign.api.same_origin import client_address
from remotesign.core.errors import CoreError
from remotesign.core.identities import PinRefused
from remotesign.core.one_time_passwords import OtpError
from remotesign.core.scopes import IDENTITY_PROFILE, USE_SERVER
from remotesign.core.signature_activation import SadError, Signer
from remotesign.core.sole_control import SoleControlRefused
from remotesign.core.tenants import TokenInfo
from remotesign.core.throttle import Throttled
from remotesign.service import Services

AUTH_SERVER = "csc"
REALM = 'Bearer realm="csc"'


@dataclass(frozen=True)
class Caller:
    """The user a CSC call acts for, through the client their token was issued to."""

    token: TokenInfo
    address: str | None

    @property
    def signer(self) -> Signer:
        assert self.token.user_id is not None
        return Signer(self.token.tenant_id, self.token.user_id)

    @property
    def credential_scope(self) -> bool:
        """A ``scope=credential`` token: it authorizes its hashes with its credential, once."""
        return USE_SERVER in self.token.scopes and self.token.sign_identity_id is not None


def invalid_token(description: str) -> OAuthError:
    return OAuthError(401, "invalid_token", description, {"WWW-Authenticate": f'{REALM}, error="invalid_token"'})


def caller(svc: Services, request: Request) -> Caller:
    """The valid CSC access token of the call (issued by this service's CSC authorization server
    to a user), from an address its client may call from."""
    token = bearer_token(request)
    if token is None:
        raise OAuthError(401, "invalid_token", "a Bearer access token is required", {"WWW-Authenticate": REALM})
    info = svc.tenants.resolve(token)
    if info is None:
        stale = svc.tenants.resolve_expired(token)
        if stale is not None and stale.digests_summary and stale.auth_server == AUTH_SERVER:
            svc.sole_control.refuse(stale, "expired", "the signing authorization has expired")
        raise invalid_token("the access token is unknown, expired or revoked")
    if info.auth_server != AUTH_SERVER or info.user_id is None or \
            not info.scopes & {IDENTITY_PROFILE, USE_SERVER}:
        raise invalid_token("the access token was not issued by this CSC service to a user")
    address = client_address(request)
    if not svc.tenants.by_client_id_or_id(info.tenant_id).allows_address(address):
        raise OAuthError(403, "access_denied", f"calls from {address} are not allowed for this client")
    return Caller(info, address)


_SAD_ERRORS = {"invalid_credential": "Invalid parameter credentialID", "invalid_sad": "Invalid parameter SAD",
               "sad_expired": "SAD expired", "hash_not_authorized": "Hash is not authorized by the SAD",
               "otp_required": "Missing (or invalid type) string parameter OTP",
               "pin_required": "Missing (or invalid type) string parameter PIN"}
_TOKEN_REFUSALS = {"digests_mismatch": "Hash is not authorized by the access token",
                   "digest_type_mismatch": "Hash is not authorized by the access token",
                   "identity_mismatch": "Invalid parameter credentialID",
                   "replayed": "The access token has been used already",
                   "expired": "The access token has expired"}


@contextmanager
def answers() -> Iterator[None]:
    """Core refusals as CSC errors."""
    try:
        yield
    except PinRefused as exc:
        tail = f" ({exc.message})" if exc.message else ""
        raise OAuthError(400, "invalid_pin", f"The PIN is invalid{tail}") from exc
    except OtpError as exc:
        if exc.code == "otp_invalid":
            raise OAuthError(400, "invalid_otp", f"The OTP is invalid ({exc.message})") from exc
        raise OAuthError(exc.status, exc.code, exc.message) from exc
    except Throttled as exc:
        raise OAuthError(429, "too_many_attempts", exc.message, {"Retry-After": str(exc.retry_after)}) from exc
    except SadError as exc:
        if exc.code == "access_denied":
            raise OAuthError(403, "access_denied", exc.message) from exc
        message = _SAD_ERRORS.get(exc.code, exc.message)
        raise OAuthError(exc.status if exc.status != 400 else 400, "invalid_request", message) from exc
    except SoleControlRefused as exc:
        raise OAuthError(400, "invalid_request", _TOKEN_REFUSALS.get(exc.reason, exc.message)) from exc
    except CoreError as exc:
        status = exc.status if 400 <= exc.status < 600 else 400
        raise OAuthError(status, "invalid_request" if status == 400 else exc.code, exc.message) from exc


def no_store(payload: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers={"Cache-Control": "no-store"})


async def handle(request: Request, version: str,
                 work: Callable[[Services, Caller, dict[str, Any]], Response]) -> Response:
    """An authenticated CSC method: its caller, its body, its work."""
    svc: Services = request.app.state.services
    wire.check_version(version)
    with answers():
        who = await run_in_threadpool(caller, svc, request)
    data = await wire.body(request)

    def run() -> Response:
        with answers():
            return work(svc, who, data)

    return await run_in_threadpool(run)
