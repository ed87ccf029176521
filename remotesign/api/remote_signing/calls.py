"""How every authenticated call of the Remote Signing API runs: the caller first (401 / 403 /
1019 before anything is read), then the body (1002), then the work off the event loop, with the
core's refusals answered from the response-code table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from remotesign.api.remote_signing.answers import Refusal, from_core, refused
from remotesign.api.remote_signing.auth import Caller, caller
from remotesign.api.remote_signing.wire import read
from remotesign.core.errors import CoreError
from remotesign.service import Services

ModelT = TypeVar("ModelT", bound=BaseModel)


async def handle(request: Request, model: type[ModelT], scope: str,
                 work: Callable[[Services, Caller, ModelT], JSONResponse]) -> JSONResponse:
    svc: Services = request.app.state.services
    try:
        who = await run_in_threadpool(caller, request, scope)
        body = await read(request, model)
        return await run_in_threadpool(work, svc, who, body)
    except Refusal as exc:
        return refused(exc)
    except CoreError as exc:
        return refused(from_core(exc))
