from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.harness import PostgresServer, Service, free_port


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
