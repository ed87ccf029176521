"""``remotesign sign`` against the running test instance: a PDF signed with a PKCS#12 at B and at
LT (poppler's pdfsig and the service's own validation over HTTP), with a server-held identity (a
wrong PIN refused with nothing written, counted and audited; the right PIN signs, audited with its
SCAL2 authorization), an ASiC-E checked by xmlsec1, CAdES detached and attached checked by
``openssl cms -verify``, and the usage errors."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from remotesign_client import Remotesign, ValidationReport
from tests.cli_tools import fails, name, ok
from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.verifiers import pdfsig, xmlsec_verify

pytestmark = pytest.mark.slow
PASSWORD = "p12 secret"


@pytest.fixture(scope="module")
def rs(service: Service, demo: dict[str, str]) -> Remotesign:
    client = Remotesign(service.url, demo["client_id"], demo["client_secret"], timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="module")
def p12(service: Service, ca_pem: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PKCS#12 with a P-256 key and a qualified-person certificate of the instance's CA (and its chain)."""
    tmp = tmp_path_factory.mktemp("p12")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Konsoles Parakstitaja"),
                                    x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOLV-050505-55555"),
                                    x509.NameAttribute(NameOID.COUNTRY_NAME, "LV")]))
           .sign(key, hashes.SHA256()))
    (tmp / "req.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    cert = x509.load_pem_x509_certificate(service.cli("pki", "issue", "--csr", str(tmp / "req.csr"),
                                                      "--profile", "qualified-person").stdout)
    chain = x509.load_pem_x509_certificates(ca_pem)
    path = tmp / "signer.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"signer", key, cert, chain,
                                                           serialization.BestAvailableEncryption(PASSWORD.encode())))
    return path


@pytest.fixture(scope="module")
def identity(service: Service) -> str:
    """A service-wide user's server-held identity with the PIN 2468."""
    username = name()
    ok(service, "users", "add", username, "--name", "Servera Parakstitajs", "--serial-number", "PNOLV-060606-66666")
    created = json.loads(ok(service, "identities", "create", username, "--algorithm", "ec-p256", "--pin-stdin",
                            "--json", input="2468\n"))
    return str(created["id"])


def validated(rs: Remotesign, content: bytes, filename: str, **kwargs: object) -> ValidationReport:
    report = rs.validation.validate(content, filename, **kwargs)  # type: ignore[arg-type]
    assert report.signatures_count == 1, report
    assert report.all_passed, [(s.indication, s.sub_indication, s.errors) for s in report.signatures]
    return report


def audit_rows(service: Service, after: int) -> list[tuple[int, str, str, dict[str, object]]]:
    with sqlite3.connect(service.home / "remotesign.db") as db:
        rows = db.execute("SELECT seq, event, subject, details FROM audit_events WHERE seq > ? ORDER BY seq",
                          (after,)).fetchall()
    return [(seq, event, subject, json.loads(details or "{}")) for seq, event, subject, details in rows]


def last_seq(service: Service) -> int:
    with sqlite3.connect(service.home / "remotesign.db") as db:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_events").fetchone()[0])


@pytest.mark.parametrize("level", ["B", "LT"])
def test_pdf_with_a_pkcs12(service: Service, rs: Remotesign, p12: Path, tmp_path: Path, level: str) -> None:
    source = tmp_path / "līgums.pdf"
    source.write_bytes(pdf_bytes(pages=2))
    args = ["sign", str(source), "--p12", str(p12), "--password-stdin", "--level", level]
    out = ok(service, *args, input=PASSWORD + "\n")
    signed = tmp_path / "līgums-signed.pdf"  # the default name
    assert f"-> {signed}" in out and f"PAdES B-{level}" in out
    data = signed.read_bytes()
    assert data.startswith(source.read_bytes())  # an incremental update of the original
    assert "Signature is Valid." in pdfsig(signed)
    [sig] = validated(rs, data, signed.name).signatures
    assert sig.signature_format == f"PAdES_BASELINE_{level}" and sig.signed_by == "Konsoles Parakstitaja"
    # the output is not replaced without --force
    assert "exists" in fails(service, *args, input=PASSWORD + "\n")
    assert signed.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_server_identity_wrong_pin_then_right_pin(service: Service, rs: Remotesign, identity: str,
                                                  tmp_path: Path) -> None:
    source = tmp_path / "order.pdf"
    source.write_bytes(pdf_bytes())
    out = tmp_path / "order-by-identity.pdf"
    args = ["sign", str(source), "--identity", identity, "--pin-stdin", "--level", "T", "-o", str(out)]
    before = last_seq(service)
    err = fails(service, *args, input="1111\n")
    assert "wrong PIN" in err and "2 tries left" in err and "nothing signed" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["order.pdf"]
    events = audit_rows(service, before)
    assert [(e, s) for _, e, s, _ in events] == [("identity.pin_refused", identity)]

    before = last_seq(service)
    printed = ok(service, *args, input="2468\n")
    assert "PAdES B-T" in printed and "CN=Servera Parakstitajs" in printed
    assert "Signature is Valid." in pdfsig(out)
    [sig] = validated(rs, out.read_bytes(), out.name).signatures
    assert sig.signature_format == "PAdES_BASELINE_T" and sig.signed_by == "Servera Parakstitajs"
    events = audit_rows(service, before)
    names = [e for _, e, _, _ in events]
    assert names.index("scal2.authorized") < names.index("identity_key.used") < names.index("document.signed")
    [(seq, _, subject, scal2)] = [e for e in events if e[1] == "scal2.authorized"]
    assert subject == identity and scal2["grant"] == "pin:cli" and scal2["digests"] == 1
    [used] = [d for _, e, _, d in events if e == "identity_key.used"]
    assert str(seq) in json.dumps(used)  # the key store names the authorization it checked
    [signed] = [d for _, e, _, d in events if e == "document.signed"]
    assert signed["sign_identity_id"] == identity and signed["level"] == "T" and signed["via"] == "cli"
    assert signed["files"] == ["order.pdf"]

    # a wrong PIN still counts after a right one reset the tries; the identity's lock is the service's
    assert "2 tries left" in fails(service, *args, "--force", input="0000\n")


def test_asice_of_two_files_verified_by_xmlsec1(service: Service, rs: Remotesign, p12: Path, ca_pem: bytes,
                                                identity: str, tmp_path: Path) -> None:
    files = {"invoice.xml": b"<invoice><total>42</total></invoice>", "notes.txt": "piezīmes\n".encode()}
    for n, content in files.items():
        (tmp_path / n).write_bytes(content)
    out = tmp_path / "bundle.asice"
    ok(service, "sign", "--format", "asice", str(tmp_path / "invoice.xml"), str(tmp_path / "notes.txt"),
       "--p12", str(p12), "--password-stdin", "--level", "LT", "-o", str(out), input=PASSWORD + "\n")
    container = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    assert container.namelist()[0] == "mimetype"
    assert container.read("mimetype") == b"application/vnd.etsi.asic-e+zip"
    assert {n: container.read(n) for n in files} == files
    verified, output = xmlsec_verify(tmp_path, container.read("META-INF/signatures0.xml"), files, ca_pem)
    assert verified, output
    report = validated(rs, out.read_bytes(), out.name)
    assert report.signatures[0].signature_format == "XAdES_BASELINE_LT"
    assert sorted(report.included_files) == sorted(files)
    # the container signed again, with a server identity: a parallel signature, the first one kept
    ok(service, "sign", str(out), "--identity", identity, "--pin-stdin", "--level", "T", input="2468\n")
    again = zipfile.ZipFile(tmp_path / "bundle-signed.asice")
    assert again.read("META-INF/signatures0.xml") == container.read("META-INF/signatures0.xml")
    report = rs.validation.validate((tmp_path / "bundle-signed.asice").read_bytes(), "bundle-signed.asice")
    assert report.signatures_count == 2 and report.all_passed, report
    assert sorted(s.signature_format for s in report.signatures) == ["XAdES_BASELINE_LT", "XAdES_BASELINE_T"]
    assert sorted(s.signed_by for s in report.signatures) == ["Konsoles Parakstitaja", "Servera Parakstitajs"]
    # one file, no --format: not a PDF, so an ASiC-E beside it
    ok(service, "sign", str(tmp_path / "notes.txt"), "--p12", str(p12), "--password-stdin", input=PASSWORD + "\n")
    assert zipfile.is_zipfile(tmp_path / "notes-signed.asice")


def test_cades_detached_and_attached_verified_by_openssl(service: Service, rs: Remotesign, p12: Path,
                                                         ca_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 40)
    ok(service, "sign", "--format", "cades", str(data), "--p12", str(p12), "--password-stdin", "--level", "T",
       input=PASSWORD + "\n")
    detached = tmp_path / "data-signed.p7s"

    def openssl(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-CAfile",
                               str(ca_dir / "root.pem"), "-purpose", "any", *extra], capture_output=True, text=True,
                              timeout=120)

    r = openssl("-in", str(detached), "-content", str(data), "-out", str(tmp_path / "out1"))
    assert r.returncode == 0 and "Verification successful" in r.stderr, r.stderr
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(data.read_bytes()[:-1] + b"\x00")
    assert openssl("-in", str(detached), "-content", str(tampered), "-out", "/dev/null").returncode != 0
    report = validated(rs, detached.read_bytes(), detached.name, detached=[(data.name, data.read_bytes())])
    assert report.signatures[0].signature_format == "CAdES_BASELINE_T"

    attached = tmp_path / "attached.p7m"
    ok(service, "sign", "--format", "cades", "--attached", str(data), "--p12", str(p12), "--password-stdin",
       "-o", str(attached), input=PASSWORD + "\n")
    r = openssl("-in", str(attached), "-out", str(tmp_path / "content.out"))
    assert r.returncode == 0 and "Verification successful" in r.stderr, r.stderr
    assert (tmp_path / "content.out").read_bytes() == data.read_bytes()
    assert validated(rs, attached.read_bytes(), attached.name).signatures[0].signature_format == "CAdES_BASELINE_B"


def test_usage_and_refusals(service: Service, p12: Path, identity: str, tmp_path: Path) -> None:
    source = tmp_path / "a.pdf"
    source.write_bytes(pdf_bytes())
    assert "--identity ID" in fails(service, "sign", str(source), status=2)
    assert "--identity ID" in fails(service, "sign", str(source), "--identity", identity, "--p12", str(p12),
                                    "--pin-stdin", status=2)
    assert "needs its PIN" in fails(service, "sign", str(source), "--identity", identity, status=2)
    assert "not a PIN" in fails(service, "sign", str(source), "--p12", str(p12), "--pin-stdin", status=2)
    assert "for --format cades" in fails(service, "sign", str(source), "--attached", "--p12", str(p12), status=2)
    assert "B, T, LT, LTA" in fails(service, "sign", str(source), "--level", "X", "--p12", str(p12), status=2)
    assert "wrong password" in fails(service, "sign", str(source), "--p12", str(p12), "--password-stdin",
                                     input="not it\n")
    text = tmp_path / "a.txt"
    text.write_text("plain")
    assert "not a PDF" in fails(service, "sign", "--format", "pades", str(text), "--p12", str(p12),
                                "--password-stdin", input=PASSWORD + "\n")
    assert "no such file" in fails(service, "sign", str(tmp_path / "missing.pdf"), "--identity", identity,
                                   "--pin-stdin", input="2468\n")
    assert "no sign identity" in fails(service, "sign", str(source), "--identity", "no-such-identity",
                                       "--pin-stdin", input="2468\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.txt"]
