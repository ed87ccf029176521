"""The Fortress extend API with the TSA each request chooses, over HTTP against a service that
allows loopback TSAs: a plain URL, HTTP Basic (``USER``), a TLS endpoint that demands a client
certificate (``CERTIFICATE_TLS`` / ``CERTIFICATE`` with a credential registered by the operator's
CLI). Each result's new time-stamp must come through the chosen endpoint and verify; a TSA that is
down, refuses or is not allowed fails the request clearly and returns no document."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.pdfgen import pdf_bytes
from tests.harness import Service, free_port
from tests.signapi import Card, issue_card, sign_bb
from tests.tsa_endpoints import TestCa, TsaProxy, closed_port, server_tls

EXTEND = "/fortress/api/v1/signature/extend"


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("fortress-tls")
    ca = TestCa.create(base / "ca", "Fortress TSA TLS CA")
    return {"ca": ca, "server": ca.issue("127.0.0.1", server=True), "client": ca.issue("fortress-tsa-client", client=True)}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, tls_pki: dict[str, Any]) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("fortress-tsa"), port=free_port(),
                      env={"REMOTESIGN_TSA_ALLOWED_HOSTS": "loopback",
                           "SSL_CERT_FILE": str(tls_pki["ca"].pem_file)}).start()
    service.cli("tsa-credential", "add", "--code", "tsa-tls", "--cert", str(tls_pki["client"].cert),
                "--key", str(tls_pki["client"].key))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def client(svc: Service) -> Iterator[httpx.Client]:
    demo = svc.demo_client()
    r = httpx.post(svc.url + "/fortress/oauth2/v1/token", params={
        "scope": "client", "client_id": demo["client_id"], "client_secret": demo["client_secret"],
        "grant_type": "client_credentials"}, timeout=30)
    assert r.status_code == 200, r.text
    with httpx.Client(base_url=svc.url, timeout=120,
                      headers={"Authorization": f"Bearer {r.json()['access_token']}"}) as c:
        yield c


@pytest.fixture(scope="module")
def card(svc: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(svc, tmp_path_factory.mktemp("fortress-tsa-card"), "p256", cn="TSA Choice Signer")


def extend(client: httpx.Client, card: Card, tsa: dict[str, Any], signature_type: str = "PADES_T") -> httpx.Response:
    config = {"document": {"bytesB64": base64.b64encode(sign_bb(card)).decode(), "name": "a.pdf"},
              "signatureType": signature_type, "tsa": tsa}
    return client.post(EXTEND, json={"extendSignatureConfigurations": [config]})


def doc_timestamps(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    pdf = base64.b64decode(response.json()["bytesB64"])
    return len(PdfFileReader(io.BytesIO(pdf)).embedded_timestamp_signatures)


def test_plain_url(client: httpx.Client, svc: Service, card: Card) -> None:
    with TsaProxy(svc.url + "/pki/tsa") as proxy:
        assert doc_timestamps(extend(client, card, {"type": "URL", "url": proxy.url})) == 1
        assert proxy.requests >= 1


def test_basic_auth(client: httpx.Client, svc: Service, card: Card) -> None:
    with TsaProxy(svc.url + "/pki/tsa", basic=("alice", "s3cret")) as proxy:
        ok = extend(client, card, {"type": "USER", "url": proxy.url, "user": "alice", "password": "s3cret"})
        assert doc_timestamps(ok) == 1
        wrong = extend(client, card, {"type": "USER", "url": proxy.url, "user": "alice", "password": "nope"})
        assert wrong.status_code == 502 and wrong.json()["error"] == "tsa_refused", wrong.text


@pytest.mark.parametrize("kind", ["CERTIFICATE_TLS", "CERTIFICATE"])
def test_tls_client_certificate(client: httpx.Client, svc: Service, card: Card, tls_pki: dict[str, Any],
                                kind: str) -> None:
    with TsaProxy(svc.url + "/pki/tsa", tls=server_tls(tls_pki["server"], client_ca=tls_pki["ca"])) as proxy:
        r = extend(client, card, {"type": kind, "url": proxy.url, "certificateCode": "tsa-tls"}, "PADES_LTA")
        assert doc_timestamps(r) == 2  # T's and LTA's document time-stamps, both through the proxy
        assert any("fortress-tsa-client" in s for s in proxy.client_subjects), proxy.client_subjects
        unknown = extend(client, card, {"type": kind, "url": proxy.url, "certificateCode": "nobody"})
        assert unknown.status_code == 400 and "tsa_credential_unknown" in unknown.json()["error_description"]


def test_tsa_down_and_not_allowed(client: httpx.Client, card: Card) -> None:
    down = extend(client, card, {"type": "URL", "url": f"http://127.0.0.1:{closed_port()}/tsa"})
    assert down.status_code == 502 and down.json()["error"] == "tsa_unreachable", down.text
    assert "bytesB64" not in down.json()
    private = extend(client, card, {"type": "URL", "url": "http://10.1.2.3/tsa"})
    assert private.status_code == 400 and "tsa_not_allowed" in private.json()["error_description"], private.text
    bad = extend(client, card, {"type": "USER", "url": "http://127.0.0.1:1/tsa"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request", bad.text


def test_a_signature_request_time_stamps_with_the_chosen_tsa(client: httpx.Client, svc: Service) -> None:
    """The ``tsa`` of a signature request's configuration is used when the request is executed
    (basic authentication included), and a TSA that is down fails the execution, not the service."""
    demo = svc.demo_client()
    with httpx.Client(base_url=svc.url, timeout=60) as rp:
        rp.headers["Authorization"] = f"Bearer {svc.token(demo['client_id'], demo['client_secret'])}"
        r = rp.post("/v1/users", json={"username": "tsa-seal", "display_name": "TSA Seal Ltd", "kind": "legal",
                                       "serial_number": "NTRLV-40003000000"})
        assert r.status_code == 201, r.text
        r = rp.post(f"/v1/users/{r.json()['id']}/identities", json={"algorithm": "ec-p256"})
        assert r.status_code == 201, r.text
        seal = r.json()["identity"]["id"]
    document = {"bytesB64": base64.b64encode(pdf_bytes(text="tsa choice")).decode(), "name": "t.pdf"}
    with TsaProxy(svc.url + "/pki/tsa", basic=("alice", "s3cret")) as proxy:
        r = client.post("/fortress/api/v1/signature", json={"certificateCode": seal, "signatureConfigurations": [
            {"ref": "t", "document": document, "signatureType": "PADES_LTA",
             "tsa": {"type": "USER", "url": proxy.url, "user": "alice", "password": "s3cret",
                     "timestampAlgorithm": "SHA512"}}]})
        assert r.status_code == 200, r.text
        done = client.post(f"/fortress/api/v1/signature/execute/{r.json()['exeCode']}")
        assert done.status_code == 200, done.text
        assert proxy.requests >= 2  # the signature time-stamp and the document time-stamp (and a size probe)
    reader = PdfFileReader(io.BytesIO(base64.b64decode(done.json()[0]["bytesB64"])))
    [doc_ts] = reader.embedded_timestamp_signatures
    imprint = doc_ts.signed_data["encap_content_info"]["content"].parsed["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].native == "sha512"  # timestampAlgorithm

    r = client.post("/fortress/api/v1/signature", json={"certificateCode": seal, "signatureConfigurations": [
        {"ref": "t", "document": document, "signatureType": "PADES_T",
         "tsa": {"type": "URL", "url": f"http://127.0.0.1:{closed_port()}/tsa"}}]})
    assert r.status_code == 200, r.text
    down = client.post(f"/fortress/api/v1/signature/execute/{r.json()['exeCode']}")
    assert down.status_code == 502 and down.json()["error"] == "tsa_unreachable", down.text
    state = client.get(f"/fortress/api/v1/signature/{r.json()['exeCode']}").json()
    assert state["status"] == "FAILED" and state["error"] == "tsa_unreachable", state
