"""Operator CLI for end users, run as subprocesses against the running service's home (SQLite is
shared); sign identities, devices and redirect URIs are tests/test_cli_identities.py. Lockouts
are produced and lifted through the real services."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.cli_tools import fails, in_process, name, ok
from tests.harness import Service, cli

pytestmark = pytest.mark.slow



# -- users ------------------------------------------------------------------------------------------
def test_user_lifecycle(service: Service) -> None:
    username = name()
    user = json.loads(ok(service, "users", "add", username, "--name", "Anna Bērziņa", "--email", "a@example.lv",
                         "--phone", "+37120000000", "--serial-number", "PNOLV-010101-12345", "--password-stdin",
                         input="correct horse battery\n"))
    assert user["username"] == username and user["display_name"] == "Anna Bērziņa"
    assert user["kind"] == "natural" and user["serial_number"] == "PNOLV-010101-12345"
    assert user["email"] == "a@example.lv" and user["phone"] == "+37120000000"
    assert user["has_password"] and user["enabled"] and user["service_wide"] and user["client_id"] is None

    listed = json.loads(ok(service, "users", "list", "--json"))
    assert user["id"] in {u["id"] for u in listed}
    table = ok(service, "users", "list")
    assert any(username in line and "service-wide" in line for line in table.splitlines())
    assert user["id"] in {u["id"] for u in json.loads(ok(service, "users", "list", "--service-wide", "--json"))}

    for ref in (username, user["id"]):
        shown = json.loads(ok(service, "users", "show", ref))
        assert shown["id"] == user["id"] and shown["identities"] == [] and shown["devices"] == []

    assert "disabled" in ok(service, "users", "disable", username)
    assert json.loads(ok(service, "users", "show", username))["enabled"] is False
    assert "enabled" in ok(service, "users", "enable", user["id"])
    assert json.loads(ok(service, "users", "show", username))["enabled"] is True

    # the password from stdin works; five wrong ones lock the account; set-password unlocks it
    from remotesign.core.users import LoginFailed

    with in_process(service) as svc:
        assert svc.users.authenticate(username, "correct horse battery", None).id == user["id"]
        for _ in range(svc.users.max_attempts):
            with pytest.raises(LoginFailed):
                svc.users.authenticate(username, "wrong password", None)
        with pytest.raises(LoginFailed) as refused:
            svc.users.authenticate(username, "correct horse battery", None)
        assert refused.value.code == "login_failed" and refused.value.reason == "locked"
    assert json.loads(ok(service, "users", "show", username))["locked_until"] is not None

    ok(service, "users", "set-password", username, "--password-stdin", input="a new pass phrase\n")
    assert json.loads(ok(service, "users", "show", username))["locked_until"] is None
    with in_process(service) as svc:
        assert svc.users.authenticate(username, "a new pass phrase", None).id == user["id"]
        with pytest.raises(LoginFailed):
            svc.users.authenticate(username, "correct horse battery", None)

    assert "deleted" in ok(service, "users", "delete", username)
    fails(service, "users", "show", username)


def test_user_of_a_relying_party(service: Service) -> None:
    creds = service.new_client("cli users client")
    username = name()
    user = json.loads(ok(service, "users", "add", username, "--name", "SIA Piemērs", "--kind", "legal",
                         "--client", creds["client_id"], "--serial-number", "NTRLV-40003000000"))
    assert user["kind"] == "legal" and not user["service_wide"] and user["client_id"] == creds["client_id"]
    assert not user["has_password"]
    own = json.loads(ok(service, "users", "list", "--client", creds["client_id"], "--json"))
    assert [u["username"] for u in own] == [username]
    assert username not in {u["username"] for u in json.loads(ok(service, "users", "list", "--service-wide",
                                                                       "--json"))}
    fails(service, "users", "list", "--client", "no-such-client")
    fails(service, "users", "add", name(), "--name", "X", "--client", "no-such-client")

    # a legal person's identity is an e-seal one
    identity = json.loads(ok(service, "identities", "create", username, "--algorithm", "ec-p256", "--no-pin",
                             "--json"))
    cert = x509.load_der_x509_certificate(base64.b64decode(identity["details"]["certificate"]))
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "SIA Piemērs"
    assert "qsealc" in identity["labels"]
    ok(service, "users", "delete", username)
    fails(service, "identities", "show", identity["id"])


def test_user_errors(service: Service) -> None:
    username = name()
    ok(service, "users", "add", username, "--name", "First")
    err = fails(service, "users", "add", username, "--name", "Second")
    assert "taken" in err
    err = fails(service, "users", "add", name(), "--name", "Weak", "--password-stdin", input="short\n")
    assert "password" in err
    fails(service, "users", "add", "bad name!", "--name", "X")
    fails(service, "users", "add", name(), "--name", "   ")
    for args in (("show",), ("disable",), ("enable",), ("delete",)):
        assert "no user" in fails(service, "users", *args, "nobody-" + name())
    fails(service, "users", "set-password", "nobody-" + name(), "--password-stdin", input="long enough pw\n")
    fails(service, "users", "set-password", username, "--password-stdin", input="short\n")
    # usage errors: no --name, no --password-stdin for set-password, a bad --kind
    fails(service, "users", "add", name(), status=2)
    fails(service, "users", "set-password", username, status=2)
    fails(service, "users", "add", name(), "--name", "X", "--kind", "robot", status=2)
    ok(service, "users", "delete", username)


def test_fresh_home_before_init(tmp_path: Path) -> None:
    """Commands on an uninitialised home fail cleanly and create nothing; after init they work, and a
    user without a serial number gets no made-up one (the qualified profile is refused)."""
    home = tmp_path / "home"
    proc = cli(home, "users", "add", "early", "--name", "Early Bird", check=False)
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert proc.stderr.startswith(b"error: no remotesign instance found") and b"remotesign init" in proc.stderr
    assert not home.exists()
    cli(home, "init")
    cli(home, "users", "add", "early", "--name", "Early Bird")
    proc = cli(home, "identities", "create", "early", "--no-pin", check=False)
    assert proc.returncode == 1 and b"no serial number" in proc.stderr and b"Traceback" not in proc.stderr
    out = json.loads(cli(home, "identities", "create", "early", "--algorithm", "ec-p256", "--profile", "person-auth",
                         "--no-pin", "--json").stdout)
    subject = x509.load_der_x509_certificate(base64.b64decode(out["details"]["certificate"])).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Early Bird"
    assert not subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "LV"  # the default PKI's country
