"""Remote Signing (VN)-style API over HTTP: calls per second and latency of the signing calls.

    .venv/bin/python bench/remote_signing.py [--calls 40] [--kdf 16]

Measured, sequential from one client against a service of its own (software keys, SQLite):

* ``/signing/hash`` with ``EXPLICIT/PIN``, 1 and 10 hashes per call: each call checks the owner's
  passcode (scrypt at 2^kdf, the service's cost) and spends one digests-bound authorization;
* ``/signing/hash`` with ``EXPLICIT/OTP-EMAIL`` then ``/signing/hash/authorize``: the code is read
  from the bench's own SMTP server between the two calls (that wait is not timed);
* ``/signing/file`` with ``EXPLICIT/PIN`` for a 100 KB PDF with a visible stamp.

Printed: calls per second and the median / 95th percentile latency of each.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _latency import report  # noqa: E402
from tests.harness import Service, free_port  # noqa: E402
from tests.mailbox import mailbox  # noqa: E402
from tests.pdfgen import pdf_bytes  # noqa: E402
from tests.test_remote_signing import DIGITS, Rs, fresh  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--kdf", type=int, default=16, help="scrypt cost of passcodes, log2 N (the default 16)")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        svc = Service(home=Path(home), port=free_port(), env={"REMOTESIGN_KDF_LOG2_N": str(args.kdf)}).start()
        try:
            party = Rs(svc, "Bench Bank")
            owner = "bench-owner"
            agreement, passcode = fresh(party, owner=owner, ownerEmail=f"{owner}@example.test")
            for count in (1, 10):
                times = []
                for n in range(args.calls):
                    digests = [hashlib.sha256(f"{n}-{i}".encode()).digest() for i in range(count)]
                    start = time.perf_counter()
                    answer = party.sign(agreement, digests, code=passcode)
                    times.append(time.perf_counter() - start)
                    assert answer["responseCode"] == 0, answer
                report(f"PIN, {count} hash{'es' if count > 1 else ''} per call", times)
            times = []
            for n in range(max(5, args.calls // 4)):
                start = time.perf_counter()
                answer = party.sign(agreement, [hashlib.sha256(b"otp%d" % n).digest()], mode="EXPLICIT/OTP-EMAIL")
                requested = time.perf_counter() - start
                text = mailbox().wait_for(f"{owner}@example.test", n + 2).get_payload(decode=True).decode()
                code = DIGITS.search(text).group(1)  # type: ignore[union-attr]
                start = time.perf_counter()
                done = party.call("/signing/hash/authorize", {"agreementUUID": agreement,
                                                              "billCode": answer["billCode"], "authorizeCode": code})
                times.append(requested + time.perf_counter() - start)
                assert done["responseCode"] == 0, done
            report("OTP, request + authorize (mail delivery not timed)", times)
            pdf = base64.b64encode(pdf_bytes(padding_bytes=100_000)).decode()
            times = []
            for _ in range(max(5, args.calls // 2)):
                start = time.perf_counter()
                answer = party.call("/signing/file", {
                    "agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
                    "mimeType": "application/pdf", "signingFileData": pdf, "signCloudMetaData": {
                        "singletonSigning": {"VISIBLESIGNATURE": "true", "COORDINATE": "40,40,260,110",
                                             "SHOWSIGNERINFO": "true", "SHOWDATETIME": "true"}}})
                times.append(time.perf_counter() - start)
                assert answer["responseCode"] == 0, answer
            report("PIN, a 100 KB PDF with a visible stamp", times)
        finally:
            svc.stop()


if __name__ == "__main__":
    main()
