"""A signature request whose execution dies with its process (SIGKILL at a crash point, as a power
cut would) never signs twice with the user's consent and is never stuck: after the restart the
next execution takes the dead process's claim over at once; the user's spent authorization is
refused (the request fails, visibly) and the key has been used exactly once. An unattended
e-seal, authorized by the client's own credentials, is simply made again."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.consent import enrol, register_redirect
from tests.crash_tools import database, restart_with
from tests.harness import Service, free_port
from tests.test_fortress_signature import SIGN, authorize, check_raw, client_token, config, redirected

SAMPLE = b"crash me"


@pytest.fixture()
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("fortress-crash"), port=free_port())
    service.start()
    yield service
    service.stop()


def key_uses(service: Service, identity_id: str) -> int:
    with database(service.home) as db:
        return int(db.execute("SELECT count(*) FROM audit_events WHERE event = 'identity_key.used' AND subject = ?",
                              (identity_id,)).fetchone()[0])


def dies(fortress: httpx.Client, exe: str) -> None:
    with pytest.raises(httpx.TransportError):
        fortress.post(f"{SIGN}/execute/{exe}")


def test_a_crash_after_the_key_signed_never_signs_twice(svc: Service) -> None:
    demo = svc.demo_client()
    with httpx.Client(base_url=svc.url, timeout=60) as rp:
        token = svc.token(demo["client_id"], demo["client_secret"])
        register_redirect(rp, token)
        who = enrol(rp, token)
    restart_with(svc, "signature_request.signed")
    with client_token(svc, demo) as fortress:
        r = fortress.post(SIGN, json={"userCode": who.username, "signatureConfigurations": [
            config(SAMPLE, "PKCS1", "c.bin", "c")]})
        assert r.status_code == 200, r.text
        exe = r.json()["exeCode"]
        consent, browser = authorize(svc, r.json()["authCode"], who, pin=who.pin)
        browser.close()
        assert "code" in redirected(consent)
        dies(fortress, exe)
    restart_with(svc, None)
    with client_token(svc, demo) as fortress:
        assert fortress.get(f"{SIGN}/{exe}").json()["status"] == "EXECUTING"  # as the dead process left it
        again = fortress.post(f"{SIGN}/execute/{exe}")
        assert again.status_code == 403 and again.json()["error"] == "replayed", again.text
        state = fortress.get(f"{SIGN}/{exe}").json()
        assert state["status"] == "FAILED" and state["error"] == "replayed", state
        assert fortress.post(f"{SIGN}/execute/{exe}").status_code == 403  # and stays so
    assert key_uses(svc, who.identity["id"]) == 1


def test_an_unattended_seal_is_made_again_after_a_crash(svc: Service) -> None:
    demo = svc.demo_client()
    with httpx.Client(base_url=svc.url, timeout=60) as rp:
        rp.headers["Authorization"] = f"Bearer {svc.token(demo['client_id'], demo['client_secret'])}"
        username = f"crash-seal-{secrets.token_hex(3)}"
        r = rp.post("/v1/users", json={"username": username, "display_name": "Crash Seal Ltd", "kind": "legal",
                                       "serial_number": "NTRLV-40003000000"})
        assert r.status_code == 201, r.text
        r = rp.post(f"/v1/users/{r.json()['id']}/identities", json={"algorithm": "ec-p256"})
        assert r.status_code == 201, r.text
        seal = r.json()["identity"]["id"]
    restart_with(svc, "signature_request.written")
    with client_token(svc, demo) as fortress:
        r = fortress.post(SIGN, json={"certificateCode": seal, "signatureConfigurations": [
            config(SAMPLE, "PKCS1", "s.bin", "s")]})
        assert r.status_code == 200, r.text
        exe = r.json()["exeCode"]
        dies(fortress, exe)
    restart_with(svc, None)
    with client_token(svc, demo) as fortress:
        done = fortress.post(f"{SIGN}/execute/{exe}")
        assert done.status_code == 200, done.text
        pem = fortress.get(f"/fortress/api/v1/user/{username}/certificate").json()[0]["pem"]
        check_raw(base64.b64decode(done.json()[0]["bytesB64"]), SAMPLE, pem)
        assert fortress.post(f"{SIGN}/execute/{exe}").json() == done.json()
    assert key_uses(svc, seal) == 2  # the crashed run's value was never delivered
