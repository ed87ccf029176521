"""Bearer authentication of eSigP calls, scope checks, and the mapping of core failures to
TrustedX-style errors (rendered as ``{"error", "error_description"}`` for ``/trustedx-resources``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Depends, Request

from remotesign.api.deps import bearer_token, services
from remotesign.api.errors import ApiError
from remotesign.core.devices import DeviceError
from remotesign.core.identities import IdentityError, PinRefused
from remotesign.core.processes import ProcessError
from remotesign.core.raw_signing import RawSigningError
from remotesign.core.sole_control import SoleControlRefused
from remotesign.core.tenants import TokenInfo
from remotesign.core.users import UserError
from remotesign.service import Services

REALM = 'Bearer realm="trustedx-resources"'


def invalid_token(message: str, **extra: object) -> ApiError:
    return ApiError(401, "invalid_token", message, {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
                    extra=dict(extra) or None)


def insufficient_scope(*scopes: str) -> ApiError:
    wanted = " ".join(scopes)
    return ApiError(403, "insufficient_scope", f"this operation needs a token with scope {' or '.join(scopes)}",
                    {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{wanted}"'})


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message)


def caller(request: Request, svc: Services = Depends(services)) -> TokenInfo:
    """The valid bearer token of the call. An expired signing token (one bound to digests) is a
    sole-control refusal: audited with reason ``expired``, then answered as an invalid token."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "invalid_token", "a Bearer access token is required", {"WWW-Authenticate": REALM})
    info = svc.tenants.resolve(token)
    if info is not None:
        return info
    stale = svc.tenants.resolve_expired(token)
    if stale is not None and stale.digests_summary:
        refused = svc.sole_control.refuse(stale, "expired", "the signing authorization has expired")
        raise invalid_token(refused.message, reason=refused.reason)
    raise invalid_token("the access token is unknown, expired or revoked")


ID_PATTERN = r"^[!-~]{1,64}$"  # printable ASCII: ids are UUIDs; anything else is simply not found


def plausible_id(value: str | None) -> bool:
    return value is not None and 0 < len(value) <= 64 and all("!" <= c <= "~" for c in value)


def need_any(token: TokenInfo, *scopes: str) -> None:
    if not token.scopes.intersection(scopes):
        raise insufficient_scope(*scopes)


def b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"{what} is not valid base64") from exc


@contextmanager
def core_errors() -> Iterator[None]:
    """Core exceptions as eSigP answers: a sole-control refusal is 403 access_denied with its
    stable ``reason``; the others keep their own status and code."""
    try:
        yield
    except SoleControlRefused as exc:
        raise ApiError(403, "access_denied", exc.message, extra={"reason": exc.reason}) from exc
    except PinRefused as exc:
        extra: dict[str, object] = {"remaining": exc.remaining}
        if exc.locked_until is not None:
            extra["locked_until"] = exc.locked_until.isoformat()
        raise ApiError(403, exc.code, exc.message, extra=extra) from exc
    except (IdentityError, RawSigningError, ProcessError, DeviceError) as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except UserError as exc:
        raise ApiError(404 if exc.code == "not_found" else 400, exc.code, exc.message) from exc
