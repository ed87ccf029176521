"""Proof (a): the eParaksts SignAPI flow with a server-held sign identity, as integrators run it
against eParaksts' SignAPI + TrustedX host:

session + upload -> CalculateDigest with the identity's certificate -> the user's consent for
``digests_summary`` (scope use:server, PIN) -> ``esigp/v1/signatures/server/raw[/batch]`` with each
session's digest -> finalizeSigning with the signature values -> download.

The results are checked by pyHanko and poppler's pdfsig (PAdES), xmlsec1 (ASiC-E XAdES) and the
service's own validator, which must say TOTAL-PASSED at B-LT."""

from __future__ import annotations

import base64
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.consent import USE_SERVER, Enrolled, enrol, register_redirect, user_token
from tests.device_client import ESIGP, bearer
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi
from tests.verifiers import pdfsig, pyhanko_pdf, root_of, xmlsec_verify


@dataclass
class ServerIdentity:
    """What SignApi.calculate needs of a "card": the certificate (here: of a server-held identity)."""

    enrolled: Enrolled

    @property
    def cert_b64(self) -> str:
        return self.enrolled.certificate_b64


@pytest.fixture(scope="module")
def identities(http: httpx.Client, demo_token: str) -> dict[str, Enrolled]:
    register_redirect(http, demo_token)
    return {"rsa": enrol(http, demo_token, algorithm="rsa-2048"), "ec": enrol(http, demo_token, algorithm="ec-p256")}


def calculate(api: SignApi, sids: list[str], who: Enrolled, sign_as_pdf: bool,
              create_new: bool = False) -> dict[str, Any]:
    r = api.calculate(sids, ServerIdentity(who), sign_as_pdf, create_new)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    assert [d["sessionId"] for d in data["sessionDigests"]] == sids
    return data


def consent_token(http: httpx.Client, demo: dict[str, str], who: Enrolled, data: dict[str, Any]) -> str:
    """The user's consent for exactly what CalculateDigest prepared (summary and algorithm passed verbatim)."""
    return user_token(http, demo, who, USE_SERVER, summary=data["digests_summary"], summary_alg=data["algorithm"])


def validate(api: SignApi, sid: str) -> dict[str, Any]:
    doc_id = api.list(sid)[0]["id"]
    r = api.client.get(f"/api-validation/v1.0/{sid}/{doc_id}/validate")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    assert data["signaturesCount"] == len(data["signaturesExt"]) == 1, data
    return data


def test_pades_b_lt_with_a_server_held_rsa_identity_in_a_batch(api: SignApi, http: httpx.Client,
                                                               demo: dict[str, str], identities: dict[str, Enrolled],
                                                               ca_pem: bytes, tmp_path: Path) -> None:
    who = identities["rsa"]
    sids = api.start(amount=2)
    for n, sid in enumerate(sids):
        api.upload(sid, f"līgums-{n}.pdf", pdf_bytes(pages=n + 1))
    data = calculate(api, sids, who, sign_as_pdf=True)
    assert data["algorithm"] == "SHA256" and data["signature_algorithm"] == "rsa-sha256"
    token = consent_token(http, demo, who, data)

    r = http.post(f"{ESIGP}/signatures/server/raw/batch", headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "signature_algorithm": data["signature_algorithm"],
        "requests": [{"digest_value": d["digest"]} for d in data["sessionDigests"]]})
    assert r.status_code == 200, r.text
    values = r.json()["signatures"]
    assert len(values) == 2

    r = api.finalize({d["sessionId"]: base64.b64decode(v) for d, v in zip(data["sessionDigests"], values)})
    assert r.status_code == 200, r.text
    assert [x["sessionId"] for x in r.json()["data"]["results"]] == sids
    assert all("error" not in x for x in r.json()["data"]["results"])

    root = root_of(ca_pem)
    for n, sid in enumerate(sids):
        info, pdf = api.result(sid)
        assert info["name"] == f"līgums-{n}.pdf"
        verdict = pyhanko_pdf(pdf, root)
        assert verdict["intact"] and verdict["trusted"] and verdict["timestamped"], verdict["summary"]
        assert verdict["has_dss"] and verdict["signatures"] == 1
        signer = verdict["signature"].signer_cert
        assert base64.b64encode(signer.dump()).decode() == who.certificate_b64
        path = tmp_path / f"signed-{n}.pdf"
        path.write_bytes(pdf)
        assert "Signature is Valid." in pdfsig(path)

        report = validate(api, sid)
        sig = report["signaturesExt"][0]
        assert (sig["indication"], sig["subIndication"]) == ("TOTAL-PASSED", None), sig
        assert sig["signatureFormat"] == "PAdES_BASELINE_LT", sig
        assert sig["signedBy"] == who.user["display_name"]


def test_asice_xades_b_lt_with_a_server_held_ec_identity(api: SignApi, http: httpx.Client, demo: dict[str, str],
                                                         identities: dict[str, Enrolled], ca_pem: bytes,
                                                         tmp_path: Path) -> None:
    who = identities["ec"]
    files = {"iesniegums.txt": "Labdien! Iesniegums ar garumzīmēm.\n".encode(), "dati.xml": b"<dati>42</dati>"}
    sid = api.start()
    for name, content in files.items():
        api.upload(sid, name, content)
    data = calculate(api, [sid], who, sign_as_pdf=False, create_new=True)
    assert data["signature_algorithm"] == "ecdsa"
    [session] = data["sessionDigests"]
    token = consent_token(http, demo, who, data)

    r = http.post(f"{ESIGP}/signatures/server/raw", headers=bearer(token), json={
        "digest_value": session["digest"], "signature_algorithm": data["signature_algorithm"],
        "sign_identity_id": who.identity_id})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream", r.text
    r = api.finalize({sid: r.content})
    assert r.status_code == 200, r.text

    info, container = api.result(sid)
    assert info["name"].endswith(".edoc")
    assert sorted(d["name"] for d in info["includedDocuments"]) == sorted(files)
    zf = zipfile.ZipFile(io.BytesIO(container))
    assert zf.read("mimetype") == b"application/vnd.etsi.asic-e+zip"
    signatures = [n for n in zf.namelist() if n.startswith("META-INF/signatures")]
    assert len(signatures) == 1
    ok, out = xmlsec_verify(tmp_path, zf.read(signatures[0]), {n: zf.read(n) for n in files}, ca_pem)
    assert ok, out[-3000:]
    assert who.certificate_b64 in zf.read(signatures[0]).decode()

    report = validate(api, sid)
    sig = report["signaturesExt"][0]
    assert (sig["indication"], sig["subIndication"]) == ("TOTAL-PASSED", None), sig
    assert sig["signatureFormat"] == "XAdES_BASELINE_LT", sig
    assert report["signatureForm"] == "ASiC-E"
    assert sorted(f["filename"] for f in report["includedFiles"]) == sorted(files)

    # the consent is spent: the same token cannot sign again
    r = http.post(f"{ESIGP}/signatures/server/raw", headers=bearer(token), json={
        "digest_value": session["digest"], "sign_identity_id": who.identity_id})
    assert r.status_code == 403 and r.json()["reason"] == "replayed", r.text
