"""Recovery of signing operations over HTTP (issue 12 point 10a, 10d): a finalize or archive claimed by
a process that died is taken over by the retry, with exactly one signature, also when the dead
process had already written its result; a live claim is respected until its lease expires; deleting
a document or closing a session removes the prepared state.

Claims are staged in the service's database as a crashed process leaves them (the lease owner is a
real process of this host that was killed, or one of another host); the crash points make the
service itself die with SIGKILL at the worst moments."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from asn1crypto import x509

from remotesign.core import operations
from tests.crash_tools import (REMOTE_OWNER, dead_process_owner, operation, pdfsig_signatures, pyhanko_check,
                               session_dir, session_files, signed_documents, stage_claim)
from tests.harness import Service, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, SignApi, issue_card
from tests.verifiers import root_of


@pytest.fixture(scope="module")
def card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("card"), "rsa", cn="Recovery Signer")


@pytest.fixture(scope="module")
def root(ca_pem: bytes) -> x509.Certificate:
    return root_of(ca_pem)


def prepared_pdf(api: SignApi, card: Card) -> tuple[str, bytes, bytes]:
    """A session with one PDF after CalculateDigest: (session id, digest, the card's signature value)."""
    sid = api.start()
    api.upload(sid, "contract.pdf", pdf_bytes())
    r = api.calculate([sid], card, sign_as_pdf=True)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    digest = base64.b64decode(data["sessionDigests"][0]["digest"])
    return sid, digest, card.sign(digest, data["algorithm"])


def assert_signed_once(api: SignApi, home: Path, sid: str, root: x509.Certificate, tmp: Path,
                       doc_timestamps: int = 0) -> bytes:
    assert len(signed_documents(home, sid)) == 1
    _, pdf = api.result(sid)
    verdicts = pdfsig_signatures(pdf, tmp)  # poppler does not verify document time-stamps
    assert len(verdicts) == 1 + doc_timestamps and verdicts[0] == "Signature is Valid.", verdicts
    assert pyhanko_check(pdf, root) == (1, doc_timestamps, True)
    return pdf


def test_claim_of_a_killed_process_is_taken_over_at_once(service: Service, api: SignApi, card: Card,
                                                         root: x509.Certificate, tmp_path: Path) -> None:
    sid, _, value = prepared_pdf(api, card)
    stage_claim(service.home, sid, "finalizing", dead_process_owner(), expires_in=3600)  # long lease, dead owner
    r = api.finalize({sid: value})
    assert r.status_code == 200, r.text
    op = operation(service.home, sid)
    assert op is not None and op["status"] == "signed" and op["lease_owner"] is None
    assert_signed_once(api, service.home, sid, root, tmp_path)
    assert api.finalize({sid: value}).status_code == 200  # a further retry answers the same result
    assert len(signed_documents(service.home, sid)) == 1


def test_live_claim_is_respected_until_its_lease_expires(service: Service, api: SignApi, card: Card,
                                                         root: x509.Certificate, tmp_path: Path) -> None:
    sid, _, value = prepared_pdf(api, card)
    stage_claim(service.home, sid, "finalizing", REMOTE_OWNER, expires_in=3600)
    r = api.finalize({sid: value})
    assert r.status_code == 409 and "operation_in_progress" in r.text, r.text
    r = api.calculate([sid], card, sign_as_pdf=True)
    assert r.status_code == 409 and "operation_in_progress" in r.text, r.text
    doc_id = api.list(sid)[0]["id"]
    r = api.client.delete(f"/api-storage/v1.0/{sid}/{doc_id}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "operation_in_progress", r.text

    stage_claim(service.home, sid, "finalizing", REMOTE_OWNER, expires_in=-1)  # the lease ran out
    r = api.finalize({sid: value})
    assert r.status_code == 200, r.text
    assert_signed_once(api, service.home, sid, root, tmp_path)


def heartbeat(home: Path, owner: str, seconds_ago: float) -> None:
    """Stage the heartbeat row of the process named in ``owner`` (storage/liveness.py)."""
    from datetime import datetime, timedelta, timezone

    from tests.crash_tools import _sql_time, database

    seen = _sql_time(datetime.now(timezone.utc) - timedelta(seconds=seconds_ago))
    with database(home) as db:
        db.execute("INSERT OR REPLACE INTO process_heartbeats (process, last_seen) VALUES (?, ?)",
                   (owner.split("#")[0], seen))


def test_claim_of_another_hosts_silent_process_is_taken_over(service: Service, api: SignApi, card: Card,
                                                             root: x509.Certificate, tmp_path: Path) -> None:
    """A process of another host (another node; this container before its restart) cannot be
    looked up in /proc: while it beats its claim holds, once its heartbeat is silent (60 s by
    default) the claim is taken over without waiting for its lease (an hour here)."""
    sid, _, value = prepared_pdf(api, card)
    owner = "fedcba987654.777.4242#0badc0de"
    stage_claim(service.home, sid, "finalizing", owner, expires_in=3600)
    heartbeat(service.home, owner, seconds_ago=0)
    time.sleep(6)  # the service's next beat reads who is silent: not this one
    r = api.finalize({sid: value})
    assert r.status_code == 409 and "operation_in_progress" in r.text, r.text
    heartbeat(service.home, owner, seconds_ago=600)
    deadline = time.monotonic() + 60
    while (r := api.finalize({sid: value})).status_code == 409:  # taken over at the next beat (5 s)
        assert time.monotonic() < deadline, r.text
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    assert_signed_once(api, service.home, sid, root, tmp_path)


def test_archive_claim_of_a_killed_process_is_taken_over(service: Service, api: SignApi, card: Card,
                                                         root: x509.Certificate, tmp_path: Path) -> None:
    sid, _, value = prepared_pdf(api, card)
    assert api.finalize({sid: value}).status_code == 200
    stage_claim(service.home, sid, "archiving", REMOTE_OWNER, expires_in=3600)
    r = api.archive([sid])
    assert r.status_code == 409 and "operation_in_progress" in r.text, r.text
    stage_claim(service.home, sid, "archiving", dead_process_owner(), expires_in=3600)
    r = api.archive([sid])
    assert r.status_code == 200, r.text
    assert operation(service.home, sid)["status"] == "archived"  # type: ignore[index]
    assert_signed_once(api, service.home, sid, root, tmp_path, doc_timestamps=1)


def test_crash_after_the_result_was_written_adopts_it(tmp_path_factory: pytest.TempPathFactory,
                                                      tmp_path: Path) -> None:
    """The service is SIGKILLed after writing the signed PDF but before recording it (and again after
    writing the archive version): the retry records that very file, no second signature is made."""
    home, port = tmp_path_factory.mktemp("crash-home"), free_port()
    svc = Service(home, port, env={"REMOTESIGN_CRASH_AT": "finalize.result_written"}).start()
    try:
        demo = svc.demo_client()
        api = SignApi(svc, svc.token(demo["client_id"], demo["client_secret"]))
        card = issue_card(svc, tmp_path, "rsa")
        root = root_of(httpx.get(svc.url + "/pki/ca.pem").content)
        sid, digest, value = prepared_pdf(api, card)
        with pytest.raises(httpx.TransportError):
            api.finalize({sid: value})
        assert svc.proc is not None and svc.proc.wait(timeout=60) == -9

        result = operations.finalize_result_id(SimpleNamespace(session_id=sid, digest=digest))  # type: ignore[arg-type]
        directory = session_dir(home, sid)
        assert directory is not None and result in session_files(home, sid)
        written = hashlib.sha256((directory / result).read_bytes()).hexdigest()
        assert operation(home, sid)["status"] == "finalizing" and signed_documents(home, sid) == []  # type: ignore[index]

        svc = Service(home, port, env={"REMOTESIGN_CRASH_AT": "archive.result_written"}).start()
        api = SignApi(svc, svc.token(demo["client_id"], demo["client_secret"]))
        r = api.finalize({sid: value})
        assert r.status_code == 200, r.text
        assert signed_documents(home, sid) == [result]
        pdf = assert_signed_once(api, home, sid, root, tmp_path)
        assert hashlib.sha256(pdf).hexdigest() == written  # the dead process's file, not a new signature

        with pytest.raises(httpx.TransportError):
            api.archive([sid])
        assert svc.proc is not None and svc.proc.wait(timeout=60) == -9
        archived = operations.archive_result_id(sid, result)
        assert archived in session_files(home, sid) and operation(home, sid)["status"] == "archiving"  # type: ignore[index]
        written = hashlib.sha256((directory / archived).read_bytes()).hexdigest()

        svc = Service(home, port).start()
        api = SignApi(svc, svc.token(demo["client_id"], demo["client_secret"]))
        r = api.archive([sid])
        assert r.status_code == 200, r.text
        assert signed_documents(home, sid) == [archived] and operation(home, sid)["status"] == "archived"  # type: ignore[index]
        pdf = assert_signed_once(api, home, sid, root, tmp_path, doc_timestamps=1)
        assert hashlib.sha256(pdf).hexdigest() == written
        assert result not in session_files(home, sid)  # the superseded B-LT file went with its record
    finally:
        svc.stop()


def test_deleting_a_document_deletes_its_prepared_state(service: Service, api: SignApi, card: Card) -> None:
    sid, _, value = prepared_pdf(api, card)
    prepared = operation(service.home, sid)["prepared_blob"]  # type: ignore[index]
    doc_id = api.list(sid)[0]["id"]
    assert sorted(session_files(service.home, sid)) == sorted([doc_id, prepared])
    r = api.client.delete(f"/api-storage/v1.0/{sid}/{doc_id}")
    assert r.status_code == 200, r.text
    assert session_files(service.home, sid) == [] and operation(service.home, sid) is None
    r = api.finalize({sid: value})
    assert r.status_code == 409 and "not_prepared" in r.text, r.text


def test_deleting_a_document_removes_the_result_an_abandoned_claim_left(service: Service, api: SignApi,
                                                                       card: Card) -> None:
    sid, digest, _ = prepared_pdf(api, card)
    stage_claim(service.home, sid, "finalizing", dead_process_owner(), expires_in=3600)
    result = operations.finalize_result_id(SimpleNamespace(session_id=sid, digest=digest))  # type: ignore[arg-type]
    directory = session_dir(service.home, sid)
    assert directory is not None
    (directory / result).write_bytes(b"what a killed finalize wrote and never recorded")
    doc_id = api.list(sid)[0]["id"]
    assert api.client.delete(f"/api-storage/v1.0/{sid}/{doc_id}").status_code == 200
    assert session_files(service.home, sid) == [] and operation(service.home, sid) is None


def test_closing_a_session_deletes_its_prepared_state(service: Service, api: SignApi, card: Card) -> None:
    sid, _, _ = prepared_pdf(api, card)
    assert session_dir(service.home, sid) is not None
    r = api.client.get(f"/api-session/v1.0/{sid}/close")
    assert r.status_code == 200, r.text
    assert session_dir(service.home, sid) is None and operation(service.home, sid) is None


def test_the_prepared_file_of_a_finalized_session_goes_at_close(service: Service, api: SignApi, card: Card) -> None:
    sid, _, value = prepared_pdf(api, card)
    prepared = operation(service.home, sid)["prepared_blob"]  # type: ignore[index]
    r = api.finalize({sid: value})
    assert r.status_code == 200, r.text
    assert prepared in session_files(service.home, sid)  # kept while the session lives: no request at finalize
    r = api.client.get(f"/api-session/v1.0/{sid}/close")
    assert r.status_code == 200, r.text
    assert session_dir(service.home, sid) is None and operation(service.home, sid) is None
