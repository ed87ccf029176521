"""Test-side helpers for the eSigP and device APIs: an approval app holding its own EC P-256 key
(as a phone would), signature checks against an identity's certificate, PKCS#12 files, and the
audit log's ``scal2.refused`` reasons."""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from tests.harness import Service

ESIGP = "/trustedx-resources/esigp/v1"
_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_BY_SIZE = {20: "sha1", 32: "sha256", 48: "sha384", 64: "sha512"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class DeviceApp:
    """A registered approval app: its private key never leaves the test."""

    http: httpx.Client
    key: ec.EllipticCurvePrivateKey
    device_id: str
    token: str

    @classmethod
    def register(cls, http: httpx.Client, code: str, name: str = "test phone") -> "DeviceApp":
        """Pair with a one-time device code (shown on the activation page or mailed to the user)."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        r = http.post("/v1/device/register", json={"activation_code": code, "public_key": pem, "name": name})
        assert r.status_code == 201, r.text
        return cls(http, key, r.json()["device_id"], r.json()["device_token"])

    def requests(self, wait: int = 0) -> list[dict[str, Any]]:
        r = self.http.get("/v1/device/requests", params={"wait": wait}, headers=bearer(self.token),
                          timeout=wait + 30)
        assert r.status_code == 200, r.text
        return r.json()["requests"]  # type: ignore[no-any-return]

    def request(self, process_id: str, wait: int = 5) -> dict[str, Any]:
        found = [x for x in self.requests(wait) if x["id"] == process_id]
        assert found, f"request {process_id} is not waiting for this device"
        return found[0]

    def sign_text(self, text: bytes) -> str:
        return b64(self.key.sign(text, ec.ECDSA(hashes.SHA256())))

    def answer(self, request: dict[str, Any], decision: str, pin: str | None = None,
               signature: str | None = None) -> httpx.Response:
        """Answer ``request`` (as listed by ``requests``), signing the text the service gave for the decision."""
        text = base64.b64decode(request["approve_text" if decision == "approve" else "reject_text"])
        body: dict[str, Any] = {"decision": decision, "signature": signature or self.sign_text(text)}
        if pin is not None:
            body["pin"] = pin
        return self.http.post(f"/v1/device/requests/{request['id']}", json=body, headers=bearer(self.token))


def certificate_of(identity: dict[str, Any]) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(identity["details"]["certificate"]))


def verify_raw(cert: x509.Certificate, digest: bytes, signature: bytes, hash_name: str | None = None) -> None:
    """Raises unless ``signature`` (PKCS#1 v1.5 or DER ECDSA) over the prehashed ``digest``
    verifies with the certificate's key."""
    algorithm = utils.Prehashed(_HASHES[hash_name or _BY_SIZE[len(digest)]]())
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, digest, padding.PKCS1v15(), algorithm)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, digest, ec.ECDSA(algorithm))


def self_signed_pkcs12(password: bytes, cn: str = "Imported Signer",
                       kind: str = "p256") -> tuple[bytes, x509.Certificate]:
    """A PKCS#12 with a fresh key and a self-made certificate for it."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.COUNTRY_NAME, "LV")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"signer", key, cert, None, encryption), cert


def refusal_reasons(service: Service, after_seq: int = 0) -> list[str]:
    """Reasons of the ``scal2.refused`` audit events after ``after_seq``, oldest first (read from the
    service's database: the audit API lists events without their details)."""
    with sqlite3.connect(service.home / "remotesign.db") as db:
        rows = db.execute("SELECT details FROM audit_events WHERE event = 'scal2.refused' AND seq > ? ORDER BY seq",
                          (after_seq,)).fetchall()
    return [json.loads(d)["reason"] for (d,) in rows]


def last_audit_seq(service: Service) -> int:
    with sqlite3.connect(service.home / "remotesign.db") as db:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_events").fetchone()[0])
