"""OAuth2 scopes the service knows. Vendor facades add theirs here so one token endpoint serves all.

Client scopes are granted to a relying party with the client-credentials grant. User scopes are
granted only through the authorization-code grant, i.e. by the end user on the consent page."""

from __future__ import annotations

INTROSPECT = "urn:safelayer:eidas:oauth:token:introspect"  # eParaksts SignAPI client token
KEYS = "remotesign:keys"
CERTIFICATES = "remotesign:certificates"
AUDIT = "remotesign:audit"
VALIDATE = "remotesign:validate"
USERS = "remotesign:users"
IDENTITY_MANAGE = "urn:safelayer:eidas:sign:identity:manage"
SIGNATURES = "remotesign:signatures"  # Fortress-style client token (its wire scope is "client")
AGREEMENTS = "remotesign:agreements"  # register signers' agreements and manage their certificates

IDENTIFY = "urn:lvrtc:fpeil:aa"  # electronic identification: name and personal code
IDENTIFY_AGE = "urn:lvrtc:fpeil:aa:age"  # identification with the age (also :age_NN, "at least NN years")
IDENTITY_PROFILE = "urn:safelayer:eidas:sign:identity:profile"
USE_SERVER = "urn:safelayer:eidas:sign:identity:use:server"
USE_DEVICE = "urn:safelayer:eidas:sign:identity:use:device"

KNOWN_SCOPES: dict[str, str] = {
    INTROSPECT: "eParaksts-style SignAPI access (Session, Storage, Config, Signing, Validation)",
    KEYS: "create and use the relying party's keys (native API)",
    CERTIFICATES: "issue, read and revoke the relying party's certificates (native API)",
    AUDIT: "read the relying party's own audit events (native API)",
    VALIDATE: "validate signed documents and manage the relying party's trust anchors (native API)",
    USERS: "enrol the relying party's own end users and create their sign identities (admin API)",
    IDENTITY_MANAGE: "list and import sign identities of the relying party's own users (eSigP)",
    SIGNATURES: "extend signed documents and request signatures (Fortress-style and Remote Signing APIs)",
    AGREEMENTS: "register signers' agreements and manage their certificates (Remote Signing API)",
}

USER_SCOPES: dict[str, str] = {
    IDENTIFY: "see your name and personal code",
    IDENTIFY_AGE: "see your name, personal code and age",
    IDENTITY_PROFILE: "see your sign identities",
    USE_SERVER: "sign with your server-held key the documents shown (once)",
    USE_DEVICE: "send signature requests to your approval device",
}


def age_threshold(scope: str) -> int | None:
    """``urn:lvrtc:fpeil:aa:age_18`` -> 18; None for any other scope (the plain ``:age`` included)."""
    prefix = IDENTIFY_AGE + "_"
    if scope.startswith(prefix) and scope[len(prefix):].isdigit() and len(scope) - len(prefix) <= 3:
        return int(scope[len(prefix):])
    return None


def is_user_scope(scope: str) -> bool:
    return scope in USER_SCOPES or age_threshold(scope) is not None


def describe_user_scope(scope: str) -> str:
    years = age_threshold(scope)
    if years is not None:
        return f"see your name, personal code and whether you are at least {years} years old"
    return USER_SCOPES.get(scope, scope)


def is_identification(scope: str) -> bool:
    return scope in (IDENTIFY, IDENTIFY_AGE) or age_threshold(scope) is not None
