"""A small typed client for remotesign's HTTP APIs (httpx and the standard library only).

    from remotesign_client import Remotesign

    with Remotesign("https://sign.example.com", client_id, client_secret) as rs:
        report = rs.validation.validate("contract.pdf")
        print(report.all_passed, [s.signature_format for s in report.signatures])

One module per API: :mod:`~remotesign_client.signapi` (eParaksts-style SignAPI),
:mod:`~remotesign_client.esigp` (TrustedX-style eSigP), :mod:`~remotesign_client.validation`
(``/v1/validations`` and the eParaksts Validation API), :mod:`~remotesign_client.batches`
(``/v1/batches``: many documents validated or extended in the background),
:mod:`~remotesign_client.native` (``/v1/keys``, ``/v1/certificates``, ``/v1/audit``); tokens in
:mod:`~remotesign_client.auth`, errors in :mod:`~remotesign_client.errors`.
"""

from __future__ import annotations

import httpx

from remotesign_client._base import DEFAULT_TIMEOUT
from remotesign_client.auth import AuthorizationCode, BearerToken, ClientCredentials, digests_summary
from remotesign_client.batches import Batch, BatchClient, BatchItem
from remotesign_client.errors import (AuthenticationError, Conflict, Gone, InvalidRequest, NotFound, PayloadTooLarge,
                                      PermissionDenied, RateLimited, RemotesignError, ServerError, TransportError)
from remotesign_client.esigp import EsigpClient, SignIdentity
from remotesign_client.native import Certificate, Key, NativeClient
from remotesign_client.signapi import PreparedSignature, SignApiClient, StoredDocument
from remotesign_client.validation import SignatureVerdict, ValidationClient, ValidationReport

__version__ = "0.1.0"


class Remotesign:
    """Every API client of one relying party, sharing one ``httpx.Client`` and one cached
    client-credentials token. ``http``: your own client (then it is not closed here)."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, scope: str | None = None,
                 http: httpx.Client | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._owned = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeout)
        self.base_url = base_url.rstrip("/")
        self.auth = ClientCredentials(self.base_url, client_id, client_secret, scope=scope, http=self.http)
        self.client_id, self.client_secret = client_id, client_secret
        self.signapi = SignApiClient(self.base_url, self.auth, http=self.http)
        self.esigp = EsigpClient(self.base_url, self.auth, http=self.http)
        self.validation = ValidationClient(self.base_url, self.auth, http=self.http)
        self.batches = BatchClient(self.base_url, self.auth, http=self.http)
        self.native = NativeClient(self.base_url, self.auth, http=self.http)

    def as_user(self, user_token: str) -> EsigpClient:
        """The eSigP client acting with a user's token (e.g. a signing token from their consent)."""
        return EsigpClient(self.base_url, user_token, http=self.http)

    def authorization(self, redirect_uri: str) -> AuthorizationCode:
        """A new authorization-code flow of this client (PKCE S256, fresh state)."""
        return AuthorizationCode(self.base_url, self.client_id, self.client_secret, redirect_uri, http=self.http)

    def close(self) -> None:
        if self._owned:
            self.http.close()

    def __enter__(self) -> "Remotesign":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AuthenticationError", "AuthorizationCode", "Batch", "BatchClient", "BatchItem", "BearerToken",
           "Certificate", "ClientCredentials", "Conflict", "EsigpClient", "Gone", "InvalidRequest", "Key",
           "NativeClient", "NotFound", "PayloadTooLarge", "PermissionDenied", "PreparedSignature", "RateLimited",
           "Remotesign", "RemotesignError", "ServerError", "SignApiClient", "SignIdentity", "SignatureVerdict",
           "StoredDocument", "TransportError", "ValidationClient", "ValidationReport", "digests_summary"]
