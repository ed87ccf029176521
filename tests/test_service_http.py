"""The running service: readiness, OpenAPI, demo client, and the one JSON error format."""

from __future__ import annotations

import httpx

from tests.harness import Service


def test_health_and_openapi(http: httpx.Client) -> None:
    r = http.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    spec = http.get("/openapi.json").json()
    for path in ("/trustedx-authserver/oauth/{auth_server}/token", "/pki/ocsp", "/pki/tsa", "/v1/keys"):
        assert path in spec["paths"], path
    assert "swagger" in http.get("/docs").text.lower()


def test_demo_client_file_has_working_credentials(service: Service, demo: dict[str, str]) -> None:
    assert set(demo) == {"client_id", "client_secret", "base_url"}
    assert demo["base_url"] == service.url
    assert (service.home / "demo-client.json").stat().st_mode & 0o077 == 0  # not world/group readable
    assert service.token(demo["client_id"], demo["client_secret"])


def test_unknown_route_and_wrong_method_use_error_format(http: httpx.Client) -> None:
    r = http.get("/no/such/thing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = http.delete("/health")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_malformed_json_is_400(http: httpx.Client, demo_token: str) -> None:
    headers = {"Authorization": f"Bearer {demo_token}", "Content-Type": "application/json"}
    for body in (b"{bad", b"[]", b'{"algorithm": "rsa-1"}', b'{"algorithm": "ec-p256", "extra": 1}', b"\xff\xfe"):
        r = http.post("/v1/keys", content=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == "invalid_request"


def test_oversized_body_is_413_without_reading_it(http: httpx.Client, demo_token: str) -> None:
    headers = {"Authorization": f"Bearer {demo_token}", "Content-Type": "application/json"}
    r = http.post("/v1/keys", content=b"{" + b" " * (2 << 20) + b"}", headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunked() -> object:  # no Content-Length: the middleware counts streamed bytes
        for _ in range(40):
            yield b" " * 65536

    r = http.post("/v1/keys", content=chunked(), headers=headers)
    assert r.status_code == 413


def test_missing_or_bad_token_is_401(http: httpx.Client) -> None:
    r = http.get("/v1/keys")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert "Bearer" in r.headers["www-authenticate"]
    r = http.get("/v1/keys", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_scope_is_enforced(service: Service, http: httpx.Client, demo: dict[str, str]) -> None:
    token = service.token(demo["client_id"], demo["client_secret"], scope="remotesign:keys")
    assert http.get("/v1/keys", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = http.get("/v1/certificates", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"


def test_key_sign_and_certificate_roundtrip(http: httpx.Client, demo_token: str) -> None:
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    auth = {"Authorization": f"Bearer {demo_token}"}
    for algorithm in ("ec-p256", "ec-p384", "rsa-2048"):
        key = http.post("/v1/keys", json={"algorithm": algorithm, "label": "t"}, headers=auth).json()
        assert "PRIVATE" not in str(key)
        digest = hashlib.sha384(b"hello").digest()
        r = http.post(f"/v1/keys/{key['id']}/sign", headers=auth,
                      json={"digest": base64.b64encode(digest).decode(), "hash_algorithm": "sha384"})
        assert r.status_code == 200, r.text
        sig = base64.b64decode(r.json()["signature"])
        pub = serialization.load_pem_public_key(key["public_key"].encode())
        if algorithm.startswith("ec"):
            pub.verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA384())))  # type: ignore[union-attr,call-arg]
        else:
            pub.verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA384()))  # type: ignore[union-attr,call-arg]
        # a digest of the wrong size is refused, not signed
        r = http.post(f"/v1/keys/{key['id']}/sign", headers=auth,
                      json={"digest": base64.b64encode(digest[:20]).decode(), "hash_algorithm": "sha384"})
        assert r.status_code == 400
    r = http.post("/v1/certificates", headers=auth, json={
        "profile": "qualified-person", "key_id": key["id"], "subject": "CN=Bob Example,SERIALNUMBER=PNOLV-2,C=LV"})
    assert r.status_code == 201, r.text
    cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
    assert cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == key["public_key"].encode()
    r = http.post("/v1/certificates", headers=auth, json={
        "profile": "qualified-person", "key_id": key["id"], "subject": "CN=No Serial,C=LV"})
    assert r.status_code == 400 and "SERIALNUMBER" in r.json()["error"]["message"]
    r = http.post("/v1/keys/not-base64/sign", headers=auth, json={"digest": "@@@"})
    assert r.status_code == 404
    r = http.post(f"/v1/keys/{key['id']}/sign", headers=auth, json={"digest": "@@@"})
    assert r.status_code == 400
