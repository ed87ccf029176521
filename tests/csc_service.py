"""One CSC-ready service per test module (PIN or OTP factors, HTTP Basic login on), with the demo
client registered for the consent pages; modules take these fixtures by importing them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.consent import register_redirect
from tests.harness import Service, free_port


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("csc"), port=free_port(),
                      env={"REMOTESIGN_CSC_FACTORS": "pin-or-otp", "REMOTESIGN_CSC_BASIC_LOGIN": "1"}).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def http(svc: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=svc.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def client(svc: Service, http: httpx.Client) -> dict[str, str]:
    demo = svc.demo_client()
    register_redirect(http, svc.token(demo["client_id"], demo["client_secret"]))
    return demo


@pytest.fixture(scope="module")
def admin_token(svc: Service, client: dict[str, str]) -> str:
    return svc.token(client["client_id"], client["client_secret"])
