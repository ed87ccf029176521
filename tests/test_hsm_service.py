"""The whole service on a PKCS#11 HSM (SoftHSM2): the CA, TSA and OCSP keys and the relying
parties' keys are generated on the token as non-extractable objects, and what they sign is
accepted by openssl."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from tests.harness import SOFTHSM_MODULE, Service, free_port, make_softhsm_token

pytestmark = [pytest.mark.hsm, pytest.mark.slow]


@pytest.fixture(scope="module")
def hsm_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("hsm")
    env = make_softhsm_token(base)
    svc = Service(home=base / "home", port=free_port(), env=env).start()
    yield svc
    svc.stop()


def _objects(svc: Service) -> str:
    out = subprocess.run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "remotesign", "--login",
                          "--pin", "1234", "--list-objects"], capture_output=True, text=True,
                         env={**os.environ, **svc.env}, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_pki_keys_live_on_the_token(hsm_service: Service) -> None:
    assert httpx.get(hsm_service.url + "/health").json()["key_backend"] == "pkcs11"
    listing = _objects(hsm_service)
    for label in ("root-ca", "issuing-ca", "tsa", "ocsp"):
        block = listing.split(f'label:      {label}')
        assert len(block) >= 2, f"{label} not on token:\n{listing}"
    private_blocks = [b for b in listing.split("Private Key Object") if "Usage:" in b][1:]
    assert private_blocks and all("never extractable" in b or "Access:     sensitive" in b for b in private_blocks)
    assert "master.key" not in os.listdir(hsm_service.home)


def test_tsa_and_ocsp_signed_by_hsm_keys_verify_with_openssl(hsm_service: Service, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(httpx.get(hsm_service.url + "/pki/ca.pem").text)
    (tmp_path / "data").write_bytes(b"hsm")
    subprocess.run(["openssl", "ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "q.tsq"], cwd=tmp_path,
                   check=True, capture_output=True)
    reply = httpx.post(hsm_service.url + "/pki/tsa", content=(tmp_path / "q.tsq").read_bytes())
    assert reply.status_code == 200
    (tmp_path / "r.tsr").write_bytes(reply.content)
    r = subprocess.run(["openssl", "ts", "-verify", "-in", "r.tsr", "-data", "data", "-CAfile", "ca.pem"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert "Verification: OK" in r.stdout, r.stdout + r.stderr

    demo = hsm_service.demo_client()
    auth = {"Authorization": f"Bearer {hsm_service.token(demo['client_id'], demo['client_secret'])}"}
    key = httpx.post(hsm_service.url + "/v1/keys", json={"algorithm": "rsa-2048"}, headers=auth).json()
    cert = httpx.post(hsm_service.url + "/v1/certificates", headers=auth, json={
        "profile": "qualified-person", "key_id": key["id"], "subject": "CN=HSM User,SERIALNUMBER=PNOLV-7,C=LV"}).json()
    (tmp_path / "leaf.pem").write_text(cert["certificate"])
    (tmp_path / "issuing.pem").write_text(cert["chain"][0])
    r = subprocess.run(["openssl", "ocsp", "-issuer", "issuing.pem", "-cert", "leaf.pem", "-url",
                        hsm_service.url + "/pki/ocsp", "-CAfile", "ca.pem"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert "Response verify OK" in r.stderr and "leaf.pem: good" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["openssl", "verify", "-CAfile", "ca.pem", "leaf.pem"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("algorithm", ["rsa-2048", "rsa-3072", "ec-p256", "ec-p384"])
def test_relying_party_keys_sign_on_the_token(hsm_service: Service, algorithm: str) -> None:
    demo = hsm_service.demo_client()
    auth = {"Authorization": f"Bearer {hsm_service.token(demo['client_id'], demo['client_secret'])}"}
    key = httpx.post(hsm_service.url + "/v1/keys", json={"algorithm": algorithm, "label": algorithm},
                     headers=auth).json()
    assert key["backend"] == "pkcs11"
    hash_name, hash_cls = ("sha384", hashes.SHA384) if algorithm == "ec-p384" else ("sha256", hashes.SHA256)
    digest = hashlib.new(hash_name, b"message").digest()
    r = httpx.post(f"{hsm_service.url}/v1/keys/{key['id']}/sign", headers=auth,
                   json={"digest": base64.b64encode(digest).decode(), "hash_algorithm": hash_name})
    assert r.status_code == 200, r.text
    sig = base64.b64decode(r.json()["signature"])
    pub = serialization.load_pem_public_key(key["public_key"].encode())
    if algorithm.startswith("ec"):
        pub.verify(sig, digest, ec.ECDSA(utils.Prehashed(hash_cls())))  # type: ignore[union-attr,call-arg]
    else:
        pub.verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hash_cls()))  # type: ignore[union-attr,call-arg]


def test_eseal_password_is_decrypted_on_the_token(hsm_service: Service, tmp_path: Path) -> None:
    """The SignAPI transport key is an HSM key too: an e-seal from a PFX whose password was
    encrypted with it produces a PAdES B-LT that pyHanko accepts."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    from tests.pdfgen import pdf_bytes
    from tests.signapi import SignApi, issue_card
    from cryptography.hazmat.primitives import hashes

    from tests.test_signapi_eseal import encrypt_password, eseal, oaep
    from tests.verifiers import root_of
    from tests.verifiers import pyhanko_pdf

    assert "signapi-transport" in _objects(hsm_service)
    demo = hsm_service.demo_client()
    api = SignApi(hsm_service, hsm_service.token(demo["client_id"], demo["client_secret"]))
    seal = issue_card(hsm_service, tmp_path, "p256", cn="HSM Org eZimogs", profile="qualified-seal")
    pfx = pkcs12.serialize_key_and_certificates(b"seal", seal.key, seal.cert, None,  # type: ignore[arg-type]
                                                serialization.BestAvailableEncryption(b"pw-123"))
    ca_pem = httpx.get(hsm_service.url + "/pki/ca.pem").content
    # PKCS#1 v1.5 (the vendor's sample) and OAEP-SHA1 (the PHP client), decrypted by SoftHSM2.
    for pad in (None, oaep(hashes.SHA1)):
        sid = api.start()
        api.upload(sid, "a.pdf", pdf_bytes())
        r = eseal(api, [sid], pfx, encrypt_password(api, "pw-123", pad), as_pdf=True)
        assert r.status_code == 200, (pad, r.text)
        _, sealed = api.result(sid)
        verdict = pyhanko_pdf(sealed, root_of(ca_pem))
        assert verdict["intact"] and verdict["trusted"] and verdict["has_dss"], verdict["summary"]
