"""The built-in PKI over HTTP, checked with openssl and pyHanko rather than with our own code:
certificate profiles, caIssuers and CRL URLs, the OCSP responder and the RFC 3161 TSA."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Service

QC_STATEMENTS = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3")


def openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def pki_dir(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    bundle = http.get("/pki/ca.pem").text
    certs = x509.load_pem_x509_certificates(bundle.encode())
    assert len(certs) == 2
    (d / "ca.pem").write_text(bundle)
    (d / "issuing.pem").write_bytes(certs[0].public_bytes(Encoding.PEM))
    (d / "root.pem").write_bytes(certs[1].public_bytes(Encoding.PEM))
    (d / "tsa.pem").write_text(http.get("/pki/tsa.pem").text)
    return d


def issue(service: Service, d: Path, name: str, subj: str, profile: str, key: str = "ec") -> x509.Certificate:
    keyopt = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else ["-newkey", "rsa:2048"]
    r = openssl("req", "-new", *keyopt, "-nodes", "-keyout", f"{name}.key", "-subj", subj, "-out", f"{name}.csr",
                cwd=d)
    assert r.returncode == 0, r.stderr
    pem = service.cli("pki", "issue", "--csr", str(d / f"{name}.csr"), "--profile", profile).stdout
    (d / f"{name}.pem").write_bytes(pem)
    return x509.load_pem_x509_certificate(pem)


def test_ca_chain_and_profiles(service: Service, http: httpx.Client, pki_dir: Path) -> None:
    d = pki_dir
    r = openssl("verify", "-CAfile", "root.pem", "issuing.pem", cwd=d)
    assert r.returncode == 0, r.stderr
    person = issue(service, d, "person", "/CN=Alice Example/serialNumber=PNOLV-010101-12345/C=LV", "qualified-person")
    seal = issue(service, d, "seal", "/CN=Example Seal/O=Example SIA/organizationIdentifier=NTRLV-40003000000/C=LV",
                 "qualified-seal", key="rsa")
    auth = issue(service, d, "auth", "/CN=Alice Example/C=LV", "person-auth")
    r = openssl("verify", "-CAfile", "ca.pem", "person.pem", "seal.pem", "auth.pem", cwd=d)
    assert r.returncode == 0, r.stderr

    for cert in (person, seal):
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
        assert ku.critical and ku.value.content_commitment and not ku.value.digital_signature
        qc = cert.extensions.get_extension_for_oid(QC_STATEMENTS).value.value
        assert bytes.fromhex("0606 0400 8e46 0101".replace(" ", "")) in qc  # QcCompliance
        assert bytes.fromhex("0606 0400 8e46 0104".replace(" ", "")) in qc  # QcSSCD
    assert bytes.fromhex("0607 0400 8e46 0106 01".replace(" ", "")) in \
        person.extensions.get_extension_for_oid(QC_STATEMENTS).value.value  # QcType esign
    assert bytes.fromhex("0607 0400 8e46 0106 02".replace(" ", "")) in \
        seal.extensions.get_extension_for_oid(QC_STATEMENTS).value.value  # QcType eseal
    ku = auth.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    assert ku.digital_signature and not ku.content_commitment

    tsa = x509.load_pem_x509_certificate((d / "tsa.pem").read_bytes())
    eku = tsa.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ocsp_cert = x509.load_pem_x509_certificate(http.get("/pki/ocsp.pem").text.encode())
    assert list(ocsp_cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value) == \
        [ExtendedKeyUsageOID.OCSP_SIGNING]
    ocsp_cert.extensions.get_extension_for_oid(ExtensionOID.OCSP_NO_CHECK)

    # AIA and CRL DP point at this service, and what they name is served there
    aia = {a.access_method._name: a.access_location.value
           for a in person.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value}
    assert aia["OCSP"] == service.url + "/pki/ocsp"
    issuer_der = httpx.get(aia["caIssuers"]).content
    assert x509.load_der_x509_certificate(issuer_der).subject == person.issuer
    crl_url = person.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value[0].full_name[0].value
    (d / "issuing.crl").write_bytes(httpx.get(crl_url).content)
    r = openssl("crl", "-inform", "DER", "-in", "issuing.crl", "-CAfile", "ca.pem", "-noout", cwd=d)
    assert r.returncode == 0 and "verify OK" in (r.stdout + r.stderr), r.stderr
    root_crl_url = x509.load_pem_x509_certificate((d / "issuing.pem").read_bytes()).extensions \
        .get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value[0].full_name[0].value
    (d / "root.crl").write_bytes(httpx.get(root_crl_url).content)
    r = openssl("crl", "-inform", "DER", "-in", "root.crl", "-CAfile", "root.pem", "-noout", cwd=d)
    assert r.returncode == 0 and "verify OK" in (r.stdout + r.stderr), r.stderr


def test_profile_rules_are_enforced_by_the_cli(service: Service, pki_dir: Path) -> None:
    r = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "x.key",
                "-subj", "/CN=No Serial/C=LV", "-out", "x.csr", cwd=pki_dir)
    assert r.returncode == 0
    out = service.cli("pki", "issue", "--csr", str(pki_dir / "x.csr"), "--profile", "qualified-person", check=False)
    assert out.returncode == 2 and b"SERIALNUMBER" in out.stderr
    (pki_dir / "garbage.csr").write_bytes(b"not a csr")
    out = service.cli("pki", "issue", "--csr", str(pki_dir / "garbage.csr"), "--profile", "person-auth", check=False)
    assert out.returncode == 2 and b"PKCS#10" in out.stderr


def test_ocsp_good_then_revoked_then_crl(service: Service, http: httpx.Client, pki_dir: Path) -> None:
    d = pki_dir
    cert = issue(service, d, "leaf", "/CN=Revoke Me/serialNumber=PNOLV-999/C=LV", "qualified-person")
    query = ["ocsp", "-issuer", "issuing.pem", "-cert", "leaf.pem", "-url", service.url + "/pki/ocsp",
             "-CAfile", "ca.pem", "-resp_text"]
    r = openssl(*query, cwd=d)
    assert "Response verify OK" in r.stderr and "leaf.pem: good" in r.stdout, r.stdout + r.stderr
    assert "WARNING: no nonce" not in r.stdout + r.stderr  # the nonce was echoed

    service.cli("pki", "revoke", format(cert.serial_number, "x"), "--reason", "key_compromise")
    r = openssl(*query, cwd=d)
    assert "Response verify OK" in r.stderr and "leaf.pem: revoked" in r.stdout, r.stdout + r.stderr
    assert "Reason: keyCompromise" in r.stdout

    (d / "after.crl").write_bytes(http.get(
        cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value[0].full_name[0].value
        .replace(service.url, "")).content)
    r = openssl("crl", "-inform", "DER", "-in", "after.crl", "-CAfile", "ca.pem", "-text", cwd=d)
    assert "verify OK" in r.stdout + r.stderr
    assert format(cert.serial_number, "X") in r.stdout.replace(":", "").upper()
    assert "Key Compromise" in r.stdout

    # GET form of the same request (RFC 6960 appendix A.1)
    r = openssl("ocsp", "-issuer", "issuing.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der", cwd=d)
    b64 = base64.b64encode((d / "req.der").read_bytes()).decode()
    resp = http.get("/pki/ocsp/" + quote(b64, safe=""))
    parsed = asn1_ocsp.OCSPResponse.load(resp.content)
    assert resp.status_code == 200 and parsed["response_status"].native == "successful"
    single = parsed.basic_ocsp_response["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "revoked"


def test_ocsp_unknown_serial(service: Service, pki_dir: Path) -> None:
    d = pki_dir
    r = openssl("ocsp", "-issuer", "issuing.pem", "-serial", "0x1234567", "-url", service.url + "/pki/ocsp",
                "-CAfile", "ca.pem", cwd=d)
    assert "Response verify OK" in r.stderr and "unknown" in r.stdout, r.stdout + r.stderr


def test_tsa_with_openssl(service: Service, pki_dir: Path) -> None:
    d = pki_dir
    (d / "data.bin").write_bytes(b"time-stamp me" * 100)
    serials = set()
    for cert_req in (True, False):
        args = ["ts", "-query", "-data", "data.bin", "-sha256", "-out", "q.tsq"] + (["-cert"] if cert_req else [])
        assert openssl(*args, cwd=d).returncode == 0
        resp = httpx.post(service.url + "/pki/tsa", content=(d / "q.tsq").read_bytes(),
                          headers={"Content-Type": "application/timestamp-query"})
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/timestamp-reply"
        (d / "r.tsr").write_bytes(resp.content)
        verify = ["ts", "-verify", "-in", "r.tsr", "-data", "data.bin", "-CAfile", "ca.pem"]
        if not cert_req:
            verify += ["-untrusted", "tsa.pem"]
        r = openssl(*verify, cwd=d)
        assert "Verification: OK" in r.stdout, r.stdout + r.stderr
        text = openssl("ts", "-reply", "-in", "r.tsr", "-text", cwd=d).stdout
        assert "Policy OID: 1.3.6.1.4.1.59999.1.3.1" in text and "Accuracy:" in text
        serials.add(tsp.TimeStampResp.load(resp.content)["time_stamp_token"]["content"]["encap_content_info"]
                    ["content"].parsed["serial_number"].native)
        certs = tsp.TimeStampResp.load(resp.content)["time_stamp_token"]["content"]["certificates"]
        assert (len(certs) >= 2) if cert_req else (certs.native is None or len(certs) == 0)
    assert len(serials) == 2


def test_tsa_with_pyhanko_client(service: Service, pki_dir: Path) -> None:
    """pyHanko's own RFC 3161 client (the one PAdES signing uses) accepts our tokens."""
    import asyncio
    import hashlib

    from pyhanko.sign.timestamps import HTTPTimeStamper
    from asn1crypto import x509 as ax509
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    roots = [ax509.Certificate.load(c.public_bytes(Encoding.DER))
             for c in x509.load_pem_x509_certificates((pki_dir / "root.pem").read_bytes())]
    digest = hashlib.sha256(b"pyhanko").digest()

    async def run() -> object:
        token = await HTTPTimeStamper(service.url + "/pki/tsa").async_timestamp(digest, "sha256")
        vc = ValidationContext(trust_roots=roots, allow_fetching=True)
        return await validate_tst_signed_data(token["content"], vc, lambda _alg: digest)

    from pyhanko.sign.validation.status import TimestampSignatureStatus

    status = TimestampSignatureStatus(**asyncio.run(run()))  # type: ignore[arg-type]
    assert status.intact and status.valid and status.trusted, status
    assert status.timestamp is not None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400))
def test_ocsp_endpoint_answers_garbage_in_protocol(http: httpx.Client, body: bytes) -> None:
    r = http.post("/pki/ocsp", content=body, headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code in (200, 400)
    status = asn1_ocsp.OCSPResponse.load(r.content)["response_status"].native
    assert status == ("successful" if r.status_code == 200 else "malformed_request")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400))
def test_tsa_endpoint_answers_garbage_in_protocol(http: httpx.Client, body: bytes) -> None:
    r = http.post("/pki/tsa", content=body, headers={"Content-Type": "application/timestamp-query"})
    assert r.status_code == 400
    # asn1crypto's TimeStampResp wrongly makes timeStampToken mandatory: read the status by hand
    status = tsp.PKIStatusInfo.load(core.Sequence.load(r.content)[0].dump())
    assert status["status"].native == "rejection" and status["fail_info"].native


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet="ABCDEFabcdef0123456789+/=%", max_size=200))
def test_ocsp_get_garbage(http: httpx.Client, path: str) -> None:
    r = http.get("/pki/ocsp/" + (path or "x"))
    assert r.status_code in (200, 400, 404)
    if r.status_code != 404:
        assert asn1_ocsp.OCSPResponse.load(r.content)["response_status"].native in ("successful", "malformed_request")


def test_oversized_protocol_bodies(http: httpx.Client) -> None:
    for path in ("/pki/ocsp", "/pki/tsa"):
        r = http.post(path, content=b"\x30" * 70000)
        assert r.status_code == 413


def test_cli_help_is_there_for_every_command(service: Service) -> None:
    for args in (["--help"], ["init", "--help"], ["serve", "--help"], ["client", "create", "--help"],
                 ["client", "list", "--help"], ["client", "disable", "--help"], ["pki", "issue", "--help"],
                 ["pki", "revoke", "--help"], ["pki", "list", "--help"], ["audit", "verify", "--help"]):
        out = service.cli(*args)
        assert b"usage: remotesign" in out.stdout
    assert b"qualified-person" in service.cli("pki", "issue", "--help").stdout
