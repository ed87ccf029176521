"""What a stored key is for, and the authorization an end user's key needs before it signs.

Three kinds of key share one store: a relying party's own keys (``tenant``: e-seals, created through
``/v1/keys``), the operator's PKI keys (``operator``: CA, TSA, OCSP, transport key) and end users'
sign-identity keys (``identity``). The usage is recorded on the key's row, so a lookup for one kind
can never return another: a relying party that knows an identity key's id still finds nothing.

An identity key signs only for the SCAL2 flows (EN 419 241-1): a spent sole-control credential, or
a signature the user approved on their device. The key store's identity signing method takes a
``KeyUseAuthorization`` naming that authorization; the store checks that it exists and is for this
very key, and writes the use to the audit log itself, so no code path can sign with a user's key
silently or on a made-up reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from remotesign.keystore.base import KeyStoreError


class KeyUsage(str, Enum):
    TENANT = "tenant"  # a relying party's own key (e-seal), usable with its client credentials
    IDENTITY = "identity"  # an end user's sign-identity key, usable only under SCAL2
    OPERATOR = "operator"  # the operator's PKI and transport keys
    TLS_CLIENT = "tls-client"  # a TLS client key the operator registered (TSA client certificates): never signs


SCAL2 = "scal2"
DEVICE_PROCESS = "device-process"
_SCAL2_REF = re.compile(r"scal2:(\d{1,18}):([0-9a-f]{16})")
_PROCESS_REF = re.compile(r"device-process:([0-9a-f-]{36})")


class AuthorizationRefused(KeyStoreError):
    """The named authorization does not exist or does not cover this key and these digests."""


@dataclass(frozen=True)
class KeyUseAuthorization:
    """The authorization that allows one use of an identity key.

    ``reference`` is ``scal2:<audit seq of scal2.authorized>:<token SHA-256 prefix>`` (what
    ``SoleControl.authorize`` returns) or ``device-process:<process id>``; ``identity_id`` is the
    sign identity it was given for; ``actor`` and ``tenant_id`` go into the audit event.
    """

    reference: str
    identity_id: str
    actor: str
    tenant_id: str | None

    def __post_init__(self) -> None:
        if not isinstance(self.reference, str) or not (
                _SCAL2_REF.fullmatch(self.reference) or _PROCESS_REF.fullmatch(self.reference)):
            raise AuthorizationRefused(f"{self.reference!r} names no SCAL2 authorization or device approval")
        if not self.identity_id:
            raise AuthorizationRefused("an authorization names the sign identity it was given for")

    @classmethod
    def device_process(cls, process_id: str, identity_id: str, actor: str, tenant_id: str | None
                       ) -> KeyUseAuthorization:
        return cls(f"{DEVICE_PROCESS}:{process_id}", identity_id, actor, tenant_id)

    @property
    def kind(self) -> str:
        return SCAL2 if self.reference.startswith(SCAL2 + ":") else DEVICE_PROCESS

    @property
    def scal2_seq(self) -> int:
        m = _SCAL2_REF.fullmatch(self.reference)
        if m is None:
            raise AuthorizationRefused(f"{self.reference!r} is not a SCAL2 authorization")
        return int(m.group(1))

    @property
    def scal2_token_prefix(self) -> str:
        m = _SCAL2_REF.fullmatch(self.reference)
        if m is None:
            raise AuthorizationRefused(f"{self.reference!r} is not a SCAL2 authorization")
        return m.group(2)

    @property
    def process_id(self) -> str:
        m = _PROCESS_REF.fullmatch(self.reference)
        if m is None:
            raise AuthorizationRefused(f"{self.reference!r} is not a device approval")
        return m.group(1)
