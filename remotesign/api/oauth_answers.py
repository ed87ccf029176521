"""The shapes of the token endpoints' answers, for the description only: the handlers (oauth.py,
fortress/token.py) build their JSON themselves, and these models say what it holds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent


class AccessToken(BaseModel):
    """An access token (RFC 6749 §5.1), as the Fortress-style token endpoint answers it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"access_token": "q0Vf3…", "token_type": "Bearer", "expires_in": 3600}]})
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds")


class ScopedAccessToken(AccessToken):
    """An access token with the scopes it was granted (the TrustedX-style authorization server)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"access_token": "q0Vf3…", "token_type": "Bearer", "expires_in": 3600,
         "scope": "urn:safelayer:eidas:oauth:token:introspect"}]})
    scope: str = Field(description="the granted scopes, space-separated")


class Introspection(BaseModel):
    """RFC 7662: ``{"active": false}`` alone for an unknown, expired or revoked token, or another
    client's; the token's facts otherwise."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"active": False},
        {"active": True, "scope": "urn:safelayer:eidas:oauth:token:introspect", "client_id": "demo",
         "token_type": "Bearer", "exp": 1735689600, "iat": 1735686000, "sub": "demo",
         "iss": "https://sign.example/trustedx-authserver/oauth/lvrtc-eipsign-as"}]})
    active: bool
    scope: str = absent("space-separated scopes")
    client_id: str = absent()
    token_type: Literal["Bearer"] = absent()
    exp: int = absent("expiry, seconds since the epoch")
    iat: int = absent("issue time, seconds since the epoch")
    sub: str = absent("the user a token of the authorization-code grant acts for, else the client")
    iss: str = absent("this authorization server")
    sign_identity_id: str = absent("the sign identity a signing token is bound to")
    digests_summary: str = absent("the summary of the digests the user consented to sign")
    digests_summary_algorithm: str | None = absent("the summary's digest algorithm")
