"""kill -9 in a cluster (issue 22 point 5): two nodes on one PostgreSQL with their documents in a
SeaweedFS S3 bucket; 510 PAdES finalizations from four concurrent clients spread over both nodes,
while one node or the other is SIGKILLed three times and the SeaweedFS server once, each restarted
on its own data. A client whose node stops answering (or answers 503) retries the same value on
the other node, as a client behind a load balancer would.

Afterwards: 0 lost (every session holds exactly one signed PDF that poppler's pdfsig calls valid,
a sample also checked by pyHanko against the built-in root), 0 double signatures (one signature
per PDF, one signed document per session), 0 stuck (no operation left claimed), and the audit chain
that both nodes appended to verifies whole. Nothing depends on timing except where the kills land,
which is the point."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

import httpx
import pytest

from tests.crash_tools import finalize_body, prepared_signing, signed_once
from tests.harness import PostgresServer, SeaweedFS
from tests.signapi import SignApi
from tests.test_cluster import Cluster

SESSIONS = 510
BATCH = 3            # sessions per finalizeSigning request
CLIENTS = 4
NODE_KILLS = 3
LEASE_SECONDS = 20   # REMOTESIGN_OPERATION_LEASE: how long a claim of a node on another "host" is respected
RETRYABLE = {"storage_unavailable", "operation_in_progress"}


@dataclass
class Run:
    finished: set[str] = field(default_factory=set)
    retry: set[str] = field(default_factory=set)       # no answer, 503, or a claim still held: sent again
    refused: dict[str, str] = field(default_factory=dict)  # any other error (none expected)
    in_flight: int = 0
    node_kills: int = 0
    store_kills: int = 0
    cut_off: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("crash-seaweedfs")).start()
    yield server
    server.stop()



@pytest.mark.slow
def test_kill_9_of_nodes_and_of_the_object_store_during_finalizations(
        postgres: PostgresServer, store: SeaweedFS, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    cluster = Cluster(tmp_path_factory.mktemp("crash-cluster"), postgres.create_database("remotesign_crash"))
    extra = {**store.env(), "REMOTESIGN_OPERATION_LEASE": str(LEASE_SECONDS)}
    a = cluster.node("a")
    a.env.update(extra)
    a.start()
    b = cluster.node("b", secrets_from=a)
    b.env.update(extra)
    b.start()
    nodes = [a, b]
    try:
        token, api, root, sids, values = prepared_signing(a, tmp_path, "p256", SESSIONS, chunk=100)

        batches = [sids[i:i + BATCH] for i in range(0, SESSIONS, BATCH)]
        chosen = rng.sample(range(10, len(batches) - 10), NODE_KILLS + 1)
        kill_node_at, kill_store_at = set(chosen[:NODE_KILLS]), chosen[NODE_KILLS]
        run = Run()
        crash_lock = threading.Lock()  # one crash at a time: the cluster keeps one node up
        work: Queue[tuple[int, list[str]]] = Queue()
        for item in enumerate(batches):
            work.put(item)

        def wait_in_flight() -> None:
            deadline = time.monotonic() + 30
            while run.in_flight == 0 and time.monotonic() < deadline:  # land the kill during finalizations
                time.sleep(0.005)

        def kill_node(delay: float) -> None:
            with crash_lock:
                time.sleep(delay)
                wait_in_flight()
                victim = rng.choice(nodes)
                assert victim.proc is not None
                victim.proc.kill()
                victim.proc.wait()
                run.node_kills += 1
                victim.start()

        def kill_store(delay: float) -> None:
            with crash_lock:
                time.sleep(delay)
                wait_in_flight()
                store.kill()
                run.store_kills += 1
                time.sleep(0.5)  # finalizations meet the outage
                store.start()

        def client(number: int) -> None:
            https = [httpx.Client(base_url=n.url, timeout=120, headers={"Authorization": f"Bearer {token}"})
                     for n in nodes]
            try:
                turn = number
                while True:
                    try:
                        index, batch = work.get_nowait()
                    except Empty:
                        return
                    if index in kill_node_at:
                        threading.Thread(target=kill_node, args=(rng.uniform(0.0, 0.3),)).start()
                    if index == kill_store_at:
                        threading.Thread(target=kill_store, args=(rng.uniform(0.0, 0.3),)).start()
                    pending = list(batch)
                    deadline = time.monotonic() + LEASE_SECONDS + 120
                    while pending:  # round robin; on no answer or 503 the other node, as behind a balancer
                        assert time.monotonic() < deadline, (pending, run)
                        http = https[turn % len(https)]
                        turn += 1
                        with run.lock:
                            run.in_flight += 1
                        try:
                            r = http.post("/api-sign/v1.0/finalizeSigning",
                                          json=finalize_body({s: values[s] for s in pending}))
                        except httpx.TransportError:
                            with run.lock:
                                run.cut_off += 1
                                run.retry.update(pending)
                            time.sleep(0.2)
                            continue
                        finally:
                            with run.lock:
                                run.in_flight -= 1
                        if r.status_code == 503:
                            with run.lock:
                                run.retry.update(pending)
                            time.sleep(0.3)
                            continue
                        assert r.status_code == 200, r.text
                        again = []
                        for entry in r.json()["data"]["results"]:
                            code = entry.get("error", {}).get("code")
                            if code is None:
                                with run.lock:
                                    run.finished.add(entry["sessionId"])
                            elif code in RETRYABLE:
                                again.append(entry["sessionId"])
                            else:
                                with run.lock:
                                    run.refused[entry["sessionId"]] = code
                        if again:
                            with run.lock:
                                run.retry.update(again)
                            time.sleep(0.5)
                        pending = again
            finally:
                for http in https:
                    http.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with crash_lock:  # the last restart is done
            pass
        assert (run.node_kills, run.store_kills) == (NODE_KILLS, 1)

        lost, double, stuck = [], [], []
        ops = {row.session_id: row for row in cluster.rows(
            "SELECT session_id, status, lease_owner FROM signing_operations")}
        signed: dict[str, int] = {}
        for (sid,) in cluster.rows("SELECT session_id FROM session_documents WHERE kind = 'signed'"):
            signed[sid] = signed.get(sid, 0) + 1
        verified = set(rng.sample(sids, 8)) | set(sorted(run.retry)[:8])
        readers = [SignApi(node, token) for node in nodes]  # either node serves every session's documents
        for n, sid in enumerate(sids):
            op = ops.get(sid)
            if op is None or op.status != "signed" or op.lease_owner is not None:
                stuck.append(sid)
            if signed.get(sid, 0) != 1:
                (double if signed.get(sid, 0) > 1 else lost).append(sid)
                continue
            reader = readers[n % 2]
            docs = reader.list(sid)
            if len(docs) != 1:
                lost.append(sid)
                continue
            problem = signed_once(reader.download(sid, docs[0]["id"]), tmp_path, root, sid in verified)
            if problem is not None:
                (double if problem == "double" else lost).append(sid)
        print(f"\ncluster kill -9 test (seed {seed}): {SESSIONS} finalizations on 2 nodes, {run.node_kills} node "
              f"kills, {run.store_kills} object-store kill, {run.cut_off} requests cut off, {len(run.retry)} sessions "
              f"retried; lost {len(lost)}, double-signed {len(double)}, stuck {len(stuck)}")
        assert run.refused == {}
        assert (lost, double, stuck) == ([], [], [])
        assert run.finished == set(sids)
        verify = a.cli("audit", "verify", check=False)
        assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
    finally:
        for node in nodes:
            node.stop()
        cluster.db.dispose()
