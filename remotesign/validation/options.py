"""What a validation is run against: trust anchors, trusted lists, the validation time, online
fetching, the validation policy, and the detached content of the signed files. Builds the pyHanko/certvalidator
validation specs every format validator shares, so one request gets one trust decision."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from asn1crypto import x509
from pyhanko.sign.validation.policy_decl import (LocalKnowledge, RevinfoOnlineFetchingRule,
                                                 RevocationInfoGatheringSpec, SignatureValidationSpec)
from pyhanko.sign.validation.qualified.tsp import TSPRegistry, TSPTrustManager
from pyhanko_certvalidator.authority import Authority, TrustAnchor
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import (CertRevTrustPolicy, REQUIRE_REVINFO, RevocationCheckingPolicy,
                                               RevocationCheckingRule)
from pyhanko_certvalidator.registry import SimpleTrustManager

from remotesign.formats.base import Limits, ValidationData
# Opens one signed data object; resolves a detached reference URI to one (None: not available,
# -> SIGNED_DATA_NOT_FOUND). Defined with the reference processor that calls them.
from remotesign.formats.xades.references import ContentOpener, Resolver  # noqa: F401 - re-exported
from remotesign.validation.policy import ValidationPolicy, builtin_policy


@dataclass(frozen=True)
class DetachedDocument:
    """Content of a detached signature, supplied next to it; streamed from ``path``."""

    name: str
    path: Path


def _until_sunset(anchor: TrustAnchor | None) -> TrustAnchor | None:
    """A trusted-list anchor bounded only by the end of its service ("sunset"), as EU DSS's trust
    anchor verifier bounds it: when the current status began says when the list last changed it,
    not that certificates issued before were untrusted (lists often carry no older history).
    Qualification still reads the service status at the signing time."""
    if anchor is None or anchor.trust_qualifiers.valid_from is None:
        return anchor
    quals = dataclasses.replace(anchor.trust_qualifiers, valid_from=None)
    return TrustAnchor(anchor.authority, quals=quals)


class AnchoredTSPTrustManager(TSPTrustManager):
    """Trusts qualified services from trusted lists *and* plain anchors (built-in CA, operator
    and per-request anchors). Subclassing TSPTrustManager keeps pyHanko's qualification
    analysis working, which only runs for TSP-backed trust managers."""

    def __init__(self, registry: TSPRegistry, anchors: Sequence[x509.Certificate]) -> None:
        super().__init__(registry)
        self._simple = SimpleTrustManager.build(trust_roots=list(anchors))

    def as_trust_anchor(self, authority: Authority) -> TrustAnchor | None:
        return self._simple.as_trust_anchor(authority) or _until_sunset(super().as_trust_anchor(authority))

    def find_potential_issuers(self, cert: x509.Certificate) -> Iterator[TrustAnchor]:
        yield from self._simple.find_potential_issuers(cert)
        for anchor in super().find_potential_issuers(cert):
            yield _until_sunset(anchor)  # type: ignore[misc]

    def is_ocsp_authority(self, cert: x509.Certificate) -> bool:
        """An OCSP responder a trusted list names as a service (see TrustListRegistry)."""
        check = getattr(self.tsp_registry, "is_ocsp_responder", None)
        return bool(check and check(cert))


@dataclass(frozen=True)
class ValidationOptions:
    """Everything that decides a validation outcome besides the file itself."""

    trust_anchors: tuple[x509.Certificate, ...] = ()
    tsp_registry: TSPRegistry | None = None          # from local EU trusted lists
    validation_time: datetime | None = None          # None = now
    allow_fetching: bool = False                      # online OCSP/CRL/AIA only when configured
    fetch_timeout: float = 10.0
    detached: tuple[DetachedDocument, ...] = ()
    limits: Limits = field(default_factory=Limits)
    #: Fresh revocation data the service can produce without the network (its own CA's OCSP
    #: responder, in-process): called with certificates found in a signature.
    revocation_provider: Callable[[Sequence[x509.Certificate]], ValidationData] | None = None
    #: "Now" for a validation at the current time, pinned once per document (see :meth:`pinned`)
    #: so every check and the report use the same instant.
    now: datetime | None = None
    #: Levels of the checks and the cryptographic suite (remotesign.validation.policy).
    policy: ValidationPolicy = field(default_factory=builtin_policy)

    def pinned(self) -> ValidationOptions:
        """These options with "now" fixed to this moment (no-op for a past-time validation)."""
        if self.validation_time is not None or self.now is not None:
            return self
        return dataclasses.replace(self, now=datetime.now(timezone.utc))

    @property
    def at(self) -> datetime:
        """The validation time, timezone-aware."""
        when = self.validation_time or self.now or datetime.now(timezone.utc)
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

    def timing_info(self) -> ValidationTimingInfo:
        at = self.at
        return ValidationTimingInfo(validation_time=at, best_signature_time=at,
                                    point_in_time_validation=self.validation_time is not None)

    def trust_manager(self) -> SimpleTrustManager | AnchoredTSPTrustManager:
        if self.tsp_registry is not None:
            return AnchoredTSPTrustManager(self.tsp_registry, self.trust_anchors)
        return SimpleTrustManager.build(trust_roots=list(self.trust_anchors))

    def revocation_policy(self) -> CertRevTrustPolicy:
        """Revocation data required for every certificate (EN 319 102-1), unless the policy lowers
        ``revocation.unavailable``: then it is checked where at hand (embedded, or fetched when
        fetching is allowed) and a certificate without any is accepted (soft-fail)."""
        from remotesign.validation.policy import Level

        if self.policy.level("revocation.unavailable") is Level.FAIL:
            return CertRevTrustPolicy(REQUIRE_REVINFO)
        soft = RevocationCheckingRule.CHECK_IF_DECLARED_SOFT
        return CertRevTrustPolicy(RevocationCheckingPolicy(ee_certificate_rule=soft, intermediate_ca_cert_rule=soft))

    def signature_spec(self, local_knowledge: LocalKnowledge | None = None) -> SignatureValidationSpec:
        """pyHanko's AdES validation spec: revocation info required, embedded data first,
        online fetching only when ``allow_fetching``."""
        rule = (RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH if self.allow_fetching
                else RevinfoOnlineFetchingRule.LOCAL_ONLY)
        policy = CertValidationPolicySpec(trust_manager=self.trust_manager(),
                                          revinfo_policy=self.revocation_policy(),
                                          algorithm_usage_policy=self.policy.crypto.for_certificates().algorithm_policy())
        knowledge = local_knowledge or LocalKnowledge()
        responders = list(getattr(self.tsp_registry, "ocsp_responders", ()))
        if responders:  # a response need not carry its responder's certificate when a list names it
            knowledge = dataclasses.replace(knowledge, known_certs=[*knowledge.known_certs, *responders])
        return SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=rule),
            local_knowledge=knowledge,
            signature_algorithm_policy=self.policy.crypto.algorithm_policy(),
        )

    def provided_validation_data(self, certificates: Sequence[x509.Certificate]) -> ValidationData:
        """Validation data from ``revocation_provider`` for these certificates (validators merge
        it into what the signature embeds, after the embedded data)."""
        if self.revocation_provider is None or not certificates:
            return ValidationData()
        return self.revocation_provider(certificates)

    def detached_named(self, name: str) -> DetachedDocument | None:
        for doc in self.detached:
            if doc.name == name:
                return doc
        return None


