"""RFC 5280 CRLs for the root CA and the issuing CA, generated on demand and stored.

``current(ca_id)`` serves the latest stored CRL of that CA and only generates (and stores) a new
one when the stored one is missing, stale (older than half its validity, so relying parties that
cache until nextUpdate never see an expired CRL), or possibly missing a revocation. The latter is
detected two ways, both cheap single-row queries:

* the CA has more revoked certificates than the stored CRL has entries (revocations are
  permanent, so any new revocation changes the count; this also catches a revocation whose
  transaction committed after the CRL was built although its ``revoked_at`` is older), and
* a certificate was revoked at or after the stored CRL's generation time.

CRL numbers are monotonic per issuer: a new CRL gets the stored maximum + 1 and the
``(issuer_id, number)`` unique constraint arbitrates between concurrent generators; the loser
discards its CRL and serves the winner's, re-read from the database.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from asn1crypto import crl as asn1_crl
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from remotesign.keystore import KeyStore, StoredKey
from remotesign.storage.db import Database
from remotesign.storage.models import CertificateRecord, CrlRecord
from remotesign.trust.ca import CertificateAuthority, IssuedCertificate
from remotesign.trust.signing import asn1_time, key_identifier, sign_der, signature_algorithm


class UnknownCaError(KeyError):
    """``ca_id`` is neither the root CA nor the issuing CA of this service (HTTP 404)."""


def _utc(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything this service stores is UTC.
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Stored:
    number: int
    this_update: datetime
    next_update: datetime
    der: bytes
    entries: int


class CrlPublisher:
    """Builds, stores and serves the CRLs of the two CAs."""

    GENERATION_ATTEMPTS = 5

    def __init__(self, db: Database, ca: CertificateAuthority, keystore: KeyStore, validity_hours: int = 24) -> None:
        self.db = db
        self.ca = ca
        self.keystore = keystore
        self.validity = timedelta(hours=validity_hours)
        # Entry counts of stored CRLs, keyed by (issuer_id, number), so freshness checks do not
        # re-parse a possibly large CRL on every request. Stored CRLs are immutable.
        self._entry_counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()  # serialises generation inside this process

    # -- public -----------------------------------------------------------------------------------
    def current(self, ca_id: str) -> bytes:
        """DER CRL of CA ``ca_id``; raises ``UnknownCaError`` for any other id."""
        cert = self._ca_cert(ca_id)
        stored = self._latest(ca_id)
        if stored is not None and self._fresh(ca_id, stored):
            return stored.der
        with self._lock:
            # Another thread may have generated while we waited for the lock.
            stored = self._latest(ca_id)
            if stored is not None and self._fresh(ca_id, stored):
                return stored.der
            return self._generate(cert, stored)

    # -- internals --------------------------------------------------------------------------------
    def _ca_cert(self, ca_id: str) -> IssuedCertificate:
        for cert in (self.ca.root, self.ca.issuing):
            if cert.id == ca_id:
                return cert
        raise UnknownCaError(ca_id)

    def _latest(self, ca_id: str) -> _Stored | None:
        with self.db.session() as s:
            rec = s.scalar(select(CrlRecord).where(CrlRecord.issuer_id == ca_id)
                           .order_by(CrlRecord.number.desc()).limit(1))
            if rec is None:
                return None
            stored_key = (ca_id, rec.number)
            entries = self._entry_counts.get(stored_key)
            if entries is None:
                revoked = asn1_crl.CertificateList.load(rec.der)["tbs_cert_list"]["revoked_certificates"]
                entries = len(revoked) if revoked.native is not None else 0
                self._entry_counts[stored_key] = entries
            return _Stored(number=rec.number, this_update=_utc(rec.this_update),  # type: ignore[arg-type]
                           next_update=_utc(rec.next_update), der=rec.der, entries=entries)  # type: ignore[arg-type]

    def _revocation_summary(self, ca_id: str) -> tuple[int, datetime | None]:
        """(number of certificates revoked by ``ca_id``, latest revocation time)."""
        with self.db.session() as s:
            count, latest = s.execute(
                select(func.count(CertificateRecord.id), func.max(CertificateRecord.revoked_at))
                .where(CertificateRecord.issuer_id == ca_id, CertificateRecord.revoked_at.is_not(None))
            ).one()
        return int(count), _utc(latest)

    def _fresh(self, ca_id: str, stored: _Stored) -> bool:
        now = datetime.now(timezone.utc)
        if now >= stored.next_update or now - stored.this_update >= self.validity / 2:
            return False
        count, latest = self._revocation_summary(ca_id)
        if count != stored.entries:
            return False
        return latest is None or latest < stored.this_update

    def _generate(self, cert: IssuedCertificate, stored: _Stored | None) -> bytes:
        key = self.ca.ca_key(cert.id)
        number = stored.number if stored else 0
        for _ in range(self.GENERATION_ATTEMPTS):
            number += 1
            # Taken before reading the revocations: a revocation stamped later triggers a new CRL.
            generated_at = datetime.now(timezone.utc)
            revoked = self.ca.revoked_by(cert.id)
            der = self._build(cert, key, number, generated_at, revoked)
            try:
                with self.db.session() as s:
                    s.add(CrlRecord(issuer_id=cert.id, number=number, this_update=generated_at,
                                    next_update=generated_at + self.validity, der=der))
            except IntegrityError:
                # Another process stored this number first; serve its CRL if it is good enough.
                latest = self._latest(cert.id)
                if latest is not None and self._fresh(cert.id, latest):
                    return latest.der
                number = latest.number if latest else number
                continue
            self._entry_counts[(cert.id, number)] = len(revoked)
            return der
        raise RuntimeError(f"could not store a CRL for {cert.id} after {self.GENERATION_ATTEMPTS} attempts")

    def _build(self, cert: IssuedCertificate, key: StoredKey, number: int, this_update: datetime,
               revoked: list[IssuedCertificate]) -> bytes:
        sig_alg = signature_algorithm(key)
        tbs: dict = {
            "version": "v2",
            "signature": sig_alg,
            "issuer": cert.asn1().subject,
            "this_update": asn1_time(this_update),
            "next_update": asn1_time(this_update + self.validity),
            "crl_extensions": [
                {"extn_id": "authority_key_identifier", "critical": False,
                 "extn_value": {"key_identifier": key_identifier(key.public_key_der)}},
                {"extn_id": "crl_number", "critical": False, "extn_value": number},
            ],
        }
        if revoked:  # RFC 5280 5.1.2.6: absent, not empty, when nothing is revoked
            tbs["revoked_certificates"] = [self._entry(r) for r in revoked]
        tbs_list = asn1_crl.TbsCertList(tbs)
        signature = sign_der(self.keystore, key, tbs_list.dump())
        return asn1_crl.CertificateList({"tbs_cert_list": tbs_list, "signature_algorithm": sig_alg,
                                         "signature": signature}).dump()

    @staticmethod
    def _entry(cert: IssuedCertificate) -> dict:
        entry: dict = {"user_certificate": cert.serial,
                       "revocation_date": asn1_time(cert.revoked_at)}  # type: ignore[arg-type]
        reason = cert.revocation_reason
        if reason and reason != "unspecified":  # RFC 5280 5.3.1: omit rather than 'unspecified'
            entry["crl_entry_extensions"] = [{"extn_id": "crl_reason", "critical": False, "extn_value": reason}]
        return entry


__all__ = ["CrlPublisher", "UnknownCaError"]
