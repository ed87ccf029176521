"""``operationMode: "A"`` of ``signHash`` / ``signDoc`` and ``signatures/signPolling``.

An asynchronous call is checked like the synchronous one (a malformed call is refused at once,
before anything is kept), then handed to the core's deferred calls (core/deferred_results.py) as
what it is: the same call, to be made synchronously later by whichever node's job worker takes
it, for the same user through the same token. Its answer -- the signatures, or the error the
synchronous call would have given -- is fetched once with ``signPolling``.

A run cut off by a crash is resumed. If the cut-off run had already spent the authorization (the
SAD, or the credential token), the resumed run cannot sign again -- sole control -- and the
answer says the call was interrupted, so the client authorizes again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response

from remotesign.api.csc import wire
from remotesign.api.csc.calls import Caller, answers, no_store
from remotesign.api.errors import OAuthError
from remotesign.core.deferred_results import INTERRUPTED, Answer, DeferredCall
from remotesign.core.signature_activation import SadError
from remotesign.core.sole_control import SoleControlRefused
from remotesign.service import Services

KEEP_SECONDS = 3600
Work = Callable[[Services, Caller, dict[str, Any]], Response]


def _kind(version: str, method: str) -> str:
    return f"csc.{version}.{method}"


def start(svc: Services, who: Caller, data: dict[str, Any], version: str, method: str) -> Response:
    """Keep the (checked) call for later; answer 202 with the responseID for signPolling."""
    keep = wire.number(data, "validity_period", required=False) or KEEP_SECONDS
    if not 60 <= keep <= 86400:
        raise wire.bad("Invalid parameter validity_period: 60 to 86400 seconds")
    call = json.dumps({**data, "operationMode": "S"}, separators=(",", ":")).encode()
    response_id = svc.deferred_results.start(who.signer.tenant_id, who.signer.user_id, _kind(version, method), call,
                                             token_hash=who.token.token_hash, keep_seconds=keep)
    return no_store({"responseID": response_id}, 202)


def poll(svc: Services, who: Caller, response_id: str) -> Response:
    polled = svc.deferred_results.poll(who.signer.tenant_id, who.signer.user_id, response_id)
    if polled.answer is None:
        return no_store({"responseID": response_id, "status": "pending"}, 202)
    status, payload = polled.answer
    return no_store(payload, status)


def _runner(svc: Services, work: Work) -> Callable[[DeferredCall], Answer]:
    def run(call: DeferredCall) -> Answer:
        token = svc.tenants.by_hash(call.token_hash or "")
        if token is None or token.tenant_id != call.tenant_id or token.user_id != call.user_id:
            # answered to a poll made with another, valid token: not a 401 about that one
            return 400, {"error": "invalid_request", "error_description": "the access token the call was made "
                         "with was revoked or has expired before the call ran; ask again"}
        try:
            with answers():  # the core's refusals as the synchronous call answers them
                response = work(svc, Caller(token, None), json.loads(call.request))
        except OAuthError as exc:
            if call.attempt > 1 and isinstance(exc.__cause__, (SadError, SoleControlRefused)):
                # spent by the run that was cut off: nothing is signed twice
                return 409, {"error": "interrupted", "error_description": INTERRUPTED}
            return exc.status, {"error": exc.code, "error_description": exc.description}
        return response.status_code, json.loads(bytes(response.body))

    return run


def install(svc: Services, works: dict[tuple[str, str], Work]) -> None:
    """Register the runner of each (version, method) that has an asynchronous mode."""
    for (version, method), work in works.items():
        svc.deferred_results.register(_kind(version, method), _runner(svc, work))
