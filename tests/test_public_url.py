"""The public URL follows the service when it is restarted on another port (no
REMOTESIGN_PUBLIC_URL): its own links, the demo client's callback and the login page's check of
redirect URIs use the new address. An explicit REMOTESIGN_PUBLIC_URL still wins."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.consent import AS, pkce_pair
from tests.harness import Service, free_port

pytestmark = pytest.mark.slow


def _login_page(url: str, client_id: str) -> httpx.Response:
    _, challenge = pkce_pair()
    return httpx.get(f"{url}/trustedx-authserver/oauth/{AS}?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": f"{url}/demo/callback",
        "scope": "urn:safelayer:eidas:sign:identity:profile", "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256"}), timeout=30)


def test_a_restart_on_another_port_moves_the_public_url(tmp_path: Path) -> None:
    unset = {"REMOTESIGN_PUBLIC_URL": ""}
    first = Service(home=tmp_path / "home", port=free_port(), env=unset).start()
    try:
        demo = first.demo_client()
        assert demo["base_url"] == first.url and _login_page(first.url, demo["client_id"]).status_code == 200
    finally:
        first.stop()

    second = Service(home=tmp_path / "home", port=free_port(), env=unset).start()
    try:
        moved = second.demo_client()
        assert moved["client_id"] == demo["client_id"] and moved["base_url"] == second.url
        page = _login_page(second.url, demo["client_id"])
        assert page.status_code == 200 and 'name="username"' in page.text, page.text[:500]
        info = httpx.post(f"{second.url}/csc/v1/info", json={}, timeout=30)   # names the OAuth2 base URL
        assert info.status_code == 200 and info.json()["oauth2"] == f"{second.url}/csc/v1", info.text
    finally:
        second.stop()

    pinned = Service(home=tmp_path / "home", port=free_port(), env={"REMOTESIGN_PUBLIC_URL": "https://sign.example"})
    pinned.start()
    try:
        assert pinned.cli("client", "list").returncode == 0
        info = httpx.post(f"{pinned.url}/csc/v1/info", json={}, timeout=30)
        assert info.status_code == 200 and info.json()["oauth2"] == "https://sign.example/csc/v1", info.text
    finally:
        pinned.stop()
