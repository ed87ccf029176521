"""More of ``/openapi.json`` checked against real answers (tests/test_openapi_answers.py's ``check``:
jsonschema Draft 2020-12, documented statuses and media types):

* the admin API (users, identities, devices, the client's registration and callback key);
* the eSigP sign identities (list, read, PKCS#12 import), ``users/me`` with the identification and
  profile scopes, the raw batch, and the device-approved processes with the approval-device API;
* the SignAPI listing, deletion, close, Config and Share APIs, and the Validation API v1 and v2
  (JSON, and the readable report's media type);
* the Fortress-style ping, user, certificates, status, signature request, state, execution and
  extension (one configuration: an object; several: an array);
* the Remote Signing API's error answers as sent: 400 (the ``responseCode`` body, and the LoopBack
  shape of a body nested too deeply), 401, 403 and 413 (LoopBack), against the documented error
  schemas;
* the whole document: no 2xx JSON answer is described by a schema that constrains nothing, the
  Remote Signing errors are described in its own shapes, and the CSC and PKI statuses the service
  really answers (500, 502, 503) are documented.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.consent import (PROFILE, REDIRECT_URI, USE_DEVICE, USE_SERVER, activate, admin, enrol, register_redirect,
                           summary_of, user_token)
from tests.device_client import ESIGP, b64, bearer, self_signed_pkcs12
from tests.harness import Service
from tests.mailbox import mailbox
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi
from tests.test_fortress_signature import client_token
from tests.test_openapi_answers import check

jsonschema = pytest.importorskip("jsonschema")

IDENTIFY = "urn:lvrtc:fpeil:aa"
IDS = f"{ESIGP}/sign_identities"
SIGNATURES = f"{ESIGP}/signatures"
RS = "/remote-signing"
FORTRESS = "/fortress/api/v1"
PERSON = "010180-15097"


@pytest.fixture(scope="module")
def doc(http: httpx.Client) -> dict[str, Any]:
    r = http.get("/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def check_error(doc: dict[str, Any], method: str, path: str, r: httpx.Response) -> None:
    """``r`` is an error the description documents for ``method path``, and its JSON body validates
    against the documented error schema."""
    what = f"{method.upper()} {path} -> {r.status_code}"
    assert r.status_code >= 400, f"{what}: {r.text[:500]}"
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(r.status_code) in responses, f"{what}: status not documented ({sorted(responses)})"
    schema = responses[str(r.status_code)]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": doc["components"]},
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(r.json())]
    assert not errors, f"{what}: the body does not match its schema:\n" + "\n".join(errors)


# -- the whole document -----------------------------------------------------------------------------
def test_no_2xx_json_answer_is_unconstrained(doc: dict[str, Any]) -> None:
    """Every 2xx JSON schema, its ``$ref`` resolved, says something: properties, items or
    alternatives (the criterion of the review that found the bare ``{"type": "object"}`` ones)."""
    loose = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                for media, entry in (response.get("content") or {}).items():
                    if "json" not in media:
                        continue
                    schema = _resolve(doc, entry.get("schema", {}))
                    if not any(k in schema for k in ("properties", "items", "oneOf", "anyOf", "allOf")):
                        loose.append(f"{method.upper()} {path} {status} {media}: {schema}")
    assert not loose, "\n".join(loose)


def test_error_statuses_and_bodies_as_answered(doc: dict[str, Any]) -> None:
    generic = {"#/components/schemas/Error", "#/components/schemas/EnvelopeError", "#/components/schemas/OAuthError"}
    for path, operations in doc["paths"].items():
        if not path.startswith(RS + "/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"400", "401", "403", "413", "500", "503"} <= set(responses), (method, path, sorted(responses))
            for status, response in responses.items():
                if status[0] in "45":
                    text = json.dumps(response["content"])
                    assert not any(ref in text for ref in generic), (method, path, status, text)
                    assert "RsTransportError" in text, (method, path, status, text)
            assert "RsRefusedAnswer" in json.dumps(responses["400"]) and "RsRefusedAnswer" in json.dumps(
                responses["500"])
    csc = doc["paths"]
    for path in ("/csc/{version}/signatures/timestamp", "/csc/{version}/signatures/signPolling",
                 "/csc/{version}/signatures/signDoc"):
        assert {"500", "502", "503"} <= set(csc[path]["post"]["responses"]), path
    assert "503" in doc["paths"]["/pki/crl/{ca_id}.crl"]["get"]["responses"]


# -- admin API --------------------------------------------------------------------------------------
def test_admin_answers(doc: dict[str, Any], service: Service, http: httpx.Client) -> None:
    creds = service.new_client(f"OpenAPI admin {secrets.token_hex(3)}")
    token = service.token(creds["client_id"], creds["client_secret"])
    h = admin(http, token)
    check(doc, "get", "/v1/client", http.get("/v1/client", headers=h))
    check(doc, "put", "/v1/client/redirect-uris",
          http.put("/v1/client/redirect-uris", json={"redirect_uris": [REDIRECT_URI]}, headers=h))
    check(doc, "get", "/v1/client/callback-secret", http.get("/v1/client/callback-secret", headers=h))
    check(doc, "post", "/v1/client/callback-secret", http.post("/v1/client/callback-secret", headers=h))

    username = f"oapi-{secrets.token_hex(4)}"
    address = f"{username}@example.test"
    r = http.post("/v1/users", json={"username": username, "display_name": "Anna Paraksta", "email": address,
                                     "serial_number": "PNOLV-010101-12345"}, headers=h)
    check(doc, "post", "/v1/users", r)
    user = r.json()
    assert user["activation"] == {"status": "sent", "channel": "email"}, user
    r = http.post("/v1/users", json={"username": f"{username}-quiet", "display_name": "No Mail"}, headers=h)
    check(doc, "post", "/v1/users", r)
    assert r.json()["activation"]["status"] == "pending" and r.json()["activation"]["message"], r.json()

    check(doc, "get", "/v1/users", http.get("/v1/users", headers=h))
    check(doc, "get", "/v1/users/{user_id}", http.get(f"/v1/users/{user['id']}", headers=h))
    r = http.patch(f"/v1/users/{user['id']}", json={"display_name": "Anna B. Paraksta"}, headers=h)
    check(doc, "patch", "/v1/users/{user_id}", r)
    activate(str(http.base_url).rstrip("/"), mailbox().latest_code(address), "correct horse battery", "1357")
    r = http.get(f"/v1/users/{user['id']}", headers=h)
    check(doc, "get", "/v1/users/{user_id}", r)
    assert r.json()["activated"] and r.json()["has_password"], r.json()
    r = http.post(f"/v1/users/{user['id']}/activation", json={"purpose": "device"}, headers=h)
    check(doc, "post", "/v1/users/{user_id}/activation", r)
    device_code = mailbox().latest_code(address, 2)  # the pairing code replaces the one the page showed

    r = http.post(f"/v1/users/{user['id']}/identities", json={"algorithm": "ec-p256", "labels": ["oapi"],
                                                              "description": "OpenAPI"}, headers=h)
    check(doc, "post", "/v1/users/{user_id}/identities", r)
    identity = r.json()["identity"]
    check(doc, "get", "/v1/users/{user_id}/identities", http.get(f"/v1/users/{user['id']}/identities", headers=h))
    r = http.patch(f"/v1/identities/{identity['id']}", json={"status": "disabled", "reason": "lost phone"}, headers=h)
    check(doc, "patch", "/v1/identities/{identity_id}", r)
    assert r.json()["identity"]["status"] == {"value": "disabled", "reason": "lost phone"}, r.json()

    r = http.post("/v1/device/register", json={"activation_code": device_code, "public_key": _device_key(),
                                                "name": "OpenAPI phone"})
    check(doc, "post", "/v1/device/register", r)
    r = http.get(f"/v1/users/{user['id']}/devices", headers=h)
    check(doc, "get", "/v1/users/{user_id}/devices", r)
    assert len(r.json()["devices"]) == 1


def _device_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# -- eSigP and the approval device ------------------------------------------------------------------
def test_esigp_answers(doc: dict[str, Any], http: httpx.Client, demo: dict[str, str], demo_token: str) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    register_redirect(http, demo_token)
    who = enrol(http, demo_token, algorithm="ec-p256", pin="2468")
    r = http.get(IDS, params={"user_id": who.user["id"]}, headers=bearer(demo_token))
    check(doc, "get", IDS, r)
    assert r.json()["sign_identities"] and all("details" not in i for i in r.json()["sign_identities"])
    check(doc, "get", IDS + "/{identity_id}", http.get(f"{IDS}/{who.identity_id}", headers=bearer(demo_token)))
    p12, _ = self_signed_pkcs12(b"pw")
    r = http.post(f"{IDS}/server/pki_x509/pkcs12", headers=bearer(demo_token),
                  json={"pkcs12": b64(p12), "password": "pw", "labels": ["imported"], "user_id": who.user["id"]})
    check(doc, "post", IDS + "/server/pki_x509/pkcs12", r)

    me = "/trustedx-resources/openid/v1/users/me"
    token = user_token(http, demo, who, f"{IDENTIFY} {IDENTIFY}:age {IDENTIFY}:age_18 {PROFILE}")
    for r in (http.get(me, headers=bearer(token)), http.post(me, headers=bearer(token))):
        check(doc, r.request.method, me, r)
        assert r.json()["age_over_18"] is True and isinstance(r.json()["age"], int) and r.json()["sign_identities"]
    token = user_token(http, demo, who, PROFILE)
    r = http.get(me, headers=bearer(token))
    check(doc, "get", me, r)
    assert "sub" not in r.json()

    digests = [hashlib.sha256(f"batch {n}".encode()).digest() for n in range(2)]
    token = user_token(http, demo, who, USE_SERVER, summary=summary_of(digests), summary_alg="SHA256")
    r = http.post(f"{SIGNATURES}/server/raw/batch", headers=bearer(token), json={
        "sign_identity_id": who.identity_id, "requests": [{"digest_value": b64(d)} for d in digests]})
    check(doc, "post", SIGNATURES + "/server/raw/batch", r)
    assert len(r.json()["signatures"]) == 2

    key = ec.generate_private_key(ec.SECP256R1())
    r = http.post("/v1/device/register", json={"activation_code": who.device_code, "name": "OpenAPI phone",
                                                "public_key": key.public_key().public_bytes(
                                                    Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()})
    check(doc, "post", "/v1/device/register", r)
    device = {"Authorization": f"Bearer {r.json()['device_token']}"}
    rp = user_token(http, demo, who, USE_DEVICE)

    def create(digest: bytes) -> str:
        r = http.post(f"{SIGNATURES}/device/raw", headers=bearer(rp), json={
            "input": {"digest_value": b64(digest), "digest_algorithm": "SHA-256",
                      "data_info": {"html": "=eyJjb2RlIjoic2lnbiJ9"}},
            "sign_identities": [{"id": who.identity_id}]})
        check(doc, "post", SIGNATURES + "/device/raw", r)
        return str(r.json()["signature"]["id"])

    digest = hashlib.sha256(b"approved on the phone").digest()
    pid = create(digest)
    r = http.get(f"{SIGNATURES}/{pid}", headers=bearer(rp))
    check(doc, "get", SIGNATURES + "/{process_id}", r)
    assert r.json()["status"] == "pending" and "result" not in r.json()
    r = http.get("/v1/device/requests", params={"wait": 5}, headers=device, timeout=40)
    check(doc, "get", "/v1/device/requests", r)
    [request] = [x for x in r.json()["requests"] if x["id"] == pid]
    signature = key.sign(base64.b64decode(request["approve_text"]), ec.ECDSA(hashes.SHA256()))
    r = http.post(f"/v1/device/requests/{pid}", headers=device,
                  json={"decision": "approve", "signature": b64(signature), "pin": who.pin})
    check(doc, "post", "/v1/device/requests/{process_id}", r)
    assert r.json() == {"id": pid, "status": "finished"}
    r = http.get(f"{SIGNATURES}/{pid}/result", headers=bearer(rp))
    check(doc, "get", SIGNATURES + "/{process_id}/result", r)
    assert r.json()["status"] == "finished" and r.json()["device_type"], r.json()
    r = http.get(f"{SIGNATURES}/{pid}", headers=bearer(rp))
    check(doc, "get", SIGNATURES + "/{process_id}", r)
    assert r.json()["result"]["value"]

    pid = create(hashlib.sha256(b"canceled").digest())
    r = http.post(f"{SIGNATURES}/{pid}/cancel", headers=bearer(rp))
    check(doc, "post", SIGNATURES + "/{process_id}/cancel", r)
    assert r.json()["status"] == "canceled" and r.json()["result"]["status"] == "canceled", r.json()
    check(doc, "get", SIGNATURES + "/{process_id}/result", http.get(f"{SIGNATURES}/{pid}/result", headers=bearer(rp)))


# -- Fortress, then the SignAPI (its validation of the Fortress-signed PDF) -------------------------
@pytest.fixture(scope="module")
def fortress(service: Service) -> httpx.Client:
    client = client_token(service, service.demo_client())
    yield client
    client.close()


def _config(data: bytes, signature_type: str, name: str, ref: str) -> dict[str, Any]:
    return {"ref": ref, "document": {"bytesB64": base64.b64encode(data).decode(), "name": name},
            "signatureType": signature_type, "signatureAlgorithm": "RSA_SHA256"}


@pytest.fixture(scope="module")
def sealed_pdf(doc: dict[str, Any], http: httpx.Client, demo_token: str, fortress: httpx.Client) -> bytes:
    """A PDF sealed at B-T by an e-seal of a legal person, unattended, through the Fortress API;
    every answer on the way checked."""
    check(doc, "get", FORTRESS + "/ping", fortress.get(f"{FORTRESS}/ping"))
    r = http.post("/v1/users", json={"username": f"oapi-seal-{secrets.token_hex(3)}", "display_name": "OpenAPI Ltd",
                                     "kind": "legal", "serial_number": "NTRLV-40003000000"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    seal_user = r.json()
    r = http.post(f"/v1/users/{seal_user['id']}/identities", json={"algorithm": "rsa-2048"},
                  headers=admin(http, demo_token))
    assert r.status_code == 201, r.text
    seal = r.json()["identity"]
    for suffix, template in (("", "/user/{user_code}"), ("/certificate", "/user/{user_code}/certificate"),
                             ("/status", "/user/{user_code}/status")):
        r = fortress.get(f"{FORTRESS}/user/{seal_user['username']}{suffix}")
        check(doc, "get", FORTRESS + template, r)
    assert r.json() == {"auth": False, "sign": True}  # a seal's user never logs in, its e-seal signs unattended

    r = fortress.post(f"{FORTRESS}/signature", json={"certificateCode": seal["id"], "signatureConfigurations": [
        _config(pdf_bytes(text="OpenAPI sealed"), "PADES_T", "sealed.pdf", "p1"),
        _config(b"raw value", "PKCS1", "value.bin", "r1")]})
    check(doc, "post", FORTRESS + "/signature", r)
    exe = r.json()["exeCode"]
    assert r.json()["authCode"] is None
    check(doc, "get", FORTRESS + "/signature/{exe_code}", fortress.get(f"{FORTRESS}/signature/{exe}"))
    r = fortress.post(f"{FORTRESS}/signature/execute/{exe}")
    check(doc, "post", FORTRESS + "/signature/execute/{exe_code}", r)
    signed = {x["ref"]: base64.b64decode(x["bytesB64"]) for x in r.json()}
    r = fortress.get(f"{FORTRESS}/signature/{exe}")
    check(doc, "get", FORTRESS + "/signature/{exe_code}", r)
    assert r.json()["status"] == "DONE" and r.json()["async"] is False, r.json()
    return signed["p1"]


def test_fortress_extend(doc: dict[str, Any], fortress: httpx.Client, sealed_pdf: bytes) -> None:
    one = _config(sealed_pdf, "PADES_LT", "sealed.pdf", "")
    r = fortress.post(f"{FORTRESS}/signature/extend", json={"extendSignatureConfigurations": [one]})
    check(doc, "post", FORTRESS + "/signature/extend", r)
    assert isinstance(r.json(), dict)
    value = _config(hashlib.sha512(b"a signature value").digest() * 4, "PKCS1", "sig.bin", "")
    r = fortress.post(f"{FORTRESS}/signature/extend", json={"extendSignatureConfigurations": [one, value]})
    check(doc, "post", FORTRESS + "/signature/extend", r)
    assert isinstance(r.json(), list) and len(r.json()) == 2


def test_signapi_answers(doc: dict[str, Any], api: SignApi, sealed_pdf: bytes) -> None:
    sid, other = api.start(2)
    document = api.upload(sid, "sealed.pdf", sealed_pdf)["data"]
    spare = api.upload(sid, "spare.txt", b"to be deleted\n")["data"]
    r = api.client.get(f"/api-storage/v1.0/{sid}/list")
    check(doc, "get", "/api-storage/v1.0/{session_id}/list", r)
    r = api.client.delete(f"/api-storage/v1.0/{sid}/{spare['id']}")
    check(doc, "delete", "/api-storage/v1.0/{session_id}/{document_id}", r)

    for version in ("v1.0", "v2.0"):
        path = f"/api-validation/{version}/{{session_id}}/{{document_id}}/validate"
        r = api.client.get(f"/api-validation/{version}/{sid}/{document['id']}/validate")
        check(doc, "get", path, r)
        [signature] = r.json()["data"]["signaturesExt"]
        assert signature["indication"] == "TOTAL-PASSED", signature
        if version == "v2.0":
            assert signature["timestamps"] and signature["signerExt"]["certificate"], signature
        r = api.client.get(f"/api-validation/{version}/{sid}/{document['id']}/validate",
                           headers={"Accept": "text/html"})
        check(doc, "get", path, r)
        assert r.headers["content-type"].startswith("text/html")

    check(doc, "get", "/api-config/v1.0/", api.client.get("/api-config/v1.0/"))
    check(doc, "get", "/api-config/v1.0/public/key", api.client.get("/api-config/v1.0/public/key"))

    r = api.client.post(f"/api-share/v1.0/{sid}/persons", json={"persons": [
        {"personId": PERSON, "accessRights": ["view", "sign"]}, {"personId": "320000-12345"}], "note": "OpenAPI"})
    check(doc, "post", "/api-share/v1.0/{session_id}/persons", r)
    check(doc, "get", "/api-share/v1.0/{session_id}/persons", api.client.get(f"/api-share/v1.0/{sid}/persons"))
    check(doc, "get", "/api-share/v1.0/{person_id}/sessions", api.client.get(f"/api-share/v1.0/{PERSON}/sessions"))
    r = api.client.delete(f"/api-share/v1.0/{sid}/persons/{PERSON}")
    check(doc, "delete", "/api-share/v1.0/{session_id}/persons/{person_id}", r)
    check(doc, "get", "/api-session/v1.0/{session_id}/close", api.client.get(f"/api-session/v1.0/{other}/close"))


# -- Remote Signing errors --------------------------------------------------------------------------
def test_remote_signing_error_bodies(doc: dict[str, Any], service: Service) -> None:
    name = f"OpenAPI errors {secrets.token_hex(3)}"
    creds = service.new_client(name)
    login = RS + "/clients/login"
    register = RS + "/certificates/register"
    with httpx.Client(base_url=service.url, timeout=60) as rs:
        r = rs.post(login, json={"username": creds["client_id"]})  # 400: the responseCode body, 1002
        check_error(doc, "post", login, r)
        assert r.status_code == 400 and r.json()["responseCode"] == 1002 and "error" not in r.json(), r.text
        r = rs.post(login, content=b'{"username":' + b"[" * 40 + b"]" * 40 + b"}",
                    headers={"Content-Type": "application/json"})  # 400 before routing: the LoopBack shape
        check_error(doc, "post", login, r)
        assert r.status_code == 400 and r.json()["error"]["statusCode"] == "400", r.text
        r = rs.post(login, json={"username": creds["client_id"], "password": "wrong", "rpCode": name})
        check_error(doc, "post", login, r)
        assert r.status_code == 401 and r.json()["responseCode"] == 1001, r.text
        r = rs.post(register, json={"ownerUUID": "x"})  # no token
        check_error(doc, "post", register, r)
        assert r.status_code == 401, r.text
        r = rs.post(register, json={"ownerUUID": "x"}, headers={"Authorization": "Bearer not.a.jwt"})
        check_error(doc, "post", register, r)
        assert r.status_code == 401, r.text

        r = rs.post(login, json={"username": creds["client_id"], "password": creds["client_secret"], "rpCode": name})
        assert r.status_code == 200, r.text
        bearer_jwt = {"Authorization": f"Bearer {r.json()['token']}"}
        r = rs.post(register, json={"agreementDetails": "not an object"}, headers=bearer_jwt)
        check_error(doc, "post", register, r)
        assert r.status_code == 400 and r.json()["responseCode"] == 1002, r.text
        service.cli("client", "networks", creds["client_id"], "10.9.8.0/24")
        r = rs.post(register, json={"ownerUUID": "x"}, headers=bearer_jwt)
        check_error(doc, "post", register, r)
        assert r.status_code == 403 and r.json()["responseCode"] == 1000, r.text

    # 413: the declared length is over the API's limit, refused before the body is read
    parts = urlsplit(service.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", register)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(64 << 20))
        connection.endheaders()
        answer = connection.getresponse()
        r = httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read(),
                           request=httpx.Request("POST", service.url + register))
    finally:
        connection.close()
    check_error(doc, "post", register, r)
    assert r.status_code == 413 and r.json()["error"]["name"] == "PayloadTooLargeError", r.text

