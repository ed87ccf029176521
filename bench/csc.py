"""Cloud Signature Consortium API over HTTP: latency of the signing calls.

    .venv/bin/python bench/csc.py [--calls 40] [--kdf 16]

Measured, sequential from one client against a service of its own (software keys, SQLite):

* ``credentials/authorize`` with the PIN (scrypt at 2^kdf, the service's cost) and one hash, then
  ``signatures/signHash`` with the SAD: the SCAL2 explicit flow pyHanko's ``CSCSigner`` makes;
* ``signatures/signHash`` of 10 hashes under one SAD;
* ``signatures/signDoc`` of a 20-page PDF (about 240 KB) at Ades-B-B and Ades-B-T (the service's own TSA).

Printed: calls per second and the median / 95th percentile latency of each.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _latency import report  # noqa: E402
from tests.consent import enrol, register_redirect  # noqa: E402
from tests.csc_client import SHA256, SHA256_RSA, Csc, b64, user_token  # noqa: E402
from tests.harness import Service, free_port  # noqa: E402
from tests.pdfgen import pdf_bytes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--kdf", type=int, default=16, help="scrypt cost of PINs, log2 N (the default 16)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        svc = Service(home=Path(home), port=free_port(), env={"REMOTESIGN_KDF_LOG2_N": str(args.kdf)}).start()
        try:
            with httpx.Client(base_url=svc.url, timeout=120) as http:
                demo = svc.demo_client()
                admin = svc.token(demo["client_id"], demo["client_secret"])
                register_redirect(http, admin)
                who = enrol(http, admin, pin="4711")
                token = user_token(http, "v2", demo, who.username, who.password, {"scope": "service"})
                api = Csc(http, "v2", token["access_token"])
                sign = {"credentialID": who.identity_id, "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA}
                authorize, signing, both = [], [], []
                for n in range(args.calls):
                    digest = hashlib.sha256(f"bench {n}".encode()).digest()
                    start = time.perf_counter()
                    sad = api.authorize_pin(who.identity_id, who.pin, [digest])
                    middle = time.perf_counter()
                    api.ok("signatures/signHash", sign | {"SAD": sad, "hashes": [b64(digest)]})
                    end = time.perf_counter()
                    authorize.append(middle - start)
                    signing.append(end - middle)
                    both.append(end - start)
                report("credentials/authorize (PIN, 1 hash)", authorize)
                report("signatures/signHash (1 hash)", signing)
                report("authorize + signHash", both)
                batch = []
                for n in range(args.calls):
                    digests = [hashlib.sha256(f"batch {n} {i}".encode()).digest() for i in range(10)]
                    sad = api.authorize_pin(who.identity_id, who.pin, digests)
                    start = time.perf_counter()
                    api.ok("signatures/signHash", sign | {"SAD": sad, "hashes": [b64(d) for d in digests]})
                    batch.append(time.perf_counter() - start)
                report("signatures/signHash (10 hashes)", batch)
                pdf = pdf_bytes(text="bench " * 2000, pages=20)
                print(f"signDoc document: {len(pdf) // 1024} KB PDF")
                for level in ("Ades-B-B", "Ades-B-T"):
                    times = []
                    for _ in range(max(5, args.calls // 4)):
                        sad = api.authorize_pin(who.identity_id, who.pin, [hashlib.sha256(pdf).digest()])
                        start = time.perf_counter()
                        r = api.ok("signatures/signDoc", {"credentialID": who.identity_id, "SAD": sad,
                                                          "documents": [{"document": base64.b64encode(pdf).decode(),
                                                                         "signature_format": "P",
                                                                         "conformance_level": level}]})
                        times.append(time.perf_counter() - start)
                        assert r["DocumentWithSignature"]
                    report(f"signatures/signDoc (PAdES {level})", times)
        finally:
            svc.stop()


if __name__ == "__main__":
    main()
