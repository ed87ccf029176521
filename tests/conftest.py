from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.harness import PostgresServer, Service, free_port

# Passwords and PINs are hashed at scrypt's lowest cost the service accepts (N=2^14, 16 MiB) instead
# of its default (2^16, 64 MiB: ~0.3 s of CPU and memory bandwidth per hash on a busy machine, and
# the suite hashes thousands): a third off the PIN-heavy modules. The services and commands the
# tests start inherit it; tests/test_kdf.py keeps the default and the floor honest.
os.environ.setdefault("REMOTESIGN_KDF_LOG2_N", "14")

# The modules that take minutes, started first: with --dist loadscope a worker that picks one of
# them near the end stretches the whole run by its length while the other workers sit idle
# (scripts/test.sh passes --no-loadscope-reorder, so xdist keeps this order).
LONG_MODULES = ("test_cluster_crash.py", "test_openapi_fuzz.py", "test_cluster.py", "test_kill_finalize.py",
                "test_batches_cluster.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service on its embedded default (SQLite, local blobs, software keys, built-in PKI)."""
    svc = Service(home=tmp_path_factory.mktemp("home"), port=free_port()).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def demo(service: Service) -> dict[str, str]:
    return service.demo_client()


@pytest.fixture(scope="session")
def http(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def demo_token(service: Service, demo: dict[str, str], http: httpx.Client) -> str:
    """The demo client's client-credentials token; the consent tests' redirect URI is registered."""
    from tests.consent import register_redirect

    token = service.token(demo["client_id"], demo["client_secret"])
    register_redirect(http, token)
    return token


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(service: Service, demo_token: str) -> "SignApi":
    """The eParaksts SignAPI client of the demo relying party."""
    from tests.signapi import SignApi

    return SignApi(service, demo_token)


@pytest.fixture(scope="module")
def ca_pem(http: httpx.Client) -> bytes:
    """The built-in CA chain, PEM (trust anchors for the independent verifiers)."""
    r = http.get("/pki/ca.pem")
    assert r.status_code == 200
    return r.content


@pytest.fixture()
def in_process(service: Service) -> Iterator[Any]:
    """The shared service's own Services object, in this process (what a code path does without
    HTTP in front of it)."""
    from remotesign.config import load_settings
    from remotesign.service import Services

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REMOTESIGN_HOME", str(service.home))
        for name in ("REMOTESIGN_DATABASE_URL", "REMOTESIGN_BLOB_DIR", "REMOTESIGN_MASTER_KEY_FILE",
                     "REMOTESIGN_MASTER_KEY", "REMOTESIGN_KEY_BACKEND"):
            mp.delenv(name, raising=False)
        svc = Services(load_settings())
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture(scope="module")
def ca_dir(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session service's issuing and root CA certificates as PEM files (for openssl verify)."""
    d = tmp_path_factory.mktemp("cli-ca")
    issuing, root = x509.load_pem_x509_certificates(http.get("/pki/ca.pem").content)
    (d / "issuing.pem").write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    (d / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return d
