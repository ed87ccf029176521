"""The two public eParaksts clients replayed call by call against the running service: the Go
signing service ``signbyte/eparaksts-signer`` and the PHP library ``denissceluiko/eparaksts`` (+ its
Laravel wrapper). Helpers build each request as that client does (headers, form/query encoding,
multipart layout, JSON) and check what it reads with the types and statuses it accepts: Go any 2xx
into typed structs; PHP exact 200/201 or < 300 and decoded arrays. A failing test is a call that
client would fail on."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.consent import Authorization, Enrolled, activate, consent, hidden, login, redirect_params
from tests.device_client import DeviceApp, verify_raw
from tests.harness import Service
from tests.mailbox import mailbox
from tests.pdfgen import pdf_bytes
from tests.signapi import issue_card
from tests.verifiers import pyhanko_pdf, root_of, xmlsec_verify

AS_PATH = "/trustedx-authserver/oauth/lvrtc-eipsign-as"
TOKEN_PATH = AS_PATH + "/token"
ESIGP = "/trustedx-resources/esigp/v1"
USERS_ME = "/trustedx-resources/openid/v1/users/me"
LOGOUT = "/trustedx-authserver/lvrtc-eipsign-idp/logout"
INTROSPECT = "urn:safelayer:eidas:oauth:token:introspect"
IDENTIFY = "urn:lvrtc:fpeil:aa"
PROFILE = "urn:safelayer:eidas:sign:identity:profile"
USE_SERVER = "urn:safelayer:eidas:sign:identity:use:server"
USE_DEVICE = "urn:safelayer:eidas:sign:identity:use:device"
ACR_MOBILE = "urn:eparaksts:authentication:flow:mobileid"
ACR_EID = "urn:eparaksts:authentication:flow:mobile-eid"
GO_CALLBACK = "http://127.0.0.1:9/api/v1/signatures/callback"
PHP_CALLBACK = "http://127.0.0.1:9/eparaksts/callback"
PERSONAL_CODE = "PNOLV-010180-15097"  # born 01.01.1980: the claims can tell the age
PHP_ALGORITHMS = ("rsa-sha1", "rsa-sha256", "rsa-sha384", "rsa-sha512", "ecdsa")
CLAIMS = ("name", "given_name", "family_name", "serial_number")  # what laravel's identification reads


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def is_2xx(r: httpx.Response) -> bool:  # Go: resp.StatusCode/100 != 2 -> error
    return r.status_code // 100 == 2


def json_int(value: object) -> bool:  # a JSON number Go's int64 takes (bool is not one)
    return isinstance(value, int) and not isinstance(value, bool)


# -- relying parties and their users ------------------------------------------------------------------
@dataclass
class RelyingParty:
    client_id: str
    secret: str
    admin: dict[str, str]  # admin API headers (client-credentials token)
    redirect_uri: str


def relying_party(service: Service, http: httpx.Client, name: str, client_id: str, redirect_uri: str) -> RelyingParty:
    """A client with a ``+`` in its id (raw and form-encoded Basic differ) and exactly one redirect URI."""
    created = json.loads(service.cli("client", "create", name, "--client-id", client_id).stdout)
    admin = {"Authorization": "Bearer " + service.token(created["client_id"], created["client_secret"])}
    r = http.put("/v1/client/redirect-uris", json={"redirect_uris": [redirect_uri]}, headers=admin)
    assert r.status_code == 200, r.text
    return RelyingParty(created["client_id"], created["client_secret"], admin, redirect_uri)


def enrol_person(http: httpx.Client, rp: RelyingParty, algorithm: str, pin: str = "2580") -> Enrolled:
    """As tests.consent.enrol, with a personal code (identification claims need one)."""
    username = f"person-{secrets.token_hex(4)}"
    address = f"{username}@example.test"
    r = http.post("/v1/users", headers=rp.admin, json={"username": username, "display_name": "Anna Bērziņa",
                                                       "email": address, "serial_number": PERSONAL_CODE})
    assert r.status_code == 201, r.text
    user = r.json()
    device_code = activate(str(http.base_url).rstrip("/"), mailbox().latest_code(address), "correct horse 1", pin)
    r = http.post(f"/v1/users/{user['id']}/identities", json={"algorithm": algorithm}, headers=rp.admin)
    assert r.status_code == 201, r.text
    return Enrolled(user, r.json()["identity"], username, "correct horse 1", pin, device_code)


def through_pages(http: httpx.Client, url: str, who: Enrolled, redirect_uri: str, pin: str | None = None,
                  action: str = "approve") -> dict[str, str]:
    """The browser on the authorize URL the client built: login page, consent page, redirect back."""
    with httpx.Client(base_url=str(http.base_url), timeout=30, follow_redirects=False) as browser:
        r = browser.get(url)
        assert r.status_code == 200, r.text[:2000]
        a = Authorization(browser, hidden(r.text, "request_id"), None, "")
        assert login(a, who.username, who.password).status_code == 200
        return redirect_params(consent(a, action, pin=pin), redirect_uri)


def certificate(b64_der: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(b64_der))


# -- the Go client (signbyte/eparaksts-signer) ---------------------------------------------------------
def go_der(value_b64: str) -> bytes:
    """signing/ecdsa.go: a clean DER SEQUENCE{r>0, s>0} passes, 64/96/132-byte r||s is re-encoded,
    anything else is 'bad signature encoding'."""
    raw = base64.b64decode(value_b64, validate=True)
    if raw[:1] == b"\x30":
        try:
            r, s = utils.decode_dss_signature(raw)
            if r > 0 and s > 0 and utils.encode_dss_signature(r, s) == raw:
                return raw
        except ValueError:
            pass
    assert len(raw) in (64, 96, 132), f"Go: bad signature encoding ({len(raw)} bytes)"
    half = len(raw) // 2
    return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


class GoClient:
    def __init__(self, http: httpx.Client, rp: RelyingParty) -> None:
        self.http, self.rp = http, rp
        self.correlation = secrets.token_hex(8)
        self._signapi_token: str | None = None

    # eidas host
    def token_form(self, fields: dict[str, str]) -> httpx.Response:
        """E1/E4: url.Values.Encode (sorted, QueryEscape), raw Basic, ';charset=UTF-8' without a space."""
        basic = b64(f"{self.rp.client_id}:{self.rp.secret}".encode())
        return self.http.post(TOKEN_PATH, content=urlencode(sorted(fields.items()), quote_via=quote_plus).encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                                       "Accept": "application/json", "Authorization": f"Basic {basic}"})

    def read_token(self, r: httpx.Response) -> str:
        body = r.json() if is_2xx(r) else {}
        assert isinstance(body.get("access_token"), str) and body["access_token"], r.text
        assert "expires_in" not in body or json_int(body["expires_in"]), body  # int64 or the call fails
        return str(body["access_token"])

    def signapi_token(self) -> str:
        self._signapi_token = self._signapi_token or self.read_token(
            self.token_form({"grant_type": "client_credentials", "scope": INTROSPECT}))
        return self._signapi_token

    def authorize_url(self, params: dict[str, str]) -> str:
        """E2/E3: the browser redirect, keys sorted, values QueryEscape'd (space -> '+')."""
        params = {"client_id": self.rp.client_id, "redirect_uri": self.rp.redirect_uri, "response_type": "code",
                  "state": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(), **params}
        return AS_PATH + "?" + urlencode(sorted(params.items()), quote_via=quote_plus)

    def leg(self, who: Enrolled, params: dict[str, str], pin: str | None = None) -> str:
        """Authorize -> pages -> callback (state, code; no error) -> E4 code exchange."""
        url = self.authorize_url(params)
        back = through_pages(self.http, url, who, self.rp.redirect_uri, pin)
        assert "error" not in back and f"state={back['state']}&" in url + "&" and back.get("code"), back
        return self.read_token(self.token_form({"code": back["code"], "grant_type": "authorization_code",
                                                "redirect_uri": self.rp.redirect_uri}))

    def resource(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.http.request(method, path, content=None if body is None else json.dumps(body).encode(),
                                 headers=headers)

    def users_me(self, token: str) -> list[dict[str, Any]]:
        r = self.resource("GET", USERS_ME, token)
        assert is_2xx(r), r.text
        identities = r.json().get("sign_identities")
        assert isinstance(identities, list) and identities, r.text  # missing -> ErrIdentityNotFound
        for i in identities:
            assert isinstance(i["id"], str) and isinstance(i["description"], str), i
            assert isinstance(i["status"], dict) and isinstance(i["status"]["value"], str), i  # struct, not string
            assert isinstance(i["labels"], list) and all(isinstance(x, str) for x in i["labels"]), i
            for a in i.get("access") or []:
                assert isinstance(a["user_id"], str) and isinstance(a["permissions"], list), i
        return identities

    def identity_certificate(self, token: str, identity_id: str) -> str:
        r = self.resource("GET", f"{ESIGP}/sign_identities/{quote(identity_id, safe='')}", token)
        assert is_2xx(r), r.text
        cert = r.json()["identity"]["details"]["certificate"]
        assert isinstance(cert, str) and certificate(cert), r.text
        return str(cert)

    # SignAPI host
    def signapi(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.signapi_token()}", "Accept": "application/json",
                   "X-Correlation-ID": self.correlation, **kw.pop("headers", {})}
        if body is not None:
            kw["content"] = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.http.request(method, path, headers=headers, timeout=120, **kw)

    def start(self) -> str:  # S1: no amount
        r = self.signapi("GET", "/api-session/v1.0/start")
        sid = r.json()["data"]["sessionId"] if is_2xx(r) else None
        assert isinstance(sid, str) and sid, r.text
        return sid

    def upload(self, sid: str, name: str, content: bytes, mime: str | None = None) -> dict[str, Any]:
        """S2: Go mime/multipart, one part ``file``, filename %q-quoted, part type only when known."""
        boundary = secrets.token_hex(30)
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename={quoted}\r\n'
        head += f"Content-Type: {mime}\r\n" if mime else ""
        body = head.encode() + b"\r\n" + content + f"\r\n--{boundary}--\r\n".encode()
        r = self.signapi("PUT", f"/api-storage/v1.0/{sid}/upload", content=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert is_2xx(r), r.text
        data = r.json()["data"]
        assert isinstance(data["id"], str) and data["id"] and isinstance(data["name"], str), r.text
        assert all(isinstance(d["id"], str) for d in data.get("includedDocuments") or []), r.text
        return data  # type: ignore[no-any-return]

    def calculate(self, sids: list[str], cert: str, sign_as_pdf: bool) -> dict[str, Any]:
        """S3: capital path, both booleans always present; reads a data *object* of strings."""
        r = self.signapi("POST", "/api-sign/v1.0/CalculateDigest", {
            "sessions": [{"sessionId": s} for s in sids], "certificate": cert, "signAsPdf": sign_as_pdf,
            "createNewEdoc": not sign_as_pdf})
        data = r.json()["data"] if is_2xx(r) else None
        assert isinstance(data, dict), r.text
        for key in ("digests_summary", "algorithm", "signature_algorithm"):
            assert isinstance(data[key], str) and data[key], (key, r.text)
        digests = {d["sessionId"]: d["digest"] for d in data["sessionDigests"]}
        assert set(sids) <= set(digests) and all(isinstance(v, str) for v in digests.values()), r.text
        return data  # type: ignore[no-any-return]

    def finalize(self, values: dict[str, bytes], auth_cert: str) -> None:  # S5
        r = self.signapi("POST", "/api-sign/v1.0/finalizeSigning", {
            "sessionSignatureValues": [{"sessionId": s, "signatureValue": b64(v)} for s, v in values.items()],
            "authCertificate": auth_cert})
        assert is_2xx(r), r.text

    def list(self, sid: str) -> list[dict[str, Any]]:  # S8
        r = self.signapi("GET", f"/api-storage/v1.0/{sid}/list")
        files = r.json()["data"] if is_2xx(r) else None
        assert isinstance(files, list) and files, r.text
        for f in files:
            assert isinstance(f["id"], str) and isinstance(f["name"], str) and json_int(f["size"]), f
        return files  # type: ignore[no-any-return]

    def download(self, sid: str, file_id: str, asice: bool = False) -> bytes:  # S9, query only for .asice
        r = self.signapi("GET", f"/api-storage/v1.0/{sid}/{file_id}", params={"type": "asice"} if asice else None)
        assert is_2xx(r) and r.content, r.text[:500]
        return r.content

    def close(self, sid: str) -> None:  # S10
        assert is_2xx(self.signapi("GET", f"/api-session/v1.0/{sid}/close"))


@dataclass
class GoSigned:
    sid: str
    upload: dict[str, Any]
    signed: dict[str, Any]  # the list's last entry
    content: bytes
    sign_cert: str
    auth_cert: str


def go_profile_leg(go: GoClient, who: Enrolled, acr: str, eid: bool = False) -> tuple[str, str, str]:
    """E2 -> E4 -> E5 -> identity selection (entrust/identities.go) -> E6 twice:
    (signing identity id, its certificate, the auth identity's certificate)."""
    token = go.leg(who, {"scope": f"{PROFILE} {IDENTIFY}", "acr_values": acr, "ui_locales": "lv"})
    identities = go.users_me(token)
    labels = lambda i: {x.lower() for x in i["labels"]}  # noqa: E731
    enabled = lambda i: str(i["status"]["value"]).lower() == "enabled"  # noqa: E731
    if eid:
        signing = [i for i in identities if i["description"].lower() == "eparaksts:eid:sign"
                   or ({"eid", "x509:keyusage:contentcommitment"} <= labels(i) and enabled(i))]
    else:
        signing = [i for i in identities if {"serverid", "x509:keyusage:contentcommitment"} <= labels(i)
                   and enabled(i) and (not i.get("access") or any("sign" in a["permissions"] for a in i["access"]))]
    auth = [i for i in identities if i["description"].lower() == "eparaksts:mobileid:auth"
            or {"mobileid", "x509:keyusage:digitalsignature"} <= labels(i)]
    assert signing and auth, identities
    return (signing[0]["id"], go.identity_certificate(token, signing[0]["id"]),
            go.identity_certificate(token, auth[0]["id"]))


def go_mobile_sign(go: GoClient, who: Enrolled, name: str, content: bytes, mime: str | None) -> GoSigned:
    """The eparakstsMobile flow for one document, in Go's call order."""
    sid = go.start()
    upload = go.upload(sid, name, content, mime)
    sign_id, sign_cert, auth_cert = go_profile_leg(go, who, ACR_MOBILE)
    data = go.calculate([sid], sign_cert, sign_as_pdf=name.endswith(".pdf"))
    token = go.leg(who, {"scope": USE_SERVER, "sign_identity_id": sign_id, "acr_values": ACR_MOBILE,
                         "digests_summary": data["digests_summary"], "ui_locales": "lv",
                         "digests_summary_algorithm": data["algorithm"]}, pin=who.pin)
    digest = next(d["digest"] for d in data["sessionDigests"] if d["sessionId"] == sid)
    r = go.resource("POST", f"{ESIGP}/signatures/server/raw/batch", token, {
        "sign_identity_id": sign_id, "signature_algorithm": data["signature_algorithm"],
        "requests": [{"digest_value": digest, "signature_algorithm": data["signature_algorithm"]}]})
    assert is_2xx(r), r.text
    signatures = r.json()["signatures"]
    assert isinstance(signatures, list) and len(signatures) == 1 and isinstance(signatures[0], str), r.text
    value = go_der(signatures[0])
    verify_raw(certificate(sign_cert), base64.b64decode(digest), value)
    go.finalize({sid: value}, auth_cert)
    files = go.list(sid)
    return GoSigned(sid, upload, files[-1], go.download(sid, files[-1]["id"]), sign_cert, auth_cert)


@pytest.fixture(scope="module")
def go(service: Service, http: httpx.Client) -> GoClient:
    return GoClient(http, relying_party(service, http, "Go signer", f"go+signer-{secrets.token_hex(3)}", GO_CALLBACK))


@pytest.fixture(scope="module")
def go_person(http: httpx.Client, go: GoClient) -> Enrolled:
    return enrol_person(http, go.rp, "ec-p256")  # Go converts every signature as ECDSA


def test_go_client_credentials_token(go: GoClient) -> None:
    r = go.token_form({"grant_type": "client_credentials", "scope": INTROSPECT})
    go.read_token(r)
    assert json_int(r.json()["expires_in"]) and r.json()["expires_in"] > 60, r.text  # cached, refreshed at <60 s


def test_go_declined_consent_comes_back_with_error_and_state(go: GoClient, go_person: Enrolled) -> None:
    url = go.authorize_url({"scope": f"{PROFILE} {IDENTIFY}", "acr_values": ACR_MOBILE})
    back = through_pages(go.http, url, go_person, go.rp.redirect_uri, action="cancel")
    assert back.get("error") and "code" not in back and f"state={back['state']}&" in url + "&", back


def test_go_mobile_server_signing_flow(go: GoClient, go_person: Enrolled, ca_pem: bytes) -> None:
    done = go_mobile_sign(go, go_person, "līgums \"7\".pdf", pdf_bytes(pages=2), "application/pdf")
    assert certificate(done.sign_cert).public_key().curve.name == "secp256r1"  # type: ignore[attr-defined]
    assert done.upload["name"] == 'līgums "7".pdf'
    verdict = pyhanko_pdf(done.content, root_of(ca_pem))
    assert verdict["intact"] and verdict["trusted"] and verdict["timestamped"], verdict["summary"]
    assert b64(verdict["signature"].signer_cert.dump()) == done.sign_cert  # type: ignore[attr-defined]
    for doc_id in (done.upload["id"], done.signed["id"]):  # Go validates the upload's data.id
        r = go.signapi("GET", f"/api-validation/v2.0/{done.sid}/{doc_id}/validate")
        assert is_2xx(r) and r.json()["data"]["signaturesCount"] == 1, r.text
    go.close(done.sid)


def test_go_eid_scan_device_flow(go: GoClient, http: httpx.Client) -> None:
    who = enrol_person(http, go.rp, "ec-p384", pin="13579")
    r = http.post(f"/v1/users/{who.user['id']}/identities", headers=go.rp.admin, json={
        "algorithm": "ec-p384", "labels": ["eid", "x509:keyUsage:contentCommitment"],
        "description": "eparaksts:eid:sign"})
    assert r.status_code == 201, r.text
    eid_id = r.json()["identity"]["id"]
    phone = DeviceApp.register(http, who.device_code, "eID Scan phone")

    sid = go.start()
    go.upload(sid, "iesniegums.pdf", pdf_bytes(), "application/pdf")
    sign_id, sign_cert, auth_cert = go_profile_leg(go, who, ACR_EID, eid=True)
    assert sign_id == eid_id
    data = go.calculate([sid], sign_cert, sign_as_pdf=True)
    assert data["algorithm"] == "SHA384", data
    digest = next(d["digest"] for d in data["sessionDigests"] if d["sessionId"] == sid)

    token = go.leg(who, {"scope": USE_DEVICE, "sign_identity_id": sign_id, "acr_values": ACR_EID,
                         "digests_summary": data["digests_summary"],
                         "digests_summary_algorithm": data["algorithm"]})  # no PIN on the page for use:device

    def device_raw(value: str) -> httpx.Response:  # E8 with entrust/verifcode.go's code and digestAlgoFor
        code = int.from_bytes(hashlib.sha256(base64.b64decode(value)).digest()[-2:], "big") % 10000
        info = {"api_level": 1, "code": f"{code:04d}", "message": "Confirm signing in eParaksts",
                "params": {"deadline": int(time.time() * 1000) + 120_000, "force_pin": True,
                           "transaction_type": "signature"}}
        html = "=" + b64(json.dumps(info, sort_keys=True, separators=(",", ":")).encode())
        algorithm = {48: "sha384", 64: "sha512"}.get(len(base64.b64decode(value)), "sha256")
        return go.resource("POST", f"{ESIGP}/signatures/device/raw", token, {
            "input": {"digest_value": value, "digest_algorithm": algorithm, "data_info": {"html": html}},
            "sign_identities": [{"id": sign_id}], "notify": True})

    other = b64(hashlib.sha384(b"another document").digest())
    r = device_raw(other)  # the authorization is bound to the digests the user consented to
    assert r.status_code == 403 and r.json()["error"] == "access_denied", r.text
    r = device_raw(digest)
    pid = r.json()["signature"]["id"] if is_2xx(r) else None
    assert isinstance(pid, str) and pid, r.text
    r = device_raw(digest)  # spent: a second process with the same token is refused
    assert r.status_code == 403 and r.json()["error"] == "access_denied", r.text

    request = phone.request(pid, wait=10)
    assert request["digest_value"] == digest and phone.answer(request, "approve", pin=who.pin).status_code == 200
    for _ in range(60):  # E9: every answer that is not 2xx / not final means "keep polling"
        r = go.resource("GET", f"{ESIGP}/signatures/{pid}/result", token)
        if is_2xx(r) and r.json()["status"] not in ("pending",):
            break
        time.sleep(0.5)
    assert is_2xx(r) and r.json()["status"] == "finished" and isinstance(r.json()["value"], str), r.text
    value = go_der(r.json()["value"])
    verify_raw(certificate(sign_cert), base64.b64decode(digest), value)
    go.finalize({sid: value}, auth_cert)
    assert is_2xx(go.resource("DELETE", f"{ESIGP}/signatures/{pid}", token))  # E10, deferred
    files = go.list(sid)
    assert files[-1]["name"].endswith(".pdf") and go.download(sid, files[-1]["id"]).startswith(b"%PDF")
    go.close(sid)


@pytest.mark.parametrize("kind", ["pdf", "edoc"])
def test_go_archive_of_an_uploaded_signed_document(kind: str, go: GoClient, go_person: Enrolled, ca_pem: bytes,
                                                   tmp_path: Path) -> None:
    if kind == "pdf":
        first = go_mobile_sign(go, go_person, "akts.pdf", pdf_bytes(), "application/pdf")
    else:
        first = go_mobile_sign(go, go_person, "akts.txt", "Akts ar garumzīmēm.\n".encode(), "text/plain")
    assert first.signed["name"].endswith("." + kind), first.signed
    go.close(first.sid)

    sid = go.start()
    upload = go.upload(sid, first.signed["name"], first.content, None)
    r = go.signapi("POST", "/api-sign/v1.0/addArchive", {"sessions": [{"sessionId": sid}],
                                                         "authCertificate": first.auth_cert})
    assert is_2xx(r), r.text
    archived = go.download(sid, upload["id"])  # by the upload's own data.id, not re-read from list
    assert archived != first.content
    if kind == "pdf":
        assert archived.startswith(first.content)  # an incremental update of the signed PDF
        verdict = pyhanko_pdf(archived, root_of(ca_pem))
        assert verdict["intact"] and verdict["trusted"] and verdict["doc_timestamps"] >= 1, verdict["summary"]
    else:
        assert go.download(sid, upload["id"], asice=True) == archived
        zf = zipfile.ZipFile(io.BytesIO(archived))
        [name] = [n for n in zf.namelist() if n.startswith("META-INF/signatures")]
        xml = zf.read(name)
        assert b"ArchiveTimeStamp" in xml
        ok, out = xmlsec_verify(tmp_path, xml, {"akts.txt": zf.read("akts.txt")}, ca_pem)
        assert ok, out[-3000:]
    go.close(sid)


# -- the PHP library (denissceluiko/eparaksts + laravel-eparaksts) --------------------------------------
def php_query(params: list[tuple[str, Any]]) -> str:
    """http_build_query(array_filter($params)): insertion order, RFC 1738, empty values dropped."""
    kept = [(k, v) for k, v in params if v not in (None, "", "0", False)]
    return urlencode(kept, quote_via=lambda s, *_: quote_plus(s, safe="").replace("~", "%7E"))


def php_json(body: Any) -> bytes:
    return json.dumps(body).replace("/", "\\/").encode()  # json_encode escapes slashes


class PhpClient:
    def __init__(self, http: httpx.Client, rp: RelyingParty) -> None:
        self.http, self.rp = http, rp
        self.signapi_token = ""

    def token(self, grant: str, params: dict[str, str], legacy_basic: bool = False) -> dict[str, Any]:
        """P1: status === 200, no ``error``, ``scope`` one valid scope, ``access_token`` a string."""
        user, password = self.rp.client_id, self.rp.secret
        if legacy_basic:  # <= 0.2.x: base64(urlencode(id) . ':' . urlencode(secret))
            user, password = quote_plus(user, safe=""), quote_plus(password, safe="")
        r = self.http.post(TOKEN_PATH, content=php_query([("grant_type", grant), *params.items()]).encode(),
                           headers={"accept": "application/json", "authorization": "Basic " + b64(f"{user}:{password}"
                                    .encode()), "content-type": "application/x-www-form-urlencoded"})
        body = r.json() if r.status_code == 200 else {"error": r.status_code}
        assert not body.get("error") and isinstance(body["access_token"], str) and body["access_token"], r.text
        assert isinstance(body["scope"], str), body
        assert json_int(body["expires_in"]) or str(body["expires_in"]).isdigit(), body  # intval()
        return body  # type: ignore[no-any-return]

    def authorize_url(self, scope: str, data: list[tuple[str, str]], legacy_redirect: bool = False) -> str:
        """P2 (state as laravel makes it: sha1(uniqid))."""
        state = hashlib.sha1(secrets.token_bytes(8)).hexdigest()
        redirect = ("redirect_url" if legacy_redirect else "redirect_uri", self.rp.redirect_uri)
        return AS_PATH + "?" + php_query([("response_type", "code"), ("client_id", self.rp.client_id),
                                          ("scope", scope), ("state", state), redirect, *data])

    def user_token(self, who: Enrolled, scope: str, data: list[tuple[str, str]] | None = None,
                   legacy_redirect: bool = False, pin: str | None = None) -> str:
        """Laravel: authorize, callback, then the code exchange with ``code`` only (no redirect_uri)."""
        url = self.authorize_url(scope, data or [], legacy_redirect)
        back = through_pages(self.http, url, who, self.rp.redirect_uri, pin)
        assert "error" not in back and back["state"] in url, back
        body = self.token("authorization_code", {"code": back["code"]})
        assert body["scope"] == scope, body  # stored under the returned scope
        return str(body["access_token"])

    def eidas(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:  # P4-P6: no Accept on P6
        kind = {"accept": "application/json"} if body is None else {"Content-Type": "application/json"}
        return self.http.request(method, path, content=None if body is None else php_json(body),
                                 headers={"authorization": f"Bearer {token}", **kind})

    def signapi(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        if not self.signapi_token:
            answer = self.token("client_credentials", {"scope": INTROSPECT})
            assert answer["scope"] == INTROSPECT, answer
            self.signapi_token = answer["access_token"]
        headers = {"accept": "application/json", "authorization": f"Bearer {self.signapi_token}",
                   **kw.pop("headers", {})}
        if body is not None:
            kw["content"] = php_json(body)
            headers["content-type"] = "application/json"
        return self.http.request(method, path, headers=headers, timeout=120, **kw)

    def start(self) -> str:  # Q1: ?amount=1 always, === 201, laravel reads sessionIds[0]
        r = self.signapi("GET", "/api-session/v1.0/start", params={"amount": 1})
        data = r.json()["data"] if r.status_code == 201 else {}
        assert isinstance(data.get("sessionId"), str) and data["sessionIds"][0] == data["sessionId"], r.text
        return str(data["sessionIds"][0])

    def upload(self, sid: str, content: bytes, filename: str | None = None) -> dict[str, Any]:
        """Q3 with a string (not a path): filename ?? 'file.txt', part type always text/plain."""
        boundary = secrets.token_hex(20)
        part = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename or "file.txt"}"'
                f"\r\nContent-Length: {len(content)}\r\nContent-Type: text/plain\r\n\r\n").encode()
        r = self.signapi("PUT", f"/api-storage/v1.0/{sid}/upload", content=part + content + f"\r\n--{boundary}--\r\n"
                         .encode(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 201, r.text
        assert r.json()["data"] and isinstance(r.json()["data"]["id"], str), r.text
        return r.json()["data"]  # type: ignore[no-any-return]

    def list(self, sid: str) -> list[dict[str, Any]]:  # Q4: === 200 and a 'data' key
        r = self.signapi("GET", f"/api-storage/v1.0/{sid}/list")
        assert r.status_code == 200 and "data" in r.json(), r.text
        return r.json()["data"]  # type: ignore[no-any-return]

    def signing(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:  # Q8-Q11: >= 300 throws
        r = self.signapi("POST", f"/api-sign/v1.0/{operation}", body)
        assert r.status_code < 300 and isinstance(r.json(), dict), r.text  # return type array
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def php(service: Service, http: httpx.Client) -> PhpClient:
    return PhpClient(http, relying_party(service, http, "PHP shop", f"php-shop+{secrets.token_hex(3)}", PHP_CALLBACK))


@pytest.fixture(scope="module")
def php_person(http: httpx.Client, php: PhpClient) -> Enrolled:
    return enrol_person(http, php.rp, "rsa-2048")  # RSA here: the PHP client takes PKCS#1 signatures too


@pytest.mark.parametrize("legacy_basic", [False, True], ids=["raw-basic", "urlencoded-basic"])
def test_php_client_credentials_token(php: PhpClient, legacy_basic: bool) -> None:
    body = php.token("client_credentials", {"scope": INTROSPECT}, legacy_basic=legacy_basic)
    assert body["scope"] == INTROSPECT, body


def test_php_session_storage_calls(php: PhpClient) -> None:
    sid = php.start()
    pdf = php.upload(sid, pdf_bytes(), "rekins.pdf")  # PDF bytes announced as text/plain
    assert pdf["name"] == "rekins.pdf"
    text = php.upload(sid, b"Sveiki!\n")
    assert text["name"] == "file.txt"
    assert {f["id"] for f in php.list(sid)} >= {pdf["id"], text["id"]}
    r = php.signapi("GET", f"/api-session/v1.0/{sid}/close")
    assert r.status_code == 200 and isinstance(r.json(), (dict, list)), r.text

    digest = b64(hashlib.sha256(b"digest only").digest())
    for index, wanted in (("0", lambda r: r.status_code == 200), (0, is_2xx)):  # PHP string, Go integer
        sid = php.start()
        r = php.signapi("POST", f"/api-storage/v1.0/{sid}/addDocumentDigest", {
            "files": [{"name": "invoice.xml", "digest": digest, "digest_algorithm": "SHA256"}],
            "signatureIndex": index})
        assert wanted(r) and isinstance(r.json(), (dict, list)), (index, r.status_code, r.text)
        assert [f["name"] for f in php.list(sid)] == ["invoice.xml"]


@pytest.mark.parametrize("scope", [IDENTIFY, IDENTIFY + ":age_18"])
def test_php_identification(php: PhpClient, php_person: Enrolled, scope: str) -> None:
    """Old builds send ``redirect_url`` (no redirect_uri; one URI registered); laravel exchanges without one."""
    token = php.user_token(php_person, scope, [("acr_values", ACR_MOBILE)], legacy_redirect=True)
    for method in ("GET", "POST"):  # 0.2.8+ GET, <= 0.2.x POST
        r = php.eidas(method, USERS_ME, token)
        claims = r.json() if r.status_code == 200 else {}
        assert all(isinstance(claims.get(k), str) and claims[k] for k in CLAIMS), (method, r.status_code, r.text)
        assert claims["serial_number"].endswith("010180-15097"), claims
        assert not scope.endswith("age_18") or claims["age_over_18"] is True, claims


def test_php_profile_server_signing_and_finalize(php: PhpClient, php_person: Enrolled) -> None:
    profile = php.user_token(php_person, PROFILE)
    r = php.eidas("GET", USERS_ME, profile)
    assert r.status_code == 200, r.text
    entries = r.json()["sign_identities"]
    assert all(isinstance(i["details"]["certificate"], str) for i in entries), entries  # bare library: findCert
    signing = next(i for i in entries if i["status"]["value"] == "enabled" and "serverid" in i["labels"])
    r = php.eidas("GET", f"{ESIGP}/sign_identities/{signing['id']}", profile)
    identity = r.json()["identity"] if r.status_code == 200 else {}  # laravel replaces the users/me entry with it
    assert identity["id"] == signing["id"] and identity["status"]["value"] == "enabled", identity
    assert "serverid" in identity["labels"] and isinstance(identity["description"], str), identity
    cert = identity["details"]["certificate"]
    assert cert == signing["details"]["certificate"], identity

    sid = php.start()
    php.upload(sid, "Iesniegums ar garumzīmēm.\n".encode(), "iesniegums.txt")
    r = php.signapi("POST", "/api-sign/v1.0/calculateDigest", {"sessions": [{"sessionId": sid}],
                                                               "certificate": cert})  # array_filter: no false
    assert r.status_code < 300 and isinstance(r.json(), dict), r.text
    data = r.json()["data"]
    assert data["sessionDigests"][0]["sessionId"] == sid and data["signature_algorithm"] in PHP_ALGORITHMS, data
    digest = data["sessionDigests"][0]["digest"]

    token = php.user_token(php_person, USE_SERVER, [
        ("sign_identity_id", signing["id"]), ("digests_summary", data["digests_summary"]),
        ("digests_summary_algorithm", data["algorithm"])], pin=php_person.pin)
    r = php.eidas("POST", f"{ESIGP}/signatures/server/raw", token, {
        "digest_value": digest, "signature_algorithm": data["signature_algorithm"], "sign_identity_id": signing["id"]})
    assert r.status_code == 200, r.text
    verify_raw(certificate(cert), base64.b64decode(digest), r.content)  # the body is the signature itself

    result = php.signing("finalizeSigning", {
        "sessionSignatureValues": [{"sessionId": sid, "signatureValue": b64(r.content)}], "authCertificate": cert})
    assert result["data"]["results"] and result["data"]["results"][0]["sessionId"] == sid, result
    assert not any("error" in x for x in result["data"]["results"]), result
    result = php.signing("addArchive", {"sessions": [{"sessionId": sid}], "authCertificate": cert})  # withArchive()
    assert result["data"]["results"][0]["sessionId"] == sid, result
    first = php.list(sid)[0]  # laravel downloads files[0]
    assert first["name"].endswith(".edoc"), first
    container = php.signapi("GET", f"/api-storage/v1.0/{sid}/{first['id']}", params={"type": "asice"}).content
    zf = zipfile.ZipFile(io.BytesIO(container))
    assert zf.read("mimetype") == b"application/vnd.etsi.asic-e+zip" and "iesniegums.txt" in zf.namelist()
    r = php.signapi("GET", f"/api-validation/v1.0/{sid}/{first['id']}/validate")
    assert isinstance(r.json(), dict) and r.json()["data"]["signaturesCount"] == 1, r.text


def test_php_config_api_and_eseal_with_oaep_password(php: PhpClient, service: Service, tmp_path: Path) -> None:
    r = php.signapi("GET", "/api-config/v1.0/")  # trailing slash; configuration()->get($key) reads the top level
    assert r.json() and json_int(r.json()["fileMaxLength"]) and r.json()["fileMaxLength"] > 0, r.text
    r = php.signapi("GET", "/api-config/v1.0/public/key")
    public = serialization.load_pem_public_key(r.json()["publicKey"].encode())  # top level, SPKI PEM
    seal = issue_card(service, tmp_path, "rsa", cn="Veikals eZīmogs", profile="qualified-seal")
    password = "Zīmoga parole 7"
    pfx = pkcs12.serialize_key_and_certificates(b"seal", seal.key, seal.cert, None,  # type: ignore[arg-type]
                                                serialization.BestAvailableEncryption(password.encode()))
    ciphertext = public.encrypt(password.encode(), padding.OAEP(  # type: ignore[union-attr]
        mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))  # OPENSSL_PKCS1_OAEP_PADDING
    sid = php.start()
    php.upload(sid, b"<rekins><summa>10.00</summa></rekins>", "rekins.xml")
    result = php.signing("eSealCreate", {"sessions": [{"sessionId": sid}], "authCertificate": seal.cert_b64,
                                         "signKey": b64(pfx), "signKeyPassword": b64(ciphertext),
                                         "signAsPdf": False, "createNewEdoc": False})
    assert result["data"]["results"][0]["sessionId"] == sid, result
    assert php.list(sid)[0]["name"].endswith(".edoc")


def test_php_logout(php: PhpClient) -> None:
    r = php.http.get(LOGOUT + "?" + php_query([("redirect_uri", php.rp.redirect_uri)]))
    assert 300 <= r.status_code < 400 and r.headers["location"] == php.rp.redirect_uri, (r.status_code, r.headers)
    evil = "https://evil.example/steal"
    r = php.http.get(LOGOUT + "?" + php_query([("redirect_uri", evil)]))
    assert not r.headers.get("location", "").startswith(evil), (r.status_code, r.headers)


def test_php_share_api(php: PhpClient) -> None:
    """Q15-Q18: the library checks no status; each answer must decode to an array (object or list)."""
    person, sid = "010180-15097", php.start()

    def share(method: str, path: str, body: Any = None) -> str:
        r = php.signapi(method, "/api-share/v1.0/" + path, body)
        assert is_2xx(r) and isinstance(r.json(), (dict, list)), (method, path, r.status_code, r.text)
        return r.text

    share("POST", f"{sid}/persons", {"persons": [{"personId": person, "accessRights": 5}], "note": ""})
    assert person in share("GET", f"{sid}/persons") and sid in share("GET", f"{person}/sessions")
    share("DELETE", f"{sid}/persons/{person}")
    assert person not in share("GET", f"{sid}/persons") and sid not in share("GET", f"{person}/sessions")
