"""Raw signatures per second through eSigP ``signatures/server/raw/batch`` over HTTP, for batches
of 1, 10 and 100 digests, with RSA-2048 and EC P-256 sign identities held in software keys and
in SoftHSM2, printed next to ``openssl speed`` on the same machine.

    .venv/bin/python bench/esigp_raw.py [--seconds 1] [--calls 60,20,10] [--backends software,softhsm]

Each batch call spends one SCAL2 credential (a token the user obtained on the consent page for
exactly those digests), so the credentials are obtained first, through the real login and
consent pages, outside the timed part. The timed part is the signing calls alone, sequential,
from one client: HTTP, token check, sole-control check (one database update), audit record,
key-store signatures. The bench services use a cheaper scrypt (REMOTESIGN_KDF_LOG2_N=14) only to
make the untimed consents quicker.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
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


def measure(http: httpx.Client, demo: dict[str, str], who, alg: str, batch: int, calls: int) -> float:  # type: ignore[no-untyped-def]
    """Signatures per second over ``calls`` batch calls of ``batch`` digests each."""
    jobs = []
    for c in range(calls):
        digests = [hashlib.sha256(f"{who.identity_id}/{batch}/{c}/{i}".encode()).digest() for i in range(batch)]
        token = user_token(http, demo, who, USE_SERVER, summary=summary_of(digests), summary_alg="SHA256")
        body = {"sign_identity_id": who.identity_id, "signature_algorithm": alg,
                "requests": [{"digest_value": base64.b64encode(d).decode()} for d in digests]}
        jobs.append((token, body))
    start = time.perf_counter()
    for token, body in jobs:
        r = http.post("/trustedx-resources/esigp/v1/signatures/server/raw/batch", json=body,
                      headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 200 or len(r.json()["signatures"]) != batch:
            raise SystemExit(f"batch call failed: {r.status_code} {r.text[:300]}")
    return calls * batch / (time.perf_counter() - start)


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
                measure(http, demo, who, sig_alg, 10, 3)  # warm-up: key cache, connection, code paths
                for batch in BATCHES:
                    results[(label, batch)] = measure(http, demo, who, sig_alg, batch, calls[batch])
                    print(f"  {name:8} {label:8} batch {batch:3}: {results[(label, batch)]:8.0f} signatures/s",
                          flush=True)
    finally:
        svc.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=3, help="openssl speed duration per algorithm")
    ap.add_argument("--calls", default="60,20,10", help="timed calls for batches of 1,10,100")
    ap.add_argument("--backends", default="software,softhsm")
    args = ap.parse_args()
    calls = dict(zip(BATCHES, (int(x) for x in args.calls.split(","))))
    print(f"openssl speed ({args.seconds} s each) ...", flush=True)
    reference = openssl_speed(args.seconds)
    table: dict[str, dict[tuple[str, int], float]] = {}
    with tempfile.TemporaryDirectory(prefix="esigp-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        for backend in args.backends.split(","):
            env = make_softhsm_token(tmp / "hsm") if backend == "softhsm" else {}
            table[backend] = run_backend(backend, env, tmp / f"home-{backend}", calls)
    print()
    print(f"{'backend':9} {'key':9} {'batch':>5} {'sig/s':>8} {'openssl sign/s':>15} {'ratio':>6}")
    for backend, rows in table.items():
        for (label, batch), rate in rows.items():
            ref = reference.get(label, float("nan"))
            print(f"{backend:9} {label:9} {batch:5} {rate:8.0f} {ref:15.0f} {rate / ref:6.2f}")
    print(f"\nmachine: {os.cpu_count()} CPUs; {subprocess.run(['openssl', 'version'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
