"""Untrusted strings on the pages people read (issue 12.6): a relying party named with control
characters, a document named with a right-to-left override, a user's display name and an identity's
description with invisible and reordering characters are shown with those characters made visible
(``⟨U+202E⟩``) and cut to a bounded length, on the login and consent pages driven as a browser
without JavaScript would."""

from __future__ import annotations

import httpx
import pytest

from tests.consent import USE_SERVER, admin, enrol, login, register_redirect, start
from tests.harness import Service

CLIENT_NAME = "Evil\x1b[31m Bank\x07\u202e\u200bknaB"
DOCUMENT = "invoice\u202efdp.exe"
LONG_DOCUMENT = "contract-" + "x" * 230 + ".txt"
DISPLAY_NAME = "Anna \u2066Paraksta\u2069\u200f"
DESCRIPTION = "company seal \u202dlaes\u202c\u2028second line"
RAW_CHARACTERS = ["\x1b", "\x07", "\u202e", "\u200b", "\u2066", "\u2069", "\u200f", "\u202d", "\u202c", "\u2028"]


@pytest.fixture(scope="module")
def evil_client(service: Service, http: httpx.Client) -> tuple[dict[str, str], str]:
    client = service.new_client(CLIENT_NAME)
    token = service.token(client["client_id"], client["client_secret"])
    register_redirect(http, token)
    return client, token


def test_rtl_override_and_control_characters_are_shown_escaped(http: httpx.Client,
                                                                 evil_client: tuple[dict[str, str], str]) -> None:
    client, token = evil_client
    who = enrol(http, token, algorithm="ec-p256")
    r = http.patch(f"/v1/users/{who.user['id']}", json={"display_name": DISPLAY_NAME}, headers=admin(http, token))
    assert r.status_code == 200, r.text
    r = http.post(f"/v1/users/{who.user['id']}/identities", json={"algorithm": "ec-p256", "description": DESCRIPTION},
                  headers=admin(http, token))
    assert r.status_code == 201, r.text
    identity = r.json()["identity"]

    api = {"Authorization": f"Bearer {token}"}
    sid = http.get("/api-session/v1.0/start", headers=api).json()["data"]["sessionId"]
    for name in (DOCUMENT, LONG_DOCUMENT):
        r = http.put(f"/api-storage/v1.0/{sid}/upload", files={"file": (name, b"pay 1000 EUR")}, headers=api)
        assert r.status_code == 201, r.text
    r = http.post("/api-sign/v1.0/CalculateDigest", headers=api, json={
        "sessions": [{"sessionId": sid}], "certificate": identity["details"]["certificate"], "signAsPdf": False})
    assert r.status_code == 200, r.text
    data = r.json()["data"]

    page, a = start(str(http.base_url), client["client_id"], USE_SERVER, identity_id=identity["id"],
                    summary=data["digests_summary"], summary_alg=data["algorithm"])
    assert page.status_code == 200, page.text
    assert "Evil⟨U+001B⟩[31m Bank⟨U+0007⟩⟨U+202E⟩⟨U+200B⟩knaB" in page.text
    page = login(a, who.username, who.password)
    assert page.status_code == 200, page.text
    text = page.text
    for raw in RAW_CHARACTERS:
        assert raw not in text, f"U+{ord(raw):04X} reached the page unescaped"
    assert "Evil⟨U+001B⟩[31m Bank⟨U+0007⟩⟨U+202E⟩⟨U+200B⟩knaB" in text
    assert "invoice⟨U+202E⟩fdp.exe" in text
    assert "Anna ⟨U+2066⟩Paraksta⟨U+2069⟩⟨U+200F⟩" in text
    assert "company seal ⟨U+202D⟩laes⟨U+202C⟩⟨U+2028⟩second line" in text
    long_shown = "contract-" + "x" * 111 + "…"  # cut at 120 characters with an ellipsis
    assert long_shown in text and LONG_DOCUMENT not in text
