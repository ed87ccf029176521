"""The Fortress ``tsa`` object as the service's time-stamping choice (trust/tsa_clients): ``URL``
(no authentication), ``USER`` (HTTP Basic), ``CERTIFICATE`` / ``CERTIFICATE_TLS`` (a TLS client
certificate the operator registered under ``certificateCode``). No ``tsa``, or one without a
URL, means the service's own TSA. ``timestampAlgorithm`` picks the imprint's hash; SHA-1 is
raised to SHA-256 (no new time-stamp is made over SHA-1)."""

from __future__ import annotations

from pyhanko.sign.timestamps import TimeStamper

from remotesign.api.errors import OAuthError
from remotesign.api.fortress.models import TsaConfiguration
from remotesign.service import Services
from remotesign.trust.tsa_clients import TsaChoice, TsaError


def timestamper_for(svc: Services, tsa: TsaConfiguration | None, tenant_id: str) -> tuple[TimeStamper | None, str | None]:
    """(time-stamper or None for the service's default, the imprint hash the choice names or None)."""
    if tsa is None or not (tsa.url or tsa.certificateCode or tsa.user):
        return None, _hash(tsa.timestampAlgorithm if tsa else None)
    try:
        choice = TsaChoice.from_fortress(tsa.model_dump(exclude_none=True))
        return svc.tsa_clients.timestamper(choice, tenant_id), _hash(choice.hash_algorithm)
    except TsaError as exc:
        raise OAuthError(exc.status, exc.code if exc.status >= 500 else "invalid_request",
                         f"tsa: {exc.message}") from exc


def _hash(name: str | None) -> str | None:
    if not name:
        return None
    name = name.lower().replace("-", "")
    return "sha256" if name in ("sha1", "sha224") else name
