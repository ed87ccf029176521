"""Batches over HTTP (issue 22 point 3): many documents validated or extended to LTA in the
background on the job queue, progress followed and results fetched per document; the refusals in
the native API's error shape; and a worker killed with -9 in the middle of a document -- the
restarted service finishes the batch, the document that was in the dying worker's hands again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import Service, free_port
from tests.test_openapi_answers import check
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, issue_card, sign_bb

TIMEOUT = 180.0


def client(service: Service) -> httpx.Client:
    demo = service.demo_client()
    token = service.token(demo["client_id"], demo["client_secret"])
    return httpx.Client(base_url=service.url, timeout=120, headers={"Authorization": f"Bearer {token}"})


def submit(http: httpx.Client, kind: str, documents: list[tuple[str, bytes]], **fields: str) -> dict[str, Any]:
    r = http.post(f"/v1/batches/{kind}", files=[("file", (name, data, "application/pdf")) for name, data in documents],
                  data=fields)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "running" and body["total"] == len(documents), body
    return body  # type: ignore[no-any-return]


def wait_finished(http: httpx.Client, batch_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = http.get(f"/v1/batches/{batch_id}").json()
        counts = body["items"]
        assert sum(counts.values()) == body["total"], body
        if body["status"] == "finished":
            assert counts["queued"] == counts["running"] == 0 and body["finished_at"], body
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.3)


def items(http: httpx.Client, batch_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/v1/batches/{batch_id}/items")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("batch-card"), "p256", cn="Batch Signer")


@pytest.fixture(scope="module")
def http(service: Service) -> Iterator[httpx.Client]:
    with client(service) as c:
        yield c


@pytest.fixture(scope="module")
def doc(http: httpx.Client) -> dict[str, Any]:
    return http.get("/openapi.json").json()  # type: ignore[no-any-return]


def test_a_batch_validation_reports_every_document(http: httpx.Client, card: Card, doc: dict[str, Any]) -> None:
    good = [sign_bb(card, source=pdf_bytes(text=f"invoice {n}")) for n in range(3)]
    tampered = bytearray(good[0])
    at = tampered.index(b"invoice 0")
    tampered[at:at + 9] = b"invoice 9"
    docs = [("a.pdf", good[0]), ("b.pdf", good[1]), ("c.pdf", good[2]), ("tampered.pdf", bytes(tampered)),
            ("unsigned.pdf", pdf_bytes(text="no signature"))]
    r = http.post("/v1/batches/validations", files=[("file", (name, data)) for name, data in docs])
    check(doc, "post", "/v1/batches/validations", r)
    batch = r.json()
    assert batch["kind"] == "validation" and batch["items"]["queued"] + batch["items"]["running"] <= 5
    done = wait_finished(http, batch["id"])
    assert done["items"] == {"queued": 0, "running": 0, "done": 4, "failed": 1}, done
    rows = items(http, batch["id"])
    assert [r["name"] for r in rows] == [n for n, _ in docs] and [r["position"] for r in rows] == list(range(5))
    for row in rows[:3]:
        assert row["state"] == "done" and row["outcome"]["signatures"] == 1 and row["outcome"]["passed"] == 1, row
        assert row["result_url"] and row["attempts"] == 1
    assert rows[3]["state"] == "done" and rows[3]["outcome"]["passed"] == 0, rows[3]
    assert rows[3]["outcome"]["indications"] == ["TOTAL-FAILED"], rows[3]
    assert rows[4]["state"] == "failed" and rows[4]["error"]["code"] and rows[4]["result_url"] is None, rows[4]
    report = http.get(rows[0]["result_url"])
    assert report.status_code == 200 and report.headers["content-type"] == "application/json"
    base = "/v1/batches/{batch_id}"  # every answer as the API description documents it
    check(doc, "get", base, http.get(f"/v1/batches/{batch['id']}"))
    check(doc, "get", base + "/items", http.get(f"/v1/batches/{batch['id']}/items"))
    check(doc, "get", base + "/items/{position}/result", report)
    check(doc, "get", "/v1/batches", http.get("/v1/batches"))
    simple = report.json()["simpleReport"]
    assert simple["signaturesCount"] == simple["validSignaturesCount"] == 1, simple
    tampered_report = http.get(rows[3]["result_url"]).json()
    assert tampered_report["simpleReport"]["validSignaturesCount"] == 0
    assert http.get(f"/v1/batches/{batch['id']}/items/4/result").status_code == 409  # failed: nothing to fetch
    assert any(b["id"] == batch["id"] for b in http.get("/v1/batches").json())


def test_a_batch_extension_gives_lta_documents_others_verify(http: httpx.Client, card: Card, tmp_path: Path,
                                                             doc: dict[str, Any]) -> None:
    docs = [(f"contract-{n}.pdf", sign_bb(card, source=pdf_bytes(text=f"contract {n}"))) for n in range(3)]
    batch = submit(http, "extensions", docs, level="LTA")
    assert batch["level"] == "LTA"
    wait_finished(http, batch["id"])
    for row, (name, original) in zip(items(http, batch["id"]), docs):
        assert row["state"] == "done", row
        assert row["outcome"]["levels_after"] == ["LTA"] and row["outcome"]["format"] == "pades", row
        answer = http.get(row["result_url"])
        check(doc, "get", "/v1/batches/{batch_id}/items/{position}/result", answer)
        data = answer.content
        assert data.startswith(original) and len(data) == row["outcome"]["size"]  # incremental: the signed bytes kept
        path = tmp_path / name
        path.write_bytes(data)
        out = subprocess.run(["pdfsig", "-nocert", str(path)], capture_output=True, text=True, check=False).stdout
        assert "Signature is Valid." in out and "Timestamp-" in out, out  # + the document time-stamp(s)
        r = http.post("/v1/validations", files=[("file", (name, data))])
        assert r.status_code == 200, r.text
        signature, = r.json()["simpleReport"]["signaturesExt"]
        assert signature["signatureFormat"] == "PAdES_BASELINE_LTA" and signature["indication"] == "TOTAL-PASSED", signature


def test_refusals(http: httpx.Client, service: Service, card: Card) -> None:
    pdf = sign_bb(card, source=pdf_bytes(text="refusals"))
    r = http.post("/v1/batches/extensions", files=[("file", ("a.pdf", pdf))], data={"level": "B"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_level", r.text
    r = http.post("/v1/batches/validations", data={"policy": "x"})
    assert r.status_code == 400, r.text
    r = http.post("/v1/batches/validations", files=[("file", ("a.pdf", pdf))], data={"policy": "no-such-policy"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_policy", r.text
    r = http.post("/v1/batches/validations", content=b"not multipart", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_multipart", r.text
    assert http.get("/v1/batches/b" + "0" * 32).status_code == 404
    assert http.get("/v1/batches/" + "x" * 300).status_code == 404
    assert httpx.get(service.url + "/v1/batches").status_code == 401

    batch = submit(http, "validations", [("a.pdf", pdf)])
    other = json.loads(service.cli("client", "create", "batch stranger").stdout)
    token = service.token(other["client_id"], other["client_secret"])
    stranger = {"Authorization": f"Bearer {token}"}
    for path in (f"/v1/batches/{batch['id']}", f"/v1/batches/{batch['id']}/items",
                 f"/v1/batches/{batch['id']}/items/0/result"):
        r = httpx.get(service.url + path, headers=stranger)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_batch", (path, r.text)
    assert httpx.delete(service.url + f"/v1/batches/{batch['id']}", headers=stranger).status_code == 404
    assert batch["id"] not in {b["id"] for b in httpx.get(service.url + "/v1/batches", headers=stranger).json()}
    wait_finished(http, batch["id"])
    assert http.delete(f"/v1/batches/{batch['id']}").status_code == 204
    assert http.get(f"/v1/batches/{batch['id']}").status_code == 404
    assert not (service.home / "blobs" / "batches" / batch["id"]).exists()


def test_a_worker_killed_mid_document_leaves_nothing_undone(tmp_path: Path) -> None:
    """kill -9 while a document is in a worker's hands (held there by a pause point): the restarted
    service queues it again and the batch finishes, every document done exactly once recorded."""
    home, port = tmp_path / "home", free_port()
    svc = Service(home, port, env={"REMOTESIGN_PAUSE_AT": "batch.item"}).start()
    try:
        card = issue_card(svc, tmp_path, "p256", cn="Crash Signer")
        docs = [(f"d{n}.pdf", sign_bb(card, source=pdf_bytes(text=f"doc {n}"))) for n in range(4)]
        with client(svc) as http:
            batch = submit(http, "validations", docs)
            deadline = time.monotonic() + 60
            while http.get(f"/v1/batches/{batch['id']}").json()["items"]["running"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert svc.proc is not None
        os.kill(svc.proc.pid, signal.SIGKILL)
        assert svc.proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        svc.stop()
    svc = Service(home, port).start()  # the same port: the certificates' OCSP and CRL addresses name it
    try:
        with client(svc) as http:
            done = wait_finished(http, batch["id"])
            assert done["items"]["done"] == 4, done
            rows = items(http, batch["id"])
            assert all(r["outcome"]["passed"] == 1 for r in rows), [(r["outcome"], r["error"]) for r in rows]
            assert sorted(r["attempts"] for r in rows)[-1] == 2, rows  # the interrupted ones ran again
        verify = svc.cli("audit", "verify", check=False)
        assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
    finally:
        svc.stop()


def test_a_crash_while_documents_are_stored_leaves_nothing_behind(tmp_path: Path) -> None:
    """The process dies after the first of three documents is stored: the batch never shows, and
    when its short grace time has passed (staged here in the database) the leader's sweep removes
    its row and the stored document."""
    from tests.crash_tools import database

    home, port = tmp_path / "home", free_port()
    svc = Service(home, port, env={"REMOTESIGN_CRASH_AT": "batch.storing"}).start()
    try:
        with client(svc) as http:
            with pytest.raises(httpx.TransportError):
                http.post("/v1/batches/validations", files=[("file", (f"{n}.pdf", pdf_bytes(text=str(n))))
                                                            for n in range(3)])
        assert svc.proc is not None and svc.proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        svc.stop()
    with database(home) as db:
        [(batch_id, submitted)] = db.execute("SELECT id, submitted_at FROM batches").fetchall()
        assert submitted is None and db.execute("SELECT count(*) FROM batch_items").fetchone()[0] == 0
    stored = home / "blobs" / "batches" / batch_id
    assert [p.name for p in stored.iterdir()] == ["0.in"]
    svc = Service(home, port).start()
    try:
        with client(svc) as http:
            assert http.get("/v1/batches").json() == [] and http.get(f"/v1/batches/{batch_id}").status_code == 404
            with database(home) as db:
                db.execute("UPDATE batches SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = ?", (batch_id,))
            deadline = time.monotonic() + 60
            while stored.exists() or _batch_rows(home):
                assert time.monotonic() < deadline, "the unfinished batch was not swept"
                time.sleep(0.2)
    finally:
        svc.stop()


def _batch_rows(home: Path) -> int:
    from tests.crash_tools import database

    with database(home) as db:
        return int(db.execute("SELECT count(*) FROM batches").fetchone()[0])
