"""The integrators' Python client (remotesign_client/) over HTTP against the running test service:
a whole SignAPI flow with a key the test holds, an eSigP raw signature with the user's consent
(the authorization-code flow driven through the service's own pages), validations, the native
API, the token cache, and every error shape mapped to its class with status and code."""

from __future__ import annotations

import ast
import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from remotesign_client import (AuthenticationError, ClientCredentials, EsigpClient, Gone, InvalidRequest, NativeClient,
                               NotFound, PermissionDenied, Remotesign, RemotesignError, SignApiClient,
                               digests_summary)
from remotesign_client.auth import Token
from remotesign_client.esigp import USE_SERVER
from tests.consent import REDIRECT_URI, Authorization, consent, enrol, hidden, login, redirect_params, user_token
from tests.device_client import verify_raw
from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, issue_card

PACKAGE = Path(__file__).resolve().parent.parent / "remotesign_client"


@pytest.fixture(scope="module")
def rs(service: Service, demo: dict[str, str], demo_token: str) -> Remotesign:  # demo_token: redirect URI registered
    client = Remotesign(service.url, demo["client_id"], demo["client_secret"], timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="module")
def card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("client-card"), "p256", cn="Klienta Parakstitajs")


def test_the_package_uses_httpx_and_the_standard_library_only() -> None:
    import sys

    allowed = set(sys.stdlib_module_names) | {"httpx", "remotesign_client", "cryptography"}  # cryptography: lazily,
    for path in PACKAGE.glob("*.py"):                                                          # for its own objects
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
    assert (PACKAGE / "py.typed").exists()


def test_signapi_pdf_flow_with_a_card_then_validation(rs: Remotesign, card: Card, tmp_path: Path) -> None:
    api = rs.signapi
    sid = api.start()
    uploaded = api.upload(sid, pdf_bytes(pages=2), "līgums.pdf")
    assert uploaded.name == "līgums.pdf" and uploaded.size and uploaded.type == "file"
    signed_with: list[tuple[bytes, str]] = []

    def sign(digest: bytes, algorithm: str) -> bytes:
        signed_with.append((digest, algorithm))
        return card.sign(digest, algorithm)

    prepared = api.sign([sid], card.cert, sign, sign_as_pdf=True)
    assert prepared.algorithm == "SHA256" and prepared.signature_algorithm == "ecdsa"
    assert signed_with == [(prepared.digest_of(sid), "SHA256")]
    assert prepared.digests_summary == digests_summary([prepared.digest_of(sid)])
    doc, lt = api.result(sid)
    assert doc.name == "līgums.pdf" and doc.size == len(lt) and lt.startswith(b"%PDF")
    out = tmp_path / "streamed.pdf"
    assert api.download_to(sid, doc.id, out) == len(lt) and out.read_bytes() == lt

    report = rs.validation.validate(lt, "līgums.pdf")
    assert report.all_passed and report.signature_form == "PAdES", report
    [verdict] = report.signatures
    assert (verdict.indication, verdict.signature_format) == ("TOTAL-PASSED", "PAdES_BASELINE_LT")
    assert verdict.signed_by == "Klienta Parakstitajs"
    same = rs.validation.validate_session_document(sid, doc.id)
    assert same.signatures[0].signature_format == "PAdES_BASELINE_LT"

    assert api.add_archive([sid]) == [sid]
    doc, lta = api.result(sid)
    assert lta.startswith(lt)
    v2 = rs.validation.validate_session_document(sid, doc.id, version=2)
    assert v2.all_passed and v2.signatures[0].signature_format == "PAdES_BASELINE_LTA"
    assert v2.signatures[0].signed_by == "Klienta Parakstitajs"   # v2 names the signer under signerExt
    pdf = rs.validation.report(lta, "lta.pdf", kind="pdf")
    assert pdf.startswith(b"%PDF")
    detailed = rs.validation.validate(tmp_path / "streamed.pdf", detailed=True)
    assert detailed.detailed and detailed.all_passed
    api.close_session(sid)
    assert rs.auth.fetched == 1  # one token for all of it


def test_signapi_asice_of_files_from_disk(rs: Remotesign, card: Card, tmp_path: Path) -> None:
    api = rs.signapi
    [a, b] = [tmp_path / "a.txt", tmp_path / "b.xml"]
    a.write_bytes(b"first file\n")
    b.write_bytes(b"<invoice>42</invoice>")
    sid = api.start_many(1)[0]
    api.upload(sid, a)
    with open(b, "rb") as fh:
        api.upload(sid, fh)
    assert sorted(d.name for d in api.list(sid)) == ["a.txt", "b.xml"]
    api.sign([sid], card.cert, card.sign, sign_as_pdf=False, create_new_edoc=True)
    doc, container = api.result(sid)
    assert sorted(doc.included_documents) == ["a.txt", "b.xml"]
    assert zipfile.ZipFile(io.BytesIO(container)).read("mimetype") == b"application/vnd.etsi.asic-e+zip"
    report = rs.validation.validate(container, doc.name)
    assert report.all_passed and report.signatures[0].signature_format == "XAdES_BASELINE_LT"
    assert sorted(report.included_files) == ["a.txt", "b.xml"]


def _consented_token(service: Service, rs: Remotesign, who, digests: list[bytes]) -> str:  # type: ignore[no-untyped-def]
    """The user's signing token through AuthorizationCode: the URL it builds, the service's own
    login and consent pages (as a browser without scripts submits them), the code exchanged."""
    flow = rs.authorization(REDIRECT_URI)
    url = flow.url(USE_SERVER, sign_identity_id=who.identity_id, digests_summary=digests_summary(digests))
    browser = httpx.Client(base_url=service.url, timeout=30, follow_redirects=False)
    try:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        a = Authorization(browser, hidden(page.text, "request_id"), flow.verifier, flow.state)
        assert login(a, who.username, who.password).status_code == 200
        params = redirect_params(consent(a, "approve", pin=who.pin))
    finally:
        browser.close()
    token = flow.exchange(params["code"], params["state"])
    assert token.scope == USE_SERVER
    return token.access_token


def test_esigp_raw_signature_with_the_users_consent(service: Service, rs: Remotesign, http: httpx.Client,
                                                    demo: dict[str, str], demo_token: str) -> None:
    who = enrol(http, demo_token, algorithm="ec-p256")
    mine = [i for i in rs.esigp.identities(user_id=who.user["id"], labels=["serverid"])]
    assert who.identity_id in {i.id for i in mine}
    identity = rs.esigp.identity(who.identity_id)
    assert identity.status == "enabled" and identity.activation_mode == "pin" and identity.certificate
    cert = x509.load_der_x509_certificate(identity.certificate)

    digest = hashlib.sha256(b"signed through remotesign_client").digest()
    user = rs.as_user(_consented_token(service, rs, who, [digest]))
    value = user.sign_raw(who.identity_id, digest, "ecdsa")
    verify_raw(cert, digest, value)
    with pytest.raises(InvalidSignature):
        verify_raw(cert, hashlib.sha256(b"other").digest(), value)
    with pytest.raises(PermissionDenied) as refused:  # the consent signs once
        user.sign_raw(who.identity_id, digest, "ecdsa")
    assert (refused.value.status, refused.value.code, refused.value.reason) == (403, "access_denied", "replayed")

    batch = [hashlib.sha256(bytes([n])).digest() for n in range(3)]
    token = user_token(http, demo, who, USE_SERVER, summary=digests_summary(batch), summary_alg="SHA256")
    values = rs.as_user(token).sign_raw_batch(who.identity_id, batch)
    for d, v in zip(batch, values):
        cert.public_key().verify(v, d, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    with pytest.raises(PermissionDenied) as refused:  # the relying party's own token signs nothing of a user's
        rs.esigp.sign_raw(who.identity_id, digest)
    assert refused.value.reason == "not_a_signing_token"


def test_native_keys_and_certificates(rs: Remotesign) -> None:
    key = rs.native.create_key("ec-p256", label="client package")
    assert key.algorithm == "ec-p256" and key.id in {k.id for k in rs.native.keys()}
    cert = rs.native.issue_certificate("qualified-seal", key_id=key.id,
                                       subject="CN=Client Seal,O=Demo Org,2.5.4.97=NTRLV-40000000000,C=LV")
    assert cert.status == "valid" and cert.key_id == key.id and len(cert.chain) == 2
    assert rs.native.certificate(cert.id).serial == cert.serial
    digest = hashlib.sha256(b"sealed").digest()
    signature = rs.native.sign(key.id, digest)
    x509.load_pem_x509_certificate(cert.pem.encode()).public_key().verify(
        signature.value, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    revoked = rs.native.revoke_certificate(cert.id, "key_compromise")
    assert revoked.status == "revoked" and revoked.revocation_reason == "key_compromise"
    assert any(e.event == "signature.created" and e.subject == key.id for e in rs.native.audit(50))


def test_errors_carry_status_and_the_apis_code(service: Service, rs: Remotesign, demo: dict[str, str]) -> None:
    calls = ((lambda: SignApiClient(service.url, "not-a-token").start(), "invalid_token"),
             (lambda: NativeClient(service.url, "not-a-token").keys(), "invalid_token"),
             (lambda: EsigpClient(service.url, "not-a-token").identities(user_id="x"), "invalid_token"))
    for call, code in calls:
        with pytest.raises(AuthenticationError) as failed:
            call()
        assert failed.value.status == 401 and isinstance(failed.value, RemotesignError)
        assert code is None or failed.value.code == code, failed.value
    bad = Remotesign(service.url, demo["client_id"], demo["client_secret"])
    bad.auth._token = Token("not-a-token", "", float("inf"))  # cached, never expiring: only a 401 tells
    # a cached token the service no longer knows is replaced once, transparently
    assert bad.signapi.start() and bad.auth.fetched == 1
    bad.close()

    wrong = ClientCredentials(service.url, demo["client_id"], "wrong secret")
    with pytest.raises(AuthenticationError) as failed:
        wrong.token()
    assert (failed.value.status, failed.value.code) == (401, "invalid_client")

    api = rs.signapi
    with pytest.raises(NotFound) as missing:
        api.list("ab" * 32)
    assert (missing.value.status, missing.value.code) == (404, "session_not_found")
    sid = api.start()
    api.upload(sid, b"plain text", "notes.txt")
    with pytest.raises(InvalidRequest) as refused:
        api.calculate_digest([sid], issue_card_cert(service), sign_as_pdf=True)
    assert (refused.value.status, refused.value.code) == (400, "not_a_pdf")
    assert refused.value.session_errors == {sid: "not_a_pdf"}
    api.close_session(sid)
    with pytest.raises(Gone) as gone:
        api.list(sid)
    assert (gone.value.status, gone.value.code) == (410, "session_closed")
    with pytest.raises(NotFound) as missing:
        rs.native.key("no-such-key")
    assert (missing.value.status, missing.value.code) == (404, "not_found")


_CERT: list[bytes] = []


def issue_card_cert(service: Service) -> bytes:
    """Any certificate of the built-in CA (the demo CA's issuing certificate is refused as a signer
    before the session is looked at, so take a real signer's)."""
    if not _CERT:
        import tempfile

        from cryptography.hazmat.primitives.serialization import Encoding

        with tempfile.TemporaryDirectory() as tmp:
            _CERT.append(issue_card(service, Path(tmp), "p256", cn="Error Case").cert.public_bytes(Encoding.DER))
    return _CERT[0]


def test_token_cache_and_refresh(service: Service, demo: dict[str, str]) -> None:
    cached = ClientCredentials(service.url, demo["client_id"], demo["client_secret"])
    first = cached.token()
    assert cached.token() is first and cached.fetched == 1 and first.scope
    # a token about to expire (here: within a leeway longer than its life) is fetched anew
    eager = ClientCredentials(service.url, demo["client_id"], demo["client_secret"], leeway=10 ** 9)
    assert eager.token().access_token != eager.token().access_token and eager.fetched == 2
    narrow = ClientCredentials(service.url, demo["client_id"], demo["client_secret"],
                               scope="urn:safelayer:eidas:oauth:token:introspect")
    assert narrow.token().scope == "urn:safelayer:eidas:oauth:token:introspect"
    with pytest.raises(PermissionDenied) as denied:  # that scope opens the SignAPI but not the native API
        NativeClient(service.url, narrow).keys()
    assert denied.value.status == 403 and denied.value.code == "insufficient_scope"
    assert SignApiClient(service.url, narrow).start()
