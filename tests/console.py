"""Test-side driver of the operator console (/console): operator accounts made with the CLI, and a
browser without scripts (an httpx client keeping cookies) that signs in and submits the forms as
they are written, form token included.

Form contract (remotesign/api/console/): GET /console/login sets the cookie ``rs_console_login``
and a hidden ``csrf`` with the same value; POST /console/login with ``username``, ``password``,
``csrf``, ``next`` -> 303 to ``next`` with the session cookie ``rs_console``. Every page after
sign-in has hidden ``csrf`` fields in its POST forms; the session's value is the same on every page.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from html.parser import HTMLParser

import httpx

from tests.harness import Service, cli

PAGES = ("/console/", "/console/clients", "/console/users", "/console/identities", "/console/devices",
         "/console/certificates", "/console/audit", "/console/health")
PASSWORD_LENGTH = 20


def operator_cli(service: Service, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """``remotesign operator ARGS`` (tests/test_console.py also runs the module's own entry point,
    ``python -m remotesign.cli.operators``, and checks that it is the same parser)."""
    proc = cli(service.home, "operator", *args, env=service.env, input=input, check=False)
    assert proc.returncode == 0, f"operator {' '.join(args)}: {proc.stdout.decode()}\n{proc.stderr.decode()}"
    return proc


def make_operator(service: Service, name: str | None = None) -> tuple[str, str]:
    """A new operator account (``remotesign operator create NAME --password-stdin``)."""
    name = name or f"op-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(PASSWORD_LENGTH)
    out = operator_cli(service, "create", name, "--password-stdin", input=f"{password}\n".encode())
    assert f"operator {name} created" in out.stdout.decode(), out.stdout
    return name, password


def hidden_value(html: str, name: str) -> str:
    m = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert m, f"no field {name} in:\n{html[:3000]}"
    return m.group(1)


class Forms(HTMLParser):
    """The forms of a page: method, action and their input names."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "form":
            self.forms.append({"method": (a.get("method") or "get").lower(), "action": a.get("action"), "inputs": {}})
        elif tag in ("input", "select", "button") and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value")  # type: ignore[index]
        for name, value in attrs:  # no inline handlers either
            assert not name.startswith("on"), f"inline script {name}={value!r} on <{tag}>"


def forms_of(html: str) -> Forms:
    parser = Forms()
    parser.feed(html)
    return parser


class Console:
    """A browser at the console: keeps its cookies, follows no redirect by itself."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.http = httpx.Client(base_url=service.url, timeout=60, follow_redirects=False)
        self.csrf = ""

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def login(self, name: str, password: str, next_path: str = "/console/") -> httpx.Response:
        page = self.http.get("/console/login", params={"next": next_path})
        assert page.status_code == 200, page.text
        r = self.http.post("/console/login", data={"csrf": hidden_value(page.text, "csrf"), "username": name,
                                                   "password": password, "next": next_path})
        if r.status_code == 303 and r.headers["location"] == next_path:
            self.csrf = hidden_value(self.http.get("/console/").text, "csrf")
        return r

    def signed_in(self, name: str, password: str) -> Console:
        r = self.login(name, password)
        assert r.status_code == 303, r.text
        return self

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
             headers: dict[str, str] | None = None) -> httpx.Response:
        body = {**({"csrf": self.csrf} if csrf else {}), **(data or {})}
        return self.http.post(path, data=body, headers=headers)
