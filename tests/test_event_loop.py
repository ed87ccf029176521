"""Nothing blocks the event loop (issue 15 item 1): the routes of every facade do their database,
file, KDF, TSA/OCSP and parsing work in worker threads, never on the loop that serves everyone.

The application runs in this process, on a loop of the test's own, driven through
``httpx.ASGITransport``: each request is a task named ``route:<METHOD> <path>``, so whatever a
route runs inline runs on this thread. Two checks:

- deterministic: the database (every SQL statement the engine executes) and the blocking service
  calls (client authentication, tokens, audit records, blob reads and writes, OCSP and TSA
  signing) are watched, and any of them that runs on the loop's thread inside a route task is a
  failure naming the route and the call. No timing is involved.
- asyncio's debug mode with ``slow_callback_duration`` at 0.25 s: a step of a route task that
  holds the loop that long (a PDF parse, a scrypt, a chain of commits) is logged by asyncio as
  ``Executing <Task ... name='route:...'> took`` and fails the test. The bound is far above a
  thread switch or a busy machine's jitter; first-use costs (lazy imports, caches) get one retry.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asn1crypto import algos, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from sqlalchemy import event

from tests.pdfgen import pdf_bytes
from tests.signapi import Card

SLOW_CALLBACK_SECONDS = 0.25
ROUTE = "route:"
BASE = "http://127.0.0.1:9"  # never connected to: requests go through the ASGI transport


class LoopWatch:
    """Records blocking calls made on the event loop's thread while a route task runs."""

    def __init__(self) -> None:
        self.loop_thread: int | None = None
        self.hits: list[str] = []
        self.calls = 0

    def check(self, what: str) -> None:
        self.calls += 1
        if threading.get_ident() != self.loop_thread:
            return
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return
        name = task.get_name() if task is not None else ""
        if name.startswith(ROUTE):
            self.hits.append(f"{name[len(ROUTE):]}: {what}")

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def watched(*args: Any, **kwargs: Any) -> Any:
            self.check(label)
            return original(*args, **kwargs)

        setattr(owner, attribute, watched)


@pytest.fixture(scope="module")
def app_and_watch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, LoopWatch, dict[str, str]]]:
    from remotesign.api.app import create_app
    from remotesign.config import load_settings
    from remotesign.service import Services

    home = tmp_path_factory.mktemp("loop-home")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("REMOTESIGN_DATABASE_URL", "REMOTESIGN_BLOB_DIR", "REMOTESIGN_MASTER_KEY_FILE",
                     "REMOTESIGN_MASTER_KEY", "REMOTESIGN_KEY_BACKEND", "REMOTESIGN_KDF_LOG2_N",
                     "REMOTESIGN_TSA_URL"):
            mp.delenv(name, raising=False)  # the embedded defaults, the KDF at its production cost
        mp.setenv("REMOTESIGN_HOME", str(home))
        mp.setenv("REMOTESIGN_PUBLIC_URL", BASE)
        svc = Services(load_settings())
        svc.initialize()
    demo = svc.tenants.create("loop-watch")
    client = {"client_id": demo[0].client_id, "client_secret": demo[1]}
    watch = LoopWatch()

    @event.listens_for(svc.db.engine, "before_cursor_execute")
    def _sql(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        watch.check("SQL " + " ".join(statement.split())[:60])

    for owner, attribute, label in (
            (svc.tenants, "authenticate", "client secret check"), (svc.tenants, "issue_token", "token issue"),
            (svc.tenants, "resolve", "token lookup"), (svc.audit, "append", "audit record"),
            (svc.blobs, "writer", "blob write"), (svc.blobs, "open", "blob read"),
            (svc.blobs, "put", "blob put"), (svc.ocsp, "respond", "OCSP signing"),
            (svc.tsa, "respond", "TSA signing")):
        watch.wrap(owner, attribute, label)
    app = create_app(svc)
    yield app, svc, watch, client
    svc.close()


def _card(svc: Any) -> Card:
    from remotesign.trust.ca import subject_from_text

    key = rsa.generate_private_key(65537, 2048)
    pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    issued = svc.ca.issue(subject=subject_from_text("CN=Loop Watch,SERIALNUMBER=PNOLV-010101-12345,C=LV"),
                          public_key_der=pub, profile_name="qualified-person", tenant_id=None,
                          validity=timedelta(days=30))
    return Card(key, x509.load_der_x509_certificate(issued.der))


def _ocsp_request(svc: Any) -> bytes:
    issuing = x509.load_der_x509_certificate(svc.ca.issuing.der)
    tsa_cert = x509.load_der_x509_certificate(svc.ca.tsa_signer()[0].der)
    return ocsp.OCSPRequestBuilder().add_certificate(tsa_cert, issuing, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)


def _tsa_request() -> bytes:
    import hashlib

    return tsp.TimeStampReq({
        "version": 1, "cert_req": True, "nonce": 12345,
        "message_imprint": {"hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                            "hashed_message": hashlib.sha256(b"loop").digest()}}).dump()


async def _scenario(app: Any, svc: Any, client: dict[str, str], card: Card) -> list[str]:
    """The representative requests, each in a task named after its route; returns what failed."""
    problems: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=120) as http:

        async def call(label: str, method: str, url: str, expect: int | tuple[int, ...], **kwargs: Any) -> httpx.Response:
            task = asyncio.create_task(http.request(method, url, **kwargs), name=f"{ROUTE}{label}")
            r = await task
            if r.status_code not in ((expect,) if isinstance(expect, int) else expect):
                problems.append(f"{label}: status {r.status_code} {r.text[:300]}")
            return r

        auth = (client["client_id"], client["client_secret"])
        r = await call("POST token", "POST", "/trustedx-authserver/oauth/lvrtc-eipsign-as/token",
                       200, data={"grant_type": "client_credentials"}, auth=auth)
        token = r.json()["access_token"]
        await call("POST introspect", "POST", "/trustedx-authserver/oauth/lvrtc-eipsign-as/introspect", 200,
                   data={"token": token}, auth=auth)
        bearer = {"Authorization": f"Bearer {token}"}
        r = await call("GET session start", "GET", "/api-session/v1.0/start", 201, headers=bearer)
        sid = r.json()["data"]["sessionId"]
        pdf = pdf_bytes()
        r = await call("PUT upload", "PUT", f"/api-storage/v1.0/{sid}/upload", 201, headers=bearer,
                       files={"file": ("a.pdf", pdf, "application/pdf")})
        doc_id = r.json()["data"]["id"]
        await call("GET list", "GET", f"/api-storage/v1.0/{sid}/list", 200, headers=bearer)
        r = await call("GET download", "GET", f"/api-storage/v1.0/{sid}/{doc_id}", 200, headers=bearer)
        if r.content != pdf:
            problems.append("GET download: not the uploaded file")
        r = await call("POST CalculateDigest", "POST", "/api-sign/v1.0/CalculateDigest", 200, headers=bearer,
                       json={"sessions": [{"sessionId": sid}], "certificate": card.cert_b64, "signAsPdf": True})
        if r.status_code == 200:
            data = r.json()["data"]
            value = card.sign(base64.b64decode(data["sessionDigests"][0]["digest"]), data["algorithm"])
            r = await call("POST finalizeSigning", "POST", "/api-sign/v1.0/finalizeSigning", 200, headers=bearer,
                           json={"sessionSignatureValues": [{"sessionId": sid,
                                                             "signatureValue": base64.b64encode(value).decode()}]})
            if r.status_code == 200:
                await call("GET validate", "GET", f"/api-validation/v1.0/{sid}/{doc_id}/validate", 200,
                           headers=bearer)
        await call("POST validations", "POST", "/v1/validations", (200, 422), headers=bearer,
                   files={"file": ("a.pdf", pdf, "application/pdf")})
        await call("POST OCSP", "POST", "/pki/ocsp", 200, content=_ocsp_request(svc),
                   headers={"Content-Type": "application/ocsp-request"})
        await call("POST TSA", "POST", "/pki/tsa", 200, content=_tsa_request(),
                   headers={"Content-Type": "application/timestamp-query"})
        r = await call("POST Fortress token", "POST", "/fortress/oauth2/v1/token", (200, 400),
                       params={"grant_type": "client_credentials", "scope": "client", **client})
        if r.status_code == 200:
            fortress = {"Authorization": f"Bearer {r.json()['access_token']}"}
            await call("POST Fortress extend", "POST", "/fortress/api/v1/signature/extend", 200, headers=fortress,
                       json={"extendSignatureConfigurations": [{
                           "document": {"bytesB64": base64.b64encode(b"\x01" * 256).decode()},
                           "signatureType": "PKCS1"}]})
        await call("GET session close", "GET", f"/api-session/v1.0/{sid}/close", 200, headers=bearer)
    return problems


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run_once(app: Any, svc: Any, client: dict[str, str], card: Card, watch: LoopWatch) -> tuple[list[str], list[str]]:
    """(failed requests and blocking calls on the loop, slow-callback warnings naming a route)."""
    collect = _Collect()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(collect)
    try:
        with asyncio.Runner(debug=True) as runner:
            loop = runner.get_loop()
            loop.slow_callback_duration = SLOW_CALLBACK_SECONDS
            watch.loop_thread = threading.get_ident()
            watch.hits = []
            try:
                problems = runner.run(_scenario(app, svc, client, card))
            finally:
                watch.loop_thread = None
    finally:
        asyncio_log.removeHandler(collect)
    slow = [m for m in collect.messages if "took" in m and f"name='{ROUTE}" in m]
    return problems + watch.hits, slow


def test_routes_do_not_block_the_event_loop(app_and_watch: tuple[Any, Any, LoopWatch, dict[str, str]]) -> None:
    app, svc, watch, client = app_and_watch
    card = _card(svc)
    blocking, slow = _run_once(app, svc, client, card, watch)
    assert watch.calls > 0, "the watch saw no blocking call at all: the instrumentation is broken"
    assert not blocking, "blocking work on the event loop:\n" + "\n".join(blocking)
    if slow:  # first use (imports, caches) may be slow once; the same requests again must not be
        blocking, slow = _run_once(app, svc, client, card, watch)
        assert not blocking, "blocking work on the event loop:\n" + "\n".join(blocking)
    assert not slow, "a route held the event loop:\n" + "\n".join(slow)


def test_the_watch_sees_blocking_work(app_and_watch: tuple[Any, Any, LoopWatch, dict[str, str]]) -> None:
    """The check itself: a route that talks to the database on the loop is reported."""
    app, svc, watch, client = app_and_watch

    async def blocking_route() -> None:
        svc.tenants.authenticate(client["client_id"], client["client_secret"])

    async def main() -> None:
        watch.loop_thread = threading.get_ident()
        watch.hits = []
        try:
            await asyncio.create_task(blocking_route(), name=f"{ROUTE}GET /blocking")
            await asyncio.create_task(asyncio.to_thread(svc.tenants.authenticate, client["client_id"],
                                                        client["client_secret"]), name=f"{ROUTE}GET /threaded")
        finally:
            watch.loop_thread = None

    asyncio.run(main())
    assert any(h.startswith("GET /blocking: client secret check") for h in watch.hits), watch.hits
    assert any(h.startswith("GET /blocking: SQL SELECT") for h in watch.hits), watch.hits
    assert not [h for h in watch.hits if h.startswith("GET /threaded")], watch.hits
