"""The shapes of the CSC API's answers (v1.0.4.0 and v2.0.0.2), for the description only: the
handlers build their JSON themselves, and these models say what it holds, attached to the routes
with ``responses=`` (never ``response_model=``, which would filter the answer). A field one version
sends and the other does not is optional, and its description names the version; the models
forbid other keys, so a field a handler adds without describing it fails the tests. The ``credentials/*`` answers
are in credential_answers.py."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

#: the type of a field the answer leaves out at times (it is never ``null``)
Absent = SkipJsonSchema[None]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str) -> Any:
    """A field that is sometimes left out of the answer: not required, and described as its own
    type (not ``null``)."""
    return Field(None, description=description, json_schema_extra=_no_default)


def examples(*items: dict[str, Any]) -> ConfigDict:
    """The config of an answer with fixed keys, and examples of it."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(items)})


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- info and the authorization server's metadata ---------------------------------------------------


class CscSignAlgorithms(Answer):
    algos: list[str] = Field(description="signAlgo OIDs the service makes")
    algoParams: list[str] = Field(description="base64 DER RSASSA-PSS parameters it accepts (SHA-256/384/512)")


class CscSignatureFormats(Answer):
    formats: list[str] = Field(description="signDoc signature_format values: C (CAdES), X (XAdES), P (PAdES)")
    envelope_properties: list[list[str]] = Field(description="signed_envelope_property values of each format")


_INFO_V1 = {"specs": "1.0.4.0", "name": "remotesign", "logo": "https://sign.example/csc/logo.svg", "region": "LV",
            "lang": "en-US", "description": "Remote signing service", "authType": ["oauth2code"],
            "oauth2": "https://sign.example/csc/v1",
            "methods": ["credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash"]}


class CscInfo(Answer):
    """What this CSC service is and offers (``info``), in the fields of the version asked."""

    model_config = examples(_INFO_V1)

    specs: Literal["1.0.4.0", "2.0.0.2"] = Field(description="the version of the specification answered")
    name: str
    logo: str = Field(description="URL of the service's logo (GET /csc/logo.svg)")
    region: str | None = Field(description="ISO 3166-1 alpha-2 country of the service (null for an instance "
                                           "initialised without a country)")
    lang: str = Field(description="the language asked for (lang), or en-US")
    description: str
    authType: list[Literal["basic", "oauth2code"]] = Field(description="basic only where auth/login is enabled")
    oauth2: str = Field(description="base URI of the OAuth2 authorization server")
    methods: list[str] = Field(description="the methods of this version the service answers")
    oauth2Issuer: str | Absent = absent("v2 only: the issuer of the RFC 8414 metadata")
    asynchronousOperationMode: bool | Absent = absent("v2 only: operationMode A of signHash / signDoc")
    validationInfo: bool | Absent = absent("v2 only: signDoc returns validationInfo when asked")
    signAlgorithms: CscSignAlgorithms | Absent = absent("v2 only")
    signature_formats: CscSignatureFormats | Absent = absent("v2 only")
    conformance_levels: list[str] | Absent = absent("v2 only: the signDoc conformance_level values")


class CscAuthorizationServerMetadata(Answer):
    """RFC 8414 metadata of the CSC authorization server whose issuer is ``{base}/csc/{version}``."""

    model_config = examples({
        "issuer": "https://sign.example/csc/v2", "authorization_endpoint": "https://sign.example/csc/v2/oauth2/authorize",
        "token_endpoint": "https://sign.example/csc/v2/oauth2/token",
        "revocation_endpoint": "https://sign.example/csc/v2/oauth2/revoke", "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"], "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["service", "credential"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "pushed_authorization_request_endpoint": "https://sign.example/csc/v2/oauth2/pushed_authorize",
        "authorization_details_types_supported": ["credential"]})

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    response_types_supported: list[str]
    grant_types_supported: list[str]
    code_challenge_methods_supported: list[str]
    scopes_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    pushed_authorization_request_endpoint: str | Absent = absent("v2 only (RFC 9126)")
    authorization_details_types_supported: list[str] | Absent = absent("v2 only (RFC 9396)")


# -- OAuth2 and auth/login --------------------------------------------------------------------------


class CscToken(Answer):
    """``oauth2/token``: the access token of an authorization code."""

    model_config = examples({"access_token": "4f8b…", "token_type": "Bearer", "expires_in": 3600,
                              "scope": "credential", "credentialID": "6b0c…"})

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds")
    scope: Literal["service", "credential"]
    credentialID: str | Absent = absent("scope credential only: the credential the token signs with, once")


class CscPushedAuthorization(Answer):
    """``oauth2/pushed_authorize`` (v2, RFC 9126)."""

    model_config = examples({"request_uri": "urn:ietf:params:oauth:request_uri:Zq3…", "expires_in": 90})

    request_uri: str = Field(description="for oauth2/authorize, once")
    expires_in: int = Field(description="seconds")


class CscLogin(Answer):
    """``auth/login``: a service-scope access token of the user's HTTP Basic login."""

    model_config = examples({"access_token": "4f8b…", "expires_in": 3600})

    access_token: str
    expires_in: int = Field(description="seconds")


# -- signatures -------------------------------------------------------------------------------------


class CscSignatures(Answer):
    """``signatures/signHash``: one signature value per hash, in the order of the hashes."""

    model_config = examples({"signatures": ["KedJuTob5gtvYx9qM3k3gm7kbLBwVbEQRl26S2tmXjqNND7MRGtoew=="]})

    signatures: list[str] = Field(description="base64 (PKCS#1 v1.5, RSASSA-PSS, or ECDSA in DER)")


class CscValidationInfo(Answer):
    certificates: list[str] = Field(description="base64 DER")
    ocsp: list[str] = Field(description="base64 DER OCSP responses")
    crl: list[str] = Field(description="base64 DER CRLs")


class CscSignedDocuments(Answer):
    """``signatures/signDoc`` (v2): signed documents (``documents``) or signature objects
    (``documentDigests``), in request order."""

    model_config = examples({"DocumentWithSignature": ["JVBERi0xLjc…"], "SignatureObject": []})

    DocumentWithSignature: list[str] = Field(description="base64 of each signed document (empty for "
                                                         "documentDigests)")
    SignatureObject: list[str] = Field(description="base64 of each detached CAdES signature (empty for documents)")
    validationInfo: CscValidationInfo | Absent = absent("with returnValidationInfo true")


class CscPolledResult(RootModel[CscSignatures | CscSignedDocuments]):
    """``signatures/signPolling``: what the asynchronous signHash or signDoc answers, once."""


class CscStarted(Answer):
    """``operationMode: "A"``: the call goes on; ``signatures/signPolling`` with ``responseID`` gives the result."""

    model_config = examples({"responseID": "d1f2…"})

    responseID: str


class CscStillPending(Answer):
    """``signatures/signPolling``: the asynchronous call has not finished."""

    model_config = examples({"responseID": "d1f2…", "status": "pending"})

    responseID: str
    status: Literal["pending"]


class CscTimestamp(Answer):
    """``signatures/timestamp``."""

    model_config = examples({"timestamp": "MIIL…"})

    timestamp: str = Field(description="base64 DER RFC 3161 time-stamp token")
