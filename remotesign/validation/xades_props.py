"""Signed qualifying properties as facts for the report (signing time, roles, place,
commitments, policy). The signing certificate's references and its identification (EN 319 102-1
§5.2.3) are part of the one XAdES reader, ``remotesign.formats.xades.reading``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from lxml import etree

from remotesign.formats.xades.dom import SignatureParts, local_name, text_of
from remotesign.formats.xades.reading import any_children


def parse_time(text: str | None) -> datetime | None:
    """xsd:dateTime; without a zone it is taken as UTC (as EU DSS does)."""
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass
class SignedFacts:
    """Signed properties reported to the caller."""

    claimed_signing_time: datetime | None = None
    signer_roles: list[str] = field(default_factory=list)
    production_place: dict[str, str] = field(default_factory=dict)
    commitment_types: list[str] = field(default_factory=list)
    policy_id: str | None = None
    policy_implied: bool = False
    #: what is wrong with SignaturePolicyIdentifier's structure, if anything
    policy_problems: list[str] = field(default_factory=list)


_PLACE = {"City": "city", "StateOrProvince": "stateOrProvince", "PostalCode": "postalCode",
          "CountryName": "countryName"}


def signed_facts(parts: SignatureParts) -> SignedFacts:
    facts = SignedFacts()
    times = parts.signed("SigningTime")
    if times:
        facts.claimed_signing_time = parse_time(text_of(times[0]))
    for role in parts.signed("SignerRole") + parts.signed("SignerRoleV2"):
        for claimed in any_children(role, "ClaimedRoles"):
            facts.signer_roles += [t for t in (text_of(r) for r in any_children(claimed, "ClaimedRole")) if t]
    for place in (parts.signed("SignatureProductionPlace") + parts.signed("SignatureProductionPlaceV2"))[:1]:
        for el in any_children(place):
            key = _PLACE.get(local_name(el))
            value = text_of(el)
            if key and value:
                facts.production_place[key] = value
    for indication in parts.data_object_properties("CommitmentTypeIndication"):
        for type_id in any_children(indication, "CommitmentTypeId"):
            value = text_of(next(iter(any_children(type_id, "Identifier")), None))
            if value:
                facts.commitment_types.append(value)
    for policy in parts.signed("SignaturePolicyIdentifier")[:1]:
        for policy_id in any_children(policy, "SignaturePolicyId"):
            for sig_policy_id in any_children(policy_id, "SigPolicyId"):
                identifier = next(iter(any_children(sig_policy_id, "Identifier")), None)
                facts.policy_id = text_of(identifier)
                facts.policy_problems += _identifier_problems(identifier)
        facts.policy_implied = bool(any_children(policy, "SignaturePolicyImplied"))
        if len(any_children(policy, "SignaturePolicyId")) + facts.policy_implied != 1:
            facts.policy_problems.append("SignaturePolicyIdentifier holds either one SignaturePolicyId or "
                                         "SignaturePolicyImplied (EN 319 132-1 §5.2.9)")
    return facts


def _identifier_problems(identifier: etree._Element | None) -> list[str]:
    """XAdES ObjectIdentifier (EN 319 132-1 §5.1.2): an OID written as a URN (``urn:oid:``) has the
    qualifier OIDAsURN; OIDAsURI is for an OID written as a URI."""
    if identifier is None:
        return []
    value, qualifier = (text_of(identifier) or ""), identifier.get("Qualifier")
    if value.lower().startswith("urn:oid:") and qualifier == "OIDAsURI":
        return [f"the signature policy identifier {value!r} is a URN, but its qualifier is OIDAsURI"]
    return []
