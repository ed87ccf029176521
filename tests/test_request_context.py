"""The last line of defence, in process: an exception nothing handled is answered in the called API's
shape with the request id, and logged as ONE line (no traceback unless debug logging is on, and then
a bounded one). The service cannot be made to fail on purpose over HTTP, so a tiny app with the
service's middleware and handlers stands in for it."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from remotesign.api.errors import install_error_handlers
from remotesign.api.request_context import CompactFormatter, RequestContext, _RequestIdFilter


def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/boom")
    def boom() -> None:
        raise ValueError("something broke\n" + "x" * 10_000)

    @app.get("/api-sign/v1.0/deep")
    def deep() -> None:
        _recurse(0)

    @app.get("/trustedx-resources/boom")
    async def oauth_boom() -> None:
        raise KeyError("k")

    @app.get("/v1/warn")
    def warn() -> dict[str, str]:
        logging.getLogger("remotesign.test").warning("a warning inside a request")
        return {}

    app.add_middleware(RequestContext)
    return app


@pytest.fixture()
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CompactFormatter())
    handler.addFilter(_RequestIdFilter())
    logger = logging.getLogger("remotesign")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old)


def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(run())


def test_unexpected_error_is_one_line_and_a_500_in_shape(captured: io.StringIO) -> None:
    r = get("/v1/boom", {"X-Request-Id": "rid-boom"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "rid-boom"
    assert r.json() == {"error": {"code": "internal_error", "message": "internal error; the service log names request rid-boom"}}
    lines = captured.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "rid-boom" in lines[0] and "ValueError" in lines[0] and "GET /v1/boom" in lines[0]
    assert len(lines[0]) < 1000 and "Traceback" not in lines[0]
    assert "tests/test_request_context.py:" in lines[0] and " boom < " in lines[0]  # where, innermost first


def test_recursion_is_the_callers_fault_a_400(captured: io.StringIO) -> None:
    r = get("/api-sign/v1.0/deep", {"X-Request-Id": "rid-deep"})
    assert r.status_code == 400
    assert r.json() == {"data": None, "error": {"code": "invalid_request",
                                                "message": "the input is nested too deeply to be processed"}}
    [line] = captured.getvalue().splitlines()
    assert "RecursionError" in line and "rid-deep" in line and len(line) < 600


def test_oauth_paths_answer_rfc6749(captured: io.StringIO) -> None:
    r = get("/trustedx-resources/boom")
    assert r.status_code == 500 and set(r.json()) == {"error", "error_description"}
    rid = r.headers["x-request-id"]
    assert rid in captured.getvalue() and len(captured.getvalue().splitlines()) == 1


def test_every_record_of_a_request_carries_its_id(captured: io.StringIO) -> None:
    get("/v1/warn", {"X-Request-Id": "rid-warn"})
    [line] = captured.getvalue().splitlines()
    assert "[rid-warn]" in line and "a warning inside a request" in line


def test_tracebacks_only_at_debug_level_and_bounded() -> None:
    formatter = CompactFormatter()
    try:
        _recurse(0)
    except RecursionError:
        record = logging.LogRecord("remotesign", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    root = logging.getLogger()
    old = root.level
    try:
        root.setLevel(logging.WARNING)
        line = formatter.format(record)
        assert "\n" not in line and "RecursionError" in line
        root.setLevel(logging.DEBUG)
        full = formatter.format(record)
        assert "Traceback" in full and len(full) < 20_000
    finally:
        root.setLevel(old)
