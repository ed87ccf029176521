#!/usr/bin/env python
"""Signatures per second of the key backends: software (in-memory pyca keys) vs PKCS#11 (SoftHSM2).

Answers "what does keeping keys in the HSM cost per signature?" Runs in ~25 s on its own
throw-away SoftHSM2 token:  python bench/keystore_sign.py
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rate  # noqa: E402 - next to this script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
SECONDS = 3.0


def rate(sign: Callable[[], bytes], threads: int = 1, seconds: float = SECONDS) -> float:
    """Calls per second (the shared measurement in bench/_rate.py)."""
    return _rate.rate(sign, threads, seconds)


def make_token(tmp: Path) -> None:
    (tmp / "tokens").mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp / 'tokens'}\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # before the module is loaded: SoftHSM reads it at C_Initialize
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "5678"],
        check=True, capture_output=True,
    )


def main() -> int:
    from remotesign.keystore.base import KeyAlgorithm, KeyBackend, SignatureScheme
    from remotesign.keystore.software import SoftwareKeyBackend

    if not os.path.exists(MODULE) or shutil.which("softhsm2-util") is None:
        print(f"SoftHSM2 not installed ({MODULE}); nothing to compare", file=sys.stderr)
        return 1
    digest = hashlib.sha256(b"benchmark").digest()

    def signer(backend: KeyBackend, alg: KeyAlgorithm) -> Callable[[], bytes]:
        key = backend.generate(alg, f"bench-{alg.value}")
        scheme = SignatureScheme.RSA_PKCS1V15 if alg.is_rsa else SignatureScheme.ECDSA
        backend.sign_digest(key.handle, alg, digest, "sha256", scheme)  # warm caches
        return lambda: backend.sign_digest(key.handle, alg, digest, "sha256", scheme)

    rows: list[tuple[str, float]] = []
    software = SoftwareKeyBackend(secrets.token_bytes(32))
    rows.append(("software RSA-2048 PKCS#1 v1.5, 1 thread", rate(signer(software, KeyAlgorithm.RSA_2048))))
    rows.append(("software EC P-256 ECDSA, 1 thread", rate(signer(software, KeyAlgorithm.EC_P256))))

    with tempfile.TemporaryDirectory(prefix="softhsm-bench-") as tmp:
        make_token(Path(tmp))
        from remotesign.keystore.pkcs11 import Pkcs11KeyBackend

        hsm = Pkcs11KeyBackend(MODULE, "bench", "1234", pool_size=4)
        try:
            rsa_sign = signer(hsm, KeyAlgorithm.RSA_2048)
            rows.append(("pkcs11 RSA-2048 CKM_RSA_PKCS, 1 thread", rate(rsa_sign)))
            rows.append(("pkcs11 EC P-256 CKM_ECDSA, 1 thread", rate(signer(hsm, KeyAlgorithm.EC_P256))))
            rows.append(("pkcs11 RSA-2048 CKM_RSA_PKCS, 2 threads", rate(rsa_sign, threads=2)))
            thread_safe = hsm.thread_safe
        finally:
            hsm.close()

    print(f"{'backend / operation':<44}{'sign/s':>10}   ({SECONDS:.0f} s each, cpus={os.cpu_count()})")
    for label, value in rows:
        print(f"{label:<44}{value:>10.1f}")
    print(f"pkcs11 module re-initialised with CKF_OS_LOCKING_OK: {thread_safe}")

    print(f"\nopenssl speed -seconds {SECONDS:.0f} rsa2048 ecdsap256:")
    out = subprocess.run(
        ["openssl", "speed", "-seconds", f"{SECONDS:.0f}", "rsa2048", "ecdsap256"],
        capture_output=True, text=True, check=False,
    ).stdout
    for line in out.splitlines():
        if "sign/s" in line or line.startswith("rsa 2048") or "ecdsa (nistp256)" in line:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
