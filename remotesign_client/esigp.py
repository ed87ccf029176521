"""The TrustedX-style eSigP API: server-held sign identities and raw signatures with them.

A raw signature needs the **user's** token from the authorization-code flow (scope
``urn:safelayer:eidas:sign:identity:use:server``) bound to exactly the digests signed, in order
(see :class:`~remotesign_client.auth.AuthorizationCode` and
:func:`~remotesign_client.auth.digests_summary`); it signs them once. Listing and importing
identities for one of your users takes your client-credentials token (scope
``urn:safelayer:eidas:sign:identity:manage``) and ``user_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remotesign_client._base import ApiClient, b64, unb64

ESIGP = "/trustedx-resources/esigp/v1"
USE_SERVER = "urn:safelayer:eidas:sign:identity:use:server"
USE_DEVICE = "urn:safelayer:eidas:sign:identity:use:device"
PROFILE = "urn:safelayer:eidas:sign:identity:profile"
MANAGE = "urn:safelayer:eidas:sign:identity:manage"


@dataclass(frozen=True)
class SignIdentity:
    """A sign identity: its labels, state and — when fetched one by one — its certificate (DER)."""

    id: str
    labels: tuple[str, ...]
    description: str
    status: str
    type: str
    domain: str | None
    certificate: bytes | None = None
    activation_mode: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SignIdentity":
        details = data.get("details") or {}
        status = data.get("status")
        cert = details.get("certificate")
        return cls(id=str(data["id"]), labels=tuple(data.get("labels") or ()),
                   description=str(data.get("description") or ""),
                   status=str(status.get("value") if isinstance(status, Mapping) else status or ""),
                   type=str(data.get("type") or ""), domain=data.get("domain"),
                   certificate=unb64(cert) if cert else None, activation_mode=details.get("activation_mode"),
                   raw=data)


class EsigpClient(ApiClient):
    """Client of ``/trustedx-resources/esigp/v1`` and ``/trustedx-resources/openid/v1/users/me``."""

    # -- identities ------------------------------------------------------------------------------
    def identities(self, *, labels: Sequence[str] = (), user_id: str | None = None, domain: str | None = None,
                   device_id: str | None = None) -> list[SignIdentity]:
        """The user's identities (a user token), or one of your users' (``user_id``, client token)."""
        params = {k: v for k, v in {"labels": ",".join(labels) or None, "user_id": user_id, "domain": domain,
                                    "device_id": device_id}.items() if v}
        body = self.request("GET", f"{ESIGP}/sign_identities", params=params).json()
        return [SignIdentity.from_json(i) for i in body["sign_identities"]]

    def identity(self, identity_id: str) -> SignIdentity:
        """One identity, with its certificate."""
        return SignIdentity.from_json(self.request("GET", f"{ESIGP}/sign_identities/{identity_id}").json()["identity"])

    def import_pkcs12(self, pkcs12: bytes, password: str, *, labels: Sequence[str] = ("serverid",),
                      user_id: str | None = None) -> SignIdentity:
        """Move a PKCS#12's key into the key store as a new identity of ``user_id``."""
        body: dict[str, Any] = {"pkcs12": b64(pkcs12), "password": password, "labels": list(labels)}
        if user_id:
            body["user_id"] = user_id
        r = self.request("POST", f"{ESIGP}/sign_identities/server/pki_x509/pkcs12", json=body, expect=(201,))
        return SignIdentity.from_json(r.json()["identity"])

    def delete_identity(self, identity_id: str) -> None:
        self.request("DELETE", f"{ESIGP}/sign_identities/{identity_id}", expect=(204,))

    def me(self) -> dict[str, Any]:
        """The user's identification claims (and identities, with the profile scope)."""
        return dict(self.request("GET", "/trustedx-resources/openid/v1/users/me").json())

    # -- raw signatures --------------------------------------------------------------------------
    def sign_raw(self, identity_id: str, digest: bytes, signature_algorithm: str | None = None) -> bytes:
        """Sign one digest with a server-held identity: PKCS#1 v1.5 or DER ECDSA. The token must
        be the user's consent for exactly this digest."""
        body: dict[str, Any] = {"digest_value": b64(digest), "sign_identity_id": identity_id}
        if signature_algorithm:
            body["signature_algorithm"] = signature_algorithm
        return self.request("POST", f"{ESIGP}/signatures/server/raw", json=body).content

    def sign_raw_batch(self, identity_id: str, digests: Sequence[bytes],
                       signature_algorithm: str | None = None) -> list[bytes]:
        """Sign several digests at once, in order (the consent's order)."""
        body: dict[str, Any] = {"sign_identity_id": identity_id,
                                "requests": [{"digest_value": b64(d)} for d in digests]}
        if signature_algorithm:
            body["signature_algorithm"] = signature_algorithm
        r = self.request("POST", f"{ESIGP}/signatures/server/raw/batch", json=body)
        return [unb64(v) for v in r.json()["signatures"]]


__all__ = ["EsigpClient", "MANAGE", "PROFILE", "SignIdentity", "USE_DEVICE", "USE_SERVER"]
