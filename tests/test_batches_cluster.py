"""Batches on the job queue of a cluster (issue 22 point 3): two nodes on one PostgreSQL, where
procrastinate's tables are the queue. Documents submitted to one node are worked on by both, and
a node killed with -9 while it holds documents loses none: the surviving leader queues them again
(their worker's process is known dead) and the batch finishes."""

from __future__ import annotations

import base64
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import PostgresServer
from tests.pdfgen import pdf_bytes
from tests.signapi import issue_card, sign_bb
from tests.test_batches import client, items, submit, wait_finished
from tests.test_cluster import Cluster


@pytest.fixture(scope="module")
def cluster(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("batch-cluster"), postgres.create_database("remotesign_batches"))
    yield c
    for node in c.nodes:
        node.stop()
    c.db.dispose()


def finish(cluster: Cluster, http: Any, batch_id: str) -> dict[str, Any]:
    """wait_finished, saying on failure where the items and the queue's jobs stand."""
    try:
        return wait_finished(http, batch_id, timeout=90)
    except AssertionError as exc:
        raise AssertionError(("\n".join(map(str, cluster.rows(
            "SELECT position, state, attempts, lease_owner, lease_until, not_before, error_code FROM batch_items "
            "WHERE batch_id = :b ORDER BY position", b=batch_id))), "\n".join(map(str, cluster.rows(
                "SELECT id, status, args, worker_id, attempts, queueing_lock FROM procrastinate_jobs ORDER BY id"))),
            cluster.rows("SELECT * FROM procrastinate_workers"), cluster.lock_holders(), [n.proc.pid for n in cluster.nodes],
            [n.log()[-2500:] for n in cluster.nodes])) from exc


def finished_by(cluster: Cluster, batch_id: str) -> dict[int, int]:
    """Documents of the batch per pid of the process that finished them (lease owner HOST.PID.START#n)."""
    counts: dict[int, int] = {}
    for (owner,) in cluster.rows("SELECT lease_owner FROM batch_items WHERE batch_id = :b AND state = 'done'",
                                 b=batch_id):
        pid = int(owner.split("#")[0].split(".")[1])
        counts[pid] = counts.get(pid, 0) + 1
    return counts


def test_two_nodes_share_the_work_and_survive_a_killed_node(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.node("a").start()
    b = cluster.node("b", secrets_from=a)
    b.env["REMOTESIGN_PAUSE_AT"] = "batch.item"  # b holds whatever it takes until it is killed
    b.start()
    card = issue_card(a, tmp_path, "p256", cn="Cluster Batch Signer")
    docs = [(f"d{n}.pdf", sign_bb(card, source=pdf_bytes(text=f"cluster doc {n}"))) for n in range(12)]
    with client(a) as http:
        batch = submit(http, "validations", docs)
        deadline = time.monotonic() + 120
        while not cluster.scalar("SELECT count(*) FROM batch_items WHERE state = 'running' AND lease_owner LIKE "
                                 ":owner", owner=f"%.{b.proc.pid}.%"):  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "node b never took a document"
            time.sleep(0.1)
        held = cluster.scalar("SELECT count(*) FROM batch_items WHERE lease_owner LIKE :owner",
                              owner=f"%.{b.proc.pid}.%")  # type: ignore[union-attr]
        assert held >= 1
        assert b.proc is not None
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait(timeout=30)
        done = finish(cluster, http, batch["id"])
        assert done["items"]["done"] == 12, done
        rows = items(http, batch["id"])
        assert all(r["outcome"]["passed"] == 1 for r in rows), [(r["outcome"], r["error"]) for r in rows]
        assert sum(1 for r in rows if r["attempts"] == 2) >= held  # what b held ran again, on a
    assert finished_by(cluster, batch["id"]) == {a.proc.pid: 12}  # type: ignore[union-attr]
    assert cluster.scalar("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'") == 0
    verify = a.cli("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()


def test_documents_submitted_to_one_node_are_worked_on_by_both(cluster: Cluster, tmp_path: Path) -> None:
    a = cluster.nodes[0] if cluster.nodes else cluster.node("a").start()
    b = cluster.node("c", secrets_from=a)
    b.env["REMOTESIGN_JOB_CONCURRENCY"] = "4"
    b.start()
    card = issue_card(a, tmp_path, "p256", cn="Shared Batch Signer")
    docs = [(f"s{n}.pdf", sign_bb(card, source=pdf_bytes(text=f"shared doc {n}"))) for n in range(16)]
    with client(a) as http:
        batch = submit(http, "validations", docs)
        finish(cluster, http, batch["id"])
    by = finished_by(cluster, batch["id"])
    assert set(by) <= {a.proc.pid, b.proc.pid} and sum(by.values()) == 16, by  # type: ignore[union-attr]
    assert by.get(b.proc.pid, 0) >= 1, by  # type: ignore[union-attr]  # submitted to a, worked on by c too


def test_asynchronous_signature_requests_and_callbacks_run_on_the_shared_queue(cluster: Cluster) -> None:
    """Fortress-style asynchronous e-seals submitted to one node: executed and their HMAC-signed
    callbacks delivered (the receiver refuses the first attempt: retried with backoff) by the
    workers of the cluster, through procrastinate's tables; nothing left queued or failed."""
    import secrets

    from tests.test_fortress_async import Receiver, callback_key, verify_signature
    from tests.test_fortress_signature import SIGN, check_raw, client_token, config

    settings = {"REMOTESIGN_CALLBACK_ALLOWED_HOSTS": "loopback", "REMOTESIGN_CALLBACK_BACKOFF": "0.2",
                "REMOTESIGN_CALLBACK_MAX_ATTEMPTS": "3", "REMOTESIGN_CALLBACK_TIMEOUT": "5"}
    first = cluster.nodes[0] if cluster.nodes else cluster.node("a").start()
    for earlier in list(cluster.nodes):  # the earlier tests' nodes lack these settings (loopback receivers
        earlier.stop()                   # refused): their request workers must not take these jobs
    nodes = []
    for name in ("d", "e"):
        node = cluster.node(name, secrets_from=first)
        node.env.update(settings)
        nodes.append(node.start())
    d = nodes[0]
    receiver = Receiver(failures=1).start()
    try:
        demo = first.demo_client()  # the relying party lives in the shared database
        with httpx.Client(base_url=d.url, timeout=60) as rp, client_token(d, demo) as fortress:
            rp.headers["Authorization"] = f"Bearer {d.token(demo['client_id'], demo['client_secret'])}"
            r = rp.post("/v1/users", json={"username": f"q-seal-{secrets.token_hex(3)}", "display_name": "Queue Ltd",
                                           "kind": "legal", "serial_number": "NTRLV-40003000001"})
            assert r.status_code == 201, r.text
            username = r.json()["username"]
            r = rp.post(f"/v1/users/{r.json()['id']}/identities", json={"algorithm": "ec-p256"})
            assert r.status_code == 201, r.text
            seal = r.json()["identity"]["id"]
            exes = []
            for n in range(6):
                r = fortress.post(SIGN, json={"certificateCode": seal, "async": "true", "callbackUrl": receiver.url,
                                              "signatureConfigurations": [config(b"order %d" % n, "PKCS1", "o.bin", "o")]})
                assert r.status_code == 200, r.text
                exes.append(r.json()["exeCode"])
            received = receiver.wait(6, timeout=120)
            key = callback_key(rp)
            pem = fortress.get(f"/fortress/api/v1/user/{username}/certificate").json()[0]["pem"]
            bodies = [verify_signature(headers, body, key) for headers, body in received]
            assert sorted(b["exeCode"] for b in bodies) == sorted(exes) and {b["status"] for b in bodies} == {"DONE"}
            for body in bodies:
                n = exes.index(body["exeCode"])
                check_raw(base64.b64decode(body["signatures"][0]["bytesB64"]), b"order %d" % n, pem)
        deadline = time.monotonic() + 60
        while cluster.scalar("SELECT count(*) FROM signature_requests WHERE callback_status <> 'delivered' "
                             "AND id = ANY(:ids)", ids=exes):
            assert time.monotonic() < deadline, "callbacks not recorded as delivered"
            time.sleep(0.2)
        assert receiver.attempts == 7 and len(receiver.received) == 6  # one refused, retried; none delivered twice
        assert cluster.scalar("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'signature-requests' "
                              "AND status IN ('todo', 'failed')") == 0
    finally:
        receiver.stop()


def test_csc_asynchronous_calls_run_on_the_shared_queue_and_outlive_their_node(cluster: Cluster,
                                                                               tmp_path: Path) -> None:
    """CSC ``operationMode: "A"`` calls go through procrastinate's tables: one started on a node
    (of another host) that is killed while its run is held (pause point) is resumed by the next
    nodes' leader once the dead node's heartbeat is silent -- not after the run's 300 s lease --
    and signs once; calls started on one node are polled on another."""
    import hashlib

    from tests.consent import enrol, register_redirect
    from tests.csc_client import Csc
    from tests.test_csc import certificate, pkeyutl_verify, service_token
    from tests.test_csc_async_crash import polled, sign_hash_async

    first = cluster.nodes[0] if cluster.nodes else cluster.node("a").start()
    for earlier in list(cluster.nodes):  # only this test's nodes take its jobs
        earlier.stop()
    held = cluster.node("f", secrets_from=first)
    held.env.update({"REMOTESIGN_PAUSE_AT": "deferred.claimed", "REMOTESIGN_TEST_HOST": "host-f"})
    held.start()
    demo = first.demo_client()

    def user_api(node: Any, who: Any) -> Csc:
        return Csc(httpx.Client(base_url=node.url, timeout=120), "v2", service_token(
            httpx.Client(base_url=node.url, timeout=120), "v2", demo, who))

    with httpx.Client(base_url=held.url, timeout=120) as http:
        admin = held.token(demo["client_id"], demo["client_secret"])
        register_redirect(http, admin)
        who = enrol(http, admin, pin="1357")
    digest = hashlib.sha256(b"held, killed, resumed").digest()
    response_id = sign_hash_async(user_api(held, who), who, digest)
    deadline = time.monotonic() + 90
    while cluster.rows("SELECT status, attempts FROM deferred_results") != [("running", 1)]:
        assert time.monotonic() < deadline, cluster.rows("SELECT status, attempts FROM deferred_results")
        time.sleep(0.1)
    assert held.proc is not None
    os.kill(held.proc.pid, signal.SIGKILL)
    held.proc.wait(timeout=30)
    g, h = cluster.node("g", secrets_from=first), cluster.node("h", secrets_from=first)
    for node in (g, h):  # another host than f's: f's silent heartbeat, not its pid, says it is gone
        node.env["REMOTESIGN_NODE_SILENT_AFTER"] = "5"
        node.start()
    on_g, on_h = user_api(g, who), user_api(h, who)
    r = polled(on_h, response_id)
    assert r.status_code == 200, r.text
    cert = certificate(on_g, who.identity_id)
    pkeyutl_verify(tmp_path, cert, digest, base64.b64decode(r.json()["signatures"][0]))
    more = [hashlib.sha256(b"order %d" % n).digest() for n in range(4)]
    started = [sign_hash_async(on_g, who, d) for d in more]
    for d, rid in zip(more, started):
        r = polled(on_h, rid)
        assert r.status_code == 200, r.text
        pkeyutl_verify(tmp_path, cert, d, base64.b64decode(r.json()["signatures"][0]))
    assert cluster.scalar("SELECT count(*) FROM audit_events WHERE event = 'identity_key.used' AND subject = :s",
                          s=who.identity_id) == 5  # the resumed call signed once
    assert sorted(cluster.rows("SELECT status, attempts FROM deferred_results")) == \
        [("fetched", 1)] * 4 + [("fetched", 2)]
    jobs = dict(cluster.rows("SELECT status, count(*) FROM procrastinate_jobs "
                             "WHERE task_name = 'remotesign.deferred_call' GROUP BY status"))
    # nothing waiting or failed; at most the killed worker's job, until it is retired as stalled
    assert not {"todo", "failed"} & set(jobs) and jobs.get("doing", 0) <= 1, jobs
