"""The one failure of a per-request time-stamping authority, with a stable code.

``TsaError`` is a pyHanko ``TimestampRequestError`` (an ``IOError``), so every caller that already
handles a failed time-stamp (the signing core maps it to ``timestamp_unavailable``) keeps working,
and it carries ``code``, ``message`` and ``status`` like ``core.errors.CoreError`` so a facade can
answer the precise reason. It is raised before anything is written: formats ask the TSA first.
"""

from __future__ import annotations

from pyhanko.sign.timestamps import TimestampRequestError

#: code -> HTTP status a facade answers with
TSA_ERROR_STATUS = {
    "tsa_unreachable": 502,        # DNS, connect, TLS handshake or timeout
    "tsa_refused": 502,            # HTTP 401/403/407, a TLS client-certificate alert, PKIStatus rejection
    "tsa_bad_response": 502,       # not a TimeStampResp, wrong imprint/nonce, too large, wrong HTTP answer
    "tsa_not_allowed": 400,        # the URL's scheme, host or address is not allowed by the operator
    "tsa_credential_unknown": 400,  # no client certificate with this code for this client (or wrong password)
    "tsa_credential_unusable": 400,  # the credential's key is in the HSM: Python's TLS cannot use it
    "tsa_invalid_choice": 400,     # the tsa object itself is malformed (type, missing user, algorithm)
}


class TsaError(TimestampRequestError):
    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else TSA_ERROR_STATUS.get(code, 502)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
