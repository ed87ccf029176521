"""The CSC API's answers are what ``/openapi.json`` says they are.

* No 2xx answer of a CSC operation (but a bodiless 204) is described with an empty schema; the logo
  is ``image/svg+xml`` only.
* Real v1 and v2 calls of a running service (info, the RFC 8414 metadata, oauth2/token of both
  scopes, pushed_authorize, auth/login, credentials/list and info with their options, authorize with
  a PIN and on a paired device, authorizeCheck, extendTransaction, signHash and signDoc at once and
  asynchronously, signPolling, timestamp) answer bodies that validate (JSON Schema 2020-12) against
  the schema the description gives their path, method and status, in ``/openapi.json`` and in the
  version's own ``/openapi/csc-{version}.json``; every documented CSC 2xx JSON answer is met.
* The schemas take no key they do not name: an undocumented field fails.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.consent import REDIRECT_URI, Enrolled, admin, enrol, pkce_pair
from tests.csc_client import SHA256, SHA256_RSA, Csc, b64, b64url, user_token
from tests.csc_service import admin_token, client, http, svc  # noqa: F401 - the module's fixtures
from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.test_csc import service_token

pytestmark = pytest.mark.slow
CSC = ("/csc/", "/.well-known/oauth-authorization-server/csc/")


@pytest.fixture(scope="module")
def description(http: httpx.Client) -> dict[str, Any]:
    r = http.get("/openapi.json")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _csc_answers(doc: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, status, response) of every documented 2xx answer of a CSC operation."""
    for path, operations in doc["paths"].items():
        if path.startswith(CSC):
            for method, operation in operations.items():
                for status, response in operation["responses"].items():
                    if status.startswith("2"):
                        yield method, path, status, response


def _errors(doc: dict[str, Any], schema: dict[str, Any], body: Any) -> list[str]:
    """The ways ``body`` breaks ``schema``, its ``#/components/...`` references read in ``doc``."""
    whole = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": doc["components"], **schema}
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in Draft202012Validator(whole).iter_errors(body)]


class Described:
    """Checks real answers against the description, and notes which documented answers were met."""

    def __init__(self, full: dict[str, Any], per_version: dict[str, dict[str, Any]]) -> None:
        self.full = full
        self.per_version = per_version
        self.seen: set[tuple[str, str, str]] = set()

    def check(self, body: Any, path: str, version: str | None, status: int = 200, method: str = "post",
              media: str = "application/json") -> Any:
        where = [(self.full, path)]
        if version is not None:
            where.append((self.per_version[version], path.replace("{version}", version)))
        for doc, documented_path in where:
            response = doc["paths"][documented_path][method]["responses"][str(status)]
            schema = response["content"][media]["schema"]
            assert schema, (method, documented_path, status)
            problems = _errors(doc, schema, body)
            assert not problems, f"{method.upper()} {documented_path} {status}: {problems}\n{str(body)[:1500]}"
        self.seen.add((method, path, str(status)))
        return body

    def answer(self, r: httpx.Response, path: str, version: str | None, status: int = 200,
               method: str = "post") -> Any:
        assert r.status_code == status, f"{method.upper()} {r.url}: {r.status_code} {r.text[:1000]}"
        assert r.headers["content-type"].split(";")[0] == "application/json", r.headers
        return self.check(r.json(), path, version, status, method)

    def call(self, api: Csc, method: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        return self.answer(api.call(method, body), f"/csc/{{version}}/{method}", api.version, status)


def test_no_csc_answer_has_an_empty_schema(description: dict[str, Any]) -> None:
    found = list(_csc_answers(description))
    assert len(found) > 20
    for method, path, status, response in found:
        if status == "204":
            assert not response.get("content"), (method, path)
            continue
        content = response.get("content")
        assert content, (method, path, status)
        for media, entry in content.items():
            assert entry.get("schema"), (method, path, status, media)
    logo = description["paths"]["/csc/logo.svg"]["get"]["responses"]["200"]
    assert logo["content"] == {"image/svg+xml": {"schema": {"type": "string"}}}


def test_every_csc_answer_matches_its_documented_schema(svc: Service, http: httpx.Client, client: dict[str, str],
                                                        admin_token: str, description: dict[str, Any]) -> None:
    per_version = {}
    for version in ("v1", "v2"):
        r = http.get(f"/openapi/csc-{version}.json")
        assert r.status_code == 200, r.text
        per_version[version] = r.json()
    d = Described(description, per_version)

    # -- without a token: info, the metadata, the logo
    for version in ("v1", "v2"):
        info = d.answer(http.post(f"/csc/{version}/info", json={}), "/csc/{version}/info", version)
        assert ("signAlgorithms" in info) == (version == "v2") and "auth/login" in info["methods"]
        d.answer(http.post(f"/csc/{version}/info", json={"lang": "lv-LV"}), "/csc/{version}/info", version)
        d.answer(http.post(f"/csc/{version}/info"), "/csc/{version}/info", version)  # no body at all
        for path in ("/.well-known/oauth-authorization-server/csc/{version}",
                     "/csc/{version}/.well-known/oauth-authorization-server"):
            meta = d.answer(http.get(path.replace("{version}", version)), path, version, method="get")
            assert ("pushed_authorization_request_endpoint" in meta) == (version == "v2")
    logo = http.get("/csc/logo.svg")
    assert logo.status_code == 200 and logo.headers["content-type"].startswith("image/svg+xml")
    d.check(logo.text, "/csc/logo.svg", None, method="get", media="image/svg+xml")
    assert logo.text.startswith("<svg")

    # -- a user with an RSA and an EC credential; oauth2/token of both scopes, both versions
    alice = enrol(http, admin_token, pin="4711")
    r = http.post(f"/v1/users/{alice.user['id']}/identities", json={"algorithm": "ec-p256"},
                  headers=admin(http, admin_token))
    assert r.status_code == 201, r.text
    ec_id = r.json()["identity"]["id"]
    apis = {}
    for version in ("v1", "v2"):
        issued = d.check(user_token(http, version, client, alice.username, alice.password, {"scope": "service"}),
                         "/csc/{version}/oauth2/token", version)
        assert issued["scope"] == "service" and "credentialID" not in issued
        apis[version] = Csc(http, version, issued["access_token"])
    v1, v2 = apis["v1"], apis["v2"]
    digest = hashlib.sha256(b"credential scope").digest()
    issued = d.check(user_token(http, "v1", client, alice.username, alice.password,
                                {"scope": "credential", "credentialID": alice.identity_id, "numSignatures": "1",
                                 "hash": b64url(digest)}, pin=alice.pin), "/csc/{version}/oauth2/token", "v1")
    assert issued["scope"] == "credential" and issued["credentialID"] == alice.identity_id
    d.call(Csc(http, "v1", issued["access_token"]), "signatures/signHash",
           {"credentialID": alice.identity_id, "hash": [b64(digest)], "signAlgo": SHA256_RSA})

    # -- pushed_authorize (v2), auth/login
    _, challenge = pkce_pair()
    d.answer(http.post("/csc/v2/oauth2/pushed_authorize", data={
        "response_type": "code", "client_id": client["client_id"], "client_secret": client["client_secret"],
        "redirect_uri": REDIRECT_URI, "scope": "service", "code_challenge": challenge,
        "code_challenge_method": "S256"}), "/csc/{version}/oauth2/pushed_authorize", "v2", status=201)
    for version in ("v1", "v2"):
        d.answer(http.post(f"/csc/{version}/auth/login", json={}, auth=(alice.username, alice.password)),
                 "/csc/{version}/auth/login", version)

    # -- credentials/list and credentials/info, with their options
    listed = d.call(v1, "credentials/list")
    assert set(listed["credentialIDs"]) == {alice.identity_id, ec_id} and "onlyValid" not in listed
    assert "nextPageToken" in d.call(v1, "credentials/list", {"maxResults": 1})
    d.call(v2, "credentials/list", {"onlyValid": True})
    paged = d.call(v2, "credentials/list", {"maxResults": 1, "credentialInfo": True, "certificates": "chain",
                                            "certInfo": True, "authInfo": True})
    assert paged["credentialInfos"][0]["credentialID"] == paged["credentialIDs"][0] and "nextPageToken" in paged
    d.call(v2, "credentials/list", {"credentialInfo": True, "certificates": "none", "pageToken": "0"})
    for api in (v1, v2):
        for credential in (alice.identity_id, ec_id):
            for options in ({}, {"certificates": "chain", "certInfo": True, "authInfo": True, "lang": "lv-LV"},
                            {"certificates": "none"}):
                info = d.call(api, "credentials/info", {"credentialID": credential, **options})
                assert ("curve" in info["key"]) == (credential == ec_id)
                assert ("PIN" in info) == (api.version == "v1") and ("auth" in info) == (api.version == "v2")
    # the schemas are strict: a key they do not name, or one missing, is found
    path = "/csc/{version}/credentials/info"
    schema = description["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert _errors(description, schema, info | {"undocumented": 1})
    assert _errors(description, schema, {k: v for k, v in info.items() if k != "key"})

    # -- authorize, extendTransaction, signHash (at once and asynchronously), timestamp
    digests = [hashlib.sha256(f"page {n}".encode()).digest() for n in range(2)]
    sad = d.call(v1, "credentials/authorize", {"credentialID": alice.identity_id, "numSignatures": 2,
                                               "hash": [b64(x) for x in digests], "PIN": alice.pin})["SAD"]
    sign = {"credentialID": alice.identity_id, "signAlgo": SHA256_RSA, "hashAlgo": SHA256}
    d.call(v1, "signatures/signHash", sign | {"SAD": sad, "hash": [b64(digests[0])]})
    extended = d.call(v1, "credentials/extendTransaction", {"credentialID": alice.identity_id, "SAD": sad,
                                                            "hash": [b64(digests[1])]})
    d.call(v1, "signatures/signHash", sign | {"SAD": extended["SAD"], "hash": [b64(digests[1])]})
    sad = d.call(v2, "credentials/authorize", {"credentialID": alice.identity_id, "numSignatures": 1,
                                               "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
                                               "authData": [{"id": "PIN", "value": alice.pin}]})["SAD"]
    started = d.call(v2, "signatures/signHash", {"credentialID": alice.identity_id, "SAD": sad,
                                                 "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
                                                 "signAlgo": SHA256_RSA, "operationMode": "A"}, status=202)
    assert "signatures" in _polled(d, v2, started["responseID"])
    for api in (v1, v2):
        d.call(api, "signatures/timestamp", {"hash": b64(hashlib.sha256(b"stamped").digest()), "hashAlgo": SHA256,
                                             "nonce": "1f2e3d"})

    # -- signDoc (v2): documents with validation info, a digest, and asynchronously (polled while pending)
    documents = [pdf_bytes(text="signDoc answers")]
    sad = v2.authorize_pin(alice.identity_id, alice.pin, [hashlib.sha256(documents[0]).digest()])
    signed = d.call(v2, "signatures/signDoc", {
        "credentialID": alice.identity_id, "SAD": sad, "hashAlgorithmOID": SHA256, "returnValidationInfo": True,
        "documents": [{"document": b64(documents[0]), "signature_format": "P", "conformance_level": "Ades-B-T"}]})
    assert signed["validationInfo"]["certificates"] and len(signed["DocumentWithSignature"]) == 1
    sad = v2.authorize_pin(alice.identity_id, alice.pin, [digest])
    d.call(v2, "signatures/signDoc", {"credentialID": alice.identity_id, "SAD": sad, "documentDigests": [
        {"hashes": [b64(digest)], "hashAlgorithmOID": SHA256, "signature_format": "C",
         "signed_envelope_property": "Detached"}]})
    late = pdf_bytes(text="signDoc later")
    sad = v2.authorize_pin(alice.identity_id, alice.pin, [hashlib.sha256(late).digest()])
    started = d.call(v2, "signatures/signDoc", {
        "credentialID": alice.identity_id, "SAD": sad, "operationMode": "A", "returnValidationInfo": True,
        "documents": [{"document": b64(late), "signature_format": "P", "conformance_level": "Ades-B-LTA"}]},
        status=202)
    assert len(_polled(d, v2, started["responseID"])["DocumentWithSignature"]) == 1

    # -- authorization on a paired device (v2): 202 from authorize and authorizeCheck, then the SAD
    _device_authorization(d, http, client, admin_token)

    documented = {(m, p, s) for m, p, s, response in _csc_answers(description)
                  if s != "204" and set(response.get("content", {})) & {"application/json", "image/svg+xml"}}
    documented.discard(("get", "/csc/{version}/oauth2/authorize", "200"))  # the HTML login page
    assert documented - d.seen == set(), "documented CSC answers no call met"


def _polled(d: Described, api: Csc, response_id: str) -> dict[str, Any]:
    """signPolling until the asynchronous call is done, each answer checked (the first poll follows
    the 202 at once: a B-LTA signature is still pending then)."""
    deadline = time.monotonic() + 120
    while True:
        r = api.call("signatures/signPolling", {"responseID": response_id})
        body = d.answer(r, "/csc/{version}/signatures/signPolling", api.version, status=r.status_code)
        if r.status_code != 202 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return body  # type: ignore[no-any-return]
        assert body == {"responseID": response_id, "status": "pending"}
        time.sleep(0.1)


def _device_authorization(d: Described, http: httpx.Client, client: dict[str, str], admin_token: str) -> None:
    from tests.device_client import DeviceApp

    frank: Enrolled = enrol(http, admin_token, pin="2222")
    phone = DeviceApp.register(http, frank.device_code)
    api = Csc(http, "v2", service_token(http, "v2", client, frank))
    digest = hashlib.sha256(b"approved on the phone").digest()
    pending = d.call(api, "credentials/authorize", {"credentialID": frank.identity_id, "numSignatures": 1,
                                                    "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
                                                    "description": "Loan contract"}, status=202)
    d.call(api, "credentials/authorizeCheck", {"handle": pending["handle"]}, status=202)
    [request] = phone.requests(wait=5)
    assert phone.answer(request, "approve", pin=frank.pin).status_code == 200
    sad = d.call(api, "credentials/authorizeCheck", {"handle": pending["handle"]})["SAD"]
    d.call(api, "signatures/signHash", {"credentialID": frank.identity_id, "SAD": sad, "hashes": [b64(digest)],
                                        "hashAlgorithmOID": SHA256, "signAlgo": SHA256_RSA})
