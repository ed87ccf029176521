"""What every signature format shares: the signer description, the validation material embedded
for LT/LTA, and the time-stamp callback. Formats never talk to the network or the key store
themselves; the signing core hands them these values, so every format is testable in-process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

#: ``await timestamp(message_imprint, hash_name)`` -> DER of a TimeStampToken (CMS ContentInfo).
TimestampFn = Callable[[bytes, str], Awaitable[bytes]]

DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


class FormatError(Exception):
    """Input that a format cannot sign or extend; ``code`` is stable and reaches the API's envelope."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignerSpec:
    """Who signs and how: the certificate (DER), its issuers up to the root (DER, nearest first),
    the digest algorithm ('sha256' | 'sha384' | 'sha512') and the mechanism ('rsa' | 'ecdsa')."""

    certificate: bytes
    chain: tuple[bytes, ...]
    digest_algorithm: str
    mechanism: str


@dataclass(frozen=True)
class ValidationData:
    """Certificates, OCSP responses and CRLs (all DER) that make a signature verifiable later
    without the network: what LT and LTA levels embed."""

    certificates: tuple[bytes, ...] = ()
    ocsp_responses: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()

    def merged(self, other: "ValidationData") -> "ValidationData":
        """Union of both, first occurrence order kept, duplicates dropped."""
        return ValidationData(
            certificates=_unique(self.certificates + other.certificates),
            ocsp_responses=_unique(self.ocsp_responses + other.ocsp_responses),
            crls=_unique(self.crls + other.crls),
        )

    def without(self, present: "ValidationData") -> "ValidationData":
        """What ``self`` has that ``present`` does not (for TimeStampValidationData / DSS updates)."""
        return ValidationData(
            certificates=tuple(c for c in self.certificates if c not in set(present.certificates)),
            ocsp_responses=tuple(o for o in self.ocsp_responses if o not in set(present.ocsp_responses)),
            crls=tuple(c for c in self.crls if c not in set(present.crls)),
        )

    def is_empty(self) -> bool:
        return not (self.certificates or self.ocsp_responses or self.crls)


def _unique(items: tuple[bytes, ...]) -> tuple[bytes, ...]:
    seen: set[bytes] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return tuple(out)


@dataclass
class Limits:
    """Bounds on untrusted containers: entry count, total and per-entry uncompressed size, and the
    compression ratio above which an entry is treated as a zip bomb."""

    max_entries: int = 10_000
    max_total_uncompressed: int = 1 << 31
    max_entry_uncompressed: int = 1 << 31
    max_ratio: int = 200
    max_xml_bytes: int = 16 << 20
    extra: dict[str, int] = field(default_factory=dict)
