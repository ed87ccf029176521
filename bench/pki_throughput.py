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
from tests.harness import Service, free_port, make_softhsm_token  # noqa: E402


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


def run_load(url: str, make_body, content_type: str, seconds: float, threads: int) -> tuple[float, int]:
    """Requests/s with `threads` keep-alive clients; every reply must be HTTP 200."""
    count = [0] * threads
    errors = [0]
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = n * 10_000_000
            while time.monotonic() < stop:
                r = client.post(url, content=make_body(i), headers={"Content-Type": content_type})
                if r.status_code != 200:
                    errors[0] += 1
                count[n] += 1
                i += 1

    start = time.monotonic()
    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count) / (time.monotonic() - start), errors[0]


def openssl_speed(seconds: int) -> str:
    out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "rsa2048"], capture_output=True,
                         text=True).stdout
    m = re.search(r"rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    return f"{float(m.group(1)):.1f} sign/s, {float(m.group(2)):.1f} verify/s" if m else out.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", default="1,4", help="comma-separated client thread counts")
    ap.add_argument("--hsm", action="store_true", help="run the service on a fresh SoftHSM2 token")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = make_softhsm_token(Path(tmp)) if args.hsm else {}
        svc = Service(home=Path(tmp) / "home", port=free_port(), env=env).start()
        try:
            issuing = x509.Certificate.load(_first_der(httpx.get(svc.url + "/pki/ca.pem").text))
            ocsp_der = _first_der(httpx.get(svc.url + "/pki/ocsp.pem").text)
            good_serial = x509.Certificate.load(ocsp_der).serial_number
            print(f"remotesign PKI throughput, {os.cpu_count()} CPUs, key backend "
                  f"{'pkcs11 (SoftHSM2)' if args.hsm else 'software'}, RSA-2048 TSA/OCSP keys, "
                  f"{args.seconds:.0f} s per line, HTTP/1.1 keep-alive over loopback")
            print(f"{'what':<44}{'threads':>8}{'per second':>14}{'errors':>8}")
            for threads in (int(t) for t in args.threads.split(",")):
                rate, errs = run_load(svc.url + "/pki/tsa", tsa_query, "application/timestamp-query",
                                      args.seconds, threads)
                print(f"{'time-stamps (RFC 3161, certReq, nonce)':<44}{threads:>8}{rate:>14.1f}{errs:>8}")
                rate, errs = run_load(svc.url + "/pki/ocsp", lambda i: ocsp_request(issuing, good_serial, i),
                                      "application/ocsp-request", args.seconds, threads)
                print(f"{'OCSP responses (1 CertID, nonce)':<44}{threads:>8}{rate:>14.1f}{errs:>8}")
        finally:
            svc.stop()
    print(f"{'openssl speed rsa2048 (1 thread)':<44}{'':>8}  {openssl_speed(max(1, int(args.seconds)))}")
    return 0


def _first_der(pem_text: str) -> bytes:
    from asn1crypto import pem

    for _type, _headers, der in pem.unarmor(pem_text.encode(), multiple=True):
        return bytes(der)
    raise ValueError("no PEM block")


if __name__ == "__main__":
    sys.exit(main())
