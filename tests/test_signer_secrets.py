"""Issue 12, points 2-4 and 9, run as attacks over HTTP: a relying party (with its own client
credentials) tries to set or learn its users' secrets, pair its own approval device, guess
passwords, PINs and codes, probe other tenants' user names, stretch a digest authorization, skip
PKCE and post the forms from another site. Each attempt must be refused; the legitimate paths
(activation by e-mail and by the operator's CLI, reset, device pairing) must work.

ATTACKS counts the attempts and their refusals for the issue's closing note."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.consent import (PROFILE, USE_SERVER, Enrolled, activate, admin, consent, enrol, exchange, login,
                           mailed_code, redirect_params, register_redirect, start, summary_of, user_token)
from tests.device_client import DeviceApp, b64, bearer
from tests.harness import Service, free_port
from tests.mailbox import mailbox

ATTACKS: Counter[str] = Counter()


def refused(name: str, ok: bool) -> None:
    """Count an attack and assert it was refused."""
    ATTACKS[f"{name}:tried"] += 1
    assert ok, f"attack not refused: {name}"
    ATTACKS[f"{name}:refused"] += 1


def _error_code(r: httpx.Response) -> str:
    body = r.json()
    err = body.get("error")
    return str(err.get("code") if isinstance(err, dict) else err)


# -- 2. the relying party never sets or learns a secret ------------------------------------------------
def test_relying_party_cannot_set_or_read_secrets(http: httpx.Client, demo_token: str) -> None:
    auth = admin(http, demo_token)
    r = http.post("/v1/users", json={"username": f"p-{os.urandom(3).hex()}", "display_name": "P",
                                     "password": "chosen by the bank"}, headers=auth)
    refused("create user with a password", r.status_code == 400 and _error_code(r) == "secret_not_allowed")
    who = enrol(http, demo_token)
    r = http.patch(f"/v1/users/{who.user['id']}", json={"password": "taken over by the bank"}, headers=auth)
    refused("set a user's password", r.status_code == 400 and _error_code(r) == "secret_not_allowed")
    r = http.post(f"/v1/users/{who.user['id']}/identities", json={"algorithm": "ec-p256", "pin": "0000"},
                  headers=auth)
    refused("create an identity with a PIN", r.status_code == 400 and _error_code(r) == "secret_not_allowed")
    r = http.patch(f"/v1/identities/{who.identity_id}", json={"pin": "0000"}, headers=auth)
    refused("set an identity's PIN", r.status_code == 400 and _error_code(r) == "secret_not_allowed")
    r = http.post("/trustedx-resources/esigp/v1/sign_identities/server/pki_x509/pkcs12", headers=bearer(demo_token),
                  json={"pkcs12": b64(b"x"), "pin": "0000", "user_id": who.user["id"]})
    refused("import a PKCS#12 with a PIN", r.status_code == 400 and _error_code(r) == "secret_not_allowed")
    # what the relying party reads about its user carries no secret and no code
    for r in (http.get(f"/v1/users/{who.user['id']}", headers=auth), http.get("/v1/users", headers=auth),
              http.post(f"/v1/users/{who.user['id']}/activation", json={"purpose": "reset"}, headers=auth)):
        assert r.status_code in (200, 202), r.text
        code = mailbox().latest_code(who.user["email"], len(mailbox().messages_to(who.user["email"])))
        refused("read a code or secret from the API", code not in r.text and code.replace("-", "") not in r.text
                and "pin_hash" not in r.text and "password_hash" not in r.text)


def test_activation_code_works_once_and_for_its_purpose(http: httpx.Client, demo: dict[str, str],
                                                        demo_token: str) -> None:
    register_redirect(http, demo_token)
    auth = admin(http, demo_token)
    name = f"act-{os.urandom(3).hex()}"
    address = f"{name}@example.test"
    r = http.post("/v1/users", json={"username": name, "display_name": "Act", "email": address,
                                     "serial_number": "PNOLV-010101-12345"}, headers=auth)
    assert r.status_code == 201 and r.json()["activation"] == {"status": "sent", "channel": "email"}, r.text
    assert r.json()["activated"] is False and r.json()["has_password"] is False
    user = r.json()
    code = mailbox().latest_code(address)
    base = str(http.base_url).rstrip("/")
    # a new code of the same purpose replaces the first one
    newer = mailed_code(http, demo_token, user, "activate")
    with httpx.Client(base_url=base, timeout=30) as browser:
        r = browser.post("/account/activate", data={"code": code, "password": "x" * 12, "password2": "x" * 12,
                                                    "pin": "2580", "pin2": "2580"})
        refused("activate with a replaced code", r.status_code == 400 and "unknown, used or expired" in r.text)
        r = browser.post("/account/activate", data={"code": newer, "password": "short", "password2": "short",
                                                    "pin": "2580", "pin2": "2580"})
        assert r.status_code == 400 and "8 to 1024" in r.text  # a weak password does not spend the code
    device_code = activate(base, newer, "the user's own phrase", "2580")
    with httpx.Client(base_url=base, timeout=30) as browser:
        r = browser.post("/account/activate", data={"code": newer, "password": "y" * 12, "password2": "y" * 12,
                                                    "pin": "1111", "pin2": "1111"})
    refused("reuse an activation code", r.status_code == 400)
    r = http.post(f"/v1/users/{user['id']}/identities", json={"algorithm": "ec-p256"}, headers=auth)
    assert r.status_code == 201, r.text
    who = Enrolled(user, r.json()["identity"], name, "the user's own phrase", "2580", device_code)
    assert r.json()["identity"]["details"]["activation_mode"] == "pin"
    # the user signs with the PIN they chose (the identity was created after activation)
    d = hashlib.sha256(b"activated").digest()
    token = user_token(http, demo, who, USE_SERVER, summary=summary_of([d]))
    r = http.post("/trustedx-resources/esigp/v1/signatures/server/raw", headers=bearer(token),
                  json={"digest_value": b64(d), "sign_identity_id": who.identity_id})
    assert r.status_code == 200, r.text
    # an activation code cannot pair a device, a device code cannot activate
    r = http.post("/v1/device/register", json={"activation_code": mailed_code(http, demo_token, user, "reset"),
                                               "public_key": "x"})
    refused("pair a device with a reset code", r.status_code in (400, 401))


def test_relying_party_cannot_pair_its_own_device(http: httpx.Client, demo_token: str) -> None:
    who = enrol(http, demo_token)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r = http.post("/v1/device/register", json={"username": who.username, "password": who.password, "public_key": pem})
    refused("pair a device with the password", r.status_code == 400)
    r = http.post(f"/v1/users/{who.user['id']}/activation", json={"purpose": "device"}, headers=admin(http, demo_token))
    assert r.status_code == 202 and r.json() == {"status": "sent", "channel": "email"}, r.text
    # the code went to the user's inbox, not to the relying party; the user pairs with it
    phone = DeviceApp.register(http, mailbox().latest_code(who.user["email"], 2))
    assert phone.device_id


def test_operator_cli_issues_codes_once_and_audits(service: Service, http: httpx.Client, demo_token: str) -> None:
    r = http.post("/v1/users", json={"username": f"cli-{os.urandom(3).hex()}", "display_name": "No mail"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["activation"]["status"] == "pending" and user["activation"]["channel"] == "operator"
    r = http.post(f"/v1/users/{user['id']}/activation", json={}, headers=admin(http, demo_token))
    assert r.status_code == 409 and _error_code(r) == "no_channel", r.text
    code = service.cli("users", "activation-code", user["id"]).stdout.decode().strip()
    activate(service.url, code, "operator handed it over", "97531")
    events = [e["event"] for e in http.get("/v1/audit", params={"limit": 50}, headers=bearer(demo_token)).json()]
    assert "activation.code_issued" in events and "user.activated" in events


# -- 3. locks escalate, sources are throttled, refusals say nothing ---------------------------------------
@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Short first lock then a permanent one; a small per-address budget."""
    svc = Service(home=tmp_path_factory.mktemp("strict"), port=free_port(), env={
        "REMOTESIGN_PASSWORD_MAX_ATTEMPTS": "2", "REMOTESIGN_PASSWORD_LOCK_SECONDS": "1",
        "REMOTESIGN_PIN_LOCK_SECONDS": "1", "REMOTESIGN_ADDRESS_MAX_FAILURES": "1000"}).start()
    yield svc
    svc.stop()


def _login_answer(base: str, client_id: str, username: str, password: str) -> httpx.Response:
    _r, a = start(base, client_id, PROFILE)
    return login(a, username, password)


def _error_text(r: httpx.Response) -> str:
    import re

    m = re.search(r'<p class="error"[^>]*>(.*?)</p>', r.text)
    assert m, r.text
    return m.group(1)


def test_password_locks_escalate_to_permanent_and_reset_lifts_them(strict: Service) -> None:
    import time

    demo = strict.demo_client()
    token = strict.token(demo["client_id"], demo["client_secret"])
    with httpx.Client(base_url=strict.url, timeout=30) as http:
        register_redirect(http, token)
        who = enrol(http, token)
        unknown = _error_text(_login_answer(strict.url, demo["client_id"], "nobody-here", "whatever1"))
        for _round in range(2):  # lock level 1 (1 s), then level 2: permanent
            for _ in range(2):
                assert _login_answer(strict.url, demo["client_id"], who.username, "wrong").status_code == 401
            time.sleep(1.2)
        r = _login_answer(strict.url, demo["client_id"], who.username, who.password)
        refused("log in with the right password when locked for good", r.status_code == 401)
        refused("tell a locked account from an unknown one", _error_text(r) == unknown)
        time.sleep(1.2)
        refused("wait out a permanent lock",
                _login_answer(strict.url, demo["client_id"], who.username, who.password).status_code == 401)
        shown = http.get(f"/v1/users/{who.user['id']}", headers=admin(http, token)).json()
        assert shown["locked_permanently"] is True
        # the reset through the user's own channel lifts it
        code = mailed_code(http, token, who.user, "reset")
        activate(strict.url, code, "a brand new phrase", "8642")
        r = _login_answer(strict.url, demo["client_id"], who.username, "a brand new phrase")
        assert r.status_code == 200, r.text


def test_pin_locks_escalate_to_blocked_and_reset_lifts_them(strict: Service) -> None:
    import time

    demo = strict.demo_client()
    token = strict.token(demo["client_id"], demo["client_secret"])
    with httpx.Client(base_url=strict.url, timeout=30) as http:
        register_redirect(http, token)
        who = enrol(http, token, pin="1357")
        for _round in range(2):
            _r, a = start(strict.url, demo["client_id"], USE_SERVER, identity_id=who.identity_id,
                          summary=summary_of([os.urandom(32)]))
            assert login(a, who.username, who.password).status_code == 200
            for _ in range(3):
                consent(a, "approve", pin="0000")
            time.sleep(1.2)
        _r, a = start(strict.url, demo["client_id"], USE_SERVER, identity_id=who.identity_id,
                      summary=summary_of([os.urandom(32)]))
        assert login(a, who.username, who.password).status_code == 200
        r = consent(a, "approve", pin="1357")
        refused("sign with the right PIN once blocked", r.status_code == 403 and "blocked" in r.text)
        activate(strict.url, mailed_code(http, token, who.user, "reset"), "another new phrase", "2468")
        who = Enrolled(who.user, who.identity, who.username, "another new phrase", "2468")
        d = hashlib.sha256(b"after reset").digest()
        signing = user_token(http, demo, who, USE_SERVER, summary=summary_of([d]))
        r = http.post("/trustedx-resources/esigp/v1/signatures/server/raw", headers=bearer(signing),
                      json={"digest_value": b64(d), "sign_identity_id": who.identity_id})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(home=tmp_path_factory.mktemp("throttled"), port=free_port(),
                  env={"REMOTESIGN_ADDRESS_MAX_FAILURES": "5"}).start()
    yield svc
    svc.stop()


def test_one_address_cannot_guess_across_accounts_or_codes(throttled: Service) -> None:
    demo = throttled.demo_client()
    token = throttled.token(demo["client_id"], demo["client_secret"])
    with httpx.Client(base_url=throttled.url, timeout=30) as http:
        register_redirect(http, token)
        who = enrol(http, token)
        for n in range(5):  # five different accounts, one guess each: no account lock applies
            r = _login_answer(throttled.url, demo["client_id"], f"victim-{n}", "Password1")
            assert r.status_code == 401
        r = _login_answer(throttled.url, demo["client_id"], who.username, who.password)
        refused("keep guessing from one address", r.status_code == 429 and "retry-after" in r.headers)
        r = http.post("/v1/device/register", json={"activation_code": "AAAAA-AAAAA-AAAAA-AAAAA", "public_key": "x"})
        refused("guess device codes from a blocked address", r.status_code == 429)
        with httpx.Client(base_url=throttled.url, timeout=30) as browser:
            r = browser.post("/account/activate", data={"code": "AAAAA", "password": "x" * 10, "password2": "x" * 10,
                                                        "pin": "1234", "pin2": "1234"})
        refused("guess activation codes from a blocked address", r.status_code == 429)


def test_user_names_are_per_relying_party(service: Service, http: httpx.Client, demo_token: str) -> None:
    other = service.new_client("probing tenant")
    other_token = service.token(other["client_id"], other["client_secret"])
    name = f"shared-{os.urandom(3).hex()}"
    r = http.post("/v1/users", json={"username": name, "display_name": "Mine"}, headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    r = http.post("/v1/users", json={"username": name, "display_name": "Theirs"}, headers=admin(http, other_token))
    refused("probe another tenant's user name", r.status_code == 201)
    r = http.post("/v1/users", json={"username": name, "display_name": "Again"}, headers=admin(http, other_token))
    assert r.status_code == 409 and _error_code(r) == "username_taken"  # within one tenant, names stay unique


# -- 4. a typed digest list ------------------------------------------------------------------------
def test_a_token_for_two_digests_does_not_sign_their_concatenation(http: httpx.Client, demo: dict[str, str],
                                                                   demo_token: str) -> None:
    register_redirect(http, demo_token)
    who = enrol(http, demo_token)
    x1, x2 = hashlib.sha256(b"one").digest(), hashlib.sha256(b"two").digest()
    token = user_token(http, demo, who, USE_SERVER, summary=summary_of([x1, x2]))
    raw = "/trustedx-resources/esigp/v1/signatures/server/raw"
    for alg in (None, "rsa-sha512"):
        body = {"digest_value": b64(x1 + x2), "sign_identity_id": who.identity_id}
        if alg:
            body["signature_algorithm"] = alg
        r = http.post(raw, headers=bearer(token), json=body)
        refused("sign X1||X2 as one SHA-512 digest", r.status_code == 403 and r.json()["reason"] == "digest_type_mismatch")
    r = http.post(raw + "/batch", headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(x1)}, {"digest_value": b64(x2)}]})
    assert r.status_code == 200 and len(r.json()["signatures"]) == 2, r.text
    # declared types bind too: [SHA-256, SHA-512] is not [SHA-512, SHA-256]
    y = hashlib.sha512(b"three").digest()
    token = user_token(http, demo, who, USE_SERVER, summary=summary_of([x1, y]),
                       extra={"digests_algorithms": "SHA256,SHA512"})
    r = http.post(raw + "/batch", headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(x1 + y[:32])},
                                                         {"digest_value": b64(y[32:])}]})
    refused("re-cut a declared list", r.status_code == 403)
    r = http.post(raw + "/batch", headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(x1)}, {"digest_value": b64(y)}]})
    assert r.status_code == 200, r.text


# -- 9. PKCE, Origin, what a failed login leaves in the audit ---------------------------------------------
def test_pkce_can_be_relaxed_only_by_the_operator(service: Service, http: httpx.Client) -> None:
    legacy = service.new_client("legacy app")
    token = service.token(legacy["client_id"], legacy["client_secret"])
    register_redirect(http, token)
    service.cli("client", "pkce", legacy["client_id"], "required")
    r, _a = start(service.url, legacy["client_id"], PROFILE, pkce=False)
    refused("skip PKCE", r.status_code == 303 and redirect_params(r)["error"] == "invalid_request")
    service.cli("client", "pkce", legacy["client_id"], "optional")
    who = enrol(http, token)
    r, a = start(service.url, legacy["client_id"], PROFILE, pkce=False)
    assert r.status_code == 200, r.text
    assert login(a, who.username, who.password).status_code == 200
    params = redirect_params(consent(a, "approve"))
    r = exchange(http, legacy["client_id"], legacy["client_secret"], params["code"], None)
    assert r.status_code == 200, r.text
    r, _a = start(service.url, legacy["client_id"], PROFILE, pkce=False,
                  extra={"code_challenge": "a" * 43, "code_challenge_method": "plain"})
    refused("use PKCE plain", r.status_code == 303 and redirect_params(r)["error"] == "invalid_request")


def test_forms_posted_from_another_site_are_refused(http: httpx.Client, demo: dict[str, str],
                                                    demo_token: str) -> None:
    register_redirect(http, demo_token)
    who = enrol(http, demo_token)
    _r, a = start(str(http.base_url), demo["client_id"], PROFILE)
    for origin in ("https://evil.example", "null"):
        r = a.browser.post(f"/trustedx-authserver/oauth/lvrtc-eipsign-as/login", headers={"Origin": origin},
                           data={"request_id": a.request_id, "username": who.username, "password": who.password,
                                 "action": "login"})
        refused("post the login form cross-site", r.status_code == 403)
    r = a.browser.post("/trustedx-authserver/oauth/lvrtc-eipsign-as/login",
                       headers={"Referer": "https://evil.example/page"},
                       data={"request_id": a.request_id, "username": who.username, "password": who.password})
    refused("post the login form cross-site (Referer only)", r.status_code == 403)
    with httpx.Client(base_url=str(http.base_url), timeout=30) as browser:
        r = browser.post("/account/activate", headers={"Origin": "https://evil.example"},
                         data={"code": "X", "password": "x" * 10, "password2": "x" * 10, "pin": "1234", "pin2": "1234"})
    refused("post the activation form cross-site", r.status_code == 403)
    r = a.browser.post("/trustedx-authserver/oauth/lvrtc-eipsign-as/login",
                       headers={"Sec-Fetch-Site": "cross-site", "Origin": str(http.base_url).rstrip("/")},
                       data={"request_id": a.request_id, "username": who.username, "password": who.password})
    refused("post the login form cross-site (Sec-Fetch-Site)", r.status_code == 403)
    own = str(http.base_url).rstrip("/")
    r = a.browser.post("/trustedx-authserver/oauth/lvrtc-eipsign-as/login", headers={"Origin": own},
                       data={"request_id": a.request_id, "username": who.username, "password": who.password,
                             "action": "login"})
    assert r.status_code == 200, r.text


def test_failed_login_does_not_echo_what_was_typed(service: Service, http: httpx.Client, demo: dict[str, str],
                                                   demo_token: str) -> None:
    register_redirect(http, demo_token)
    typed = f"my-password-{os.urandom(4).hex()}"  # a password typed into the user-name field
    _r, a = start(str(http.base_url), demo["client_id"], PROFILE)
    assert login(a, typed, "anything").status_code == 401
    with sqlite3.connect(service.home / "remotesign.db") as conn:
        rows = conn.execute("SELECT actor, subject, details FROM audit_events WHERE event = 'user.login_refused'").fetchall()
    assert rows
    refused("find the typed text in the audit log", all(typed not in " ".join(map(str, row)) for row in rows))
    fingerprint = hashlib.sha256(typed.encode()).hexdigest()[:16]
    assert any(fingerprint in row[2] for row in rows)  # attempts can still be correlated


def test_zz_attack_counts() -> None:
    """Prints the tally (run last in this module) for the closing note."""
    tried = sum(v for k, v in ATTACKS.items() if k.endswith(":tried"))
    refused_count = sum(v for k, v in ATTACKS.items() if k.endswith(":refused"))
    print(f"\nsigner-secret attacks: {tried} tried, {refused_count} refused")
    assert tried == refused_count
