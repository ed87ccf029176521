"""Running the operator CLI against a test service's home, and checking what it prints."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Service, cli


def run(service: Service, *args: str, input: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return cli(service.home, *args, env=service.env, check=False,
               input=input.encode() if input is not None else None)


def ok(service: Service, *args: str, input: str | None = None) -> str:
    proc = run(service, *args, input=input)
    assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout.decode()}\n{proc.stderr.decode()}"
    assert b"Traceback" not in proc.stderr
    return proc.stdout.decode()


def fails(service: Service, *args: str, input: str | None = None, status: int = 1) -> str:
    proc = run(service, *args, input=input)
    err = proc.stderr.decode()
    assert proc.returncode == status, f"{args}: {proc.returncode}\n{proc.stdout.decode()}\n{err}"
    assert "Traceback" not in err
    return err


def name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


@contextmanager
def in_process(service: Service) -> Iterator[Any]:
    """The services on the same home, in this process (to log in / check PINs like the API does)."""
    from remotesign.config import load_settings
    from remotesign.service import Services

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REMOTESIGN_HOME", str(service.home))
        mp.delenv("REMOTESIGN_DATABASE_URL", raising=False)
        mp.delenv("REMOTESIGN_BLOB_DIR", raising=False)
        mp.delenv("REMOTESIGN_MASTER_KEY_FILE", raising=False)
        mp.delenv("REMOTESIGN_MASTER_KEY", raising=False)
        mp.delenv("REMOTESIGN_KEY_BACKEND", raising=False)
        svc = Services(load_settings())
    try:
        yield svc
    finally:
        svc.close()


def openssl_verify(ca_dir: Path, cert_pem: bytes) -> subprocess.CompletedProcess[str]:
    leaf = ca_dir / f"leaf-{uuid.uuid4().hex[:8]}.pem"
    leaf.write_bytes(cert_pem)
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca_dir / "root.pem"), "-untrusted",
                           str(ca_dir / "issuing.pem"), str(leaf)], capture_output=True, text=True, timeout=60)
