"""Which instance the CLI acts on (remotesign/cli/home.py) and its manners towards a new user:
nothing is created by commands other than init and serve, --version, a pipe closed early is no
error, the PKI's names are chosen at init, no identifier or PIN is made up. The commands run as
subprocesses in scratch directories with REMOTESIGN_HOME unset and a scratch $HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from remotesign.cli.home import CONFIG_NAME, locate_home
from tests import cli_forkserver

CA = ("--ca-name", "Example Trust", "--organization", "Example Ltd", "--country", "ee")


def run(cwd: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None,
        stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """``remotesign ARGS`` in ``cwd``, with no REMOTESIGN_* setting unless ``env`` gives one and
    $HOME next to ``cwd`` (so no real ~/.config/remotesign is read)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REMOTESIGN_") and k != "XDG_CONFIG_HOME"}
    base |= {"HOME": str(cwd.parent / "userhome"), "PYTHONWARNINGS": "ignore"}
    if stdout != subprocess.PIPE:  # a real pipe to the test (e.g. one it closes early)
        return subprocess.run([sys.executable, "-m", "remotesign", *args], cwd=cwd, env={**base, **(env or {})},
                              input=input, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
    proc = cli_forkserver.run(args, cwd=cwd, env={**base, **(env or {})}, input=input.encode() if input else None)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def ok(cwd: Path, *args: str, **kw: object) -> str:
    proc = run(cwd, *args, **kw)  # type: ignore[arg-type]
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory where ``remotesign init`` (REMOTESIGN_HOME unset) made ./var, with the PKI named."""
    site = tmp_path_factory.mktemp("site") / "site"
    site.mkdir()
    out = ok(site, "init", *CA)
    assert f"home:         {site / 'var'}" in out and "export REMOTESIGN_HOME=" in out
    yield site


# -- finding the instance ---------------------------------------------------------------------------
def test_lookup_order(tmp_path: Path) -> None:
    """$REMOTESIGN_HOME, then the nearest remotesign.toml, then the user's config file, then ./var."""
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    (project / CONFIG_NAME).write_text('home = "outer"\n')
    (project / "a" / CONFIG_NAME).write_text('home = "../inner"\n')
    user = tmp_path / "xdg" / "remotesign" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('home = "/srv/remotesign"\n')
    env = {"HOME": str(tmp_path / "h"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert locate_home({**env, "REMOTESIGN_HOME": str(tmp_path / "x")}, deep).home == tmp_path / "x"
    nearest = locate_home(env, deep)
    assert nearest.home == project / "inner" and nearest.origin == str(project / "a" / CONFIG_NAME)
    assert locate_home(env, project).home == project / "outer"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert locate_home(env, elsewhere).home == Path("/srv/remotesign")
    user.unlink()
    fallback = locate_home(env, elsewhere)
    assert fallback.home == elsewhere / "var" and fallback.origin is None
    assert fallback.looked == ("$REMOTESIGN_HOME unset", f"{CONFIG_NAME} in {elsewhere} or its parents: none",
                               f"{user}: none")
    assert locate_home({"HOME": str(tmp_path / "h")}, elsewhere).looked[-1] == \
        f"{tmp_path / 'h' / '.config' / 'remotesign' / 'config.toml'}: none"


def test_the_pki_marker_is_the_last_setting_init_writes() -> None:
    from remotesign.instance import PKI_MARKER
    from remotesign.trust.ca import CertificateAuthority

    assert PKI_MARKER == CertificateAuthority.OCSP


@pytest.mark.slow
def test_commands_without_an_instance_fail_and_create_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.csr").write_text("not a CSR\n")
    (tmp_path / "userhome").mkdir()
    # one command of each way in (a list, the PKI, the key store, the audit chain, a write)
    for args in (("users", "list"), ("pki", "issue", "--csr", "x.csr", "--profile", "person-auth"),
                 ("identities", "create", "bob", "--no-pin"), ("audit", "verify"), ("users", "add", "bob", "--name", "Bob")):
        proc = run(empty, *args)
        assert proc.returncode == 1 and proc.stdout == "", (args, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("error: no remotesign instance found (looked at $REMOTESIGN_HOME unset; "
                                      f"{CONFIG_NAME} in {empty} or its parents: none; "), proc.stderr
        assert f"{tmp_path / 'userhome' / '.config' / 'remotesign' / 'config.toml'}: none" in proc.stderr
        assert f"{empty / 'var'}: absent): run `remotesign init` or set REMOTESIGN_HOME" in proc.stderr
    assert tree(empty) == ["x.csr"] and tree(tmp_path / "userhome") == []

    # an empty ./var is no instance either, and stays empty
    (empty / "var").mkdir()
    proc = run(empty, "users", "list")
    assert proc.returncode == 1 and f"{empty / 'var'}: no database" in proc.stderr
    assert tree(empty) == ["var", "x.csr"]

    # validate works without one, but says what it lacks
    proc = run(empty, "validate", "x.csr")
    assert proc.returncode == 2 and "validating without an instance's trust anchors" in proc.stderr
    assert "--trust CERT" in proc.stderr
    assert "trust anchors" not in run(empty, "validate", "--standalone", "x.csr").stderr

    # REMOTESIGN_HOME names a place without an instance: that place alone is named, and not created
    proc = run(empty, "users", "list", env={"REMOTESIGN_HOME": str(tmp_path / "nowhere")})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"(looked at $REMOTESIGN_HOME={tmp_path / 'nowhere'}: absent): run `remotesign init` to create one " \
           "there" in proc.stderr
    assert not (tmp_path / "nowhere").exists() and tree(empty) == ["var", "x.csr"]


@pytest.mark.slow
def test_remotesign_home_config_files_and_dot_var_are_honoured(site: Path, tmp_path: Path) -> None:
    instance = site / "var"
    elsewhere = tmp_path / "elsewhere"
    deep = tmp_path / "project" / "src" / "deep"
    deep.mkdir(parents=True)
    elsewhere.mkdir()

    assert ok(site, "users", "list").split()[:6] == ["ID", "USERNAME", "KIND", "STATE", "OWNER", "NAME"]  # ./var
    assert "demo relying party" in ok(elsewhere, "client", "list", env={"REMOTESIGN_HOME": str(instance)})
    # the nearest remotesign.toml, from a subdirectory; a relative home is relative to the file
    (tmp_path / "project" / CONFIG_NAME).write_text(f'home = "{os.path.relpath(instance, tmp_path / "project")}"\n')
    assert "demo relying party" in ok(deep, "client", "list")
    # the user's config file
    user = tmp_path / "userhome" / ".config" / "remotesign" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(f'home = "{instance}"\n')
    assert "demo relying party" in ok(elsewhere, "client", "list")
    user.unlink()
    # a config file naming no instance, or a broken one: the file is named
    (tmp_path / "project" / CONFIG_NAME).write_text(f'home = "{tmp_path / "gone"}"\n')
    proc = run(deep, "client", "list")
    assert proc.returncode == 1 and f"{tmp_path / 'project' / CONFIG_NAME} -> {tmp_path / 'gone'}: absent" \
        in proc.stderr and f"change home in {tmp_path / 'project' / CONFIG_NAME}" in proc.stderr
    (tmp_path / "project" / CONFIG_NAME).write_text('hom = "typo"\n')
    proc = run(deep, "client", "list")
    assert proc.returncode == 1 and "must hold one setting" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "gone").exists() and not (deep / "var").exists()


# -- manners ----------------------------------------------------------------------------------------
def test_version(tmp_path: Path) -> None:
    out = ok(tmp_path, "--version")
    assert out.strip() == f"remotesign {version('remotesign')}"


@pytest.mark.slow
@pytest.mark.parametrize("args", [("policy", "template"), ("pki", "list"), ("users", "list")])
def test_a_pipe_closed_early_is_no_error(site: Path, args: tuple[str, ...]) -> None:
    """`remotesign ... | head`: the reader is gone before the command writes; no traceback, no
    'Exception ignored', the status of a process ended by SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = run(site, *args, stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr and "Exception" not in proc.stderr


@pytest.mark.slow
def test_list_commands_print_a_header(site: Path) -> None:
    lines = ok(site, "pki", "list").splitlines()
    assert lines[0].split() == ["ID", "SERIAL", "PROFILE", "STATUS", "OWNER", "NOT_AFTER", "SUBJECT"]
    assert len(lines) == 5  # root, issuing, TSA, OCSP
    for args, first in ((("client", "list"), "CLIENT_ID"), (("identities", "list"), "ID"),
                        (("tsa-credential", "list"), "CODE"), (("agreements", "list"), "CLIENT_ID")):
        assert ok(site, *args).split()[0] == first, args


# -- what init names, and what is not made up ------------------------------------------------------
@pytest.mark.slow
def test_init_names_the_pki_once(site: Path) -> None:
    subjects = {c["profile"]: c["subject"] for c in json.loads(ok(site, "pki", "list", "--json"))}
    assert subjects == {"root-ca": "CN=Example Trust Root CA,O=Example Ltd,C=EE",
                        "issuing-ca": "CN=Example Trust Issuing CA,O=Example Ltd,C=EE",
                        "tsa": "CN=Example Trust Time-Stamping Unit,O=Example Ltd,C=EE",
                        "ocsp": "CN=Example Trust OCSP Responder,O=Example Ltd,C=EE"}
    assert "already initialised (CN=Example Trust Root CA, O=Example Ltd, C=EE)" in ok(site, "init")
    assert "already initialised" in ok(site, "init", *CA)   # the same names again: fine
    proc = run(site, "init", "--country", "LV")
    assert proc.returncode == 2 and "the PKI already exists" in proc.stderr and "cannot change" in proc.stderr
    proc = run(site, "init", "--country", "Latvia")
    assert proc.returncode == 2 and "two-letter" in proc.stderr


@pytest.mark.slow
def test_users_certificates_carry_the_instance_country_and_no_invented_identifier(site: Path,
                                                                                  tmp_path: Path) -> None:
    proc = run(site, "users", "add", "anna", "--name", "Anna Bērziņa")
    assert proc.returncode == 0 and "no --serial-number" in proc.stderr
    proc = run(site, "identities", "create", "anna", "--no-pin")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "has no serial number, which a qualified-person certificate needs (SERIALNUMBER" in proc.stderr
    assert "anna" not in ok(site, "identities", "list")                              # nothing half-made

    # no PIN source and no terminal: refused before anything is made; --no-pin: made, with a warning
    proc = run(site, "identities", "create", "anna", "--profile", "person-auth", input="")
    assert proc.returncode == 2 and "--no-pin" in proc.stderr
    pem_file = tmp_path / "anna.pem"
    proc = run(site, "identities", "create", "anna", "--profile", "person-auth", "--no-pin", "--out", str(pem_file))
    assert proc.returncode == 0, proc.stderr
    assert "warning: sign identity" in proc.stderr and "no signing PIN" in proc.stderr
    summary = dict(line.split(":", 1) for line in proc.stdout.splitlines())
    assert summary["subject"].strip() == "CN=Anna Bērziņa,C=EE" and summary["PIN"].strip() == "none"
    assert f"written to {pem_file}" in summary["certificate"] and len(proc.stdout.splitlines()) < 15
    cert = x509.load_pem_x509_certificate(pem_file.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "EE"
    assert not cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    assert format(cert.serial_number, "x") == summary["serial"].strip()

    # with a serial number: the qualified certificate, the PIN from stdin, the PEM on stdout
    ok(site, "users", "add", "bob", "--name", "Bob", "--serial-number", "PNOEE-38001010000")
    proc = run(site, "identities", "create", "bob", "--pin-stdin", "--pem", "--algorithm", "ec-p256", input="2468\n")
    assert proc.returncode == 0 and "warning" not in proc.stderr and "PIN:           set" in proc.stderr
    cert = x509.load_pem_x509_certificate(proc.stdout.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "PNOEE-38001010000"
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "EE"
    assert "SERIALNUMBER=PNOEE-38001010000" in proc.stderr


@pytest.mark.slow
def test_an_instance_without_a_country(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "userhome").mkdir()
    ok(tmp_path, "init", "--country", "none", env={"REMOTESIGN_HOME": str(home)})
    env = {"REMOTESIGN_HOME": str(home)}
    root = {c["profile"]: c["subject"] for c in json.loads(ok(tmp_path, "pki", "list", "--json", env=env))}
    assert root["root-ca"] == "CN=remotesign Root CA,O=remotesign"
    ok(tmp_path, "users", "add", "carl", "--name", "Carl", "--serial-number", "PNOXX-1", env=env)
    proc = run(tmp_path, "identities", "create", "carl", "--no-pin", env=env)
    assert proc.returncode == 1 and "needs a country (C)" in proc.stderr
    out = ok(tmp_path, "identities", "create", "carl", "--no-pin", "--profile", "person-auth", env=env)
    assert "CN=Carl" in out and "C=" not in out.split("subject:")[1].splitlines()[0]
