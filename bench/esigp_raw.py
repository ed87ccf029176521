"""Raw signatures per second through eSigP ``signatures/server/raw/batch`` over HTTP, for batches
of 1, 10 and 100 digests, with RSA-2048 and EC P-256 sign identities held in software keys and
in SoftHSM2, printed next to ``openssl speed`` and ``cryptography``'s in-memory signing rate on
the same machine, in the same run.

    .venv/bin/python bench/esigp_raw.py [--seconds 1] [--calls 150,20,10] [--backends software,softhsm]
                                        [--clients 4 --workers 2 --concurrent-calls 150]

Each batch call spends one SCAL2 credential (a token the user obtained on the consent page for
exactly those digests), so the credentials are obtained first, through the real login and
consent pages, outside the timed part. The timed part is the signing calls alone, sequential,
from one client: HTTP, token check, sole-control check (one database update), audit record,
key-store signatures. The calls' requests are encoded beforehand and sent on a plain keep-alive
socket (bench/_http1.py): the client shares the machine, and httpx would spend ~0.5 ms of it per
call. The bench services use a cheaper scrypt (REMOTESIGN_KDF_LOG2_N=14) only to make the
untimed consents quicker.

With ``--clients N`` (N > 1) the batch of one is also measured with N concurrent clients (threads,
each with its own connection and its own user, all calls' credentials obtained beforehand) against
a service started with ``remotesign serve --workers W``: the calls per second of the whole group.

The last lines are the goals of issue 15 item 4, one per line, for a summary script (software
keys; each ratio's two figures come from this run):

    raw RSA batch 1: 533 calls/s (goal >= 500)
    raw RSA batch 1, 4 clients, 2 workers: 709 calls/s (goal >= 500)
    raw P-256 batch 100 / cryptography in-memory: 0.50x (goal >= 0.3x)
    raw RSA batch 100 / openssl speed: 0.85x (goal >= 0.7x)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpu import tree_cpu_seconds  # noqa: E402
from _http1 import SocketConnection, encode_request  # noqa: E402
from tests.consent import USE_SERVER, enrol, register_redirect, summary_of, user_token  # noqa: E402
from tests.harness import Service, free_port, make_softhsm_token  # noqa: E402

BATCHES = (1, 10, 100)
KEYS = (("RSA-2048", "rsa-2048", "rsa-sha256"), ("P-256", "ec-p256", "ecdsa-sha256"))


def openssl_speed(seconds: int) -> dict[str, float]:
    """sign/s of ``openssl speed`` for rsa2048 and ecdsap256 (one process, one core)."""
    out = subprocess.run(["openssl", "speed", "-mr", "-seconds", str(seconds), "rsa2048", "ecdsap256"],
                         capture_output=True, text=True, check=True).stdout
    rates: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"\+F2:\d+:2048:([\d.]+):", line)
        if m:
            rates["RSA-2048"] = float(m.group(1))
        m = re.match(r"\+F4:\d+:256:([\d.]+):", line)
        if m:
            rates["P-256"] = float(m.group(1))
    return rates


def cryptography_speed(seconds: float) -> dict[str, float]:
    """sign/s of ``cryptography`` itself, in memory, one thread: RSA-2048 PKCS#1 v1.5 and ECDSA P-256
    over a SHA-256 digest given pre-hashed (what the service's software key backend calls)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    digest = hashlib.sha256(b"bench").digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jobs = {"RSA-2048": lambda: rsa_key.sign(digest, padding.PKCS1v15(), prehashed),
            "P-256": lambda: ec_key.sign(digest, ec.ECDSA(prehashed))}
    rates: dict[str, float] = {}
    for label, job in jobs.items():
        job()
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(50):
                job()
            n += 50
        rates[label] = n / elapsed
    return rates


def prepare(http: httpx.Client, demo: dict[str, str], who, alg: str, batch: int, calls: int,  # type: ignore[no-untyped-def]
            tag: str = "") -> list[tuple[str, dict[str, object]]]:
    """``calls`` (credential, request body) pairs, each credential from a consent for its digests."""
    jobs = []
    for c in range(calls):
        digests = [hashlib.sha256(f"{who.identity_id}/{tag}{batch}/{c}/{i}".encode()).digest() for i in range(batch)]
        token = user_token(http, demo, who, USE_SERVER, summary=summary_of(digests), summary_alg="SHA256")
        body = {"sign_identity_id": who.identity_id, "signature_algorithm": alg,
                "requests": [{"digest_value": base64.b64encode(d).decode()} for d in digests]}
        jobs.append((token, body))
    return jobs


RAW_BATCH = "/trustedx-resources/esigp/v1/signatures/server/raw/batch"


def encoded_calls(base_url: str, jobs: list[tuple[str, dict[str, object]]]) -> list[bytes]:
    """The calls' HTTP requests, encoded before the timed part (the client shares the cores)."""
    host = base_url.split("//", 1)[1]
    return [encode_request("POST", host, RAW_BATCH, json.dumps(body).encode(), "application/json",
                           {"Authorization": f"Bearer {token}"}) for token, body in jobs]


def run_calls(conn: SocketConnection, requests: list[bytes], batch: int) -> None:
    for raw in requests:
        r = conn.send(raw)
        if r.status != 200 or len(r.json()["signatures"]) != batch:
            raise SystemExit(f"batch call failed: {r.status} {r.body[:300]!r}")


def measure(http: httpx.Client, demo: dict[str, str], who, alg: str, batch: int, calls: int,  # type: ignore[no-untyped-def]
            server_pid: int) -> tuple[float, float]:
    """(signatures per second, service CPU ms per call) over ``calls`` batch calls of ``batch`` digests each."""
    requests = encoded_calls(str(http.base_url).rstrip("/"), prepare(http, demo, who, alg, batch, calls))
    conn = SocketConnection(str(http.base_url))
    try:
        cpu0 = tree_cpu_seconds(server_pid)
        start = time.perf_counter()
        run_calls(conn, requests, batch)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return calls * batch / elapsed, (tree_cpu_seconds(server_pid) - cpu0) * 1000 / calls


def run_concurrent(env: dict[str, str], home: Path, clients: int, workers: int, calls: int) -> tuple[float, float]:
    """(calls per second, service CPU ms per call) of ``clients`` concurrent clients making
    RSA-2048 batch-of-one calls (``calls`` each) against ``remotesign serve --workers workers``."""
    svc = Service(home=home, port=free_port(), env={"REMOTESIGN_KDF_LOG2_N": "14", **env},
                  args=("--workers", str(workers))).start()
    try:
        demo = svc.demo_client()
        with httpx.Client(base_url=svc.url, timeout=120) as http:
            token = svc.token(demo["client_id"], demo["client_secret"])
            register_redirect(http, token)
            users = [enrol(http, token, algorithm="rsa-2048") for _ in range(clients)]

        def credentials(n: int) -> list[tuple[str, dict[str, object]]]:
            with httpx.Client(base_url=svc.url, timeout=120) as own:
                return prepare(own, demo, users[n], "rsa-sha256", 1, calls + 3, tag="c")

        with ThreadPoolExecutor(clients) as pool:
            jobs = [encoded_calls(svc.url, j) for j in pool.map(credentials, range(clients))]
        connections = [SocketConnection(svc.url) for _ in range(clients)]
        try:
            for n in range(clients):  # warm-up: connections, code paths of both workers
                run_calls(connections[n], jobs[n][:3], 1)
            barrier = threading.Barrier(clients + 1)

            def client(n: int) -> None:
                barrier.wait()
                run_calls(connections[n], jobs[n][3:], 1)

            with ThreadPoolExecutor(clients) as pool:
                running = [pool.submit(client, n) for n in range(clients)]
                assert svc.proc is not None
                cpu0 = tree_cpu_seconds(svc.proc.pid)
                barrier.wait()
                start = time.perf_counter()
                for f in running:
                    f.result()
                elapsed = time.perf_counter() - start
                cpu_ms = (tree_cpu_seconds(svc.proc.pid) - cpu0) * 1000 / (clients * calls)
        finally:
            for c in connections:
                c.close()
    finally:
        svc.stop()
    return clients * calls / elapsed, cpu_ms


def run_backend(name: str, env: dict[str, str], home: Path, calls: dict[int, int]) -> dict[tuple[str, int], float]:
    svc = Service(home=home, port=free_port(), env={"REMOTESIGN_KDF_LOG2_N": "14", **env}).start()
    results: dict[tuple[str, int], float] = {}
    try:
        demo = svc.demo_client()
        with httpx.Client(base_url=svc.url, timeout=120) as http:
            token = svc.token(demo["client_id"], demo["client_secret"])
            register_redirect(http, token)
            for label, algorithm, sig_alg in KEYS:
                who = enrol(http, token, algorithm=algorithm)
                assert svc.proc is not None
                measure(http, demo, who, sig_alg, 10, 3, svc.proc.pid)  # warm-up: key cache, connection, code paths
                for batch in BATCHES:
                    results[(label, batch)], cpu_ms = measure(http, demo, who, sig_alg, batch, calls[batch],
                                                              svc.proc.pid)
                    print(f"  {name:8} {label:8} batch {batch:3}: {results[(label, batch)]:8.0f} signatures/s, "
                          f"service CPU {cpu_ms:5.2f} ms per call", flush=True)
    finally:
        svc.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=3, help="openssl speed duration per algorithm")
    ap.add_argument("--calls", default="150,20,10", help="timed calls for batches of 1,10,100")
    ap.add_argument("--backends", default="software,softhsm")
    ap.add_argument("--clients", type=int, default=1,
                    help="also measure RSA batch-of-one calls from this many concurrent clients (> 1)")
    ap.add_argument("--workers", type=int, default=2, help="`serve --workers` of the concurrent measurement")
    ap.add_argument("--concurrent-calls", type=int, default=150, help="timed calls per concurrent client")
    args = ap.parse_args()
    calls = dict(zip(BATCHES, (int(x) for x in args.calls.split(","))))
    print(f"openssl speed ({args.seconds} s each) ...", flush=True)
    reference = openssl_speed(args.seconds)
    in_memory = cryptography_speed(args.seconds)
    table: dict[str, dict[tuple[str, int], float]] = {}
    with tempfile.TemporaryDirectory(prefix="esigp-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        for backend in args.backends.split(","):
            env = make_softhsm_token(tmp / "hsm") if backend == "softhsm" else {}
            table[backend] = run_backend(backend, env, tmp / f"home-{backend}", calls)
        concurrent = None
        if args.clients > 1:
            print(f"  {args.clients} concurrent clients, serve --workers {args.workers} ...", flush=True)
            concurrent, concurrent_cpu = run_concurrent({}, tmp / "home-concurrent", args.clients, args.workers,
                                                        args.concurrent_calls)
            print(f"  software RSA-2048 batch   1, {args.clients} clients: {concurrent:6.0f} calls/s, "
                  f"service CPU {concurrent_cpu:5.2f} ms per call", flush=True)
    print()
    print(f"{'backend':9} {'key':9} {'batch':>5} {'sig/s':>8} {'openssl sign/s':>15} {'ratio':>6}")
    for backend, rows in table.items():
        for (label, batch), rate in rows.items():
            ref = reference.get(label, float("nan"))
            print(f"{backend:9} {label:9} {batch:5} {rate:8.0f} {ref:15.0f} {rate / ref:6.2f}")
    print(f"\ncryptography in memory, one thread: RSA-2048 {in_memory['RSA-2048']:.0f} sign/s, "
          f"P-256 {in_memory['P-256']:.0f} sign/s")
    print(f"machine: {os.cpu_count()} CPUs; {subprocess.run(['openssl', 'version'], capture_output=True, text=True).stdout.strip()}")
    software = table.get("software")
    if software:
        print()
        print(f"raw RSA batch 1: {software[('RSA-2048', 1)]:.0f} calls/s (goal >= 500)")
        if concurrent is not None:
            print(f"raw RSA batch 1, {args.clients} clients, {args.workers} workers: {concurrent:.0f} calls/s "
                  f"(goal >= 500)")
        print(f"raw P-256 batch 100 / cryptography in-memory: {software[('P-256', 100)] / in_memory['P-256']:.2f}x "
              f"(goal >= 0.3x)")
        print(f"raw RSA batch 100 / openssl speed: {software[('RSA-2048', 100)] / reference['RSA-2048']:.2f}x "
              f"(goal >= 0.7x)")


if __name__ == "__main__":
    main()
