"""OAuth2 scopes the service knows. Vendor facades add theirs here so one token endpoint serves all."""

from __future__ import annotations

INTROSPECT = "urn:safelayer:eidas:oauth:token:introspect"  # eParaksts SignAPI client token
KEYS = "remotesign:keys"
CERTIFICATES = "remotesign:certificates"
AUDIT = "remotesign:audit"
VALIDATE = "remotesign:validate"

KNOWN_SCOPES: dict[str, str] = {
    INTROSPECT: "eParaksts-style SignAPI access (Session, Storage, Config, Signing, Validation)",
    KEYS: "create and use the relying party's keys (native API)",
    CERTIFICATES: "issue, read and revoke the relying party's certificates (native API)",
    AUDIT: "read the relying party's own audit events (native API)",
    VALIDATE: "validate signed documents and manage the relying party's trust anchors (native API)",
}
