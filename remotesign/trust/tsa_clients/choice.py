"""Which time-stamping authority a request wants (the Fortress-style ``tsa`` object), as a frozen
value: the service's own TSA, or a URL with no authentication, HTTP Basic, or a TLS client
certificate that the operator registered under a code; plus the hash algorithm of the imprint."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from remotesign.trust.tsa_clients.errors import TsaError

#: Fortress ``timestampAlgorithm`` -> hashlib / pyHanko name
HASH_ALGORITHMS = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}
MAX_URL_LENGTH = 2048


class TsaAuth(str, enum.Enum):
    NONE = "none"                              # Fortress type URL
    BASIC = "basic"                            # USER: HTTP Basic with user / password
    CLIENT_CERTIFICATE = "client_certificate"  # CERTIFICATE, CERTIFICATE_TLS: TLS client certificate by code


_FORTRESS_TYPES = {"URL": TsaAuth.NONE, "USER": TsaAuth.BASIC, "CERTIFICATE": TsaAuth.CLIENT_CERTIFICATE,
                   "CERTIFICATE_TLS": TsaAuth.CLIENT_CERTIFICATE}


@dataclass(frozen=True)
class TsaChoice:
    """``url`` None is the service's own (configured) TSA. ``password`` is the Basic password or,
    with a client certificate, the password the operator may have set on that credential.
    ``hash_algorithm`` is what the caller hashes the imprint with (``ExtensionContext.digest_algorithm``)."""

    url: str | None = None
    auth: TsaAuth = TsaAuth.NONE
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    certificate_code: str | None = None
    hash_algorithm: str = "sha256"

    def __post_init__(self) -> None:
        if self.hash_algorithm not in HASH_ALGORITHMS.values():
            raise TsaError("tsa_invalid_choice", f"unsupported time-stamp hash algorithm {self.hash_algorithm!r}")
        if self.url is None:
            if self.auth is not TsaAuth.NONE or self.user or self.certificate_code:
                raise TsaError("tsa_invalid_choice", "authentication needs a TSA URL")
            return
        check_url(self.url)
        if self.auth is TsaAuth.BASIC and not self.user:
            raise TsaError("tsa_invalid_choice", "type USER needs a user")
        if self.auth is TsaAuth.BASIC and (":" in (self.user or "")):
            raise TsaError("tsa_invalid_choice", "an HTTP Basic user name cannot contain ':'")
        if self.auth is TsaAuth.CLIENT_CERTIFICATE and not self.certificate_code:
            raise TsaError("tsa_invalid_choice", "a TLS client certificate is named by certificateCode")

    @property
    def is_default(self) -> bool:
        return self.url is None

    @classmethod
    def default(cls, hash_algorithm: str = "sha256") -> "TsaChoice":
        return cls(hash_algorithm=hash_algorithm)

    @classmethod
    def from_fortress(cls, obj: Mapping[str, Any] | None) -> "TsaChoice":
        """The Fortress API's ``tsa`` object (None or {} -> the service's own TSA)::

            {"type": "URL"|"USER"|"CERTIFICATE"|"CERTIFICATE_TLS", "url", "user", "password",
             "certificateCode", "timestampAlgorithm": "SHA1"|"SHA256"|"SHA384"|"SHA512"}
        """
        if obj is None:
            return cls.default()
        if not isinstance(obj, Mapping):
            raise TsaError("tsa_invalid_choice", "tsa must be an object")
        for name in ("type", "url", "user", "password", "certificateCode", "timestampAlgorithm"):
            if obj.get(name) is not None and not isinstance(obj[name], str):
                raise TsaError("tsa_invalid_choice", f"tsa.{name} must be a string")
        algorithm_name = (obj.get("timestampAlgorithm") or "SHA256").upper().replace("-", "")
        if algorithm_name not in HASH_ALGORITHMS:
            raise TsaError("tsa_invalid_choice", f"tsa.timestampAlgorithm must be one of {', '.join(HASH_ALGORITHMS)}")
        algorithm = HASH_ALGORITHMS[algorithm_name]
        url = obj.get("url") or None
        kind = (obj.get("type") or ("URL" if url else "")).upper()
        if not kind and not url:
            return cls.default(algorithm)
        if kind not in _FORTRESS_TYPES:
            raise TsaError("tsa_invalid_choice", f"tsa.type must be one of {', '.join(_FORTRESS_TYPES)}")
        if not url:
            raise TsaError("tsa_invalid_choice", f"tsa.type {kind} needs tsa.url")
        auth = _FORTRESS_TYPES[kind]
        return cls(url=url, auth=auth,
                   user=obj.get("user") if auth is TsaAuth.BASIC else None,
                   password=obj.get("password") if auth is not TsaAuth.NONE else None,
                   certificate_code=obj.get("certificateCode") if auth is TsaAuth.CLIENT_CERTIFICATE else None,
                   hash_algorithm=algorithm)


def check_url(url: str) -> httpx.URL:
    """An absolute http(s) URL with a host, no user info and no fragment; else ``tsa_not_allowed``."""
    if len(url) > MAX_URL_LENGTH:
        raise TsaError("tsa_not_allowed", f"the TSA URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise TsaError("tsa_not_allowed", f"the TSA URL is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TsaError("tsa_not_allowed", "the TSA URL must be http or https")
    if not parsed.host:
        raise TsaError("tsa_not_allowed", "the TSA URL has no host")
    if parsed.userinfo:
        raise TsaError("tsa_not_allowed", "the TSA URL must not carry credentials (use type USER)")
    if parsed.fragment:
        raise TsaError("tsa_not_allowed", "the TSA URL must not have a fragment")
    return parsed
