"""Time-stamps per second and OCSP responses per second from a running remotesign (over HTTP,
loopback), next to `openssl speed rsa2048` on the same machine.

    .venv/bin/python bench/pki_throughput.py [--seconds 5] [--threads 1,4] [--hsm]

Starts its own service in a temporary REMOTESIGN_HOME (software keys, or SoftHSM2 with --hsm), so
it needs nothing running. The TSA and OCSP keys are RSA-2048, hence the openssl comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from asn1crypto import algos, core, ocsp, tsp, x509

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpu import tree_cpu_seconds  # noqa: E402
from _http1 import SocketConnection, encode_request  # noqa: E402
from tests.harness import Service, free_port, make_softhsm_token  # noqa: E402


REQUEST_POOL = 256  # distinct requests per kind, built before the timed part and cycled


def tsa_query(i: int) -> bytes:
    digest = hashlib.sha256(i.to_bytes(8, "big")).digest()
    return tsp.TimeStampReq({
        "version": 1,
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        "nonce": i + 1, "cert_req": True,
    }).dump()


def ocsp_request(issuer: x509.Certificate, serial: int, nonce: int) -> bytes:
    cert_id = ocsp.CertId({
        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha1"}),
        "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha1(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": serial,
    })
    return ocsp.OCSPRequest({"tbs_request": {
        "request_list": [{"req_cert": cert_id}],
        "request_extensions": [{"extn_id": "nonce", "extn_value": core.OctetString(nonce.to_bytes(16, "big"))}],
    }}).dump()


def run_load(url: str, path: str, bodies: list[bytes], content_type: str, seconds: float,
             threads: int, server_pid: int) -> tuple[float, int, float]:
    """(responses/s, errors, service CPU ms per response) with `threads` keep-alive clients
    sending pre-built requests (so the clients, which share the machine's cores with the service,
    cost as little as they can); every reply must be HTTP 200."""
    host_port = url.split("//", 1)[1]
    raw = [encode_request("POST", host_port, path, body, content_type) for body in bodies]
    count = [0] * threads
    errors = [0]
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        conn = SocketConnection(url)
        try:
            i = n
            while time.monotonic() < stop:
                if conn.send(raw[i % len(raw)]).status != 200:
                    errors[0] += 1
                count[n] += 1
                i += threads
        finally:
            conn.close()

    cpu0 = tree_cpu_seconds(server_pid)
    start = time.monotonic()
    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - start
    cpu_ms = (tree_cpu_seconds(server_pid) - cpu0) * 1000 / max(1, sum(count))
    return sum(count) / elapsed, errors[0], cpu_ms


def openssl_speed(seconds: int) -> tuple[float, float]:
    """(sign/s, verify/s) of `openssl speed rsa2048`, one thread."""
    out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "rsa2048"], capture_output=True,
                         text=True).stdout
    m = re.search(r"rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"cannot read openssl speed output: {out!r}")
    return float(m.group(1)), float(m.group(2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", default="1,4", help="comma-separated client thread counts")
    ap.add_argument("--hsm", action="store_true", help="run the service on a fresh SoftHSM2 token")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="`remotesign serve --workers`")
    args = ap.parse_args()

    threads_list = [int(t) for t in args.threads.split(",")]
    results: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = make_softhsm_token(Path(tmp)) if args.hsm else {}
        svc = Service(home=Path(tmp) / "home", port=free_port(), env=env,
                      args=("--workers", str(args.workers))).start()
        try:
            issuing = x509.Certificate.load(_first_der(httpx.get(svc.url + "/pki/ca.pem").text))
            ocsp_der = _first_der(httpx.get(svc.url + "/pki/ocsp.pem").text)
            good_serial = x509.Certificate.load(ocsp_der).serial_number
            tsa_bodies = [tsa_query(i) for i in range(REQUEST_POOL)]
            ocsp_bodies = [ocsp_request(issuing, good_serial, i + 1) for i in range(REQUEST_POOL)]
            print(f"remotesign PKI throughput, {os.cpu_count()} CPUs, `serve --workers {args.workers}`, key backend "
                  f"{'pkcs11 (SoftHSM2)' if args.hsm else 'software'}, RSA-2048 TSA/OCSP keys, "
                  f"{args.seconds:.0f} s per line, HTTP/1.1 keep-alive over loopback, pre-built requests")
            print(f"{'what':<44}{'clients':>8}{'per second':>14}{'errors':>8}{'service CPU ms each':>22}")
            for threads in threads_list:
                rate, errs, cpu = run_load(svc.url, "/pki/tsa", tsa_bodies, "application/timestamp-query",
                                      args.seconds, threads, svc.proc.pid)
                results[("tsa", threads)] = rate
                print(f"{'time-stamps (RFC 3161, certReq, nonce)':<44}{threads:>8}{rate:>14.1f}{errs:>8}{cpu:>22.2f}")
                rate, errs, cpu = run_load(svc.url, "/pki/ocsp", ocsp_bodies, "application/ocsp-request",
                                      args.seconds, threads, svc.proc.pid)
                results[("ocsp", threads)] = rate
                print(f"{'OCSP responses (1 CertID, nonce)':<44}{threads:>8}{rate:>14.1f}{errs:>8}{cpu:>22.2f}")
        finally:
            svc.stop()
    sign_rate, verify_rate = openssl_speed(max(1, int(args.seconds)))
    print(f"{'openssl speed rsa2048 (1 thread)':<44}{'':>8}{sign_rate:>14.1f}  sign/s ({verify_rate:.0f} verify/s)")
    for kind, label in (("tsa", "TSA time-stamps"), ("ocsp", "OCSP responses")):
        for threads in threads_list:
            ratio = results[(kind, threads)] / sign_rate
            goal = "  (goal >= 0.30x)" if threads == 4 else ""
            print(f"{label} / openssl speed rsa2048, {threads} clients: {ratio:.2f}x{goal}")
    return 0


def _first_der(pem_text: str) -> bytes:
    from asn1crypto import pem

    for _type, _headers, der in pem.unarmor(pem_text.encode(), multiple=True):
        return bytes(der)
    raise ValueError("no PEM block")


if __name__ == "__main__":
    sys.exit(main())
