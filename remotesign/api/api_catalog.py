"""The APIs the service speaks, each with a description of its own cut from ``/openapi.json``.

An integrator of one vendor-style API wants that API's operations, not the service's 130: each
entry names the path prefixes that make it up, and ``describe`` keeps only those paths and the
components they reference. The CSC API serves v1 and v2 at ``/csc/{version}``: its two entries
fix the version and keep only the methods that version has (``csc.info.METHODS``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from remotesign.api.csc.info import METHODS as CSC_METHODS

_TOKEN = "/trustedx-authserver/oauth/{auth_server}/"


@dataclass(frozen=True)
class ApiEntry:
    slug: str
    title: str
    summary: str
    prefixes: tuple[str, ...]
    csc_version: str | None = None

    def holds(self, path: str) -> bool:
        return path.startswith(self.prefixes)


CATALOG: tuple[ApiEntry, ...] = (
    ApiEntry("signapi", "SignAPI (eParaksts-compatible)", "Sessions, storage, signing (CalculateDigest, "
             "finalizeSigning, addArchive, eSealCreate), validation and sharing, with its OAuth2 token endpoint",
             ("/api-session/", "/api-storage/", "/api-config/", "/api-sign/", "/api-validation/", "/api-share/",
              _TOKEN + "token", _TOKEN + "introspect")),
    ApiEntry("esigp", "eSigP (TrustedX-compatible)", "Sign identities, server and device raw signatures, the "
             "signed-in user's profile; the authorization server with its login and consent pages",
             ("/trustedx-resources/", "/trustedx-authserver/")),
    ApiEntry("fortress", "Fortress-style API", "Signature requests the user authorizes, execution, extension; "
             "users and their certificates", ("/fortress/",)),
    ApiEntry("remote-signing", "Remote Signing (VN)", "Certificate registration and life cycle, hash and file "
             "signing with the signer's authorization", ("/remote-signing/",)),
    ApiEntry("csc-v1", "CSC API v1", "Cloud Signature Consortium API 1.0.4",
             ("/csc/", "/.well-known/oauth-authorization-server/csc/"), csc_version="v1"),
    ApiEntry("csc-v2", "CSC API v2", "Cloud Signature Consortium API 2.0, with its RFC 8414 metadata",
             ("/csc/", "/.well-known/oauth-authorization-server/csc/"), csc_version="v2"),
    ApiEntry("validation", "Validation", "Validate signed documents (reports as JSON, HTML or PDF), trust "
             "anchors, batches of documents validated or extended in the background, and the upload page",
             ("/v1/validations", "/v1/trust-anchors", "/v1/batches", "/validate")),
    ApiEntry("native", "Native API", "Keys, certificates, audit; the relying party's users, sign identities, "
             "devices and client settings; the approval devices' own calls",
             ("/v1/keys", "/v1/certificates", "/v1/audit", "/v1/users", "/v1/identities", "/v1/client",
              "/v1/device/")),
    ApiEntry("pki", "PKI", "CA certificates, CRLs, OCSP, RFC 3161 time-stamping", ("/pki/",)),
)
BY_SLUG = {entry.slug: entry for entry in CATALOG}
_CSC_ALL = {method for methods in CSC_METHODS.values() for method in methods}


def _csc_path(path: str, version: str) -> str | None:
    """``path`` with ``{version}`` fixed, or None for a method this version lacks."""
    tail = path.removeprefix("/csc/{version}/")
    if tail in _CSC_ALL and tail not in CSC_METHODS[version]:
        return None
    return path.replace("{version}", version)


def _without_version(operation: dict[str, Any]) -> dict[str, Any]:
    kept = [p for p in operation.get("parameters", []) if not (p.get("in") == "path" and p.get("name") == "version")]
    return {**operation, "parameters": kept} if kept else {k: v for k, v in operation.items() if k != "parameters"}


def _referenced(node: Any, components: dict[str, Any], found: set[str]) -> None:
    """Names of the component schemas ``node`` reaches through ``$ref``, transitively."""
    for ref in _refs(node):
        name = ref.rsplit("/", 1)[-1]
        if ref.startswith("#/components/schemas/") and name not in found and name in components:
            found.add(name)
            _referenced(components[name], components, found)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def describe(full: dict[str, Any], entry: ApiEntry) -> dict[str, Any]:
    """The description of one API: its paths, the component schemas and security schemes they use."""
    paths: dict[str, Any] = {}
    for path, operations in full.get("paths", {}).items():
        if not entry.holds(path):
            continue
        if entry.csc_version is None:
            paths[path] = copy.deepcopy(operations)
            continue
        fixed = _csc_path(path, entry.csc_version)
        if fixed is not None:
            paths[fixed] = {method: _without_version(copy.deepcopy(op)) for method, op in operations.items()}
    components = full.get("components", {})
    schemas: set[str] = set()
    _referenced(paths, components.get("schemas", {}), schemas)
    used_security = {name for operations in paths.values() for op in operations.values()
                     for alternative in op.get("security", []) for name in alternative}
    security = {name: scheme for name, scheme in components.get("securitySchemes", {}).items() if name in used_security}
    if entry.csc_version is not None:  # its authorization server's URLs, not v2's
        security = json.loads(json.dumps(security).replace("/csc/v2/", f"/csc/{entry.csc_version}/"))
    described: dict[str, Any] = {
        "openapi": full["openapi"],
        "info": {**full["info"], "title": f"{full['info']['title']}: {entry.title}", "description": entry.summary},
        "paths": paths,
        "components": {"schemas": {name: components["schemas"][name] for name in sorted(schemas)},
                       "securitySchemes": security},
    }
    return described
