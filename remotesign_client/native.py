"""remotesign's own API: the relying party's keys in the key store (scope ``remotesign:keys``),
certificates for them from the built-in CA (``remotesign:certificates``) and its audit trail
(``remotesign:audit``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remotesign_client._base import ApiClient, b64, parse_time, unb64


@dataclass(frozen=True)
class Key:
    """A key held by the service; only its public half leaves it."""

    id: str
    label: str
    algorithm: str
    backend: str
    public_key_pem: str
    created_at: datetime | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Key":
        return cls(str(d["id"]), str(d.get("label", "")), str(d["algorithm"]), str(d.get("backend", "")),
                   str(d["public_key"]), parse_time(d.get("created_at")))


@dataclass(frozen=True)
class Signature:
    value: bytes
    hash_algorithm: str
    scheme: str


@dataclass(frozen=True)
class Certificate:
    """A certificate of the built-in CA: PEM, with the issuing and root CA (``chain``)."""

    id: str
    serial: str
    profile: str
    subject: str
    status: str
    not_before: datetime | None
    not_after: datetime | None
    revoked_at: datetime | None
    revocation_reason: str | None
    key_id: str | None
    pem: str
    chain: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Certificate":
        return cls(str(d["id"]), str(d["serial"]), str(d["profile"]), str(d["subject"]), str(d["status"]),
                   parse_time(d.get("not_before")), parse_time(d.get("not_after")), parse_time(d.get("revoked_at")),
                   d.get("revocation_reason"), d.get("key_id"), str(d["certificate"]), tuple(d.get("chain") or ()),
                   d)


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: datetime | None
    event: str
    actor: str
    subject: str


class NativeClient(ApiClient):
    """Client of ``/v1/keys``, ``/v1/certificates`` and ``/v1/audit``."""

    # -- keys ------------------------------------------------------------------------------------
    def create_key(self, algorithm: str = "ec-p256", label: str = "") -> Key:
        """A new key (``ec-p256``, ``ec-p384``, ``rsa-2048``, ``rsa-3072``, ...)."""
        return Key.from_json(self.request("POST", "/v1/keys", json={"algorithm": algorithm, "label": label},
                                          expect=(201,)).json())

    def keys(self) -> list[Key]:
        return [Key.from_json(k) for k in self.request("GET", "/v1/keys").json()]

    def key(self, key_id: str) -> Key:
        return Key.from_json(self.request("GET", f"/v1/keys/{key_id}").json())

    def sign(self, key_id: str, digest: bytes, hash_algorithm: str = "sha256", scheme: str | None = None) -> Signature:
        """Sign a digest with one of your keys (RSA PKCS#1 v1.5 or PSS, ECDSA DER)."""
        body: dict[str, Any] = {"digest": b64(digest), "hash_algorithm": hash_algorithm}
        if scheme:
            body["scheme"] = scheme
        d = self.request("POST", f"/v1/keys/{key_id}/sign", json=body).json()
        return Signature(unb64(d["signature"]), str(d["hash_algorithm"]), str(d["scheme"]))

    # -- certificates ----------------------------------------------------------------------------
    def issue_certificate(self, profile: str, *, key_id: str | None = None, subject: str | None = None,
                          csr: bytes | str | None = None) -> Certificate:
        """A certificate for one of your keys (``key_id`` with an RFC 4514 ``subject``) or for a
        PKCS#10 request (PEM, or DER bytes)."""
        body: dict[str, Any] = {"profile": profile}
        if csr is not None:
            if isinstance(csr, bytes) and not csr.lstrip().startswith(b"-----"):
                body["csr"] = b64(csr)
            else:
                body["csr"] = csr.decode() if isinstance(csr, bytes) else csr
        else:
            body["key_id"], body["subject"] = key_id, subject
        return Certificate.from_json(self.request("POST", "/v1/certificates", json=body, expect=(201,)).json())

    def certificates(self) -> list[Certificate]:
        return [Certificate.from_json(c) for c in self.request("GET", "/v1/certificates").json()]

    def certificate(self, cert_id: str) -> Certificate:
        return Certificate.from_json(self.request("GET", f"/v1/certificates/{cert_id}").json())

    def revoke_certificate(self, cert_id: str, reason: str = "unspecified") -> Certificate:
        return Certificate.from_json(self.request("POST", f"/v1/certificates/{cert_id}/revoke",
                                                  json={"reason": reason}).json())

    # -- audit -----------------------------------------------------------------------------------
    def audit(self, limit: int = 100) -> list[AuditEvent]:
        """Your most recent audit events, newest first."""
        return [AuditEvent(int(e["seq"]), parse_time(e.get("at")), str(e["event"]), str(e["actor"]),
                           str(e["subject"])) for e in self.request("GET", "/v1/audit", params={"limit": limit}).json()]


__all__ = ["AuditEvent", "Certificate", "Key", "NativeClient", "Signature"]
