"""Hostile input over HTTP to the running service: nested and oversized JSON, PDF, XML, ZIP and ASN.1,
and malformed data, at every API that parses them. Each attack must get a clear 4xx in that API's own
error shape (native ``{"error": {"code", "message"}}``, SignAPI ``{"data": null, "error": ...}`` or
its per-session entry, RFC 6749 ``{"error", "error_description"}``, an OCSPResponse or a
TimeStampResp), echo its request id, write at most a short line of log naming that id, and leave the
service answering."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import core, ocsp as asn1_ocsp, tsp
from cryptography.hazmat.primitives import serialization

from tests import hostile_inputs as h
from tests.harness import Service
from tests.signapi import Card, SignApi, issue_card

LOG_BUDGET = 2048  # bytes of log one refused request may add: one short line at most
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SESSION_PLACEHOLDER = "{sid}"
AS = "/trustedx-authserver/oauth/lvrtc-eipsign-as"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Attack:
    """One hostile request: where, what, and the answer it must get."""

    name: str
    method: str
    path: str
    shape: str                              # native | signapi | session | oauth | ocsp | tsa
    statuses: tuple[int, ...] = (400,)
    body: Callable[["Ctx"], dict[str, Any]] = field(default=lambda _ctx: {})
    upload: Callable[[], tuple[str, bytes]] | None = None  # a document put into {sid} first
    codes: tuple[str, ...] = ()             # expected error codes (any), when stable


@dataclass
class Ctx:
    service: Service
    api: SignApi
    card: Card

    @property
    def cert_der(self) -> bytes:
        return self.card.cert.public_bytes(serialization.Encoding.DER)


def _json(raw: bytes, headers: dict[str, str] | None = JSON) -> Callable[[Ctx], dict[str, Any]]:
    return lambda _ctx: {"content": raw, "headers": dict(headers or {})}


def _calc(sign_as_pdf: bool) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: {"json": {"sessions": [{"sessionId": SESSION_PLACEHOLDER}], "certificate": ctx.card.cert_b64,
                                 "signAsPdf": sign_as_pdf}}


def _file(name: str, data: Callable[[], bytes], **extra: Any) -> Callable[[Ctx], dict[str, Any]]:
    return lambda _ctx: {"files": {"file": (name, data()), **extra}}


DEEP_JSON = h.deep_json_array()
DEEP_OBJECT = h.deep_json_object()
BIG_JSON = b"[" + b"1," * 600_000 + b"1]"

ATTACKS: list[Attack] = [
    # --- JSON: nesting, size, malformed, NUL -------------------------------------------------------
    Attack("json-deep-array-signapi", "POST", "/api-sign/v1.0/CalculateDigest", "signapi", body=_json(DEEP_JSON),
           codes=("invalid_json",)),
    Attack("json-deep-object-signapi-finalize", "POST", "/api-sign/v1.0/finalizeSigning", "signapi",
           body=_json(DEEP_OBJECT), codes=("invalid_json",)),
    Attack("json-deep-no-content-type-signapi", "POST", "/api-sign/v1.0/addArchive", "signapi",
           body=_json(DEEP_JSON, None), codes=("invalid_json",)),
    Attack("json-deep-as-xml-signapi", "POST", "/api-sign/v1.0/eSealCreate", "signapi",
           body=_json(DEEP_JSON, {"Content-Type": "application/xml"}), codes=("invalid_json",)),
    Attack("json-unclosed-signapi", "POST", "/api-sign/v1.0/CalculateDigest", "signapi",
           body=_json(h.unclosed_json()), codes=("invalid_json",)),
    Attack("json-deep-member-signapi", "POST", "/api-sign/v1.0/CalculateDigest", "signapi",
           body=_json(h.deep_json_in_member("sessions")), codes=("invalid_json",)),
    Attack("json-deep-storage-digests", "POST", "/api-storage/v1.0/{sid}/addDocumentDigest", "signapi",
           body=_json(h.deep_json_in_member("files")), codes=("invalid_json",)),
    Attack("json-deep-native-keys", "POST", "/v1/keys", "native", body=_json(DEEP_OBJECT), codes=("invalid_request",)),
    Attack("json-deep-native-certificates", "POST", "/v1/certificates", "native", body=_json(DEEP_JSON)),
    Attack("json-deep-native-users", "POST", "/v1/users", "native", body=_json(h.deep_json_in_member("username"))),
    Attack("json-deep-native-trust-anchors", "POST", "/v1/trust-anchors", "native", body=_json(DEEP_JSON)),
    Attack("json-deep-native-redirect-uris", "PUT", "/v1/client/redirect-uris", "native",
           body=_json(h.deep_json_in_member("redirect_uris"))),
    Attack("json-deep-device-register", "POST", "/v1/device/register", "native", body=_json(DEEP_JSON)),
    Attack("json-deep-esigp-raw", "POST", "/trustedx-resources/esigp/v1/signatures/server/raw", "oauth",
           body=_json(DEEP_JSON), codes=("invalid_request",)),
    Attack("json-deep-esigp-batch", "POST", "/trustedx-resources/esigp/v1/signatures/server/raw/batch", "oauth",
           body=_json(h.deep_json_in_member("requests"))),
    Attack("json-deep-esigp-device", "POST", "/trustedx-resources/esigp/v1/signatures/device/raw", "oauth",
           body=_json(DEEP_OBJECT)),
    Attack("json-deep-esigp-pkcs12", "POST", "/trustedx-resources/esigp/v1/sign_identities/server/pki_x509/pkcs12",
           "oauth", body=_json(DEEP_JSON)),
    Attack("json-oversized-native", "POST", "/v1/keys", "native", (413,), _json(BIG_JSON), codes=("payload_too_large",)),
    Attack("json-oversized-signapi", "POST", "/api-sign/v1.0/CalculateDigest", "signapi", (413,), _json(BIG_JSON),
           codes=("payload_too_large",)),
    Attack("json-oversized-oauth", "POST", "/trustedx-resources/esigp/v1/signatures/server/raw", "oauth", (413,),
           _json(BIG_JSON), codes=("payload_too_large",)),
    Attack("json-oversized-storage-digests", "POST", "/api-storage/v1.0/{sid}/addDocumentDigest", "signapi", (413,),
           _json(BIG_JSON), codes=("payload_too_large",)),
    Attack("json-oversized-chunked", "POST", "/v1/keys", "native", (413,),
           lambda _ctx: {"content": iter([b"[" + b"1," * 100_000] * 8 + [b"1]"]), "headers": JSON}),
    Attack("json-huge-integer", "POST", "/v1/keys", "native", body=_json(b'{"algorithm": ' + b"9" * 100_000 + b"}")),
    Attack("json-huge-integer-signapi", "POST", "/api-sign/v1.0/CalculateDigest", "signapi",
           body=_json(b'{"sessions": ' + b"9" * 100_000 + b"}"), codes=("invalid_json",)),
    Attack("json-invalid-utf8", "POST", "/v1/keys", "native", body=_json(b'{"algorithm": "\xff\xfe"}')),
    Attack("json-lone-surrogate", "POST", "/v1/users", "native",
           body=_json(b'{"username": "\\ud800x", "display_name": "\\udfff"}')),
    Attack("json-nul", "POST", "/v1/users", "native", body=_json(b'{"username": "a\\u0000b", "display_name": "x"}')),
    Attack("json-nul-oauth", "POST", "/trustedx-resources/esigp/v1/signatures/server/raw", "oauth",
           body=_json(b'{"digest_value": "\\u0000", "sign_identity_id": "x"}')),
    Attack("json-truncated-signapi", "POST", "/api-sign/v1.0/finalizeSigning", "signapi",
           body=_json(b'{"sessionSignatureValues": [{"sessionId": "'), codes=("invalid_json",)),
    # --- URLs and forms ------------------------------------------------------------------------------
    Attack("url-nul-native", "GET", "/v1/keys/a%00b", "native"),
    Attack("url-nul-signapi", "GET", "/api-storage/v1.0/a%00b/list", "signapi"),
    Attack("url-nul-query", "GET", "/v1/audit?after=%00", "native"),
    Attack("form-nul-oauth", "POST", AS + "/token", "oauth",
           body=lambda _ctx: {"content": b"grant_type=client_credentials&client_id=a%00", "headers": FORM}),
    Attack("form-many-fields-oauth", "POST", AS + "/token", "oauth",
           body=lambda _ctx: {"content": b"&".join(b"a%d=1" % i for i in range(90_000)), "headers": FORM}),
    Attack("form-oversized-oauth", "POST", AS + "/introspect", "oauth", (413,),
           body=lambda _ctx: {"content": b"token=" + b"x" * 1_100_000, "headers": FORM}),
    Attack("multipart-many-parts", "POST", "/v1/validations", "native",
           body=lambda _ctx: {"content": b"".join(b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i
                                                  for i in range(20_000)) + b"--B--\r\n",
                              "headers": {"Content-Type": "multipart/form-data; boundary=B"}}),
    Attack("multipart-many-headers-upload", "PUT", "/api-storage/v1.0/{sid}/upload", "signapi",
           body=lambda _ctx: {"content": b"--B\r\n" + b"X-H: y\r\n" * 50_000 + b'Content-Disposition: form-data; '
                              b'name="file"; filename="a"\r\n\r\nx\r\n--B--\r\n',
                              "headers": {"Content-Type": "multipart/form-data; boundary=B"}}, codes=("invalid_upload",)),
    Attack("multipart-long-filename-upload", "PUT", "/api-storage/v1.0/{sid}/upload", "signapi",
           body=lambda _ctx: {"content": b'--B\r\nContent-Disposition: form-data; name="file"; filename="' + b"a" * 200_000
                              + b'"\r\n\r\nx\r\n--B--\r\n', "headers": {"Content-Type": "multipart/form-data; boundary=B"}},
           codes=("invalid_upload",)),
    # --- PDF: nesting in every place pyHanko reads, loops, broken structure ----------------------------
    *[Attack(f"pdf-{name}-calculate-digest", "POST", "/api-sign/v1.0/CalculateDigest", "session",
             body=_calc(True), upload=(lambda d=data: ("hostile.pdf", d())), codes=("invalid_pdf",))
      for name, data in [
          ("nested-arrays-page", h.pdf_nested_arrays),
          ("nested-dicts-page", h.pdf_nested_dicts),
          ("unclosed-arrays", h.pdf_unclosed_arrays),
          ("nested-acroform", lambda: h.pdf_with(catalog_extra=b"/AcroForm << /Fields " + DEEP_JSON + b" >> ")),
          ("nested-field-kids", lambda: h.pdf_with(catalog_extra=b"/AcroForm 5 0 R ", extra_objects=[
              b"<< /Fields [6 0 R] >>", b"<< /FT /Sig /T (S) /Kids " + DEEP_JSON + b" >>"])),
          ("nested-annots", lambda: h.pdf_with(b"/Annots " + DEEP_JSON + b" ")),
          ("nested-trailer", lambda: h.pdf_with().replace(b"/Root 1 0 R", b"/Root 1 0 R /X " + DEEP_JSON)),
          ("page-tree-loop", h.pdf_page_tree_loop),
          ("truncated", h.pdf_truncated)]],
    *[Attack(f"pdf-{name}-validate", "POST", "/v1/validations", "native", (422,), _file(f"{name}.pdf", data))
      for name, data in [
          ("nested-arrays", h.pdf_nested_arrays),
          ("nested-acroform", lambda: h.pdf_with(catalog_extra=b"/AcroForm << /Fields " + DEEP_JSON + b" >> ")),
          ("nested-trailer", lambda: h.pdf_with().replace(b"/Root 1 0 R", b"/Root 1 0 R /X " + DEEP_JSON)),
          ("truncated", h.pdf_truncated)]],
    Attack("pdf-nested-acroform-validate-v2", "GET", "/api-validation/v2.0/{sid}/{doc}/validate", "signapi",
           upload=lambda: ("hostile.pdf", h.pdf_with(catalog_extra=b"/AcroForm << /Fields " + DEEP_JSON + b" >> "))),
    Attack("pdf-nested-trailer-validate-v1", "GET", "/api-validation/v1.0/{sid}/{doc}/validate", "signapi",
           upload=lambda: ("hostile.pdf", h.pdf_with().replace(b"/Root 1 0 R", b"/Root 1 0 R /X " + DEEP_JSON))),
    # --- XML: depth, entity expansion, external entities, huge text ----------------------------------
    *[Attack(f"xml-{name}-validate", "POST", "/v1/validations", "native", (422,), _file(f"{name}.xml", data),
             codes=("invalid_document",))
      for name, data in [("nested", h.xml_nested), ("billion-laughs", h.xml_billion_laughs),
                         ("external-entity", h.xml_external_entity), ("huge-text", h.xml_huge_text)]],
    Attack("xml-nested-validate-v2", "GET", "/api-validation/v2.0/{sid}/{doc}/validate", "signapi",
           upload=lambda: ("deep.xml", h.xml_nested()), codes=("invalid_document",)),
    # --- ZIP / ASiC-E ------------------------------------------------------------------------------------
    Attack("asice-nested-manifest-upload", "PUT", "/api-storage/v1.0/{sid}/upload", "signapi",
           body=_file("deep.asice", h.asice_nested_manifest), codes=("invalid_manifest",)),
    Attack("asice-billion-laughs-manifest-upload", "PUT", "/api-storage/v1.0/{sid}/upload", "signapi",
           body=_file("laughs.asice", h.asice_billion_laughs_manifest), codes=("invalid_manifest",)),
    Attack("asice-many-entries-upload", "PUT", "/api-storage/v1.0/{sid}/upload", "signapi",
           body=_file("many.asice", h.zip_many_entries), codes=("container_too_large",)),
    Attack("asice-truncated-upload", "PUT", "/api-storage/v1.0/{sid}/upload", "signapi",
           body=_file("cut.asice", lambda: h.asice_nested_signature()[:300]), codes=("invalid_container",)),
    Attack("asice-nested-signature-validate", "POST", "/v1/validations", "native", (422,),
           _file("deep-signature.asice", h.asice_nested_signature)),
    Attack("asice-nested-manifest-validate", "POST", "/v1/validations", "native", (422,),
           _file("deep.asice", h.asice_nested_manifest), codes=("invalid_container",)),
    # --- ASN.1: OCSP and TSA answer in their protocols ----------------------------------------------------
    *[Attack(f"ocsp-{name}", "POST", "/pki/ocsp", "ocsp", (400,),
             lambda _ctx, d=data: {"content": d(), "headers": {"Content-Type": "application/ocsp-request"}})
      for name, data in [("nested", lambda: h.der_nested_sequences(14_000)),
                         ("indefinite", lambda: h.ber_nested_indefinite(15_000)),
                         ("deep-parameters", h.ocsp_request_deep_parameters),
                         ("huge-length", h.der_huge_length)]],
    Attack("ocsp-oversized", "POST", "/pki/ocsp", "ocsp", (413,),
           lambda _ctx: {"content": b"\x30" * 70_000, "headers": {"Content-Type": "application/ocsp-request"}}),
    Attack("ocsp-oversized-past-body-limit", "POST", "/pki/ocsp", "ocsp", (413,),
           lambda _ctx: {"content": b"\x30" * 1_100_000, "headers": {"Content-Type": "application/ocsp-request"}}),
    Attack("ocsp-get-nested", "GET", "/pki/ocsp/" + b64(h.der_nested_sequences(3_000)).replace("/", "%2F"), "ocsp"),
    Attack("ocsp-get-nul", "GET", "/pki/ocsp/AA%00AA", "ocsp"),
    *[Attack(f"tsa-{name}", "POST", "/pki/tsa", "tsa", (400,),
             lambda _ctx, d=data: {"content": d(), "headers": {"Content-Type": "application/timestamp-query"}})
      for name, data in [("nested", lambda: h.der_nested_sequences(14_000)),
                         ("indefinite", lambda: h.ber_nested_indefinite(15_000)),
                         ("deep-parameters", h.tsa_request_deep_parameters),
                         ("huge-length", h.der_huge_length)]],
    Attack("tsa-oversized-past-body-limit", "POST", "/pki/tsa", "tsa", (413,),
           lambda _ctx: {"content": b"\x30" * 1_100_000, "headers": {"Content-Type": "application/timestamp-query"}}),
    # --- ASN.1 in JSON members: certificates, CSRs, PKCS#12, DigestInfo, keys -----------------------------
    Attack("cert-nested-calculate-digest", "POST", "/api-sign/v1.0/CalculateDigest", "signapi",
           body=lambda _ctx: {"json": {"sessions": [{"sessionId": SESSION_PLACEHOLDER}],
                                       "certificate": b64(h.der_nested_sequences(11_000))}},
           codes=("invalid_certificate",)),
    Attack("cert-deep-parameters-calculate-digest", "POST", "/api-sign/v1.0/CalculateDigest", "signapi",
           body=lambda ctx: {"json": {"sessions": [{"sessionId": SESSION_PLACEHOLDER}],
                                      "certificate": b64(h.certificate_deep_parameters(ctx.cert_der, 4_000))}}),
    Attack("cert-deep-extension-calculate-digest", "POST", "/api-sign/v1.0/CalculateDigest", "signapi",
           body=lambda ctx: {"json": {"sessions": [{"sessionId": SESSION_PLACEHOLDER}],
                                      "certificate": b64(h.certificate_deep_extension(ctx.cert_der, 5_000))}}),
    Attack("cert-indefinite-trust-anchor", "POST", "/v1/trust-anchors", "native",
           body=lambda _ctx: {"json": {"certificate": b64(h.ber_nested_indefinite(11_000))}},
           codes=("invalid_certificate",)),
    Attack("cert-deep-parameters-trust-anchor", "POST", "/v1/trust-anchors", "native",
           body=lambda ctx: {"json": {"certificate": b64(h.certificate_deep_parameters(ctx.cert_der, 4_000))}},
           codes=("invalid_certificate",)),
    Attack("cert-nested-validation-trust-part", "POST", "/v1/validations", "native",
           body=lambda _ctx: {"files": {"file": ("a.pdf", h.pdf_with()), "trust": ("t.der", h.der_nested_sequences(20_000))}},
           codes=("invalid_certificate",)),
    Attack("csr-nested", "POST", "/v1/certificates", "native",
           body=lambda _ctx: {"json": {"profile": "qualified-person", "csr": b64(h.der_nested_sequences(11_000))}}),
    Attack("csr-indefinite", "POST", "/v1/certificates", "native",
           body=lambda _ctx: {"json": {"profile": "qualified-person", "csr": b64(h.ber_nested_indefinite(11_000))}}),
    Attack("pkcs12-nested-eseal", "POST", "/api-sign/v1.0/eSealCreate", "signapi",
           body=lambda _ctx: {"json": {"sessions": [{"sessionId": SESSION_PLACEHOLDER}],
                                       "signKey": b64(h.der_nested_sequences(20_000)), "signKeyPassword": b64(b"x" * 256)}}),
    Attack("pkcs12-indefinite-eseal", "POST", "/api-sign/v1.0/eSealCreate", "signapi",
           body=lambda _ctx: {"json": {"sessions": [{"sessionId": SESSION_PLACEHOLDER}],
                                       "signKey": b64(h.ber_nested_indefinite(20_000)), "signKeyPassword": b64(b"x" * 256)}}),
    Attack("spki-nested-device-register", "POST", "/v1/device/register", "native",
           body=lambda _ctx: {"json": {"activation_code": "x", "public_key": b64(h.der_nested_sequences(1_400))}}),
    Attack("cms-nested-validate", "POST", "/v1/validations", "native", (422,),
           _file("deep.p7s", lambda: h.der_nested_sequences(30_000)), codes=("invalid_document",)),
    Attack("cms-indefinite-validate", "POST", "/v1/validations", "native", (422,),
           _file("deep.p7s", lambda: h.ber_nested_indefinite(30_000)), codes=("invalid_document",)),
]


@pytest.fixture(scope="module")
def ctx(service: Service, api: SignApi, tmp_path_factory: pytest.TempPathFactory) -> Ctx:
    return Ctx(service, api, issue_card(service, tmp_path_factory.mktemp("hostile"), "p256", cn="Hostile Tester"))


def _fill(value: Any, sid: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, sid) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, sid) for v in value]
    return sid if value == SESSION_PLACEHOLDER else value


def assert_shape(r: httpx.Response, shape: str, codes: tuple[str, ...]) -> None:
    """The error is in the called API's own shape (and among ``codes`` when given)."""
    if shape == "ocsp":
        assert r.headers["content-type"] == "application/ocsp-response", r.headers
        assert asn1_ocsp.OCSPResponse.load(r.content)["response_status"].native == "malformed_request"
        return
    if shape == "tsa":
        assert r.headers["content-type"] == "application/timestamp-reply", r.headers
        status = tsp.PKIStatusInfo.load(core.Sequence.load(r.content)[0].dump())
        assert status["status"].native == "rejection" and "bad_data_format" in status["fail_info"].native
        return
    body = r.json()
    if shape == "oauth":
        assert isinstance(body["error"], str) and isinstance(body["error_description"], str), body
        code = body["error"]
    elif shape == "native":
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
        code = body["error"]["code"]
    elif shape == "signapi":
        assert body["data"] is None and {"code", "message"} <= set(body["error"]), body
        code = body["error"]["code"]
    else:  # session: the batch answered, this session's entry carries the error
        [entry] = body["data"]["sessionDigests"]
        assert {"code", "message"} <= set(entry["error"]), body
        code = entry["error"]["code"]
    assert not codes or code in codes, f"{code} not in {codes}: {body}"


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_refused_clearly(attack: Attack, ctx: Ctx, service: Service) -> None:
    client = ctx.api.client
    sid = ctx.api.start()
    doc = ""
    if attack.upload is not None:
        name, data = attack.upload()
        doc = ctx.api.upload(sid, name, data)["data"]["id"]
    kwargs = _fill(attack.body(ctx), sid)
    rid = "attack-" + re.sub(r"[^a-z0-9-]", "", attack.name)[:50]
    kwargs["headers"] = {**kwargs.get("headers", {}), "X-Request-Id": rid}
    log = service.home / "service.log"
    before = log.stat().st_size
    r = client.request(attack.method, attack.path.replace("{sid}", sid).replace("{doc}", doc), **kwargs)
    assert r.status_code in attack.statuses, f"{r.status_code}: {r.content[:300]!r}"
    assert r.headers.get("x-request-id") == rid
    assert_shape(r, attack.shape, attack.codes)
    assert client.get("/health").status_code == 200, "the service must still answer"
    grown = log.read_bytes()[before:]
    assert len(grown) < LOG_BUDGET, grown[:3000]
    for line in grown.decode(errors="replace").splitlines():
        if "GET /health" not in line:
            assert rid in line, f"a log line without the request id: {line}"


def test_request_id_is_echoed_or_made(http: httpx.Client) -> None:
    assert http.get("/health", headers={"X-Request-Id": "abc-123.x:y_z"}).headers["x-request-id"] == "abc-123.x:y_z"
    made = http.get("/health", headers={"X-Request-Id": ("bad id; with spaces " * 10).strip()}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", made)
    assert re.fullmatch(r"[0-9a-f]{16}", http.get("/health").headers["x-request-id"])
    assert http.get("/no/such/path").headers["x-request-id"]
