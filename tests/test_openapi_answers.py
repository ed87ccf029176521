"""The 2xx answers ``/openapi.json`` describes are what the service sends: real calls that succeed,
each JSON body validated (jsonschema, Draft 2020-12) against the schema the description gives for
its path, method and status, each binary answer's Content-Type among the media types documented;
and no 2xx answer of the document (but the CSC API's) without a schema.

The calls reuse the other tests' drivers (the Remote Signing party of test_remote_signing, the
SignAPI client, the consent pages' flow) on the shared service of conftest.py."""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from tests.consent import AS, USE_SERVER, consent, enrol, exchange, login, redirect_params, start, summary_of
from tests.device_client import ESIGP, b64, bearer
from tests.harness import Service
from tests.mailbox import mailbox
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi
from tests.test_remote_signing import DIGITS, PREFIX, Rs, fresh

jsonschema = pytest.importorskip("jsonschema")

BINARY = {"type": "string", "format": "binary"}
CSC = ("/csc", "/.well-known/oauth-authorization-server/csc")


@pytest.fixture(scope="module")
def doc(http: httpx.Client) -> dict[str, Any]:
    r = http.get("/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def check(doc: dict[str, Any], method: str, path: str, r: httpx.Response) -> None:
    """``r`` is a 2xx the description documents for ``method path``, in a documented media type;
    a JSON body validates against that media type's schema, any other is documented as a string."""
    what = f"{method.upper()} {path} -> {r.status_code}"
    assert 200 <= r.status_code < 300, f"{what}: {r.text[:500]}"
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(r.status_code) in responses, f"{what}: status not documented ({sorted(responses)})"
    content = responses[str(r.status_code)].get("content", {})
    media = r.headers["content-type"].split(";")[0].strip().lower()
    entry = content.get(media) or content.get(media.split("/")[0] + "/*") or content.get("*/*")
    assert entry is not None, f"{what}: {media} is not among {sorted(content)}"
    schema = entry.get("schema")
    assert schema, f"{what}: {media} has no schema"
    if media == "application/json":
        validator = jsonschema.Draft202012Validator({**schema, "components": doc["components"]},
                                                    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(r.json())]
        assert not errors, f"{what}: the body does not match its schema:\n" + "\n".join(errors)
    else:
        assert schema in (BINARY, {"type": "string"}), f"{what}: {media} documented as {schema}"


def test_no_2xx_answer_is_left_without_a_schema(doc: dict[str, Any]) -> None:
    missing = []
    for path, operations in doc["paths"].items():
        if path.startswith(CSC):
            continue
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                content = response.get("content")
                if not content or any(not entry.get("schema") for entry in content.values()):
                    missing.append(f"{method.upper()} {path} {status}")
    assert not missing, "\n".join(missing)


# -- PKI and health ---------------------------------------------------------------------------------
def test_pki_and_health(doc: dict[str, Any], http: httpx.Client) -> None:
    check(doc, "get", "/health", http.get("/health"))
    root, issuing = x509.load_pem_x509_certificates(http.get("/pki/ca.pem").content)[::-1]
    assert issuing.issuer == root.subject
    aia = issuing.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    ca_url = next(a.access_location.value for a in aia if a.access_method == AuthorityInformationAccessOID.CA_ISSUERS)
    r = http.get(urlsplit(ca_url).path)
    check(doc, "get", "/pki/ca/{ca_id}.crt", r)
    assert x509.load_der_x509_certificate(r.content) == root
    crl_url = issuing.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value[0].full_name[0].value
    r = http.get(urlsplit(crl_url).path)
    check(doc, "get", "/pki/crl/{ca_id}.crl", r)
    x509.load_der_x509_crl(r.content)

    issuer = asn1_x509.Certificate.load(root.public_bytes(Encoding.DER))
    request = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": {
        "hash_algorithm": {"algorithm": "sha1"}, "issuer_name_hash": issuer.subject.sha1,
        "issuer_key_hash": issuer.public_key.sha1, "serial_number": issuing.serial_number}}]}}).dump()
    for r in (http.post("/pki/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"}),
              http.get("/pki/ocsp/" + quote(base64.b64encode(request).decode(), safe=""))):
        check(doc, r.request.method, "/pki/ocsp" if r.request.method == "POST" else "/pki/ocsp/{encoded}", r)
        assert asn1_ocsp.OCSPResponse.load(r.content)["response_status"].native == "successful"

    query = tsp.TimeStampReq({"version": 1, "cert_req": True, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"stamp me").digest()}}).dump()
    r = http.post("/pki/tsa", content=query, headers={"Content-Type": "application/timestamp-query"})
    check(doc, "post", "/pki/tsa", r)
    assert tsp.TimeStampResp.load(r.content)["status"]["status"].native == "granted"


# -- OAuth: the TrustedX-style authorization server, the Fortress token, eSigP raw signatures ---------
def _introspect(http: httpx.Client, demo: dict[str, str], token: str) -> httpx.Response:
    return http.post(f"/trustedx-authserver/oauth/{AS}/introspect", data={"token": token},
                     auth=(demo["client_id"], demo["client_secret"]))


def test_tokens_introspection_and_server_raw(doc: dict[str, Any], http: httpx.Client, demo: dict[str, str],
                                             demo_token: str) -> None:
    token_path = "/trustedx-authserver/oauth/{auth_server}/token"
    introspect_path = "/trustedx-authserver/oauth/{auth_server}/introspect"
    r = http.post(f"/trustedx-authserver/oauth/{AS}/token", data={"grant_type": "client_credentials"},
                  auth=(demo["client_id"], demo["client_secret"]))
    check(doc, "post", token_path, r)
    r = _introspect(http, demo, r.json()["access_token"])
    check(doc, "post", introspect_path, r)
    assert r.json()["active"] is True
    r = _introspect(http, demo, "no-such-token")
    check(doc, "post", introspect_path, r)
    assert r.json() == {"active": False}

    r = http.post("/fortress/oauth2/v1/token", params={"scope": "client", "grant_type": "client_credentials",
                                                       "client_id": demo["client_id"],
                                                       "client_secret": demo["client_secret"]})
    check(doc, "post", "/fortress/oauth2/v1/token", r)

    # a user's consent to sign one digest with a server-held identity: the authorization-code grant's
    # token, its introspection (bound to the identity and the digests), and the raw signature
    who = enrol(http, demo_token)
    digest = hashlib.sha256(secrets.token_bytes(16)).digest()
    page, authorization = start(str(http.base_url), demo["client_id"], USE_SERVER, identity_id=who.identity_id,
                                summary=summary_of([digest]), summary_alg="SHA256")
    assert page.status_code == 200, page.text
    assert login(authorization, who.username, who.password).status_code == 200
    code = redirect_params(consent(authorization, "approve", pin=who.pin))["code"]
    r = exchange(http, demo["client_id"], demo["client_secret"], code, authorization.verifier)
    check(doc, "post", token_path, r)
    token = r.json()["access_token"]
    r = _introspect(http, demo, token)
    check(doc, "post", introspect_path, r)
    assert r.json()["sign_identity_id"] == who.identity_id and r.json()["digests_summary"]
    r = http.post(f"{ESIGP}/signatures/server/raw", headers=bearer(token),
                  json={"digest_value": b64(digest), "sign_identity_id": who.identity_id})
    check(doc, "post", "/trustedx-resources/esigp/v1/signatures/server/raw", r)


# -- SignAPI sessions and storage -------------------------------------------------------------------
def _container(name: str, content: bytes) -> bytes:
    """A minimal ASiC-E container holding one file (unsigned: enough for the listing)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/vnd.etsi.asic-e+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr(name, content)
        zf.writestr("META-INF/manifest.xml", (
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
            '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.etsi.asic-e+zip"/>'
            f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="text/plain"/>'
            '</manifest:manifest>'))
    return out.getvalue()


def test_sessions_and_storage(doc: dict[str, Any], api: SignApi) -> None:
    start_path = "/api-session/v1.0/start"
    for params in ({}, {"amount": 1}, {"amount": 2}):
        r = api.client.get(start_path, params=params)
        check(doc, "get", start_path, r)
    one, two = r.json()["data"]["sessionIds"]
    upload = "/api-storage/v1.0/{session_id}/upload"
    pdf = pdf_bytes()
    r = api.client.put(f"/api-storage/v1.0/{one}/upload", files={"file": ("contract.pdf", pdf, "application/pdf")})
    check(doc, "put", upload, r)
    document = r.json()["data"]
    r = api.client.post(f"/api-storage/v1.0/{one}/upload",
                        files={"file": ("bundle.edoc", _container("note.txt", b"hello\n"), "application/octet-stream")})
    check(doc, "post", upload, r)
    assert [f["name"] for f in r.json()["data"].get("includedDocuments", [])] == ["note.txt"], r.json()

    r = api.client.get(f"/api-storage/v1.0/{one}/{document['id']}")
    check(doc, "get", "/api-storage/v1.0/{session_id}/{document_id}", r)
    assert r.content == pdf and r.headers["content-type"] == "application/pdf"

    r = api.client.post(f"/api-storage/v1.0/{two}/addDocumentDigest", json={"files": [
        {"name": "remote.txt", "digest": base64.b64encode(hashlib.sha256(b"remote").digest()).decode()}]})
    check(doc, "post", "/api-storage/v1.0/{session_id}/addDocumentDigest", r)


# -- Remote Signing ---------------------------------------------------------------------------------
class CheckedRs(Rs):
    """The Remote Signing party of test_remote_signing, every answer checked against the description."""

    def __init__(self, svc: Service, name: str, doc: dict[str, Any]) -> None:
        self.doc = doc
        super().__init__(svc, name)

    def call(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        r = self.http.post(path, json=body, **kw)
        check(self.doc, "post", PREFIX + path, r)
        return {"_status": r.status_code, **r.json()}

    def get(self, path: str, template: str) -> dict[str, Any]:
        r = self.http.get(path)
        check(self.doc, "get", PREFIX + template, r)
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def rp(service: Service, doc: dict[str, Any]) -> Iterator[CheckedRs]:
    party = CheckedRs(service, f"OpenAPI answers {secrets.token_hex(3)}", doc)
    yield party
    party.http.close()


def _code(address: str, count: int) -> str:
    found = DIGITS.search(mailbox().wait_for(address, count).get_payload(decode=True).decode())
    assert found
    return found.group(1)


def test_remote_signing(doc: dict[str, Any], rp: CheckedRs, http: httpx.Client, demo_token: str) -> None:
    r = rp.http.post("/clients/login", json={"username": rp.client["client_id"],
                                             "password": rp.client["client_secret"], "rpCode": rp.name})
    check(doc, "post", PREFIX + "/clients/login", r)

    owner = f"oapi-{secrets.token_hex(4)}"
    address = f"{owner}@example.test"
    details = {"personalName": "Trần Thị B", "personalID": secrets.token_hex(5), "country": "VN"}
    agreement, passcode = fresh(rp, owner=owner, ownerEmail=address, agreementDetails=details)  # register, change-pin
    assert rp.detail(agreement)["certificateChain"]
    digests = [hashlib.sha256(f"d{n}".encode()).digest() for n in range(2)]
    assert rp.sign(agreement, digests[:1], code=passcode)["responseCode"] == 0
    assert rp.sign(agreement, digests, code=passcode)["responseCode"] == 0
    accepted = rp.sign(agreement, digests, mode="EXPLICIT/OTP-EMAIL", notificationSubject="Code")
    assert accepted["responseCode"] == 1007, accepted
    done = rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": accepted["billCode"],
                                               "authorizeCode": _code(address, 2)})
    assert done["responseCode"] == 0, done

    pdf = base64.b64encode(pdf_bytes()).decode()
    signed = rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
                                       "mimeType": "application/pdf", "signingFileName": "a.pdf", "signingFileData": pdf,
                                       "signCloudMetaData": {"singletonSigning": {"entry": [
                                           {"key": "FANCYNEWKEY", "value": "1"}]}}})
    assert signed["responseCode"] == 0 and signed["ignoredMetaData"] == ["FANCYNEWKEY"], signed
    downloaded = rp.get(f"/signing/download/file/{signed['billCode']}", "/signing/download/file/{bill_code}")
    assert downloaded["signedFiles"][0]["base64"] == signed["signedFileData"]
    accepted = rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/OTP-EMAIL",
                                         "multipleSigningFileData": [{"signingFileData": pdf, "mimeType": "application/pdf"}]})
    assert accepted["responseCode"] == 1007, accepted
    done = rp.call("/signing/file/authorize", {"agreementUUID": agreement, "billCode": accepted["billCode"],
                                               "authorizeCode": _code(address, 3)})
    assert done["responseCode"] == 0, done

    # the signed PDF validated by the native API: the JSON reports and the ETSI XML one
    for report in ("simple", "detailed", "etsi"):
        r = http.post("/v1/validations", headers={"Authorization": f"Bearer {demo_token}"}, data={"report": report},
                      files=[("file", ("a.pdf", base64.b64decode(signed["signedFileData"]), "application/pdf"))],
                      timeout=120)
        check(doc, "post", "/v1/validations", r)
    assert r.headers["content-type"].startswith("application/xml")

    assert rp.call("/certificates/change", {"agreementUUID": agreement,
                                            "agreementDetails": {**details, "title": "CEO"}})["responseCode"] == 1007
    assert rp.call("/certificates/renew", {"agreementUUID": agreement,
                                           "certificateProfile": "T2PSB23Y"})["responseCode"] == 1007
    assert rp.call("/certificates/disable", {"agreementUUID": agreement})["responseCode"] == 1007
    assert rp.detail(agreement)["agreementStatus"] == "DISABLED"
    assert rp.sign(agreement, digests[:1], code=passcode)["responseCode"] == 1013  # a refusal, at 200
    assert rp.call("/certificates/enable", {"agreementUUID": agreement})["responseCode"] == 1007
    wrong = rp.sign(agreement, digests[:1], code="00000000" if passcode != "00000000" else "11111111")
    assert wrong["responseCode"] == 1004 and wrong["remainingCounter"] == 2 and wrong["detail"], wrong
    assert rp.call("/certificates/forget-pin", {"agreementUUID": agreement})["responseCode"] == 1007
    assert rp.call("/certificates/revoke", {"agreementUUID": agreement})["responseCode"] == 1007
