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
}

USER_SCOPES: dict[str, str] = {
    IDENTITY_PROFILE: "see your sign identities",
    USE_SERVER: "sign with your server-held key the documents shown (once)",
    USE_DEVICE: "send signature requests to your approval device",
}
