"""The Cloud Signature Consortium API over HTTP, v1.0.4.0 and v2.0.0.2.

* pyHanko's own ``CSCSigner`` (v1: base URL and an OAuth2 token; the integrator's authorization
  manager calls ``credentials/authorize`` with the PIN, as pyHanko's documentation asks) signs a
  PDF; remotesign's validator, pyHanko's and poppler's ``pdfsig`` accept it.
* A v2 client written from the specification signs hashes with a SAD (RSA PKCS#1 v1.5, RSASSA-PSS,
  ECDSA in DER, each checked with ``openssl pkeyutl``) and documents through ``signDoc`` at B-LT
  and B-LTA (PAdES, checked by pyHanko, pdfsig and the validator), CAdES of a digest (``openssl
  cms``) and XAdES (``xmlsec1``).
* SCAL2 refusals: another hash, more signatures than authorized, a replayed and an expired SAD,
  another user's credential, another client's token; ``extendTransaction``; the OAuth2
  credential scope (RAR and PKCE) signing its hashes once; PAR; the one-time code by e-mail;
  asynchronous signing; auth/login.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import algos
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.consent import REDIRECT_URI, Enrolled, enrol, register_redirect
from tests.crash_tools import database
from tests.csc_client import (ECDSA_SHA256, RSA, RSA_PSS, SHA256, SHA256_RSA, Csc, approve, authorize_page, b64,
                              b64url, code_of, log_in, token_request, user_token)
from tests.csc_service import admin_token, client, http, svc  # noqa: F401 - the module's fixtures
from tests.harness import Service, free_port
from tests.mailbox import mailbox
from tests.pdfgen import pdf_bytes
from tests.verifiers import pdfsig, pyhanko_pdf, root_of, xmlsec_verify

pytestmark = pytest.mark.slow
OTP = re.compile(r"\b(\d{8})\b")


@pytest.fixture(scope="module")
def alice(http: httpx.Client, admin_token: str) -> Enrolled:
    return enrol(http, admin_token, pin="4711")


@pytest.fixture(scope="module")
def ca_pem(http: httpx.Client) -> bytes:
    return http.get("/pki/ca.pem").content


def service_token(http: httpx.Client, version: str, client: dict[str, str], who: Enrolled) -> str:
    return str(user_token(http, version, client, who.username, who.password, {"scope": "service"})["access_token"])


@pytest.fixture(scope="module")
def v1(http: httpx.Client, client: dict[str, str], alice: Enrolled) -> Csc:
    return Csc(http, "v1", service_token(http, "v1", client, alice))


@pytest.fixture(scope="module")
def v2(http: httpx.Client, client: dict[str, str], alice: Enrolled) -> Csc:
    return Csc(http, "v2", service_token(http, "v2", client, alice))


def certificate(api: Csc, credential: str) -> x509.Certificate:
    info = api.ok("credentials/info", {"credentialID": credential})
    return x509.load_der_x509_certificate(base64.b64decode(info["cert"]["certificates"][0]))


def pkeyutl_verify(tmp: Path, cert: x509.Certificate, digest: bytes, signature: bytes, hash_name: str = "sha256",
                   pss: bool = False) -> None:
    """``openssl pkeyutl -verify`` of a signature over a digest, with the certificate's public key."""
    (tmp / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (tmp / "digest.bin").write_bytes(digest)
    (tmp / "sig.bin").write_bytes(signature)
    args = ["openssl", "pkeyutl", "-verify", "-certin", "-inkey", str(tmp / "cert.pem"), "-in", str(tmp / "digest.bin"),
            "-sigfile", str(tmp / "sig.bin"), "-pkeyopt", f"digest:{hash_name}"]
    if pss:
        args += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:digest"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "Verified Successfully" in result.stdout, result.stdout + result.stderr


def validate(svc: Service, admin_token: str, name: str, data: bytes,
             detached: tuple[str, bytes] | None = None) -> list[dict[str, Any]]:
    files = [("file", (name, data))] + ([("detached", detached)] if detached else [])
    r = httpx.post(svc.url + "/v1/validations", files=files, timeout=120,
                   headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 200, r.text
    return r.json()["simpleReport"]["signaturesExt"]  # type: ignore[no-any-return]


# -- info and credentials -----------------------------------------------------------------------------

def test_info_answers_each_version_with_its_fields(http: httpx.Client, svc: Service) -> None:
    one = http.post("/csc/v1/info", json={}).json()
    two = http.post("/csc/v2/info", json={"lang": "en-US"}).json()
    assert one["specs"] == "1.0.4.0" and two["specs"] == "2.0.0.2"
    assert one["oauth2"] == svc.url + "/csc/v1" and "oauth2code" in one["authType"] and "basic" in one["authType"]
    assert "credentials/sendOTP" in one["methods"] and "signatures/signDoc" not in one["methods"]
    assert {"signatures/signDoc", "credentials/getChallenge", "oauth2/pushed_authorize"} <= set(two["methods"])
    assert RSA_PSS in two["signAlgorithms"]["algos"] and two["conformance_levels"][-1] == "Ades-B-LTA"
    assert two["signature_formats"]["formats"] == ["C", "X", "P"] and two["asynchronousOperationMode"] is True
    meta = http.get("/.well-known/oauth-authorization-server/csc/v2").json()
    assert meta["issuer"] == two["oauth2Issuer"] and meta["authorization_endpoint"] == two["oauth2"] + "/oauth2/authorize"
    assert meta["pushed_authorization_request_endpoint"].endswith("/csc/v2/oauth2/pushed_authorize")
    assert http.get("/csc/v1/.well-known/oauth-authorization-server").json()["issuer"] == one["oauth2"]
    logo = http.get("/csc/logo.svg")
    assert logo.status_code == 200 and logo.headers["content-type"].startswith("image/svg+xml")
    assert http.post("/csc/v9/info").status_code == 404


def test_credentials_list_and_info_show_the_users_own_credential(v1: Csc, v2: Csc, alice: Enrolled) -> None:
    assert v1.ok("credentials/list")["credentialIDs"] == [alice.identity_id]
    listed = v2.ok("credentials/list", {"credentialInfo": True, "certificates": "chain", "certInfo": True})
    [info] = listed["credentialInfos"]
    assert info["credentialID"] == alice.identity_id and info["SCAL"] == "2" and info["multisign"] >= 1
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in info["cert"]["certificates"]]
    assert len(chain) >= 2 and chain[0].issuer == chain[1].subject  # signer first, then its issuer
    assert info["cert"]["serialNumber"] == format(chain[0].serial_number, "X")
    assert re.fullmatch(r"\d{14}Z", info["cert"]["validFrom"]) and info["key"]["len"] == 2048
    assert info["auth"]["expression"] == "PIN OR OTP" and {o["id"] for o in info["auth"]["objects"]} == {"PIN", "OTP"}
    assert info["signatureQualifier"] == "eu_eidas_qes"  # the built-in CA's qualified profile: QcCompliance + QcSSCD
    one = v1.ok("credentials/info", {"credentialID": alice.identity_id, "certInfo": True})
    assert one["authMode"] == "explicit" and one["PIN"]["presence"] == "optional" and one["OTP"]["type"] == "online"
    assert re.fullmatch(r"\d{14}\+0000", one["cert"]["validTo"]) and len(one["cert"]["certificates"]) == 1
    assert set(one["key"]["algo"]) >= {RSA, SHA256_RSA, RSA_PSS}


def test_another_users_credential_is_unknown_and_never_usable(http: httpx.Client, client: dict[str, str],
                                                               admin_token: str, alice: Enrolled, v1: Csc,
                                                               svc: Service) -> None:
    bob = enrol(http, admin_token, pin="2468")
    bob_api = Csc(http, "v1", service_token(http, "v1", client, bob))
    assert bob_api.ok("credentials/list")["credentialIDs"] == [bob.identity_id]
    for method, body in (("credentials/info", {"credentialID": alice.identity_id}),
                         ("credentials/authorize", {"credentialID": alice.identity_id, "numSignatures": 1,
                                                    "hash": [b64(bytes(32))], "PIN": alice.pin}),
                         ("credentials/sendOTP", {"credentialID": alice.identity_id})):
        assert bob_api.refused(method, body)["error_description"] == "Invalid parameter credentialID"
    # a SAD of Alice's, presented by Bob's application for Alice's credential or his own
    digest = hashlib.sha256(b"alice's document").digest()
    sad = v1.authorize_pin(alice.identity_id, alice.pin, [digest])
    for credential in (alice.identity_id, bob.identity_id):
        error = bob_api.refused("signatures/signHash", {"credentialID": credential, "SAD": sad, "hash": [b64(digest)],
                                                        "signAlgo": SHA256_RSA})
        assert error["error_description"] in ("Invalid parameter credentialID", "Invalid parameter SAD"), error
    # another relying party's client, with Alice's own login, sees nothing of the demo client's users
    other = svc.new_client("csc-other")
    other_token = svc.token(other["client_id"], other["client_secret"])
    register_redirect(http, other_token)
    error = Csc(http, "v1", other_token).refused("credentials/list", {}, status=401)
    assert error["error"] == "invalid_token"  # a client token is not a CSC user token
    # Alice's SAD still signs for Alice: nothing was spent by the refusals
    signed = v1.ok("signatures/signHash", {"credentialID": alice.identity_id, "SAD": sad, "hash": [b64(digest)],
                                           "signAlgo": SHA256_RSA})
    assert len(signed["signatures"]) == 1


# -- pyHanko's CSC client -----------------------------------------------------------------------------

def test_pyhanko_csc_signer_signs_a_pdf_through_v1(svc: Service, v1: Csc, alice: Enrolled, ca_pem: bytes,
                                                    admin_token: str, tmp_path: Path) -> None:
    import aiohttp
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers, timestamps
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.signers.csc_signer import (CSCAuthorizationManager, CSCServiceSessionInfo, CSCSigner,
                                                 fetch_certs_in_csc_credential)

    assert v1.token is not None
    authorized: list[list[str]] = []

    async def sign() -> bytes:
        async with aiohttp.ClientSession() as session:
            info = CSCServiceSessionInfo(svc.url, alice.identity_id, oauth_token=v1.token)
            credential = await fetch_certs_in_csc_credential(session, info)
            assert credential.hash_pinning_required and credential.max_batch_size >= 1

            class PinAuthorization(CSCAuthorizationManager):
                """What pyHanko asks the integrator to write: credentials/authorize with the user's PIN."""

                async def authorize_signature(self, hash_b64s: list[str]) -> Any:
                    authorized.append(hash_b64s)
                    body = self.format_csc_auth_request(pin=alice.pin, hash_b64s=hash_b64s)
                    async with session.post(info.endpoint_url("credentials/authorize"), json=body,
                                            headers=self.auth_headers, raise_for_status=True) as response:
                        return self.parse_csc_auth_response(await response.json())

            signer = CSCSigner(session, PinAuthorization(info, credential))
            meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=SigSeedSubFilter.PADES,
                                                md_algorithm="sha256")
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes(text="signed through CSC v1")))
            tsa = timestamps.HTTPTimeStamper(svc.url + "/pki/tsa")
            out = await signers.async_sign_pdf(writer, meta, signer=signer, timestamper=tsa)
            return out.getvalue()

    signed = asyncio.run(sign())
    assert len(authorized) == 1 and len(authorized[0]) == 1  # one hash pinned to the SAD (SCAL2)
    [result] = validate(svc, admin_token, "csc-v1.pdf", signed)
    assert result["indication"] == "TOTAL-PASSED" and result["signatureFormat"] == "PAdES_BASELINE_T", result
    checked = pyhanko_pdf(signed, root_of(ca_pem))
    assert checked["intact"] and checked["trusted"] and checked["timestamped"], checked["summary"]
    (tmp_path / "signed.pdf").write_bytes(signed)
    report = pdfsig(tmp_path / "signed.pdf")
    assert "Signature is Valid" in report and f"Test {alice.username}" in report, report


# -- v2 hash signing ------------------------------------------------------------------------------------

def test_v2_sad_signs_exactly_its_hashes_once(v2: Csc, alice: Enrolled, tmp_path: Path) -> None:
    cert = certificate(v2, alice.identity_id)
    digests = [hashlib.sha256(f"document {n}".encode()).digest() for n in range(3)]
    sad = v2.authorize_pin(alice.identity_id, alice.pin, digests)
    sign = {"credentialID": alice.identity_id, "SAD": sad, "hashAlgorithmOID": SHA256, "signAlgo": RSA}
    other = hashlib.sha256(b"something the user never saw").digest()
    assert v2.refused("signatures/signHash", sign | {"hashes": [b64(other)]})["error_description"] == \
        "Hash is not authorized by the SAD"
    no_hash_algo = {k: v for k, v in sign.items() if k != "hashAlgorithmOID"}
    assert "hashAlgo" in v2.refused("signatures/signHash", no_hash_algo | {"hashes": [b64(digests[0])]})[
        "error_description"]  # rsaEncryption needs the hash named
    first = v2.ok("signatures/signHash", sign | {"hashes": [b64(digests[0]), b64(digests[1])]})["signatures"]
    for digest, value in zip(digests, first):
        pkeyutl_verify(tmp_path, cert, digest, base64.b64decode(value))
    # signed once: the same hash again is refused; the last one still signs; then the SAD is used up
    assert v2.refused("signatures/signHash", sign | {"hashes": [b64(digests[0])]})["error_description"] == \
        "Hash is not authorized by the SAD"
    [last] = v2.ok("signatures/signHash", sign | {"hashes": [b64(digests[2])]})["signatures"]
    pkeyutl_verify(tmp_path, cert, digests[2], base64.b64decode(last))
    replay = v2.refused("signatures/signHash", sign | {"hashes": [b64(digests[2])]})
    assert "used" in replay["error_description"], replay


def test_more_signatures_than_authorized_and_an_expired_sad_are_refused(v2: Csc, alice: Enrolled,
                                                                        svc: Service) -> None:
    digest = hashlib.sha256(b"one").digest()
    sad = v2.authorize_pin(alice.identity_id, alice.pin, [digest])
    sign = {"credentialID": alice.identity_id, "SAD": sad, "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA}
    error = v2.refused("signatures/signHash", sign | {"hashes": [b64(digest), b64(digest)]})
    assert "1 more signature" in error["error_description"], error
    mismatch = {"credentialID": alice.identity_id, "numSignatures": 2, "hashes": [b64(digest)],
                "hashAlgorithmOID": SHA256, "authData": [{"id": "PIN", "value": alice.pin}]}
    assert "numSignatures" in v2.refused("credentials/authorize", mismatch)["error_description"]
    with database(svc.home) as db:  # the SAD's lifetime runs out
        past = (datetime.now(timezone.utc) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        db.execute("UPDATE signature_activations SET expires_at = ? WHERE status = 'active'", (past,))
        db.commit()
    assert v2.refused("signatures/signHash", sign | {"hashes": [b64(digest)]})["error_description"] == "SAD expired"
    assert v2.refused("signatures/signHash", sign | {"SAD": "not-a-sad", "hashes": [b64(digest)]})[
        "error_description"] == "Invalid parameter SAD"


def test_wrong_pin_is_refused_and_counted(http: httpx.Client, client: dict[str, str], admin_token: str) -> None:
    carol = enrol(http, admin_token, pin="1357")
    api = Csc(http, "v2", service_token(http, "v2", client, carol))
    body = {"credentialID": carol.identity_id, "numSignatures": 1, "hashes": [b64(bytes(32))],
            "hashAlgorithmOID": SHA256, "authData": [{"id": "PIN", "value": "0000"}]}
    answers = [api.refused("credentials/authorize", body) for _ in range(3)]
    assert all(a["error"] == "invalid_pin" for a in answers), answers
    assert "2 tries left" in answers[0]["error_description"] and "1 tries left" in answers[1]["error_description"]
    locked = api.refused("credentials/authorize", body | {"authData": [{"id": "PIN", "value": carol.pin}]})
    assert locked["error"] == "invalid_pin" and "lock" in locked["error_description"].lower(), locked


def test_pss_and_ecdsa_values_verify_with_openssl(http: httpx.Client, client: dict[str, str], admin_token: str,
                                                  v2: Csc, alice: Enrolled, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"pss").digest()
    sad = v2.authorize_pin(alice.identity_id, alice.pin, [digest])
    params = algos.RSASSAPSSParams({"hash_algorithm": {"algorithm": "sha256"},
                                    "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
                                    "salt_length": 32})
    bad_params = algos.RSASSAPSSParams({"hash_algorithm": {"algorithm": "sha256"},
                                        "mask_gen_algorithm": {"algorithm": "mgf1",
                                                               "parameters": {"algorithm": "sha256"}},
                                        "salt_length": 20})
    sign = {"credentialID": alice.identity_id, "SAD": sad, "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
            "signAlgo": RSA_PSS}
    assert "signAlgoParams" in v2.refused("signatures/signHash", sign | {"signAlgoParams": b64(bad_params.dump())})[
        "error_description"]
    [value] = v2.ok("signatures/signHash", sign | {"signAlgoParams": b64(params.dump())})["signatures"]
    pkeyutl_verify(tmp_path, certificate(v2, alice.identity_id), digest, base64.b64decode(value), pss=True)

    dave = enrol(http, admin_token, pin="8642", algorithm="ec-p256")
    ec_api = Csc(http, "v1", service_token(http, "v1", client, dave))
    info = ec_api.ok("credentials/info", {"credentialID": dave.identity_id})
    assert info["key"]["curve"] == "1.2.840.10045.3.1.7" and ECDSA_SHA256 in info["key"]["algo"]
    sad = ec_api.authorize_pin(dave.identity_id, dave.pin, [digest])
    assert "signAlgo" in ec_api.refused("signatures/signHash", {"credentialID": dave.identity_id, "SAD": sad,
                                                                "hash": [b64(digest)], "signAlgo": SHA256_RSA})[
        "error_description"]  # an RSA signature from an EC key: refused before the SAD is spent
    [value] = ec_api.ok("signatures/signHash", {"credentialID": dave.identity_id, "SAD": sad, "hash": [b64(digest)],
                                                "hashAlgo": SHA256, "signAlgo": ECDSA_SHA256})["signatures"]
    signature = base64.b64decode(value)
    assert signature[0] == 0x30  # DER SEQUENCE, as CMS embeds it
    pkeyutl_verify(tmp_path, certificate(ec_api, dave.identity_id), digest, signature)


def test_extend_transaction_renews_only_what_is_left(v1: Csc, alice: Enrolled, tmp_path: Path) -> None:
    digests = [hashlib.sha256(f"page {n}".encode()).digest() for n in range(2)]
    sad = v1.authorize_pin(alice.identity_id, alice.pin, digests)
    sign = {"credentialID": alice.identity_id, "signAlgo": SHA256_RSA}
    v1.ok("signatures/signHash", sign | {"SAD": sad, "hash": [b64(digests[0])]})
    stranger = hashlib.sha256(b"not authorized").digest()
    error = v1.refused("credentials/extendTransaction", {"credentialID": alice.identity_id, "SAD": sad,
                                                         "hash": [b64(stranger)]})
    assert error["error_description"] == "Hash is not authorized by the SAD"
    extended = v1.ok("credentials/extendTransaction", {"credentialID": alice.identity_id, "SAD": sad,
                                                       "hash": [b64(digests[1])]})
    assert extended["SAD"] != sad and extended["expiresIn"] > 0
    assert v1.refused("signatures/signHash", sign | {"SAD": sad, "hash": [b64(digests[1])]})  # the old SAD is gone
    [value] = v1.ok("signatures/signHash", sign | {"SAD": extended["SAD"], "hash": [b64(digests[1])]})["signatures"]
    pkeyutl_verify(tmp_path, certificate(v1, alice.identity_id), digests[1], base64.b64decode(value))


# -- OAuth2 -----------------------------------------------------------------------------------------------

def test_credential_scope_token_signs_its_hashes_once(http: httpx.Client, client: dict[str, str], alice: Enrolled,
                                                      v2: Csc, tmp_path: Path) -> None:
    digests = [hashlib.sha256(b"contract").digest(), hashlib.sha256(b"annex").digest()]
    details = ('[{"type":"credential","credentialID":"%s","hashAlgorithmOID":"%s","documentDigests":'
               '[{"hash":"%s","label":"contract.pdf"},{"hash":"%s","label":"annex.pdf"}]}]'
               % (alice.identity_id, SHA256, b64(digests[0]), b64(digests[1])))
    page, browser = authorize_page(str(http.base_url), "v2", {"client_id": client["client_id"],
                                                              "authorization_details": details})
    assert page.status_code == 200, page.text[:1000]
    consent_page = log_in(browser, alice.username, alice.password)
    assert "contract.pdf" in consent_page.text and "annex.pdf" in consent_page.text  # what the user authorizes
    r = token_request(http, "v2", client, code_of(approve(browser, alice.pin), browser), browser.verifier)
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["scope"] == "credential" and issued["credentialID"] == alice.identity_id
    api = Csc(http, "v2", issued["access_token"])
    sign = {"credentialID": alice.identity_id, "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA}
    assert api.refused("signatures/signHash", sign | {"hashes": [b64(digests[1]), b64(digests[0])]})[
        "error_description"] == "Hash is not authorized by the access token"  # order matters
    values = api.ok("signatures/signHash", sign | {"hashes": [b64(d) for d in digests]})["signatures"]
    cert = certificate(v2, alice.identity_id)
    for digest, value in zip(digests, values):
        pkeyutl_verify(tmp_path, cert, digest, base64.b64decode(value))
    again = api.call("signatures/signHash", sign | {"hashes": [b64(d) for d in digests]})
    assert again.status_code in (400, 401) and again.json()["error"] in ("invalid_request", "invalid_token")
    # v1 form: the hashes comma-separated in base64url, numSignatures; the token then signs them (v1 signHash)
    issued = user_token(http, "v1", client, alice.username, alice.password,
                        {"scope": "credential", "credentialID": alice.identity_id, "numSignatures": "2",
                         "hash": ",".join(b64url(d) for d in digests)}, pin=alice.pin)
    api = Csc(http, "v1", issued["access_token"])
    values = api.ok("signatures/signHash", {"credentialID": alice.identity_id, "hash": [b64(d) for d in digests],
                                            "signAlgo": SHA256_RSA})["signatures"]
    pkeyutl_verify(tmp_path, cert, digests[1], base64.b64decode(values[1]))
    wrong_count = authorize_page(str(http.base_url), "v1", {
        "client_id": client["client_id"], "scope": "credential", "credentialID": alice.identity_id,
        "numSignatures": "3", "hash": b64url(digests[0])})[0]
    assert wrong_count.status_code in (302, 303) and "error=invalid_request" in wrong_count.headers["location"]


def test_pushed_authorization_request_is_used_once(http: httpx.Client, client: dict[str, str],
                                                   alice: Enrolled) -> None:
    from tests.consent import pkce_pair

    verifier, challenge = pkce_pair()
    r = http.post("/csc/v2/oauth2/pushed_authorize", data={
        "response_type": "code", "client_id": client["client_id"], "client_secret": client["client_secret"],
        "redirect_uri": REDIRECT_URI, "scope": "service", "state": "par-state", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert r.status_code == 201, r.text
    request_uri = r.json()["request_uri"]
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:") and r.json()["expires_in"] > 0
    wrong = http.post("/csc/v2/oauth2/pushed_authorize", data={
        "response_type": "code", "client_id": client["client_id"], "client_secret": "wrong", "scope": "service"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    browser = httpx.Client(base_url=str(http.base_url), timeout=60, follow_redirects=False)
    page = browser.get("/csc/v2/oauth2/authorize", params={"client_id": client["client_id"], "request_uri": request_uri})
    assert page.status_code == 200, page.text[:1000]
    from tests.consent import hidden

    from tests.csc_client import Browser
    b = Browser(browser, hidden(page.text, "request_id"), "par-state", verifier)
    assert log_in(b, alice.username, alice.password).status_code == 200
    code = code_of(approve(b), b)
    token = token_request(http, "v2", client, code, verifier)
    assert token.status_code == 200 and token.json()["scope"] == "service", token.text
    assert Csc(http, "v2", token.json()["access_token"]).ok("credentials/list")["credentialIDs"] == [alice.identity_id]
    again = browser.get("/csc/v2/oauth2/authorize", params={"client_id": client["client_id"], "request_uri": request_uri})
    assert again.status_code == 400 and "request_uri" in again.text
    # revoked at oauth2/revoke: the token stops working
    revoked = http.post("/csc/v2/oauth2/revoke", data={"token": token.json()["access_token"],
                                                       "client_id": client["client_id"],
                                                       "client_secret": client["client_secret"]})
    assert revoked.status_code == 204
    assert Csc(http, "v2", token.json()["access_token"]).refused("credentials/list", {}, status=401)


# -- one-time codes, asynchronous signing, auth/login -------------------------------------------------------

def test_one_time_code_by_email_authorizes_alone_and_once(v1: Csc, v2: Csc, alice: Enrolled) -> None:
    box = mailbox()
    address = f"{alice.username}@example.test"
    before = len(box.messages_to(address))
    r = v1.call("credentials/sendOTP", {"credentialID": alice.identity_id})
    assert r.status_code == 204, r.text
    code = OTP.search(box.wait_for(address, before + 1).get_payload(decode=True).decode()).group(1)
    digest = hashlib.sha256(b"otp document").digest()
    body = {"credentialID": alice.identity_id, "numSignatures": 1, "hash": [b64(digest)]}
    assert v1.refused("credentials/authorize", body | {"OTP": "00000000" if code != "00000000" else "11111111"})[
        "error"] == "invalid_otp"
    sad = v1.ok("credentials/authorize", body | {"OTP": code})["SAD"]
    assert v1.refused("credentials/authorize", body | {"OTP": code})["error"] in ("invalid_otp", "invalid_request")
    v1.ok("signatures/signHash", {"credentialID": alice.identity_id, "SAD": sad, "hash": [b64(digest)],
                                  "signAlgo": SHA256_RSA})
    # a second code within 20 seconds is refused (a resend limit, not a new request)
    assert v1.refused("credentials/sendOTP", {"credentialID": alice.identity_id}, status=429)["error"] == "otp_limit"


def test_get_challenge_sends_the_code_out_of_band(http: httpx.Client, client: dict[str, str],
                                                  admin_token: str) -> None:
    harry = enrol(http, admin_token, pin="5555")
    api = Csc(http, "v2", service_token(http, "v2", client, harry))
    address = f"{harry.username}@example.test"
    before = len(mailbox().messages_to(address))
    assert api.refused("credentials/getChallenge", {"credentialID": harry.identity_id, "authObjectID": "FACE"})
    r = api.call("credentials/getChallenge", {"credentialID": harry.identity_id, "authObjectID": "OTP"})
    assert r.status_code == 204, r.text
    code = OTP.search(mailbox().wait_for(address, before + 1).get_payload(decode=True).decode()).group(1)
    digest = hashlib.sha256(b"v2 otp").digest()
    sad = api.ok("credentials/authorize", {"credentialID": harry.identity_id, "numSignatures": 1,
                                           "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
                                           "authData": [{"id": "OTP", "value": code}]})["SAD"]
    assert api.ok("signatures/signHash", {"credentialID": harry.identity_id, "SAD": sad, "hashes": [b64(digest)],
                                          "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA})["signatures"]


def test_asynchronous_sign_hash_is_fetched_once_by_its_owner(http: httpx.Client, client: dict[str, str],
                                                             admin_token: str, v2: Csc, alice: Enrolled,
                                                             tmp_path: Path) -> None:
    digest = hashlib.sha256(b"async").digest()
    sad = v2.authorize_pin(alice.identity_id, alice.pin, [digest])
    started = v2.ok("signatures/signHash", {"credentialID": alice.identity_id, "SAD": sad, "hashes": [b64(digest)],
                                            "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA,
                                            "operationMode": "A"}, status=202)
    response_id = started["responseID"]
    erin = enrol(http, admin_token, pin="9753")
    stranger = Csc(http, "v2", service_token(http, "v2", client, erin))
    assert stranger.refused("signatures/signPolling", {"responseID": response_id})["error_description"].startswith(
        "Invalid parameter responseID")
    deadline = time.monotonic() + 120
    while True:
        r = v2.call("signatures/signPolling", {"responseID": response_id})
        if r.status_code != 202 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    pkeyutl_verify(tmp_path, certificate(v2, alice.identity_id), digest, base64.b64decode(r.json()["signatures"][0]))
    assert v2.refused("signatures/signPolling", {"responseID": response_id})  # fetched once


def test_basic_login_gives_a_service_token(http: httpx.Client, alice: Enrolled) -> None:
    r = http.post("/csc/v1/auth/login", json={}, auth=(alice.username, alice.password))
    assert r.status_code == 200, r.text
    api = Csc(http, "v1", r.json()["access_token"])
    assert api.ok("credentials/list")["credentialIDs"] == [alice.identity_id]
    assert api.call("auth/revoke", {}).status_code == 204
    assert api.refused("credentials/list", {}, status=401)["error"] == "invalid_token"
    wrong = http.post("/csc/v1/auth/login", json={}, auth=(alice.username, "wrong password"))
    assert wrong.status_code == 400 and wrong.json()["error"] == "authentication_error"


def test_timestamp_is_an_rfc3161_token_over_the_hash(v1: Csc, ca_pem: bytes, tmp_path: Path) -> None:
    from tests.verifiers import openssl_ts_verify

    data = b"time-stamped data"
    r = v1.ok("signatures/timestamp", {"hash": b64(hashlib.sha256(data).digest()), "hashAlgo": SHA256,
                                       "nonce": "1f2e3d"})
    token = base64.b64decode(r["timestamp"])
    assert "Verification: OK" in openssl_ts_verify(tmp_path, token, data, ca_pem)


# -- signDoc ------------------------------------------------------------------------------------------------

def test_sign_doc_pades_at_lt_and_lta(v2: Csc, alice: Enrolled, svc: Service, admin_token: str, ca_pem: bytes,
                                      tmp_path: Path) -> None:
    documents = [pdf_bytes(text="signDoc LT"), pdf_bytes(text="signDoc LTA")]
    sad = v2.authorize_pin(alice.identity_id, alice.pin, [hashlib.sha256(d).digest() for d in documents])
    r = v2.ok("signatures/signDoc", {
        "credentialID": alice.identity_id, "SAD": sad, "hashAlgorithmOID": SHA256, "returnValidationInfo": True,
        "documents": [{"document": b64(documents[0]), "signature_format": "P", "conformance_level": "Ades-B-LT",
                       "signAlgo": SHA256_RSA, "signed_envelope_property": "Revision",
                       "signed_props": [{"attribute_name": "reason", "attribute_value": "I approve"}]},
                      {"document": b64(documents[1]), "signature_format": "P", "conformance_level": "Ades-B-LTA",
                       "signAlgo": SHA256_RSA}]})
    assert r["SignatureObject"] == [] and len(r["DocumentWithSignature"]) == 2
    assert r["validationInfo"]["certificates"] and r["validationInfo"]["ocsp"] + r["validationInfo"]["crl"]
    root = root_of(ca_pem)
    for n, (expected, lta) in enumerate((("PAdES_BASELINE_LT", False), ("PAdES_BASELINE_LTA", True))):
        signed = base64.b64decode(r["DocumentWithSignature"][n])
        [result] = validate(svc, admin_token, f"doc{n}.pdf", signed)
        assert (result["indication"], result["signatureFormat"]) == ("TOTAL-PASSED", expected), result
        checked = pyhanko_pdf(signed, root)
        assert checked["intact"] and checked["trusted"] and checked["has_dss"], checked["summary"]
        assert checked["doc_timestamps"] == (1 if lta else 0)
        (tmp_path / f"doc{n}.pdf").write_bytes(signed)
        assert "Signature is Valid" in pdfsig(tmp_path / f"doc{n}.pdf")
    # the SAD covered these two documents: a third is refused, and nothing else was signed
    refused = v2.refused("signatures/signDoc", {"credentialID": alice.identity_id, "SAD": sad, "documents": [
        {"document": b64(pdf_bytes(text="third")), "signature_format": "P"}]})
    assert "used" in refused["error_description"] or "not authorized" in refused["error_description"], refused


def test_sign_doc_cades_of_a_digest_and_xades(v2: Csc, alice: Enrolled, svc: Service, admin_token: str,
                                              ca_pem: bytes, tmp_path: Path) -> None:
    from tests.test_fortress_signature import openssl_cms

    content = b"a file the service never sees\n"
    xml = b'<?xml version="1.0" encoding="UTF-8"?><invoice><total>10.00</total></invoice>'
    digests = [hashlib.sha256(content).digest()]
    sad = v2.authorize_pin(alice.identity_id, alice.pin, digests)
    r = v2.ok("signatures/signDoc", {"credentialID": alice.identity_id, "SAD": sad, "documentDigests": [
        {"hashes": [b64(digests[0])], "hashAlgorithmOID": SHA256, "signature_format": "C",
         "conformance_level": "Ades-B-T", "signAlgo": SHA256_RSA}]})  # over a digest: Detached by default
    [cms] = [base64.b64decode(o) for o in r["SignatureObject"]]
    openssl_cms(tmp_path, cms, ca_pem, content=content)
    [result] = validate(svc, admin_token, "file.p7s", cms, detached=("file.txt", content))
    assert (result["indication"], result["signatureFormat"]) == ("TOTAL-PASSED", "CAdES_BASELINE_T"), result

    sad = v2.authorize_pin(alice.identity_id, alice.pin, [hashlib.sha256(xml).digest()])
    unsupported = v2.refused("signatures/signDoc", {"credentialID": alice.identity_id, "SAD": sad, "documents": [
        {"document": b64(xml), "signature_format": "J"}]})
    assert "JAdES" in unsupported["error_description"]
    r = v2.ok("signatures/signDoc", {"credentialID": alice.identity_id, "SAD": sad, "documents": [
        {"document": b64(xml), "signature_format": "X", "conformance_level": "Ades-B-B",
         "signed_envelope_property": "Enveloped"}]})
    signed = base64.b64decode(r["DocumentWithSignature"][0])
    ok, log = xmlsec_verify(tmp_path, signed, {}, ca_pem)
    assert ok, log
    [result] = validate(svc, admin_token, "invoice.xml", signed)
    assert (result["indication"], result["signatureFormat"]) == ("TOTAL-PASSED", "XAdES_BASELINE_B"), result


# -- bad input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, body", [
    ("credentials/info", b"{not json"),
    ("credentials/info", b"[1, 2]"),
    ("credentials/info", b'{"credentialID": 7}'),
    ("credentials/authorize", b'{"credentialID": "x", "numSignatures": "many"}'),
    ("signatures/signHash", b'{"credentialID": "x", "hash": ["%%%"], "signAlgo": "1.2.840.113549.1.1.11"}'),
    ("signatures/signHash", b'{"credentialID": "x", "hash": "not a list", "signAlgo": "1.2"}'),
    ("signatures/timestamp", b'{"hash": "AAAA", "hashAlgo": "1.2.3"}'),
    ("credentials/list", b'{"maxResults": -1}'),
])
def test_malformed_requests_get_csc_errors(v1: Csc, method: str, body: bytes) -> None:
    r = v1.http.post(f"/csc/v1/{method}", content=body, headers={"Authorization": f"Bearer {v1.token}",
                                                                 "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request" and r.json()["error_description"], r.text


# -- the device, and the other configurations -----------------------------------------------------------------

def test_v2_authorization_on_the_device_is_asynchronous(http: httpx.Client, client: dict[str, str],
                                                        admin_token: str, tmp_path: Path) -> None:
    from tests.device_client import DeviceApp

    frank = enrol(http, admin_token, pin="2222")
    phone = DeviceApp.register(http, frank.device_code)
    api = Csc(http, "v2", service_token(http, "v2", client, frank))
    digest = hashlib.sha256(b"approved on the phone").digest()
    ask = {"credentialID": frank.identity_id, "numSignatures": 1, "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
           "description": "Loan contract"}
    handle = api.ok("credentials/authorize", ask, status=202)["handle"]
    assert api.ok("credentials/authorizeCheck", {"handle": handle}, status=202)["handle"] == handle  # waiting
    [request] = phone.requests(wait=5)
    assert "Loan contract" in request["data_info"]["html"], request
    assert phone.answer(request, "approve", pin=frank.pin).status_code == 200
    sad = api.ok("credentials/authorizeCheck", {"handle": handle})["SAD"]
    assert api.refused("credentials/authorizeCheck", {"handle": handle})  # the SAD is given once
    [value] = api.ok("signatures/signHash", {"credentialID": frank.identity_id, "SAD": sad, "hashes": [b64(digest)],
                                             "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA})["signatures"]
    pkeyutl_verify(tmp_path, certificate(api, frank.identity_id), digest, base64.b64decode(value))
    handle = api.ok("credentials/authorize", ask, status=202)["handle"]
    [request] = phone.requests(wait=5)
    assert phone.answer(request, "reject").status_code == 200
    assert api.refused("credentials/authorizeCheck", {"handle": handle}, status=403)["error"] == "access_denied"


def test_basic_login_is_off_by_default(service: Service) -> None:
    info = httpx.post(service.url + "/csc/v1/info", timeout=30).json()
    assert info["authType"] == ["oauth2code"] and "auth/login" not in info["methods"]
    r = httpx.post(service.url + "/csc/v1/auth/login", json={}, auth=("someone", "password"), timeout=30)
    assert r.status_code == 404 and r.json()["error"] == "invalid_request"


@pytest.fixture(scope="module")
def scal1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """An operator's other choices: SCAL1 authorizations (a number of signatures) and PIN and code together."""
    service = Service(home=tmp_path_factory.mktemp("csc-scal1"), port=free_port(),
                      env={"REMOTESIGN_CSC_SCAL": "1", "REMOTESIGN_CSC_FACTORS": "pin+otp"}).start()
    yield service
    service.stop()


def test_scal1_with_pin_and_code_counts_signatures(scal1: Service, tmp_path: Path) -> None:
    with httpx.Client(base_url=scal1.url, timeout=120) as http:
        demo = scal1.demo_client()
        admin = scal1.token(demo["client_id"], demo["client_secret"])
        register_redirect(http, admin)
        gina = enrol(http, admin, pin="3141")
        api = Csc(http, "v1", service_token(http, "v1", demo, gina))
        info = api.ok("credentials/info", {"credentialID": gina.identity_id})
        assert info["SCAL"] == "1" and info["PIN"]["presence"] == "true" and info["OTP"]["presence"] == "true"
        body = {"credentialID": gina.identity_id, "numSignatures": 2, "PIN": gina.pin}
        assert api.refused("credentials/authorize", body)["error_description"] == \
            "Missing (or invalid type) string parameter OTP"
        address = f"{gina.username}@example.test"
        before = len(mailbox().messages_to(address))
        assert api.call("credentials/sendOTP", {"credentialID": gina.identity_id}).status_code == 204
        code = OTP.search(mailbox().wait_for(address, before + 1).get_payload(decode=True).decode()).group(1)
        sad = api.ok("credentials/authorize", body | {"OTP": code})["SAD"]
        digests = [hashlib.sha256(f"any {n}".encode()).digest() for n in range(3)]
        sign = {"credentialID": gina.identity_id, "SAD": sad, "signAlgo": SHA256_RSA}
        values = api.ok("signatures/signHash", sign | {"hash": [b64(d) for d in digests[:2]]})["signatures"]
        pkeyutl_verify(tmp_path, certificate(api, gina.identity_id), digests[1], base64.b64decode(values[1]))
        assert api.refused("signatures/signHash", sign | {"hash": [b64(digests[2])]})  # the two are used up
