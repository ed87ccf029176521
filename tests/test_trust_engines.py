"""OCSP responder, TSA and CRL publisher checked by independent verifiers (openssl, pyHanko).

Our own parser is never the judge of our own output: every positive claim is verified by
``openssl`` in a subprocess (or by pyHanko), so an encoding mistake cannot cancel itself out.
A fresh CA is built once per module; tests that revoke issue their own leaf certificates.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import cms, core, crl as asn1_crl, ocsp, tsp
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, event, given, settings, strategies as st
from sqlalchemy import select, update

from remotesign.keystore import KeyStore
from remotesign.storage.db import Database
from remotesign.storage.models import CrlRecord, TimestampRecord
from remotesign.trust.ca import CertificateAuthority, IssuedCertificate
from remotesign.trust.crl import CrlPublisher, UnknownCaError
from remotesign.trust.ocsp import OcspResponder
from remotesign.trust.tsa import TimeStampAuthority
from tests.inprocess_pki import build_ca

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

POLICY = "1.3.6.1.4.1.59999.1.3.1"
HYPOTHESIS = settings(max_examples=200, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@dataclass
class Pki:
    dir: Path
    db: Database
    ks: KeyStore
    ca: CertificateAuthority
    ocsp: OcspResponder
    tsa: TimeStampAuthority
    crl: CrlPublisher
    root_pem: Path
    issuing_pem: Path
    tsa_pem: Path
    chain_pem: Path
    counter: int = 0

    def issue_leaf(self) -> tuple[IssuedCertificate, Path]:
        """A fresh qualified-person certificate, written to a PEM file for openssl."""
        self.counter += 1
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (cx509.CertificateSigningRequestBuilder()
               .subject_name(cx509.Name([
                   cx509.NameAttribute(NameOID.COMMON_NAME, f"Test Person {self.counter}"),
                   cx509.NameAttribute(NameOID.SERIAL_NUMBER, f"PNOLV-{self.counter:06d}"),
                   cx509.NameAttribute(NameOID.COUNTRY_NAME, "LV")]))
               .sign(key, hashes.SHA256()))
        cert = self.ca.issue_from_csr(csr.public_bytes(serialization.Encoding.PEM), "qualified-person")
        path = self.dir / f"leaf{self.counter}.pem"
        path.write_text(cert.pem())
        return cert, path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    tmp = tmp_path_factory.mktemp("pki")
    db, ks, ca = build_ca(tmp)
    files = {"root": ca.root.pem(), "issuing": ca.issuing.pem(), "tsa": ca.tsa_signer()[0].pem(),
             "chain": ca.issuing.pem() + ca.root.pem()}
    for name, text in files.items():
        (tmp / f"{name}.pem").write_text(text)
    pki = Pki(dir=tmp, db=db, ks=ks, ca=ca, ocsp=OcspResponder(ca, ks, validity_minutes=60),
              tsa=TimeStampAuthority(db, ca, ks, POLICY, accuracy_ms=500), crl=CrlPublisher(db, ca, ks, 24),
              root_pem=tmp / "root.pem", issuing_pem=tmp / "issuing.pem", tsa_pem=tmp / "tsa.pem",
              chain_pem=tmp / "chain.pem")
    yield pki
    db.dispose()


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run openssl; stdout and stderr merged because openssl splits its verdicts across both."""
    proc = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=60, env={**os.environ, "OPENSSL_CONF": "/dev/null"})
    if check:
        assert proc.returncode == 0, proc.stdout
    return proc


# =================================================================================================
# TSA
# =================================================================================================

def ts_query(pki: Pki, name: str, *options: str, data: bytes = b"hello, time-stamping world\n") -> tuple[Path, Path]:
    data_file = pki.dir / f"{name}.txt"
    data_file.write_bytes(data)
    query = pki.dir / f"{name}.tsq"
    run("openssl", "ts", "-query", "-data", data_file, *options, "-out", query)
    return data_file, query


def ts_respond(pki: Pki, query_der: bytes, name: str) -> tuple[Path, TimeStampResp]:
    reply = pki.tsa.respond(query_der)
    path = pki.dir / f"{name}.tsr"
    path.write_bytes(reply.der)
    parsed = TimeStampResp.load(reply.der, strict=True)
    assert parsed["status"]["status"].native == reply.status
    return path, parsed


class TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp; asn1crypto's own class wrongly requires the token, even on rejection."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def fail_info(resp_der: bytes) -> set[str]:
    return set(TimeStampResp.load(resp_der, strict=True)["status"]["fail_info"].native or ())


def test_tsa_token_verifies_with_openssl(pki: Pki) -> None:
    data, query = ts_query(pki, "tsa1", "-sha256", "-cert")
    reply, parsed = ts_respond(pki, query.read_bytes(), "tsa1")
    assert parsed["status"]["status"].native == "granted"
    out = run("openssl", "ts", "-verify", "-in", reply, "-data", data, "-CAfile", pki.root_pem,
              "-untrusted", pki.issuing_pem).stdout
    assert "Verification: OK" in out
    # -queryfile also checks imprint, nonce and policy against the request.
    out = run("openssl", "ts", "-verify", "-in", reply, "-queryfile", query, "-CAfile", pki.root_pem,
              "-untrusted", pki.issuing_pem).stdout
    assert "Verification: OK" in out
    text = run("openssl", "ts", "-reply", "-in", reply, "-text").stdout
    assert f"Policy OID: {POLICY}" in text
    assert "0x01F4 millis" in text  # 500 ms
    assert "Ordering: no" in text
    assert "TSA: DirName:" in text and "Time-Stamping Unit" in text
    # certReq true: TSA certificate, issuing CA and root are included.
    signed = parsed["time_stamp_token"]["content"]
    assert len(signed["certificates"]) == 3
    attrs = {a["type"].native for a in signed["signer_infos"][0]["signed_attrs"]}
    assert {"content_type", "message_digest", "signing_time", "signing_certificate_v2"} <= attrs
    assert signed["signer_infos"][0]["digest_algorithm"]["algorithm"].native == "sha256"


def test_tsa_echoes_nonce_and_imprint(pki: Pki) -> None:
    _, query = ts_query(pki, "tsa-nonce", "-sha384")
    request = tsp.TimeStampReq.load(query.read_bytes())
    _, parsed = ts_respond(pki, query.read_bytes(), "tsa-nonce")
    info = parsed["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["nonce"].native == request["nonce"].native
    assert info["message_imprint"].dump() == request["message_imprint"].dump()
    assert info["version"].native == "v1"
    assert info["gen_time"].native.tzinfo is not None


def test_tsa_without_cert_req_has_no_certificates(pki: Pki) -> None:
    data, query = ts_query(pki, "tsa-nocert", "-sha256")
    reply, parsed = ts_respond(pki, query.read_bytes(), "tsa-nocert")
    assert parsed["status"]["status"].native == "granted"
    assert parsed["time_stamp_token"]["content"]["certificates"].native is None
    # openssl reads only one -untrusted file, so the TSA certificate travels with the issuing CA.
    untrusted = pki.dir / "tsa-untrusted.pem"
    untrusted.write_text(pki.tsa_pem.read_text() + pki.issuing_pem.read_text())
    out = run("openssl", "ts", "-verify", "-in", reply, "-data", data, "-CAfile", pki.root_pem,
              "-untrusted", untrusted).stdout
    assert "Verification: OK" in out


def test_tsa_serial_numbers_are_unique(pki: Pki) -> None:
    _, query = ts_query(pki, "tsa-serials", "-sha256")
    der = query.read_bytes()
    serials = []
    for _ in range(50):
        parsed = TimeStampResp.load(pki.tsa.respond(der).der)
        serials.append(parsed["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed[
            "serial_number"].native)
    assert len(set(serials)) == 50
    assert all(0 < s < (1 << 128) for s in serials)
    with pki.db.session() as s:
        stored = set(s.scalars(select(TimestampRecord.serial)))
    assert {format(x, "x") for x in serials} <= stored


PYHANKO_CHECK = """
import asyncio, hashlib, sys
from asn1crypto import cms, pem, x509
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

def cert(path):
    data = open(path, "rb").read()
    return x509.Certificate.load(pem.unarmor(data)[2] if pem.detect(data) else data)

token_path, payload_path, root_path, issuing_path = sys.argv[1:5]
token = cms.ContentInfo.load(open(token_path, "rb").read())
payload = open(payload_path, "rb").read()
vc = ValidationContext(trust_roots=[cert(root_path)], other_certs=[cert(issuing_path)],
                       allow_fetching=False, revocation_mode="soft-fail")
kwargs = asyncio.run(validate_tst_signed_data(token["content"], vc, lambda alg: hashlib.new(alg, payload).digest()))
status = TimestampSignatureStatus(**kwargs)
print("intact", status.intact, "valid", status.valid, "trusted", status.trusted)
print("signer", status.signing_cert.sha256.hex())
"""


def test_tsa_token_validates_with_pyhanko(pki: Pki) -> None:
    # In a subprocess: importing pyHanko registers asn1crypto extension specs process-wide
    # (e.g. qc_statements), which must not leak into the CA code under test.
    payload = b"pyhanko checks this too"
    data, query = ts_query(pki, "tsa-pyhanko", "-sha256", "-cert", data=payload)
    _, parsed = ts_respond(pki, query.read_bytes(), "tsa-pyhanko")
    token = pki.dir / "tsa-pyhanko.tst"
    token.write_bytes(parsed["time_stamp_token"].dump())
    out = run(sys.executable, "-c", PYHANKO_CHECK, token, data, pki.root_pem, pki.issuing_pem).stdout
    assert "intact True valid True trusted True" in out, out
    assert f"signer {hashlib.sha256(pki.ca.tsa_signer()[0].der).hexdigest()}" in out


def make_ts_req(*, algorithm: str = "sha256", imprint: bytes | None = None, policy: str | None = None,
                extensions: bool = False, nonce: int | None = 42) -> bytes:
    value: dict = {"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": algorithm},
        "hashed_message": imprint if imprint is not None else b"\x01" * 32}}
    if policy:
        value["req_policy"] = policy
    if nonce is not None:
        value["nonce"] = nonce
    if extensions:
        value["extensions"] = [{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}]
    return tsp.TimeStampReq(value).dump()


@pytest.mark.parametrize(("query", "expected"), [
    (b"not a time-stamp request", "bad_data_format"),
    (b"", "bad_data_format"),
    (make_ts_req() + b"\x00", "bad_data_format"),                      # trailing data
    (make_ts_req(imprint=b"\x01" * 31), "bad_data_format"),            # wrong length for SHA-256
    (make_ts_req(algorithm="sha512", imprint=b"\x01" * 32), "bad_data_format"),
    (make_ts_req(algorithm="md5", imprint=b"\x01" * 16), "bad_alg"),
    (make_ts_req(algorithm="1.2.3.4.5", imprint=b"\x01" * 32), "bad_alg"),
    (make_ts_req(policy="1.2.3.4"), "unaccepted_policy"),
    (make_ts_req(extensions=True), "unaccepted_extensions"),
])
def test_tsa_rejections(pki: Pki, query: bytes, expected: str) -> None:
    reply = pki.tsa.respond(query)
    assert reply.status == "rejection"
    assert fail_info(reply.der) == {expected}


def test_tsa_rejection_readable_by_openssl(pki: Pki) -> None:
    _, query = ts_query(pki, "tsa-policy", "-sha256", "-tspolicy", "1.2.3.4")
    reply, _ = ts_respond(pki, query.read_bytes(), "tsa-policy")
    text = run("openssl", "ts", "-reply", "-in", reply, "-text").stdout
    assert "Status: Rejected" in text
    assert "the requested TSA policy is not supported" in text


def test_tsa_accepts_our_policy_and_sha1(pki: Pki) -> None:
    assert pki.tsa.respond(make_ts_req(policy=POLICY)).status == "granted"
    assert pki.tsa.respond(make_ts_req(algorithm="sha1", imprint=b"\x02" * 20)).status == "granted"
    assert pki.tsa.respond(make_ts_req(nonce=None)).status == "granted"


@HYPOTHESIS
@given(st.binary(max_size=2048))
def test_tsa_random_bytes_are_rejected(pki: Pki, data: bytes) -> None:
    reply = pki.tsa.respond(data)
    assert reply.status == "rejection"
    assert fail_info(reply.der)


def mutate(data: bytes, draw: st.DataObject) -> bytes:
    """Flip, overwrite, insert, delete or truncate bytes of ``data``."""
    buf = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        op = draw.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << draw.draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[pos] = draw.draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = draw.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and buf:
            del buf[pos:pos + draw.draw(st.integers(1, 8))]
        elif op == "truncate":
            del buf[pos:]
    return bytes(buf)


@HYPOTHESIS
@given(st.data())
def test_tsa_mutated_queries_never_raise(pki: Pki, data: st.DataObject) -> None:
    valid = make_ts_req(nonce=123456789)
    mutated = mutate(valid, data)
    reply = pki.tsa.respond(mutated)
    event(f"{reply.status} {sorted(fail_info(reply.der))}")
    parsed = TimeStampResp.load(reply.der, strict=True)
    if mutated == valid:
        assert reply.status == "granted"
    # A mutation may still be a valid query (a flipped imprint or nonce bit): then it is granted
    # and the token echoes exactly what was asked; otherwise it is a rejection with a reason.
    if reply.status == "granted":
        request = tsp.TimeStampReq.load(mutated)
        info = parsed["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
        assert info["message_imprint"].native == request["message_imprint"].native
        assert info["nonce"].native == request["nonce"].native
    else:
        assert reply.status == "rejection"
        assert fail_info(reply.der)


# =================================================================================================
# OCSP
# =================================================================================================

def ocsp_request(pki: Pki, name: str, *options: str | Path) -> Path:
    out = pki.dir / f"{name}.req"
    run("openssl", "ocsp", *options, "-reqout", out)
    return out


def ocsp_respond(pki: Pki, request: Path | bytes, name: str) -> tuple[Path, ocsp.OCSPResponse]:
    der = request.read_bytes() if isinstance(request, Path) else request
    reply = pki.ocsp.respond(der)
    path = pki.dir / f"{name}.resp"
    path.write_bytes(reply.der)
    parsed = ocsp.OCSPResponse.load(reply.der)
    assert parsed["response_status"].native == reply.status
    return path, parsed


def ocsp_check(pki: Pki, response: Path, *options: str | Path) -> str:
    out = run("openssl", "ocsp", "-respin", response, "-issuer", pki.issuing_pem, "-CAfile", pki.root_pem,
              *options).stdout
    assert "Response verify OK" in out, out
    return out


def nonce_of(ext_list: object) -> bytes | None:
    for ext in ext_list or ():  # type: ignore[attr-defined]
        if ext["extn_id"].native == "nonce":
            return bytes(ext["extn_value"])
    return None


def test_ocsp_good_with_nonce(pki: Pki) -> None:
    _, leaf = pki.issue_leaf()
    req = ocsp_request(pki, "ocsp-good", "-issuer", pki.issuing_pem, "-cert", leaf)
    resp, parsed = ocsp_respond(pki, req, "ocsp-good")
    assert parsed["response_status"].native == "successful"
    # -reqin makes openssl compare the nonce of the response with the request's.
    out = ocsp_check(pki, resp, "-reqin", req, "-resp_text")
    assert "Cert Status: good" in out
    assert "WARNING" not in out and "Nonce Verify error" not in out
    out = ocsp_check(pki, resp, "-cert", leaf, "-no_nonce")
    assert f"{leaf}: good" in out
    # Structure details openssl does not print as verdicts.
    basic = parsed["response_bytes"]["response"].parsed
    data = basic["tbs_response_data"]
    request = ocsp.OCSPRequest.load(req.read_bytes())
    assert nonce_of(data["response_extensions"]) == nonce_of(request["tbs_request"]["request_extensions"])
    assert nonce_of(data["response_extensions"]) is not None
    ocsp_cert = pki.ca.ocsp_signer()[0].asn1()
    assert data["responder_id"].name == "by_key"
    assert data["responder_id"].chosen.native == hashlib.sha1(
        ocsp_cert.public_key["public_key"].contents[1:]).digest()
    assert [c.dump() for c in basic["certs"]] == [ocsp_cert.dump()]
    single = data["responses"][0]
    assert single["cert_id"].dump() == request["tbs_request"]["request_list"][0]["req_cert"].dump()
    delta = single["next_update"].native - single["this_update"].native
    assert delta == timedelta(minutes=60)


def test_ocsp_without_nonce_and_with_sha256_cert_id(pki: Pki) -> None:
    _, leaf = pki.issue_leaf()
    req = ocsp_request(pki, "ocsp-sha256", "-no_nonce", "-sha256", "-issuer", pki.issuing_pem, "-cert", leaf)
    request = ocsp.OCSPRequest.load(req.read_bytes())
    assert request["tbs_request"]["request_list"][0]["req_cert"]["hash_algorithm"]["algorithm"].native == "sha256"
    resp, parsed = ocsp_respond(pki, req, "ocsp-sha256")
    data = parsed["response_bytes"]["response"].parsed["tbs_response_data"]
    assert nonce_of(data["response_extensions"]) is None
    out = ocsp_check(pki, resp, "-sha256", "-cert", leaf, "-no_nonce")
    assert f"{leaf}: good" in out


def test_ocsp_revocation_shows_on_next_request(pki: Pki) -> None:
    cert, leaf = pki.issue_leaf()
    req = ocsp_request(pki, "ocsp-rev", "-no_nonce", "-issuer", pki.issuing_pem, "-cert", leaf)
    resp, _ = ocsp_respond(pki, req, "ocsp-rev-before")
    assert f"{leaf}: good" in ocsp_check(pki, resp, "-cert", leaf, "-no_nonce")
    pki.ca.revoke(cert, "key_compromise")
    resp, parsed = ocsp_respond(pki, req, "ocsp-rev-after")
    out = ocsp_check(pki, resp, "-cert", leaf, "-no_nonce")
    assert f"{leaf}: revoked" in out
    assert "Reason: keyCompromise" in out
    info = parsed["response_bytes"]["response"].parsed["tbs_response_data"]["responses"][0]["cert_status"]
    assert info.name == "revoked"
    revoked_at = pki.ca.get_any(cert.id).revoked_at  # type: ignore[union-attr]
    assert abs(info.chosen["revocation_time"].native - revoked_at) < timedelta(seconds=1)


def test_ocsp_unknown_serial_and_foreign_issuer(pki: Pki) -> None:
    req = ocsp_request(pki, "ocsp-unknown", "-no_nonce", "-issuer", pki.issuing_pem, "-serial", "0x123456789")
    resp, _ = ocsp_respond(pki, req, "ocsp-unknown")
    assert "0x123456789: unknown" in ocsp_check(pki, resp, "-serial", "0x123456789", "-no_nonce")
    # The issuing CA's own certificate is issued by the root: not ours to answer -> unknown.
    req = ocsp_request(pki, "ocsp-foreign", "-no_nonce", "-issuer", pki.root_pem, "-cert", pki.issuing_pem)
    _, parsed = ocsp_respond(pki, req, "ocsp-foreign")
    single = parsed["response_bytes"]["response"].parsed["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "unknown"
    # A CertID hash algorithm we do not support (SHA-512) -> unknown, not an error.
    _, leaf = pki.issue_leaf()
    req = ocsp_request(pki, "ocsp-sha512", "-no_nonce", "-sha512", "-issuer", pki.issuing_pem, "-cert", leaf)
    resp, parsed = ocsp_respond(pki, req, "ocsp-sha512")
    assert parsed["response_status"].native == "successful"
    assert f"{leaf}: unknown" in ocsp_check(pki, resp, "-sha512", "-cert", leaf, "-no_nonce")


def test_ocsp_two_cert_ids_get_two_answers(pki: Pki) -> None:
    revoked_cert, leaf_a = pki.issue_leaf()
    _, leaf_b = pki.issue_leaf()
    pki.ca.revoke(revoked_cert, "superseded")
    req = ocsp_request(pki, "ocsp-two", "-issuer", pki.issuing_pem, "-cert", leaf_a, "-cert", leaf_b)
    resp, parsed = ocsp_respond(pki, req, "ocsp-two")
    responses = parsed["response_bytes"]["response"].parsed["tbs_response_data"]["responses"]
    assert [r["cert_status"].name for r in responses] == ["revoked", "good"]
    out = ocsp_check(pki, resp, "-reqin", req, "-resp_text")
    assert out.count("Cert Status:") == 2
    out = ocsp_check(pki, resp, "-cert", leaf_a, "-cert", leaf_b, "-no_nonce")
    assert f"{leaf_a}: revoked" in out and "Reason: superseded" in out
    assert f"{leaf_b}: good" in out


@pytest.mark.parametrize("request_der", [
    b"", b"garbage", b"\x30\x00", b"\x30\x03\x30\x01\x00", b"\x30" * 100,
    ocsp.OCSPRequest({"tbs_request": {"request_list": []}}).dump(),
])
def test_ocsp_malformed(pki: Pki, request_der: bytes) -> None:
    reply = pki.ocsp.respond(request_der)
    assert reply.status == "malformed_request"
    assert ocsp.OCSPResponse.load(reply.der)["response_status"].native == "malformed_request"
    assert ocsp.OCSPResponse.load(reply.der)["response_bytes"].native is None


def test_ocsp_trailing_data_is_malformed(pki: Pki) -> None:
    req = ocsp_request(pki, "ocsp-trailing", "-issuer", pki.issuing_pem, "-serial", "0x42")
    assert pki.ocsp.respond(req.read_bytes()).status == "successful"
    assert pki.ocsp.respond(req.read_bytes() + b"\x00").status == "malformed_request"
    # openssl reads the status of our malformed reply too.
    path = pki.dir / "malformed.resp"
    path.write_bytes(pki.ocsp.respond(b"junk").der)
    out = run("openssl", "ocsp", "-respin", path, "-resp_text", "-noverify", check=False).stdout
    assert "malformedrequest" in out.replace(" ", "").lower()


@pytest.fixture(scope="module")
def valid_ocsp_request(pki: Pki) -> bytes:
    _, leaf = pki.issue_leaf()
    return ocsp_request(pki, "ocsp-fuzz", "-issuer", pki.issuing_pem, "-cert", leaf).read_bytes()


@HYPOTHESIS
@given(st.binary(max_size=2048))
def test_ocsp_random_bytes_are_malformed(pki: Pki, data: bytes) -> None:
    reply = pki.ocsp.respond(data)
    assert reply.status == "malformed_request"


@HYPOTHESIS
@given(st.data())
def test_ocsp_mutated_requests_never_raise(pki: Pki, valid_ocsp_request: bytes, data: st.DataObject) -> None:
    mutated = mutate(valid_ocsp_request, data)
    reply = pki.ocsp.respond(mutated)
    event(reply.status)
    parsed = ocsp.OCSPResponse.load(reply.der)
    assert parsed["response_status"].native == reply.status
    # A mutation can still be a well-formed request (e.g. a flipped serial bit): it is then
    # answered (most likely 'unknown'); everything else is malformed_request.
    assert reply.status in ("successful", "malformed_request")
    if reply.status == "successful":
        request = ocsp.OCSPRequest.load(mutated)
        responses = parsed["response_bytes"]["response"].parsed["tbs_response_data"]["responses"]
        assert len(responses) == len(request["tbs_request"]["request_list"])


# =================================================================================================
# CRL
# =================================================================================================

def crl_text(pki: Pki, der: bytes, name: str, cafile: Path) -> str:
    path = pki.dir / f"{name}.crl"
    path.write_bytes(der)
    out = run("openssl", "crl", "-inform", "DER", "-in", path, "-CAfile", cafile, "-noout", "-text").stdout
    assert "verify OK" in out, out
    return out


def crl_number(der: bytes) -> int:
    return asn1_crl.CertificateList.load(der).crl_number_value.native


def test_crl_lists_revocation_with_higher_number(pki: Pki) -> None:
    issuing = pki.ca.issuing.id
    before = pki.crl.current(issuing)
    crl_text(pki, before, "crl-before", pki.chain_pem)
    assert pki.crl.current(issuing) == before  # served from storage while nothing changed
    cert, _ = pki.issue_leaf()
    pki.ca.revoke(cert, "key_compromise")
    after = pki.crl.current(issuing)
    assert crl_number(after) > crl_number(before)
    out = crl_text(pki, after, "crl-after", pki.chain_pem)
    assert f"Serial Number: {cert.serial_hex.upper()}" in out
    assert "Key Compromise" in out
    assert "X509v3 CRL Number" in out and "X509v3 Authority Key Identifier" in out
    parsed = asn1_crl.CertificateList.load(after)
    assert parsed["tbs_cert_list"]["version"].native == "v2"
    assert parsed.authority_key_identifier == pki.ca.issuing.asn1().key_identifier
    tbs = parsed["tbs_cert_list"]
    assert tbs["next_update"].native - tbs["this_update"].native == timedelta(hours=24)


def test_crl_omits_unspecified_reason(pki: Pki) -> None:
    cert, _ = pki.issue_leaf()
    pki.ca.revoke(cert, "unspecified")
    der = pki.crl.current(pki.ca.issuing.id)
    crl_text(pki, der, "crl-unspecified", pki.chain_pem)
    entries = {e["user_certificate"].native: e for e in asn1_crl.CertificateList.load(der)["tbs_cert_list"][
        "revoked_certificates"]}
    assert entries[cert.serial]["crl_entry_extensions"].native in (None, [])


def test_root_crl_verifies_against_root(pki: Pki) -> None:
    der = pki.crl.current(pki.ca.root.id)
    out = crl_text(pki, der, "crl-root", pki.root_pem)
    assert "No Revoked Certificates" in out
    assert "Issuer:" in out and "Root CA" in out


def test_crl_unknown_ca(pki: Pki) -> None:
    with pytest.raises(UnknownCaError):
        pki.crl.current("no-such-ca")
    with pytest.raises(KeyError):
        pki.crl.current(pki.ca.ocsp_signer()[0].id)


def test_crl_regenerated_when_stale(pki: Pki) -> None:
    issuing = pki.ca.issuing.id
    current = pki.crl.current(issuing)
    number = crl_number(current)
    with pki.db.session() as s:  # age the stored CRL beyond half its validity
        s.execute(update(CrlRecord).where(CrlRecord.issuer_id == issuing, CrlRecord.number == number)
                  .values(this_update=datetime.now(timezone.utc) - timedelta(hours=13)))
    fresh = pki.crl.current(issuing)
    assert crl_number(fresh) == number + 1
    crl_text(pki, fresh, "crl-stale", pki.chain_pem)


def test_crl_concurrent_generation(pki: Pki) -> None:
    """Several publishers (as in several worker processes) race after a revocation."""
    issuing = pki.ca.issuing.id
    start = crl_number(pki.crl.current(issuing))
    cert, _ = pki.issue_leaf()
    pki.ca.revoke(cert, "affiliation_changed")
    publishers = [CrlPublisher(pki.db, pki.ca, pki.ks, 24) for _ in range(6)]
    barrier = threading.Barrier(len(publishers))
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker(pub: CrlPublisher) -> None:
        try:
            barrier.wait()
            results.append(pub.current(issuing))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in publishers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == len(publishers)
    for der in results:
        assert crl_number(der) > start
        serials = {e["user_certificate"].native for e in
                   asn1_crl.CertificateList.load(der)["tbs_cert_list"]["revoked_certificates"]}
        assert cert.serial in serials
    with pki.db.session() as s:
        numbers = list(s.scalars(select(CrlRecord.number).where(CrlRecord.issuer_id == issuing)
                                 .order_by(CrlRecord.number)))
    assert numbers == list(range(1, len(numbers) + 1))  # unique and gap-free
