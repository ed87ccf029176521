"""Storage faults over HTTP (issue 12 point 10c), each a genuine OS or database error in the running
service: a write past the process's file-size limit (EFBIG, as on a full disk), a read-only blob
tree (EACCES; when the tests run as root the service runs without CAP_DAC_OVERRIDE, so file modes
bind it like any account), and a PostgreSQL server that stops. Every API answers 503
``storage_unavailable`` with Retry-After in its own error shape, /health names the failing
component, reads keep working where they can, and everything recovers once storage is back."""

from __future__ import annotations

import base64
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.crash_tools import operation, pdfsig_signatures, session_files, signed_documents
from tests.harness import PostgresServer, Service, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, SignApi, issue_card

MiB = 1 << 20
DAC_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


@dataclass
class Faulty:
    svc: Service
    api: SignApi
    card: Card


def _without_dac_override(base: Path) -> Path:
    """A python that runs without the capabilities that let root ignore file modes."""
    wrapper = base / "python-without-dac-override"
    wrapper.write_text("#!/bin/sh\nexec setpriv --inh-caps=-all --ambient-caps=-all "
                       "--bounding-set=-dac_override,-dac_read_search,-fowner -- "
                       f"'{sys.executable}' \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def _capabilities(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapEff line")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    home = tmp_path_factory.mktemp("faulty-home")
    with pytest.MonkeyPatch.context() as mp:
        if os.geteuid() == 0:
            mp.setattr(sys, "executable", str(_without_dac_override(tmp_path_factory.mktemp("bin"))))
        svc = Service(home, free_port()).start()
    try:
        assert svc.proc is not None
        assert not any(_capabilities(svc.proc.pid) & (1 << cap) for cap in DAC_CAPS)
        demo = svc.demo_client()
        api = SignApi(svc, svc.token(demo["client_id"], demo["client_secret"]))
        yield Faulty(svc, api, issue_card(svc, tmp_path_factory.mktemp("card"), "rsa"))
    finally:
        svc.stop()


def assert_storage_unavailable(r: httpx.Response, shape: str) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    if shape == "oauth":
        assert body["error"] == "storage_unavailable" and body["error_description"], body
    else:
        assert body["error"]["code"] == "storage_unavailable" and body["error"]["message"], body
        assert ("data" in body and body["data"] is None) == (shape == "envelope"), body
    assert "/" not in str(body), body  # no paths of the installation


def test_a_write_past_the_file_size_limit_answers_storage_unavailable(faulty: Faulty) -> None:
    svc, api = faulty.svc, faulty.api
    assert svc.proc is not None
    sid = api.start()
    hard = resource.prlimit(svc.proc.pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(svc.proc.pid, resource.RLIMIT_FSIZE, (12 * MiB, hard))
    try:
        r = api.client.put(f"/api-storage/v1.0/{sid}/upload",
                           files={"file": ("big.pdf", b"%PDF-1.7\n" + os.urandom(16 * MiB))})
        assert_storage_unavailable(r, "envelope")
        assert session_files(svc.home, sid) == []  # no half-written file, no temporary left
        assert api.list(sid) == []
    finally:
        resource.prlimit(svc.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
    api.upload(sid, "big.pdf", b"%PDF-1.7\n" + os.urandom(16 * MiB))


def _blob_tree(home: Path, mode: int) -> None:
    root = home / "blobs"
    for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        directory.chmod(mode)


def test_read_only_blob_storage(faulty: Faulty, tmp_path: Path) -> None:
    svc, api, card = faulty.svc, faulty.api, faulty.card
    stored = api.start()
    content = pdf_bytes()
    doc = api.upload(stored, "contract.pdf", content)["data"]
    pending = api.start()
    api.upload(pending, "offer.pdf", pdf_bytes(pages=2))
    r = api.calculate([pending], card, sign_as_pdf=True)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    value = card.sign(base64.b64decode(data["sessionDigests"][0]["digest"]), data["algorithm"])

    _blob_tree(svc.home, 0o500)
    try:
        health = httpx.get(svc.url + "/health", timeout=30)
        assert health.status_code == 503 and health.json()["failing"] == ["blobs"], health.text
        assert health.json()["components"]["database"] == "ok"
        assert_storage_unavailable(api.client.put(f"/api-storage/v1.0/{stored}/upload",
                                                  files={"file": ("more.pdf", content)}), "envelope")
        assert_storage_unavailable(api.calculate([stored], card, sign_as_pdf=True), "envelope")
        assert_storage_unavailable(api.finalize({pending: value}), "envelope")
        assert operation(svc.home, pending)["status"] == "prepared"  # type: ignore[index]
        assert api.download(stored, doc["id"]) == content  # reading still works
        assert [d["name"] for d in api.list(stored)] == ["contract.pdf"]
    finally:
        _blob_tree(svc.home, 0o700)

    assert httpx.get(svc.url + "/health", timeout=30).status_code == 200
    r = api.finalize({pending: value})  # the retry once storage is back: one signature
    assert r.status_code == 200, r.text
    assert len(signed_documents(svc.home, pending)) == 1
    assert pdfsig_signatures(api.result(pending)[1], tmp_path) == ["Signature is Valid."]
    api.upload(stored, "more.pdf", content)


@pytest.mark.postgres
def test_database_down(tmp_path_factory: pytest.TempPathFactory) -> None:
    pg = PostgresServer(tmp_path_factory.mktemp("pg-faults")).start()
    svc: Service | None = None
    try:
        url = pg.create_database("remotesign_faults")
        svc = Service(tmp_path_factory.mktemp("pg-faults-home"), free_port(),
                      env={"REMOTESIGN_DATABASE_URL": url}).start()
        demo = svc.demo_client()
        token = svc.token(demo["client_id"], demo["client_secret"])
        api = SignApi(svc, token)
        api.start()

        try:  # the outage (PostgresServer.stop would hide a failure to stop)
            pg._run(str(pg.bindir / "pg_ctl"), "-D", str(pg.base / "data"), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError as exc:
            raise AssertionError(f"pg_ctl stop failed: {exc.stderr!r} {exc.stdout!r}") from exc
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", pg.port)) != 0, "PostgreSQL did not stop"
        with httpx.Client(base_url=svc.url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            health = http.get("/health")
            assert health.status_code == 503 and health.json()["failing"] == ["database"], health.text
            assert_storage_unavailable(http.get("/api-session/v1.0/start"), "envelope")
            assert_storage_unavailable(http.get("/v1/keys"), "native")
            assert_storage_unavailable(http.get("/trustedx-resources/esigp/v1/sign_identities"), "oauth")
            assert_storage_unavailable(http.post("/trustedx-authserver/oauth/lvrtc-eipsign-as/token",
                                                 data={"grant_type": "client_credentials"},
                                                 auth=(demo["client_id"], demo["client_secret"]), headers={}),
                                       "oauth")

        pg.restart()
        assert httpx.get(svc.url + "/health", timeout=60).status_code == 200
        api.start()
    finally:
        if svc is not None:
            svc.stop()
        pg.stop()


@pytest.mark.postgres
def test_pooled_connections_are_pinged_only_after_sitting_idle(tmp_path_factory: pytest.TempPathFactory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No round trip before each unit of work under load; a connection that sat in the pool is
    checked first, so a restarted server costs no failed request."""
    import time

    from sqlalchemy import text

    from remotesign.storage import db as dbmod

    pg = PostgresServer(tmp_path_factory.mktemp("pg-ping")).start()
    try:
        database = dbmod.Database(pg.create_database("remotesign_ping"))
        pings: list[bool] = []
        real_ping = database.engine.dialect.do_ping

        def counted(conn: object) -> bool:
            alive = real_ping(conn)
            pings.append(alive)
            return alive

        monkeypatch.setattr(database.engine.dialect, "do_ping", counted)
        monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 0.5)  # read when each checkout happens
        for n in range(20):  # back to back: the connection was just returned
            with database.read() as conn:
                assert conn.execute(text("SELECT :n"), {"n": n}).scalar() == n
        assert pings == []
        time.sleep(0.6)
        with database.read() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert pings == [True]

        pg.stop()  # an outage the pool sleeps through: its connection is now dead
        pg.restart()
        time.sleep(0.6)
        with database.session() as s:  # pinged, found dead, replaced: the unit of work succeeds
            assert s.execute(text("SELECT 2")).scalar() == 2
        database.dispose()
    finally:
        pg.stop()
