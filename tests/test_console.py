"""The operator console (/console) over HTTP against the running service, as a browser without
scripts uses it: sign-in with an operator account made by the CLI (not an OAuth client), lockout
after wrong passwords, the form token on every POST, and what the operator does there — relying
parties and their secrets, unlocking a PIN-locked identity, revoking a certificate (seen by OCSP
and the CRL), searching and verifying the audit log — each change written to the audit log with
the operator as the actor — and long lists searched in SQL and read a page at a time."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID

from remotesign.config import Settings
from tests.console import PAGES, Console, forms_of, hidden_value, make_operator, operator_cli
from tests.consent import (AS, USE_SERVER, Enrolled, admin, consent, enrol, exchange, login, redirect_params,
                           start, summary_of)
from tests.harness import Service

TOKEN_PATH = f"/trustedx-authserver/oauth/{AS}/token"


@pytest.fixture(scope="module")
def operator(service: Service) -> tuple[str, str]:
    return make_operator(service)


@pytest.fixture()
def console(service: Service, operator: tuple[str, str]) -> Iterator[Console]:
    with Console(service) as c:
        yield c.signed_in(*operator)


def _token(http: httpx.Client, client_id: str, secret: str) -> httpx.Response:
    return http.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=(client_id, secret))


def _audit(console: Console, **params: str) -> str:
    r = console.get("/console/audit", **params)
    assert r.status_code == 200, r.text
    return r.text


# -- who may enter ---------------------------------------------------------------------------------

def test_every_page_needs_a_signed_in_operator(service: Service, operator: tuple[str, str], demo: dict[str, str],
                                               http: httpx.Client) -> None:
    with Console(service) as anonymous:
        for path in PAGES:
            r = anonymous.get(path)
            assert r.status_code == 303, (path, r.status_code)
            assert r.headers["location"].startswith("/console/login?next="), r.headers["location"]
        # a form sent without a session changes nothing
        name = f"sneaky-{secrets.token_hex(4)}"
        r = anonymous.post("/console/clients", {"name": name, "scope:remotesign:users": "on"}, csrf=False)
        assert r.status_code == 401 and "Sign in" in r.text
        # a made-up cookie opens nothing
        anonymous.http.cookies.set("rs_console", secrets.token_urlsafe(32), path="/console")
        assert anonymous.get("/console/clients").status_code == 303
    # a relying party's token is no key to the console, and an operator is no OAuth client
    token = service.token(demo["client_id"], demo["client_secret"])
    r = http.get("/console/clients", headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
    assert r.status_code == 303
    assert _token(http, *operator).status_code == 401
    with Console(service) as c:
        assert name not in c.signed_in(*operator).get("/console/clients").text


def test_sign_in_sets_a_strict_session_cookie_and_sign_out_ends_it(service: Service,
                                                                   operator: tuple[str, str]) -> None:
    from remotesign.api.console.auth import secure_cookies

    with Console(service) as c:
        r = c.login(*operator, next_path="/console/audit")
        assert r.status_code == 303 and r.headers["location"] == "/console/audit"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("rs_console="))
        flags = {p.strip().lower() for p in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/console"} <= flags, cookie
        assert "secure" not in flags  # the test service is plain http on loopback
        assert secure_cookies("http", "https://sign.example") and secure_cookies("https", "http://127.0.0.1")
        session_value = c.http.cookies["rs_console"]

        assert c.get("/console/users").status_code == 200
        r = c.post("/console/logout")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    with Console(service) as replay:  # the cookie of the ended session opens nothing
        replay.http.cookies.set("rs_console", session_value, path="/console")
        assert replay.get("/console/users").status_code == 303
    # sign-in elsewhere only goes to console pages
    with Console(service) as c:
        assert c.login(*operator, next_path="https://evil.example/").headers["location"] == "/console/"


def test_wrong_passwords_are_refused_then_lock_the_operator_out(service: Service) -> None:
    name, password = make_operator(service)
    with Console(service) as c:
        for _ in range(Settings.password_max_attempts):
            r = c.login(name, "not the password")
            assert r.status_code == 401 and "Wrong operator name or password" in r.text
            assert "rs_console=" not in r.headers.get("set-cookie", "")
        r = c.login(name, password)  # the right password, but the account is locked now
        assert r.status_code == 401 and "rs_console=" not in r.headers.get("set-cookie", "")
        # an unknown operator reads the same
        assert "Wrong operator name or password" in c.login(f"nobody-{secrets.token_hex(3)}", password).text

    listed = {o["username"]: o for o in json.loads(operator_cli(service, "list", "--json").stdout)}
    assert listed[name]["locked"] and listed[name]["locked_until"]
    operator_cli(service, "unlock", name)
    with Console(service) as c:
        assert c.login(name, password).status_code == 303
        page = _audit(c, action="operator.login_refused", actor=f"operator:{name}")
        assert "locked_now" in page and "wrong_password" in page and "&#34;locked&#34;" in page


def test_disabling_an_operator_or_a_new_password_ends_their_sessions(service: Service) -> None:
    name, password = make_operator(service)
    with Console(service) as c:
        c.signed_in(name, password)
        operator_cli(service, "disable", name)
        assert c.get("/console/users").status_code == 303
        assert c.login(name, password).status_code == 401  # a disabled operator cannot sign in
        operator_cli(service, "enable", name)
        c.signed_in(name, password)
        new_password = secrets.token_urlsafe(20)
        operator_cli(service, "password", name, "--password-stdin", input=f"{new_password}\n".encode())
        assert c.get("/console/users").status_code == 303
        assert c.login(name, password).status_code == 401
        assert c.login(name, new_password).status_code == 303
    for args, stdin in ((("create", name, "--password-stdin"), b"another password\n"),  # taken
                        (("create", f"x-{secrets.token_hex(3)}", "--password-stdin"), b"short\n"),
                        (("create", "no spaces allowed", "--password-stdin"), b"long enough password\n"),
                        (("unlock", "nobody-here"), b"")):
        proc = service.cli("operator", *args, check=False, input=stdin)
        assert proc.returncode == 2 and proc.stderr.startswith(b"error: "), (args, proc.stderr)
    # the module's own entry point is the same parser
    env = {**os.environ, "REMOTESIGN_HOME": str(service.home)}
    proc = subprocess.run([sys.executable, "-m", "remotesign.cli.operators", "unlock", "nobody-here"], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith(b"error: "), proc.stderr
    listed = json.loads(operator_cli(service, "list", "--json").stdout)
    assert [o for o in listed if o["username"] == name][0]["enabled"] is True
    assert name in service.cli("operator", "list").stdout.decode()  # the same commands in `remotesign`


def test_the_login_form_needs_its_own_token(service: Service, operator: tuple[str, str]) -> None:
    with httpx.Client(base_url=service.url, follow_redirects=False) as raw:
        r = raw.post("/console/login", data={"username": operator[0], "password": operator[1]})
        assert r.status_code == 403 and "rs_console=" not in r.headers.get("set-cookie", "")
        page = raw.get("/console/login")
        r = raw.post("/console/login", data={"username": operator[0], "password": operator[1],
                                             "csrf": "x" * len(hidden_value(page.text, "csrf"))})
        assert r.status_code == 403


def test_every_post_needs_the_form_token(service: Service, console: Console, operator: tuple[str, str]) -> None:
    name = f"csrf-{secrets.token_hex(4)}"
    form = {"name": name, "scope:remotesign:users": "on"}
    assert console.post("/console/clients", form, csrf=False).status_code == 403
    assert console.post("/console/clients", {**form, "csrf": "0" * 64}, csrf=False).status_code == 403
    with Console(service) as other:  # another session's token is not this one's
        other.signed_in(*operator)
        assert other.csrf != console.csrf
        assert console.post("/console/clients", {**form, "csrf": other.csrf}, csrf=False).status_code == 403
    # the right token, but the browser says the form came from another site
    assert console.post("/console/clients", form, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert console.post("/console/clients", form, headers={"Origin": "https://evil.example"}).status_code == 403
    assert name not in console.get("/console/clients").text
    for path in ("/console/logout", "/console/audit/verify", "/console/identities/x/unlock",
                 "/console/certificates/x/revoke", "/console/clients/x/rotate"):
        assert console.post(path, csrf=False).status_code == 403, path
    assert console.get("/console/users").status_code == 200  # still signed in


# -- relying parties ---------------------------------------------------------------------------------

def test_create_a_relying_party_and_rotate_its_secret(console: Console, http: httpx.Client,
                                                      operator: tuple[str, str]) -> None:
    name = f"Console Bank {secrets.token_hex(3)}"
    r = console.post("/console/clients", {"name": name, "scope:remotesign:users": "on", "pkce_required": "on"})
    assert r.status_code == 201, r.text
    client_id, secret = hidden_secret(r.text)
    assert name in console.get("/console/clients").text
    first = _token(http, client_id, secret)
    assert first.status_code == 200 and first.json()["scope"] == "remotesign:users", first.text
    old_token = first.json()["access_token"]
    assert http.get("/v1/client", headers={"Authorization": f"Bearer {old_token}"}).status_code == 200

    r = console.post(f"/console/clients/{client_id}/rotate", {"revoke_tokens": "on"})
    assert r.status_code == 200, r.text
    same_id, new_secret = hidden_secret(r.text)
    assert same_id == client_id and new_secret != secret
    refused = _token(http, client_id, secret)  # the old secret gets no token any more
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert http.get("/v1/client", headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    assert _token(http, client_id, new_secret).status_code == 200

    r = console.post(f"/console/clients/{client_id}/disable")
    assert r.status_code == 303 and "done=client_disabled" in r.headers["location"]
    assert _token(http, client_id, new_secret).status_code == 401
    assert console.post(f"/console/clients/{client_id}/enable").status_code == 303
    assert _token(http, client_id, new_secret).status_code == 200
    assert console.post("/console/clients/no-such-client/rotate").status_code == 404

    page = _audit(console, actor=f"operator:{operator[0]}", action="client")
    for event in ("client.created", "client.secret_rotated", "client.disabled", "client.enabled"):
        assert event in page, event


def hidden_secret(html: str) -> tuple[str, str]:
    client_id = re.search(r'<code id="client_id">([^<]+)</code>', html)
    secret = re.search(r'<code id="client_secret" class="secret">([^<]+)</code>', html)
    assert client_id and secret, html[:3000]
    return client_id.group(1), secret.group(1)


# -- identities ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signer(http: httpx.Client, demo_token: str) -> Enrolled:
    return enrol(http, demo_token, algorithm="ec-p256", pin="24680")


def _pin_attempt(service: Service, demo: dict[str, str], who: Enrolled, pin: str) -> tuple[httpx.Response, Any]:
    """One authorization through the login and consent pages with ``pin``: the consent answer."""
    r, a = start(service.url, demo["client_id"], USE_SERVER, identity_id=who.identity_id,
                 summary=summary_of([secrets.token_bytes(32)]))
    assert r.status_code == 200, r.text
    assert login(a, who.username, who.password).status_code == 200
    return consent(a, "approve", pin=pin), a


def _identity_row(console: Console, identity_id: str) -> str:
    page = console.get("/console/identities", q=identity_id).text
    m = re.search(rf'<tr id="identity-{identity_id}">(.*?)</tr>', page, re.S)
    assert m, page[:3000]
    return m.group(1)


def test_unlock_a_pin_locked_identity(service: Service, console: Console, demo: dict[str, str],
                                      http: httpx.Client, demo_token: str, operator: tuple[str, str]) -> None:
    who = enrol(http, demo_token, algorithm="ec-p256", pin="13579")
    for _ in range(Settings.pin_max_attempts):
        r, _a = _pin_attempt(service, demo, who, "00000")
        assert r.status_code == 403, r.text
    r, _a = _pin_attempt(service, demo, who, who.pin)
    assert r.status_code == 403 and "locked" in r.text  # even the right PIN while locked
    row = _identity_row(console, who.identity_id)
    assert "locked until" in row and "Unlock PIN" in row
    assert "identities?state=locked" in console.get("/console/").text
    assert who.identity_id in console.get("/console/identities", state="locked").text

    r = console.post(f"/console/identities/{who.identity_id}/unlock", {"q": who.identity_id})
    assert r.status_code == 303 and "done=identity_unlocked" in r.headers["location"]
    assert "not locked" in _identity_row(console, who.identity_id)
    assert "PIN lock is lifted" in console.get(r.headers["location"]).text

    r, a = _pin_attempt(service, demo, who, who.pin)  # the user's own PIN works again
    params = redirect_params(r)
    assert "code" in params, params
    assert exchange(http, demo["client_id"], demo["client_secret"], params["code"], a.verifier).status_code == 200
    page = _audit(console, action="identity.unlocked", q=who.identity_id)
    assert f"operator:{operator[0]}" in page
    assert console.post("/console/identities/no-such-identity/unlock").status_code == 404


# -- certificates -----------------------------------------------------------------------------------

def _ocsp_status(http: httpx.Client, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    r = http.post("/pki/ocsp", content=request.public_bytes(serialization.Encoding.DER),
                  headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200
    answer = ocsp.load_der_ocsp_response(r.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return answer


def test_revoke_a_certificate_and_ocsp_and_the_crl_say_so(console: Console, http: httpx.Client, signer: Enrolled,
                                                          operator: tuple[str, str]) -> None:
    cert = x509.load_der_x509_certificate(base64.b64decode(signer.certificate_b64))
    issuing = x509.load_pem_x509_certificates(http.get("/pki/ca.pem").content)[0]
    assert _ocsp_status(http, cert, issuing).certificate_status == ocsp.OCSPCertStatus.GOOD
    serial = format(cert.serial_number, "x")

    page = console.get("/console/certificates", q=serial).text
    m = re.search(r'action="/console/certificates/([0-9a-f-]{36})/revoke"', page)
    assert m and f'id="cert-{serial}"' in page, page[:3000]
    r = console.post(f"/console/certificates/{m.group(1)}/revoke", {"reason": "key_compromise", "q": serial})
    assert r.status_code == 303 and "done=certificate_revoked" in r.headers["location"], r.text
    row = re.search(rf'<tr id="cert-{serial}">(.*?)</tr>', console.get(r.headers["location"]).text, re.S)
    assert row and "revoked" in row.group(1) and "key_compromise" in row.group(1)

    answer = _ocsp_status(http, cert, issuing)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise
    crl_url = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value[0].full_name[0].value
    crl = x509.load_der_x509_crl(http.get(crl_url.replace(str(http.base_url).rstrip("/"), "")).content)
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert "revoked (key_compromise)" in _identity_row(console, signer.identity_id)

    # twice is refused; the service's own certificates are not revoked from here
    assert console.post(f"/console/certificates/{m.group(1)}/revoke", {"reason": "superseded"}).status_code == 400
    assert console.post(f"/console/certificates/{m.group(1)}/revoke", {"reason": "bogus"}).status_code == 400
    ocsp_cert = x509.load_pem_x509_certificate(http.get("/pki/ocsp.pem").content)
    page = console.get("/console/certificates", q=format(ocsp_cert.serial_number, "x")).text
    ocsp_id = re.search(r'<code class="small">([0-9a-f-]{36})</code>', page)
    assert ocsp_id and "service certificate" in page
    assert console.post(f"/console/certificates/{ocsp_id.group(1)}/revoke",
                        {"reason": "key_compromise"}).status_code == 403
    assert "certificate.revoked" in _audit(console, actor=f"operator:{operator[0]}", q=serial)


# -- audit log -------------------------------------------------------------------------------------

def test_search_the_audit_log_and_verify_its_chain(console: Console, operator: tuple[str, str]) -> None:
    actor = f"operator:{operator[0]}"
    mine = _audit(console, actor=actor)
    assert "operator.login" in mine
    assert "user.created" not in mine  # only this actor's events
    assert "operator.login" in _audit(console, action="operator", q=operator[0])
    today = datetime.now(timezone.utc).date()
    assert "operator.login" in _audit(console, actor=actor, since=today.isoformat())
    assert "operator.login" in _audit(console, actor=actor, until=today.isoformat())  # a day: up to its end
    assert "No event matches" in _audit(console, actor=actor, since=(today + timedelta(days=1)).isoformat())
    assert "No event matches" in _audit(console, actor=actor, until=(today - timedelta(days=1)).isoformat())
    assert "No event matches" in _audit(console, q=f"no such text {secrets.token_hex(8)}")
    assert console.get("/console/audit", since="last tuesday").status_code == 400

    r = console.post("/console/audit/verify")
    assert r.status_code == 200, r.text
    m = re.search(r"<strong>Audit log intact\.</strong> (\d+) events checked, hash chain intact", r.text)
    assert m and int(m.group(1)) > 0, r.text[:3000]
    assert "audit.verified" in _audit(console, actor=actor, action="audit.verified")


# -- long lists, a page at a time ---------------------------------------------------------------------

PAGE = 100  # rows a list page shows (remotesign.api.console.routes.ROWS)
MANY = 230  # users enough for three pages


@dataclass(frozen=True)
class Many:
    """``MANY`` users of the demo relying party made for paging (admin API, no e-mail): user names
    ``<mark>_<n>`` (n = 0 .. MANY-1, oldest first), display names ``Paging <mark> 100% #<n>``; and
    one decoy a search that took ``_`` or ``%`` for a wildcard would find too: ``<mark>x0``, named
    ``Paging <mark> 1000 ĀBOLIŅŠ`` (capitals beyond ASCII)."""

    mark: str
    names: list[str]
    decoy: str


@pytest.fixture(scope="module")
def many(http: httpx.Client, demo_token: str) -> Many:
    mark = f"pg{secrets.token_hex(4)}"

    def enrol_plain(username: str, display_name: str) -> None:  # no e-mail: no activation message
        r = http.post("/v1/users", json={"username": username, "display_name": display_name},
                      headers=admin(http, demo_token))
        assert r.status_code == 201, r.text

    names = [f"{mark}_{n}" for n in range(MANY)]
    for n, name in enumerate(names):
        enrol_plain(name, f"Paging {mark} 100% #{n:03d}")
    enrol_plain(f"{mark}x0", f"Paging {mark} 1000 ĀBOLIŅŠ")
    return Many(mark, names, f"{mark}x0")


def _listed(page: str, mark: str) -> list[str]:
    return re.findall(rf"<strong>({re.escape(mark)}[^<]*)</strong>", page)


def _link(page: str, rel: str) -> str | None:
    m = re.search(rf'<a rel="{rel}" href="([^"]+)">', page)
    return html.unescape(m.group(1)) if m else None


def _showing(page: str) -> str:
    m = re.search(r'<p class="muted" id="showing">([^<]*)</p>', page)
    assert m, page[:3000]
    return m.group(1)


def test_the_users_list_pages_through_every_match(console: Console, many: Many) -> None:
    q = f"{many.mark}_"  # "_" is a plain character: the decoy <mark>x0 is not found
    r = console.get("/console/users", q=q)
    assert r.status_code == 200, r.text[:2000]
    pages, seen = [], []
    while True:
        assert r.status_code == 200, r.text[:2000]
        pages.append(r.text)
        seen.append(_listed(r.text, many.mark))
        following = _link(r.text, "next")
        if following is None:
            break
        # plain links that keep the search and name the next page
        assert parse_qs(urlsplit(following).query) == {"q": [q], "page": [str(len(pages) + 1)]}, following
        assert urlsplit(following).path == "/console/users"
        r = console.http.get(following)
    assert len(pages) == 3 and [len(names) for names in seen] == [PAGE, PAGE, MANY - 2 * PAGE]
    assert _showing(pages[0]).startswith(f"Showing 1–{PAGE} of {MANY} users")
    assert _showing(pages[1]).startswith(f"Showing {PAGE + 1}–{2 * PAGE} of {MANY} users")
    assert _showing(pages[2]).startswith(f"Showing {2 * PAGE + 1}–{MANY} of {MANY} users")
    assert [n for names in seen for n in names] == many.names  # disjoint, complete, oldest first
    assert _link(pages[0], "prev") is None and "Page 1 of 3" in pages[0]
    for number, page in enumerate(pages[1:], start=2):
        assert parse_qs(urlsplit(_link(page, "prev") or "").query) == {"q": [q], "page": [str(number - 1)]}
    assert forms_of(pages[1]).scripts == 0

    # "%" is a plain character too: "100%" does not find "1000"
    found = console.get("/console/users", q=f"{many.mark} 100%").text
    assert _showing(found).startswith(f"Showing 1–{PAGE} of {MANY} users") and many.decoy not in found
    assert _listed(console.get("/console/users", q=f"{many.mark}x").text, many.mark) == [many.decoy]
    # case folds beyond ASCII, as the search in Python did
    assert _listed(console.get("/console/users", q=f"{many.mark} 1000 āboliņš").text, many.mark) == [many.decoy]
    assert "No user matches" in console.get("/console/users", q=f"{many.mark}%").text


def test_a_form_sent_from_a_page_comes_back_to_it(console: Console, many: Many) -> None:
    q = f"{many.mark}_"
    page = console.get("/console/users", q=q, page="2").text
    user_id = re.search(r'action="/console/users/([0-9a-f-]{36})/disable"', page)
    assert user_id and hidden_value(page, "page") == "2", page[:3000]
    for change in ("disable", "enable"):
        r = console.post(f"/console/users/{user_id.group(1)}/{change}", {"q": q, "page": "2"})
        assert r.status_code == 303, r.text
        assert parse_qs(urlsplit(r.headers["location"]).query) == {"q": [q], "page": ["2"], "done": [f"user_{change}d"]}
    assert _showing(console.get(r.headers["location"]).text).startswith(f"Showing {PAGE + 1}–")


@pytest.mark.parametrize("path", ["/console/users", "/console/identities", "/console/devices", "/console/certificates"])
def test_a_page_number_is_checked(console: Console, many: Many, path: str) -> None:
    for bad in ("0", "-1", "abc", "1.5", "0x2", "٣"):
        r = console.get(path, page=bad)
        assert r.status_code == 400, (path, bad, r.status_code)
        assert r.headers["content-type"].startswith("text/html") and "pages are numbered" in r.text, r.text[:2000]
        assert 'class="error"' in r.text and console.csrf in r.text  # the console's own error page, signed in
    for past in ("999", str(10 ** 12), "9" * 400):  # past the last page: the last page
        r = console.get(path, page=past)
        assert r.status_code == 200, (path, past, r.text[:2000])
        assert _link(r.text, "next") is None
    assert console.get(path, page="001").status_code == 200
    if path == "/console/users":
        last = console.get(path, q=f"{many.mark}_", page=str(10 ** 12)).text
        assert _showing(last).startswith(f"Showing {2 * PAGE + 1}–{MANY} of {MANY} users")
        assert _listed(last, many.mark) == many.names[2 * PAGE:]


def test_the_core_searches_page_in_sql(in_process: Any, many: Many, signer: Enrolled) -> None:
    from remotesign.core.identities import Viewer

    svc = in_process
    q = f"{many.mark}_"
    pages = [svc.users.search(None, all_users=True, text=q, offset=offset, limit=PAGE) for offset in (0, 100, 200)]
    assert [total for _rows, total in pages] == [MANY] * 3
    assert [u.username for rows, _total in pages for u in rows] == many.names
    assert svc.users.search(None, all_users=True, text=q, offset=MANY, limit=PAGE) == ([], MANY)
    assert svc.users.search(None, all_users=True, text=q.upper(), limit=0) == ([], MANY)
    assert svc.users.search(None, all_users=True, text=f"{many.mark} 100%", limit=0)[1] == MANY
    demo_tenant = svc.users.find(many.decoy).tenant_id
    assert svc.users.search(demo_tenant, text=q, limit=0)[1] == MANY  # the relying party's own
    assert svc.users.search("another-relying-party", text=q, limit=0)[1] == 0
    assert [u.id for u in svc.users.list(demo_tenant) if u.username.startswith(q)] == \
        [u.id for rows, _total in pages for u in rows]  # the old list, unchanged

    found, total = svc.identities.search(Viewer(None), text=signer.username)
    assert total >= 1 and signer.identity_id in {i.id for i in found}
    serial = format(x509.load_der_x509_certificate(base64.b64decode(signer.certificate_b64)).serial_number, "x")
    assert signer.identity_id in {i.id for i in svc.identities.search(Viewer(None), text=serial.upper())[0]}
    newest, total = svc.identities.search(Viewer(None), limit=2)
    assert len(newest) == min(2, total) and newest == sorted(newest, key=lambda i: i.created_at, reverse=True)
    assert svc.identities.search(Viewer(None), offset=total, limit=5) == ([], total)
    assert svc.devices.search(text=f"no such device {secrets.token_hex(4)}") == ([], 0)
    everything, total = svc.ca.search_page(limit=0)
    assert everything == [] and total >= 4 and len(svc.ca.search_page(offset=total - 1)[0]) == 1


# -- the pages themselves ----------------------------------------------------------------------------

def test_every_page_works_without_javascript(console: Console, service: Service) -> None:
    for path in PAGES:
        r = console.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        page = forms_of(r.text)
        assert page.scripts == 0, path
        posts = [f for f in page.forms if f["method"] == "post"]
        assert posts, path  # at least sign-out
        for form in posts:
            assert str(form["action"]).startswith("/console/"), form
            assert form["inputs"].get("csrf") == console.csrf, (path, form)  # type: ignore[union-attr]
        assert 'href="/console/console.css"' in r.text
    css = console.get("/console/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    login_page = httpx.get(service.url + "/console/login")
    assert login_page.status_code == 200 and forms_of(login_page.text).scripts == 0
    missing = console.get("/console/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "/console" not in json.dumps(httpx.get(service.url + "/openapi.json").json()["paths"])
    health = console.get("/console/health").text
    assert "database" in health and "blobs" in health and "&#34;status&#34;: &#34;ok&#34;" in health
    assert service.proc is not None
    assert re.search(rf"<td>{service.proc.pid}</td><td>\d+ s ago</td>\s*<td><span class=\"badge ok\">alive", health), \
        health  # this serving process's heartbeat
