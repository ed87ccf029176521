"""The PostgreSQL path against a real PostgreSQL server started by the harness: migrations, the
service end to end, and the audit chain under concurrent writers."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database
from remotesign.storage.migrate import upgrade_to_head
from tests.audit_race import race_appends_in_transactions
from tests.harness import PostgresServer, Service, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_service(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url = postgres.create_database("remotesign_service")
    svc = Service(home=tmp_path_factory.mktemp("pghome"), port=free_port(),
                  env={"REMOTESIGN_DATABASE_URL": url}).start()
    yield svc
    svc.stop()


def test_migrations_create_the_schema(postgres: PostgresServer) -> None:
    url = postgres.create_database("remotesign_migrations")
    upgrade_to_head(url)
    upgrade_to_head(url)  # idempotent
    db = Database(url)
    tables = set(inspect(db.engine).get_table_names())
    db.dispose()
    assert {"tenants", "access_tokens", "keys", "certificates", "crls", "timestamps", "audit_events",
            "alembic_version"} <= tables


def test_service_runs_on_postgresql(pg_service: Service) -> None:
    assert not (pg_service.home / "remotesign.db").exists()
    health = httpx.get(pg_service.url + "/health").json()
    assert health["database"] == "postgresql"
    demo = pg_service.demo_client()
    token = pg_service.token(demo["client_id"], demo["client_secret"])
    auth = {"Authorization": f"Bearer {token}"}
    key = httpx.post(pg_service.url + "/v1/keys", json={"algorithm": "ec-p256"}, headers=auth).json()
    r = httpx.post(pg_service.url + "/v1/certificates", headers=auth, json={
        "profile": "person-auth", "key_id": key["id"], "subject": "CN=PG User"})
    assert r.status_code == 201, r.text
    listed = pg_service.cli("pki", "list").stdout.decode()
    assert r.json()["id"] in listed
    assert b"hash chain intact" in pg_service.cli("audit", "verify").stdout


def test_closing_a_session_removes_its_files_on_postgresql(pg_service: Service, tmp_path: Path) -> None:
    """Close deletes the session's rows and names their files in one statement each (DELETE ...
    RETURNING): the uploaded file and the prepared one CalculateDigest left are gone at once."""
    from tests.signapi import SignApi, issue_card
    from tests.pdfgen import pdf_bytes

    demo = pg_service.demo_client()
    api = SignApi(pg_service, pg_service.token(demo["client_id"], demo["client_secret"]))
    card = issue_card(pg_service, tmp_path, kind="p256")
    sid = api.start()
    api.upload(sid, "a.pdf", pdf_bytes())
    r = api.calculate([sid], card, sign_as_pdf=True)
    assert r.status_code == 200, r.text

    def files() -> list[Path]:
        return [p for p in (pg_service.home / "blobs").rglob("*") if p.is_file() and sid in str(p)]

    assert len(files()) >= 2  # the upload and the prepared document
    r = api.client.get(f"/api-session/v1.0/{sid}/close")
    assert r.status_code == 200, r.text
    assert files() == []
    r = api.client.get(f"/api-storage/v1.0/{sid}/list")
    assert r.status_code == 410 and r.json()["error"]["code"] == "session_closed", r.text
    assert b"hash chain intact" in pg_service.cli("audit", "verify").stdout


def test_audit_chain_survives_concurrent_writers(postgres: PostgresServer) -> None:
    """Two independent AuditLog objects (as two service processes would have) append at once."""
    url = postgres.create_database("remotesign_audit")
    upgrade_to_head(url)
    logs = [AuditLog(Database(url)), AuditLog(Database(url))]
    errors: list[BaseException] = []

    def writer(log: AuditLog, n: int) -> None:
        try:
            for i in range(25):
                log.append("test.event", actor=f"writer-{n}", subject=str(i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(logs[i % 2], i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    count, problems = logs[0].verify()
    assert count == 100 and problems == []
    for log in logs:
        log.db.dispose()


def test_audit_chain_survives_appends_inside_transactions(postgres: PostgresServer) -> None:
    url = postgres.create_database("remotesign_audit_in_tx")
    upgrade_to_head(url)
    race_appends_in_transactions(url)


def test_remote_signing_agreements_on_postgresql(pg_service: Service, tmp_path: Path) -> None:
    from tests.test_remote_signing import DIGITS, Rs, fresh, verify
    from tests.mailbox import mailbox

    party = Rs(pg_service, "PG Bank")
    owner = "pg-owner"
    agreement, passcode = fresh(party, owner=owner, ownerEmail=f"{owner}@example.test")
    digest = hashlib.sha256(b"postgres").digest()
    answer = party.sign(agreement, [digest], code=passcode)
    assert answer["responseCode"] == 0, answer
    certificate = party.detail(agreement)["certificate"]
    assert verify(tmp_path, certificate, digest, answer["signatureValue"])
    otp = party.sign(agreement, [digest], mode="EXPLICIT/OTP-EMAIL")
    code = DIGITS.search(mailbox().wait_for(f"{owner}@example.test", 2).get_payload(decode=True).decode()).group(1)  # type: ignore[union-attr]
    done = party.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": otp["billCode"],
                                                  "authorizeCode": code})
    assert done["responseCode"] == 0 and verify(tmp_path, certificate, digest, done["signatureValue"])
    assert party.call("/certificates/revoke", {"agreementUUID": agreement})["responseCode"] == 1007
    assert party.sign(agreement, [digest], code=passcode)["responseCode"] == 1017
