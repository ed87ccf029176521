"""kill -9 during finalizations (issue 12 point 10a): 210 PAdES finalizations over HTTP from two
clients, the service SIGKILLed three times at random moments while finalizations are in flight and
restarted on the same home; every finalize that got no answer is retried with the same value.
Afterwards: 0 lost (every session holds one signed PDF that validates), 0 double-signed (exactly one
signature, one signed document per session), 0 stuck (no operation left finalizing), no temporary
files left. Nothing here depends on timing except where the kills land, which is the point."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

import httpx
import pytest

from tests.crash_tools import database, finalize_body, prepared_signing, signed_once
from tests.harness import Service, free_port

SESSIONS = 210
BATCH = 3          # sessions per finalizeSigning request
CLIENTS = 2        # concurrent clients
KILLS = 3
LEASE_SECONDS = 20  # REMOTESIGN_OPERATION_LEASE: a retry never waits longer than this for a claim


@dataclass
class Run:
    """What the clients saw."""

    finished: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)  # connection lost: the client must retry
    refused: dict[str, str] = field(default_factory=dict)  # an error answer (none expected)
    in_flight: int = 0
    kills: int = 0
    interrupted_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)



@pytest.mark.slow
def test_kill_9_during_finalizations(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    home, port = tmp_path_factory.mktemp("kill-home"), free_port()
    svc = Service(home, port, env={"REMOTESIGN_OPERATION_LEASE": str(LEASE_SECONDS)}).start()
    try:
        token, api, root, sids, values = prepared_signing(svc, tmp_path, "rsa", SESSIONS, chunk=70)

        batches = [sids[i:i + BATCH] for i in range(0, SESSIONS, BATCH)]
        kill_at = set(rng.sample(range(5, len(batches) - 5), KILLS))
        run = Run()
        up = threading.Event()
        up.set()
        restart_lock = threading.Lock()
        work: Queue[tuple[int, list[str]]] = Queue()
        for item in enumerate(batches):
            work.put(item)

        def kill_and_restart(delay: float) -> None:
            with restart_lock:
                time.sleep(delay)
                deadline = time.monotonic() + 30
                while run.in_flight == 0 and time.monotonic() < deadline:  # kill during a finalization
                    time.sleep(0.005)
                up.clear()
                assert svc.proc is not None
                svc.proc.kill()
                svc.proc.wait()
                run.kills += 1
                svc.start()
                up.set()

        def client() -> None:
            with httpx.Client(base_url=svc.url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as http:
                while True:
                    try:
                        index, batch = work.get_nowait()
                    except Empty:
                        return
                    up.wait()
                    if index in kill_at:
                        threading.Thread(target=kill_and_restart, args=(rng.uniform(0.0, 0.4),)).start()
                    with run.lock:
                        run.in_flight += 1
                    try:
                        r = http.post("/api-sign/v1.0/finalizeSigning", json=finalize_body({s: values[s] for s in batch}))
                    except httpx.TransportError:
                        with run.lock:
                            run.unanswered.update(batch)
                            run.interrupted_requests += 1
                        continue
                    finally:
                        with run.lock:
                            run.in_flight -= 1
                    for entry in r.json()["data"]["results"]:
                        if "error" in entry:
                            run.refused[entry["sessionId"]] = entry["error"]["code"]
                        else:
                            run.finished.add(entry["sessionId"])

        clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        with restart_lock:  # the last restart is done
            up.wait()
        assert run.kills == KILLS

        # Every finalize without an answer (or refused) is retried with the same value, as a client would.
        retries = 0
        for sid in sorted(run.unanswered | set(run.refused)):
            deadline = time.monotonic() + LEASE_SECONDS + 60
            while True:
                retries += 1
                r = api.finalize({sid: values[sid]})
                if r.status_code == 200:
                    break
                assert "operation_in_progress" in r.text and time.monotonic() < deadline, r.text
                time.sleep(1)
            run.finished.add(sid)

        lost, double, stuck = [], [], []
        with database(home) as db:
            ops = {row["session_id"]: row for row in db.execute("SELECT * FROM signing_operations")}
            recovered = db.execute("SELECT count(*) FROM audit_events WHERE event = 'signing.claim_recovered'").fetchone()[0]
            signed: dict[str, int] = {}
            for (sid,) in db.execute("SELECT session_id FROM session_documents WHERE kind = 'signed'"):
                signed[sid] = signed.get(sid, 0) + 1
        verified = sorted(run.unanswered) + rng.sample(sids, 10)
        for sid in sids:
            op = ops.get(sid)
            if op is None or op["status"] != "signed" or op["lease_owner"] is not None:
                stuck.append(sid)
            if signed.get(sid, 0) > 1:
                double.append(sid)
            docs = api.list(sid)
            if len(docs) != 1 or signed.get(sid, 0) == 0:
                lost.append(sid)
                continue
            problem = signed_once(api.download(sid, docs[0]["id"]), tmp_path, root, sid in verified)
            if problem is not None:
                (double if problem == "double" else lost).append(sid)
        temporaries = [p.name for p in (home / "blobs").rglob(".tmp-*")]
        print(f"\nkill -9 test (seed {seed}): {SESSIONS} finalizations, {run.kills} kills, "
              f"{run.interrupted_requests} requests cut off, {len(run.unanswered)} sessions unanswered, "
              f"{len(run.refused)} refused, {retries} retries ({recovered} claims of killed processes taken over); lost {len(lost)}, double-signed {len(double)}, "
              f"stuck {len(stuck)}, temporaries left {len(temporaries)}")
        assert run.refused == {}
        assert (lost, double, stuck, temporaries) == ([], [], [], [])
        assert run.finished == set(sids)
    finally:
        svc.stop()
