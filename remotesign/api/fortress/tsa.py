"""The Fortress ``tsa`` object as the service's time-stamping choice. No ``tsa`` (or one without
a URL) means the service's own TSA."""

from __future__ import annotations

from pyhanko.sign.timestamps import TimeStamper

from remotesign.api.errors import OAuthError
from remotesign.api.fortress.models import TsaConfiguration
from remotesign.service import Services


def timestamper_for(svc: Services, tsa: TsaConfiguration | None, tenant_id: str) -> TimeStamper | None:
    """None = the service's default TSA."""
    if tsa is None or not tsa.url:
        return None
    raise OAuthError(400, "invalid_request", "a caller-chosen TSA is not available on this service yet")
