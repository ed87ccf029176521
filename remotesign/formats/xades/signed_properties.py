"""xades:SignedProperties for a detached signature over container files (EN 319 132-1 §5.2):
signing time, SigningCertificateV2, optional claimed role and production place, and one
DataObjectFormat per file so that viewers know what each reference is."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.certs import cert_digest, issuer_serial_v2
from remotesign.formats.xades.xmlio import b64

#: production_place key -> element, in the schema's order (SignatureProductionPlaceV2Type).
PLACE_FIELDS = (
    ("city", "City"),
    ("street_address", "StreetAddress"),
    ("state_or_province", "StateOrProvince"),
    ("postal_code", "PostalCode"),
    ("country_name", "CountryName"),
)
_PLACE_KEYS = {key for key, _ in PLACE_FIELDS} | {"country"}

CERT_DIGEST_ALGORITHM = "sha256"


def xades_time(value: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ``; a naive datetime is ambiguous and refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise FormatError("invalid_argument", "signing_time must be timezone-aware")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: etree._Element, ns: str, local: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, c.q(ns, local), attrs)
    if text is not None:
        el.text = text
    return el


@dataclass(frozen=True)
class PolicyId:
    """An explicit signature policy (XAdES-EPES): its identifier (an OID or a URI), the digest of
    the policy document with its algorithm ('sha256' | 'sha384' | 'sha512'), an optional
    description and an optional URI where the document is published (SPURI qualifier)."""

    identifier: str
    digest_algorithm: str
    digest: bytes
    description: str | None = None
    uri: str | None = None


def build_qualifying_properties(*, parent: etree._Element, signature_id: str, signed_properties_id: str,
                                signing_time: datetime, certificate: bytes,
                                data_objects: Sequence[tuple[str, str] | tuple[str, str, str | None]],
                                claimed_role: str | None, production_place: dict[str, str] | None,
                                claimed_roles: Sequence[str] = (), policy: PolicyId | None = None) -> etree._Element:
    """Append ``xades:QualifyingProperties`` to ``parent`` (a ds:Object); ``data_objects`` are
    (reference Id, MIME type[, encoding URI]) tuples. ``claimed_role`` and ``claimed_roles``
    together make one SignerRoleV2. Returns the SignedProperties element."""
    qp = etree.SubElement(parent, c.q(c.XADES, "QualifyingProperties"), {"Target": f"#{signature_id}"},
                          nsmap={"xades": c.XADES})
    sp = _sub(qp, c.XADES, "SignedProperties", Id=signed_properties_id)
    ssp = _sub(sp, c.XADES, "SignedSignatureProperties")
    _sub(ssp, c.XADES, "SigningTime", xades_time(signing_time))

    signing_cert = _sub(ssp, c.XADES, "SigningCertificateV2")
    cert = _sub(signing_cert, c.XADES, "Cert")
    digest = _sub(cert, c.XADES, "CertDigest")
    _sub(digest, c.DS, "DigestMethod", Algorithm=c.DIGEST_URIS[CERT_DIGEST_ALGORITHM])
    _sub(digest, c.DS, "DigestValue", b64(cert_digest(certificate, CERT_DIGEST_ALGORITHM)))
    _sub(cert, c.XADES, "IssuerSerialV2", b64(issuer_serial_v2(certificate)))

    if policy is not None:
        _policy(ssp, policy)
    if production_place:
        _production_place(ssp, production_place)
    roles_wanted = ([claimed_role] if claimed_role is not None else []) + list(claimed_roles)
    if roles_wanted:
        if any(not isinstance(r, str) or not r.strip() for r in roles_wanted):
            raise FormatError("invalid_argument", "a claimed role must not be blank")
        role = _sub(ssp, c.XADES, "SignerRoleV2")
        roles = _sub(role, c.XADES, "ClaimedRoles")
        for text in roles_wanted:
            _sub(roles, c.XADES, "ClaimedRole", text)

    sdop = _sub(sp, c.XADES, "SignedDataObjectProperties")
    for ref_id, mime_type, *rest in data_objects:
        fmt = _sub(sdop, c.XADES, "DataObjectFormat", ObjectReference=f"#{ref_id}")
        _sub(fmt, c.XADES, "MimeType", mime_type)
        if rest and rest[0]:
            _sub(fmt, c.XADES, "Encoding", rest[0])
    return sp


_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


def _policy(parent: etree._Element, policy: PolicyId) -> None:
    """SignaturePolicyIdentifier/SignaturePolicyId (EN 319 132-1 §5.2.9): an OID identifier is
    written as a URN with Qualifier="OIDAsURN", as EU DSS writes it."""
    identifier = (policy.identifier or "").strip()
    if not identifier:
        raise FormatError("invalid_argument", "the signature policy needs an identifier")
    if policy.digest_algorithm not in c.DIGEST_URIS:
        raise FormatError("unsupported_algorithm",
                          f"policy digest algorithm {policy.digest_algorithm!r} is not supported")
    if len(policy.digest) != hashlib.new(policy.digest_algorithm).digest_size:
        raise FormatError("invalid_argument", "the signature policy digest has the wrong length")
    spi = _sub(parent, c.XADES, "SignaturePolicyIdentifier")
    spid = _sub(spi, c.XADES, "SignaturePolicyId")
    sig_policy_id = _sub(spid, c.XADES, "SigPolicyId")
    if _OID.match(identifier.removeprefix("urn:oid:")):
        _sub(sig_policy_id, c.XADES, "Identifier", "urn:oid:" + identifier.removeprefix("urn:oid:"),
             Qualifier="OIDAsURN")
    else:
        _sub(sig_policy_id, c.XADES, "Identifier", identifier)
    if policy.description:
        _sub(sig_policy_id, c.XADES, "Description", policy.description)
    policy_hash = _sub(spid, c.XADES, "SigPolicyHash")
    _sub(policy_hash, c.DS, "DigestMethod", Algorithm=c.DIGEST_URIS[policy.digest_algorithm])
    _sub(policy_hash, c.DS, "DigestValue", b64(policy.digest))
    if policy.uri:
        qualifiers = _sub(spid, c.XADES, "SigPolicyQualifiers")
        qualifier = _sub(qualifiers, c.XADES, "SigPolicyQualifier")
        _sub(qualifier, c.XADES, "SPURI", policy.uri)


def _production_place(parent: etree._Element, place: dict[str, str]) -> None:
    unknown = set(place) - _PLACE_KEYS
    if unknown:
        raise FormatError("invalid_argument", f"unknown production_place keys: {', '.join(sorted(unknown))}")
    values = dict(place)
    if "country" in values:
        values.setdefault("country_name", values.pop("country"))
    el = _sub(parent, c.XADES, "SignatureProductionPlaceV2")
    for key, local in PLACE_FIELDS:
        value = values.get(key)
        if value is not None and str(value).strip():
            _sub(el, c.XADES, local, str(value))
