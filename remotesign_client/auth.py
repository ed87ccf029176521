"""Tokens for the remotesign APIs.

* :class:`ClientCredentials`: the relying party's own token (OAuth2 client credentials at
  ``/trustedx-authserver/oauth/{as}/token``, HTTP Basic client authentication), kept until shortly
  before it expires and fetched again then, or at once when the service answers 401 to it (a
  revoked token).
* :class:`BearerToken`: a token you already hold, e.g. a user's signing token from the
  authorization-code flow.
* :class:`AuthorizationCode`: the authorization-code flow's two ends for a relying party — the
  URL to send the user's browser to (with PKCE S256, the digests to sign and the identity), and
  the exchange of the code the browser brings back.

All three are ``httpx.Auth`` objects or give one, so they work with any ``httpx.Client``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from remotesign_client.errors import TransportError, from_response

DEFAULT_AUTH_SERVER = "lvrtc-eipsign-as"


@dataclass(frozen=True)
class Token:
    """An access token and when it stops being valid (``time.monotonic()`` seconds)."""

    access_token: str
    scope: str
    expires_at: float
    token_type: str = "Bearer"

    def expires_within(self, seconds: float) -> bool:
        return time.monotonic() + seconds >= self.expires_at


def token_url(base_url: str, auth_server: str = DEFAULT_AUTH_SERVER) -> str:
    return f"{str(base_url).rstrip('/')}/trustedx-authserver/oauth/{auth_server}/token"


def _token_request(http: httpx.Client | None, url: str, client_id: str, client_secret: str,
                   data: dict[str, str]) -> Token:
    """POST to the token endpoint with HTTP Basic client authentication."""
    try:
        if http is None:
            r = httpx.post(url, data=data, auth=(client_id, client_secret), timeout=30)
        else:
            r = http.post(url, data=data, auth=(client_id, client_secret))
    except httpx.HTTPError as exc:
        raise TransportError(f"token request failed: {exc}") from exc
    if r.status_code != 200:
        raise from_response(r)
    body = r.json()
    return Token(access_token=str(body["access_token"]), scope=str(body.get("scope") or ""),
                 expires_at=time.monotonic() + float(body.get("expires_in") or 300),
                 token_type=str(body.get("token_type") or "Bearer"))


def _replayable(request: httpx.Request) -> bool:
    """Whether ``request`` can be sent a second time (its body is in memory, not a stream)."""
    return isinstance(request.stream, httpx.ByteStream)


class BearerToken(httpx.Auth):
    """A token you hold already (``Authorization: Bearer TOKEN`` on every request)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class ClientCredentials(httpx.Auth):
    """The relying party's client-credentials token, cached and refreshed.

    ``scope``: space-separated scopes to ask for (default: all the client is allowed); ``leeway``:
    fetch a new token this many seconds before the old one expires. ``http``: the client that
    calls the token endpoint (any ``httpx.Client``; by default a one-off request). Thread-safe.
    """

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, scope: str | None = None,
                 auth_server: str = DEFAULT_AUTH_SERVER, http: httpx.Client | None = None,
                 leeway: float = 30.0) -> None:
        self.url = token_url(base_url, auth_server)
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.http = http
        self.leeway = leeway
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.fetched = 0  # how many tokens were fetched (a cache that works keeps this low)

    def token(self, *, refresh: bool = False) -> Token:
        """The current token; a new one when there is none, it is about to expire, or ``refresh``."""
        with self._lock:
            if refresh or self._token is None or self._token.expires_within(self.leeway):
                data = {"grant_type": "client_credentials"}
                if self.scope:
                    data["scope"] = self.scope
                self._token = _token_request(self.http, self.url, self.client_id, self.client_secret, data)
                self.fetched += 1
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the next request fetches a new one)."""
        with self._lock:
            self._token = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fetched = self.fetched
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code == 401 and self.fetched == fetched and _replayable(request):
            # revoked or expired early (a restarted service, a disabled and re-enabled client): once more
            fresh = self.token(refresh=True)
            if fresh.access_token != token.access_token:
                request.headers["Authorization"] = f"Bearer {fresh.access_token}"
                yield request


@dataclass
class AuthorizationCode:
    """The authorization-code flow of a relying party (confidential client).

    ``url(...)`` builds the address to send the user's browser to and remembers its state and
    PKCE verifier; ``exchange(code, ...)`` trades the code from the redirect for the user's token.
    For server signing give ``scope=USE_SERVER``, the identity and the digests' summary."""

    base_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    auth_server: str = DEFAULT_AUTH_SERVER
    http: httpx.Client | None = None
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def url(self, scope: str | Sequence[str], *, sign_identity_id: str | None = None,
            digests_summary: str | None = None, digests_summary_algorithm: str = "SHA256",
            digests_algorithms: Sequence[str] = (), ui_locales: str | None = None) -> str:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "scope": scope if isinstance(scope, str) else " ".join(scope), "state": self.state,
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        if sign_identity_id:
            params["sign_identity_id"] = sign_identity_id
        if digests_summary:
            params["digests_summary"] = digests_summary
            params["digests_summary_algorithm"] = digests_summary_algorithm
        if digests_algorithms:
            params["digests_algorithms"] = ",".join(digests_algorithms)
        if ui_locales:
            params["ui_locales"] = ui_locales
        return f"{str(self.base_url).rstrip('/')}/trustedx-authserver/oauth/{self.auth_server}?{urlencode(params)}"

    def exchange(self, code: str, state: str | None = None) -> Token:
        """The user's token for ``code``; ``state`` (from the redirect) is checked when given."""
        if state is not None and not secrets.compare_digest(state, self.state):
            raise ValueError("the redirect's state is not the one this flow sent")
        return _token_request(self.http, token_url(self.base_url, self.auth_server), self.client_id,
                              self.client_secret, {"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": self.redirect_uri,
                                                   "code_verifier": self.verifier})


def digests_summary(digests: Sequence[bytes], algorithm: str = "sha256") -> str:
    """base64 of H(d1 || d2 || ...): the ``digests_summary`` a server-signing consent is bound to."""
    h = hashlib.new(algorithm.lower().replace("-", ""))
    for d in digests:
        h.update(d)
    return base64.b64encode(h.digest()).decode()


__all__ = ["AuthorizationCode", "BearerToken", "ClientCredentials", "DEFAULT_AUTH_SERVER", "Token",
           "digests_summary", "token_url"]
