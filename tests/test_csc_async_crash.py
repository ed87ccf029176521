"""The CSC API's asynchronous calls (``operationMode: "A"``) survive ``kill -9`` of the service.

The call runs from the job queue; each test holds its run at a pause point, kills the process
there (SIGKILL: no cleanup, no answer) and starts the service again on the same home:

* cut off before it signed: the restarted service resumes it, the owner polls the signatures
  (checked with ``openssl pkeyutl`` and poppler's ``pdfsig``), the key was used once -- also
  when the restart looks like another host (a restarted container: the dead process's silent
  heartbeat says it is gone);
* cut off after the key signed but before the answer was kept: the SAD is spent, so the resumed
  run signs nothing and the poll answers ``409 interrupted``; the key was used once in all;
* cut off at every run: given up after three runs (``409 interrupted``), never stuck;
* cut off while the call was being kept (before its caller had its id): the row is answered as
  lost and leaves no file behind, and the SAD, never spent, still signs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.consent import Enrolled, enrol, register_redirect
from tests.crash_tools import database
from tests.csc_client import SHA256, SHA256_RSA, Csc, b64
from tests.harness import Service, free_port
from tests.pdfgen import pdf_bytes
from tests.test_csc import certificate, pkeyutl_verify, service_token
from tests.verifiers import pdfsig

pytestmark = pytest.mark.slow
ENV = {"REMOTESIGN_CSC_FACTORS": "pin-or-otp"}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One installation for the module (each test enrols its own user and restarts the service
    with its own pause or crash point first)."""
    service = Service(home=tmp_path_factory.mktemp("csc-async-crash"), port=free_port(), env=dict(ENV)).start()
    yield service
    service.stop()


def _user(svc: Service) -> tuple[dict[str, str], Enrolled]:
    demo = svc.demo_client()
    with httpx.Client(base_url=svc.url, timeout=120) as http:
        admin = svc.token(demo["client_id"], demo["client_secret"])
        register_redirect(http, admin)
        return demo, enrol(http, admin, pin="8642")


def _api(svc: Service, demo: dict[str, str], who: Enrolled) -> Csc:
    http = httpx.Client(base_url=svc.url, timeout=120)
    return Csc(http, "v2", service_token(http, "v2", demo, who))


def _restart(svc: Service, pause_at: str | None, **env: str) -> None:
    svc.stop()
    svc.env = {**ENV, **({"REMOTESIGN_PAUSE_AT": pause_at} if pause_at else {}), **env}
    svc.start()


def _row(svc: Service) -> dict[str, Any]:
    """The state of the test's call: the newest one (each test makes one, one test at a time)."""
    with database(svc.home) as db:
        row = db.execute("SELECT status, attempts FROM deferred_results ORDER BY created_at DESC LIMIT 1").fetchone()
    return dict(row)


def _kill_when(svc: Service, status: str, attempts: int, key_uses: tuple[str, int] | None = None) -> None:
    """SIGKILL the service once its run of the call has got so far (the row says so, and the audit
    log the key's uses) and is held at the pause point."""
    deadline = time.monotonic() + 90
    while (row := _row(svc)) != {"status": status, "attempts": attempts} or \
            (key_uses is not None and _key_uses(svc, key_uses[0]) != key_uses[1]):
        assert time.monotonic() < deadline, row
        time.sleep(0.05)
    assert svc.proc is not None
    os.kill(svc.proc.pid, signal.SIGKILL)
    assert svc.proc.wait(timeout=30) == -signal.SIGKILL


def polled(api: Csc, response_id: str) -> httpx.Response:
    """signPolling until the call is no longer pending (a hang guard, not an expectation)."""
    deadline = time.monotonic() + 120
    while (r := api.call("signatures/signPolling", {"responseID": response_id})).status_code == 202:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)
    return r


def _key_uses(svc: Service, identity_id: str) -> int:
    with database(svc.home) as db:
        return int(db.execute("SELECT count(*) FROM audit_events WHERE event = 'identity_key.used' AND subject = ?",
                              (identity_id,)).fetchone()[0])


def sign_hash_async(api: Csc, who: Enrolled, digest: bytes) -> str:
    sad = api.authorize_pin(who.identity_id, who.pin, [digest])
    return str(api.ok("signatures/signHash", {"credentialID": who.identity_id, "SAD": sad, "hashes": [b64(digest)],
                                              "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA,
                                              "operationMode": "A"}, status=202)["responseID"])


def test_a_call_cut_off_before_it_signed_is_resumed(svc: Service, tmp_path: Path) -> None:
    demo, who = _user(svc)
    _restart(svc, "deferred.claimed")
    api = _api(svc, demo, who)
    digest = hashlib.sha256(b"resumed after a crash").digest()
    response_id = sign_hash_async(api, who, digest)
    _kill_when(svc, "running", 1)
    _restart(svc, None)
    api = _api(svc, demo, who)
    r = polled(api, response_id)
    assert r.status_code == 200, r.text
    pkeyutl_verify(tmp_path, certificate(api, who.identity_id), digest, base64.b64decode(r.json()["signatures"][0]))
    assert _row(svc) == {"status": "fetched", "attempts": 2}
    assert _key_uses(svc, who.identity_id) == 1
    assert api.refused("signatures/signPolling", {"responseID": response_id})  # given once


def test_a_document_call_of_a_restarted_container_is_resumed(svc: Service, tmp_path: Path) -> None:
    """As a container restarted: the new process runs on "another host" (a new host key), where
    the dead one's pid means nothing; its silent heartbeat tells it is gone, long before the
    300 s lease of its run would."""
    demo, who = _user(svc)
    _restart(svc, "deferred.claimed", REMOTESIGN_TEST_HOST="container-before")
    api = _api(svc, demo, who)
    document = pdf_bytes(text="signDoc, resumed")
    sad = api.authorize_pin(who.identity_id, who.pin, [hashlib.sha256(document).digest()])
    response_id = api.ok("signatures/signDoc", {
        "credentialID": who.identity_id, "SAD": sad, "operationMode": "A",
        "documents": [{"document": b64(document), "signature_format": "P", "conformance_level": "Ades-B-T",
                       "signAlgo": SHA256_RSA}]}, status=202)["responseID"]
    _kill_when(svc, "running", 1)
    _restart(svc, None, REMOTESIGN_TEST_HOST="container-after", REMOTESIGN_NODE_SILENT_AFTER="5")
    api = _api(svc, demo, who)
    r = polled(api, response_id)
    assert r.status_code == 200, r.text
    [signed] = [base64.b64decode(d) for d in r.json()["DocumentWithSignature"]]
    (tmp_path / "signed.pdf").write_bytes(signed)
    verdict = pdfsig(tmp_path / "signed.pdf")
    assert verdict.count("Signature Validation: Signature is Valid.") == 1, verdict
    assert _key_uses(svc, who.identity_id) == 1


def test_a_call_cut_off_after_the_key_signed_never_signs_twice(svc: Service) -> None:
    demo, who = _user(svc)
    _restart(svc, "deferred.answered")
    api = _api(svc, demo, who)
    digest = hashlib.sha256(b"signed, then the power went").digest()
    response_id = sign_hash_async(api, who, digest)
    _kill_when(svc, "running", 1, key_uses=(who.identity_id, 1))  # it signed; its answer is never kept
    _restart(svc, None)
    api = _api(svc, demo, who)
    r = polled(api, response_id)
    assert r.status_code == 409 and r.json()["error"] == "interrupted", r.text
    assert _row(svc) == {"status": "fetched", "attempts": 2}
    assert _key_uses(svc, who.identity_id) == 1  # the SAD it spent signs nothing more


def test_a_call_cut_off_at_every_run_is_given_up(svc: Service) -> None:
    demo, who = _user(svc)
    _restart(svc, "deferred.claimed")
    api = _api(svc, demo, who)
    response_id = sign_hash_async(api, who, hashlib.sha256(b"poison").digest())
    for attempt in (1, 2, 3):
        _kill_when(svc, "running", attempt)
        _restart(svc, "deferred.claimed" if attempt < 3 else None)
    api = _api(svc, demo, who)
    r = polled(api, response_id)
    assert r.status_code == 409 and r.json()["error"] == "interrupted", r.text
    assert _row(svc)["status"] == "lost"
    assert _key_uses(svc, who.identity_id) == 0


def test_a_call_cut_off_while_it_was_kept_spends_nothing(svc: Service, tmp_path: Path) -> None:
    demo, who = _user(svc)
    _restart(svc, None, REMOTESIGN_CRASH_AT="deferred.kept")
    api = _api(svc, demo, who)
    digest = hashlib.sha256(b"kept, then the power went").digest()
    sad = api.authorize_pin(who.identity_id, who.pin, [digest])
    body = {"credentialID": who.identity_id, "SAD": sad, "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
            "signAlgo": SHA256_RSA}
    kept_calls = svc.home / "blobs" / "deferred"
    before = set(kept_calls.glob("*.call"))
    with pytest.raises(httpx.TransportError):
        api.call("signatures/signHash", {**body, "operationMode": "A"})
    _restart(svc, None)
    deadline = time.monotonic() + 120
    while (row := _row(svc))["status"] != "done":  # the leader finds it queued, and answers it lost
        assert time.monotonic() < deadline, row
        time.sleep(0.2)
    assert set(kept_calls.glob("*.call")) <= before  # its call's file went with it
    api = _api(svc, demo, who)
    signed = api.ok("signatures/signHash", body)  # the SAD was never spent
    pkeyutl_verify(tmp_path, certificate(api, who.identity_id), digest, base64.b64decode(signed["signatures"][0]))
    assert _key_uses(svc, who.identity_id) == 1
