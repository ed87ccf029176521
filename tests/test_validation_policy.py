"""Validation policies (remotesign.validation.policy): the shipped policies, clear errors for
malformed policy files, check levels changing outcomes, and the cryptographic suite with dates,
in-process and through the CLI."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.sign.fields import FieldMDPAction, FieldMDPSpec

from remotesign.validation.engine import validate_path
from remotesign.validation.model import Indication, SignatureResult, SubIndication
from remotesign.validation.policy import (BUILTIN, CHECKS, Level, PolicyError, ValidationPolicy, builtin_policy,
                                          parse_policy)
from remotesign.validation.reports import detailed_report
from tests import cli_forkserver, pdf_forge as forge
from tests.pades_pki import Pki, make_pki, sign_pdf

ROOT = Path(__file__).resolve().parent.parent


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# --- the shipped policies and the file format -----------------------------------------------------------
@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_policies_set_every_check(name: str) -> None:
    policy = builtin_policy(name)
    text = (ROOT / "remotesign" / "validation" / "policies" / f"{name}.toml").read_text()
    for check_id in CHECKS:
        assert f'"{check_id}"' in text, check_id          # each documented in the file itself
        assert policy.level(check_id) in Level
    assert policy.crypto.digests["sha256"] is None and policy.crypto.digests["md5"] == "never"


def test_default_is_stricter_than_dss_on_pdf_changes() -> None:
    default, dss = builtin_policy("default"), builtin_policy("dss")
    for check_id in ("pdf.disallowed_change", "pdf.locked_field", "pdf.certification_exceeded",
                     "pdf.visibility_change", "pdf.unlisted_data"):
        assert (default.level(check_id), dss.level(check_id)) == (Level.FAIL, Level.WARN)
    for check_id in ("pdf.byte_range", "pdf.page_tree"):
        assert default.level(check_id) is dss.level(check_id) is Level.FAIL


@pytest.mark.parametrize(("text", "line", "words"), [
    ('name = "x"\n[checks]\n"pdf.byte_range" = "MAYBE"\n', 3, "must be one of FAIL, WARN, INFORM, IGNORE"),
    ('name = "x"\n\n[checks]\n"pdf.typo" = "WARN"\n', 4, "unknown check 'pdf.typo'"),
    ('name = "x"\n[cryptography.digests]\nsha256 = "2030-02-30"\n', 3, "is not a date"),
    ('name = "x"\n[cryptography.rsa]\nbig = ""\n', 3, "key sizes in bits"),
    ('name = "x"\nlevel = 3\n', 2, "unknown setting 'level'"),
    ('name = "x\n[checks]\n', 1, "not valid TOML"),
    ('[checks\n"pdf.byte_range" = "FAIL"\n', 1, "not valid TOML"),
    ('name = "x"\n[cryptography]\nsha256 = ""\n', 3, "unknown cryptography table"),
])
def test_malformed_policies_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text.encode(), source="mine.toml")
    message = str(caught.value)
    assert words in message, message
    assert re.search(rf"\bline {line}\b", message), message
    assert message.startswith("mine.toml")


def test_non_text_and_oversized_policies_are_refused() -> None:
    with pytest.raises(PolicyError, match="line 2: not UTF-8"):
        parse_policy(b'name = "x"\n\xff\xfe\n')
    with pytest.raises(PolicyError, match="at most"):
        parse_policy(b"#" * (300 << 10))


def test_a_policy_gives_only_what_differs_from_the_default() -> None:
    policy = parse_policy(b'name = "lenient"\n[checks]\n"pdf.locked_field" = "warn"\n[cryptography.rsa]\n"1024" = ""\n')
    default = builtin_policy()
    assert policy.level("pdf.locked_field") is Level.WARN
    assert all(policy.level(c) is default.level(c) for c in CHECKS if c != "pdf.locked_field")
    assert policy.crypto.rsa == ((1024, None),) and policy.crypto.digests == default.crypto.digests


# --- levels change outcomes ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("policy-pki")) as made:
        yield made


@pytest.fixture(scope="module")
def locked_then_changed(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signature that locks field 'amount', and a later revision that changes it."""
    directory = tmp_path_factory.mktemp("locked")
    signed = run(sign_pdf(pki, pki.signer()[0], "B", directory / "signed.pdf", source=forge.contract_pdf(),
                          lock=FieldMDPSpec(FieldMDPAction.INCLUDE, ["amount"]))).read_bytes()
    n = forge.next_object_number(signed)
    field = forge.object_body(signed, forge.FIELD).replace(b"/V (100)", b"/V (1000000)")
    field = re.sub(rb"/AP << /N \d+ 0 R >>", b"/AP << /N %d 0 R >>" % n, field)
    path = directory / "changed.pdf"
    path.write_bytes(forge.incremental_update(signed, {forge.FIELD: field, n: forge.field_appearance(b"1000000")}))
    return path


def _validate(pki: Pki, path: Path, policy: ValidationPolicy | None = None) -> SignatureResult:
    options = pki.options(policy=policy) if policy is not None else pki.options()
    return run(validate_path(path, options, filename=path.name)).signatures[0]


def _with_level(check: str, level: str) -> ValidationPolicy:
    return parse_policy(f'name = "t"\n[checks]\n"{check}" = "{level}"\n'.encode())


def test_levels_decide_what_a_finding_does(pki: Pki, locked_then_changed: Path) -> None:
    failed = _validate(pki, locked_then_changed)
    assert (failed.indication, failed.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    message = next(e for e in failed.errors if "locked" in e)

    warned = _validate(pki, locked_then_changed, _with_level("pdf.locked_field", "WARN"))
    assert warned.passed and not warned.errors
    assert any("'amount'" in w and "locked" in w for w in warned.warnings), warned.warnings

    informed = _validate(pki, locked_then_changed, _with_level("pdf.locked_field", "INFORM"))
    assert informed.passed and not informed.warnings
    assert any("'amount'" in i for i in informed.infos)
    assert any("'amount'" in i for i in detailed_report(
        run(validate_path(locked_then_changed, pki.options(policy=_with_level("pdf.locked_field", "INFORM")),
                          filename="x.pdf")))["signatures"][0]["infos"])

    ignored = _validate(pki, locked_then_changed, _with_level("pdf.locked_field", "IGNORE"))
    assert ignored.passed and not ignored.warnings and not any("'amount'" in i for i in ignored.infos)
    assert message.startswith("The document was changed after signing")


def test_a_policy_can_refuse_every_change(pki: Pki, tmp_path: Path) -> None:
    """pdf.allowed_change at FAIL: even validation data added after signing fails the signature."""
    path = run(sign_pdf(pki, pki.signer()[0], "LT", tmp_path / "lt.pdf"))
    assert _validate(pki, path).passed
    strict = _validate(pki, path, _with_level("pdf.allowed_change", "FAIL"))
    assert (strict.indication, strict.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert any("validation data" in e for e in strict.errors)


# --- the cryptographic suite ----------------------------------------------------------------------------------
def test_rsa_1024_is_refused_after_its_date(pki: Pki, tmp_path: Path) -> None:
    signer = pki.signer(key=rsa.generate_private_key(65537, 1024))[0]
    path = run(sign_pdf(pki, signer, "B", tmp_path / "rsa1024.pdf"))
    refused = _validate(pki, path)
    assert refused.indication is Indication.INDETERMINATE
    assert refused.sub_indication is SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE, refused.errors
    assert any("1024 bits" in e and "2013-12-31" in e for e in refused.errors), refused.errors
    accepted = _validate(pki, path, parse_policy(b'name = "legacy"\n[cryptography.rsa]\n"1024" = ""\n'))
    assert accepted.passed, accepted.errors


def test_digest_end_dates_apply_at_the_proof_of_existence(pki: Pki, tmp_path: Path) -> None:
    """SHA-256 for signatures ending yesterday: a new B-level signature has no proof of existence
    before that date (CRYPTO_CONSTRAINTS_FAILURE_NO_POE); ending tomorrow, it passes. Certificates
    keep SHA-256 through the certificate table."""
    path = run(sign_pdf(pki, pki.signer()[0], "B", tmp_path / "b.pdf"))
    today = datetime.now(timezone.utc).date()

    def ending(day: object) -> ValidationPolicy:
        return parse_policy(f'name = "t"\n[cryptography.digests]\nsha256 = "{day}"\n'
                            f'[cryptography.certificates.digests]\nsha256 = ""\n'.encode())

    expired = _validate(pki, path, ending(today - timedelta(days=1)))
    assert expired.sub_indication is SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE, expired.errors
    assert _validate(pki, path, ending(today + timedelta(days=1))).passed
    never = _validate(pki, path, parse_policy(b'name = "t"\n[cryptography.digests]\nsha256 = "never"\n'
                                              b'[cryptography.certificates.digests]\nsha256 = ""\n'))
    assert never.sub_indication is SubIndication.CRYPTO_CONSTRAINTS_FAILURE, never.errors


# --- the command line --------------------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = cli_forkserver.run(args, cwd=cwd, env={"REMOTESIGN_HOME": str(cwd / "no-instance"), "PATH": "/usr/bin:/bin"})
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.mark.slow
def test_cli_policy_option(pki: Pki, locked_then_changed: Path, tmp_path: Path) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(pki.ca.root.pem().encode())
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[checks]\n"pdf.locked_field" = "SOMETIMES"\n')
    result = _cli("validate", "--standalone", "--trust", str(root), "--policy", str(bad), str(locked_then_changed),
                  cwd=tmp_path)
    assert result.returncode == 2 and "line 3" in result.stderr and "SOMETIMES" not in result.stdout, result
    strict = _cli("validate", "--standalone", "--trust", str(root), str(locked_then_changed), cwd=tmp_path)
    assert strict.returncode == 1 and "FORMAT_FAILURE" in strict.stdout and "'amount'" in strict.stdout, strict
    lenient = tmp_path / "lenient.toml"
    lenient.write_text('name = "lenient"\n[checks]\n"pdf.locked_field" = "WARN"\n')
    # no revocation data for the signer offline: judged on format and integrity, not trust
    warned = _cli("validate", "--standalone", "--trust", str(root), "--policy", str(lenient),
                  str(locked_then_changed), cwd=tmp_path)
    assert "FORMAT_FAILURE" not in warned.stdout and "warning:" in warned.stdout and "'amount'" in warned.stdout
    shown = _cli("policy", "show", "dss", cwd=tmp_path)
    assert shown.returncode == 0 and re.search(r"WARN\s+pdf\.locked_field", shown.stdout), shown
    assert _cli("policy", "show", str(bad), cwd=tmp_path).returncode == 2
    template = _cli("policy", "template", cwd=tmp_path)
    assert parse_policy(template.stdout.encode()).name == "remotesign-default"
