"""Admission control (api/admission.py): a process works on at most REMOTESIGN_MAX_ACTIVE_REQUESTS
requests at once, the others wait first come, first served; one that waits too long is answered
503 in its API's error shape; the health check and the PKI protocols never wait."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from remotesign.api.admission import AdmissionGate
from tests.harness import Service, free_port


# --- the gate on its own (an ASGI app that records what it works on) --------------------------


class _Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.running = 0
        self.most = 0
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        name = scope["path"]
        self.started.append(name)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.setdefault(name, asyncio.Event()).wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.running -= 1


async def _call(gate: AdmissionGate, path: str) -> int:
    answer: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.append(message["status"])

    await gate({"type": "http", "path": path, "headers": []}, receive, send)
    return answer[0]


async def _until(condition: Any, what: str, seconds: float = 20.0) -> None:
    """Wait for the loop to reach a state, however slow the machine (no fixed sleeps)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never reached: {what}"
        await asyncio.sleep(0.002)


def test_requests_get_their_turn_in_arrival_order_and_never_more_than_the_limit() -> None:
    async def scenario() -> None:
        app = _Recorder()
        gate = AdmissionGate(app, limit=2, max_wait=60)
        calls = []
        for n in range(6):
            calls.append(asyncio.create_task(_call(gate, f"/r{n}")))
            await asyncio.sleep(0)  # arrival order is creation order
        await _until(lambda: len(app.started) == 2 and gate.waiting == 4, "two at work, four waiting")
        assert app.started == ["/r0", "/r1"]
        cancelled = calls[3]
        cancelled.cancel()  # a client that gave up leaves the queue and holds no slot
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert gate.waiting == 3 and gate.active == 2
        # each release hands the slot to the first one still waiting, skipping the cancelled one
        for released, expected in (("/r1", 3), ("/r0", 4), ("/r2", 5), ("/r4", 5), ("/r5", 5)):
            app.release.setdefault(released, asyncio.Event()).set()
            await _until(lambda: len(app.started) == expected and app.running <= 2, f"{expected} started")
        assert [await c for c in calls if c is not cancelled] == [200] * 5
        assert app.started == ["/r0", "/r1", "/r2", "/r4", "/r5"], app.started
        assert app.most == 2 and gate.active == 0 and gate.waiting == 0

    asyncio.run(scenario())


def test_a_request_that_waits_too_long_is_answered_503_and_exempt_paths_never_wait() -> None:
    async def scenario() -> None:
        app = _Recorder()
        gate = AdmissionGate(app, limit=1, max_wait=0.3)
        holder = asyncio.create_task(_call(gate, "/held"))
        await asyncio.sleep(0.02)
        began = time.monotonic()
        assert await _call(gate, "/api-session/v1.0/start") == 503
        assert 0.25 < time.monotonic() - began < 5
        app.release["/health"] = asyncio.Event()
        app.release["/health"].set()
        assert await _call(gate, "/health") == 200  # while the one slot is held
        app.release["/held"].set()
        assert await holder == 200
        assert gate.active == 0

    asyncio.run(scenario())


# --- a running service ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("admission") / "home", port=free_port(),
                      env={"REMOTESIGN_MAX_ACTIVE_REQUESTS": "1", "REMOTESIGN_ADMISSION_MAX_WAIT": "1"}).start()
    yield service
    service.stop()


def _slow_multipart(seconds: float, started: threading.Event) -> Iterator[bytes]:
    yield b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="slow.txt"\r\n' \
          b"Content-Type: text/plain\r\n\r\n"
    started.set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        yield b"x" * 1024
        time.sleep(0.1)
    yield b"\r\n--b0undary--\r\n"


def test_an_overloaded_service_answers_busy_in_the_apis_shape_while_health_and_pki_answer(gated: Service,
                                                                                          tmp_path: Path) -> None:
    demo = gated.demo_client()
    token = gated.token(demo["client_id"], demo["client_secret"])
    api = httpx.Client(base_url=gated.url, timeout=30, headers={"Authorization": f"Bearer {token}"})
    r = api.get("/api-session/v1.0/start")
    assert r.status_code == 201, r.text
    sid = r.json()["data"]["sessionId"]

    # An upload whose body trickles in holds the service's one slot while it is being received.
    started = threading.Event()
    uploaded: list[httpx.Response] = []
    uploader = threading.Thread(target=lambda: uploaded.append(api.put(
        f"/api-storage/v1.0/{sid}/upload", content=_slow_multipart(4.0, started),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"})))
    uploader.start()
    assert started.wait(10)
    time.sleep(0.5)

    began = time.monotonic()
    busy = api.get("/api-session/v1.0/start")
    assert busy.status_code == 503, busy.text
    assert time.monotonic() - began >= 0.9
    assert busy.headers["Retry-After"] == "5"
    assert busy.json()["data"] is None and busy.json()["error"]["code"] == "server_busy"  # eParaksts' shape
    oauth = httpx.post(gated.url + "/trustedx-authserver/oauth/lvrtc-eipsign-as/token",
                       data={"grant_type": "client_credentials"}, auth=(demo["client_id"], demo["client_secret"]))
    assert oauth.status_code == 503 and oauth.json()["error"] == "server_busy"  # RFC 6749's shape
    assert httpx.get(gated.url + "/health", timeout=5).status_code == 200
    assert httpx.get(gated.url + "/pki/ca.pem", timeout=5).status_code == 200

    uploader.join(30)
    assert uploaded and uploaded[0].status_code == 201, uploaded and uploaded[0].text
    r = api.get(f"/api-storage/v1.0/{sid}/list")  # the slot is free again
    assert r.status_code == 200 and len(r.json()["data"]) == 1 and "slow.txt" in r.text, r.text
