"""The built-in certification authority: a root CA, an issuing CA, and the TSA and OCSP responder
certificates, all database-backed with their keys in the key store.

Certificates issued by the issuing CA carry AIA (OCSP + caIssuers) and CRL distribution point URLs
under the service's public base URL, so that any validator (pyHanko, openssl, Adobe) can fetch the
chain and revocation data from the running service.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from asn1crypto import core, keys, pem, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from remotesign.storage.audit import AuditLog
from remotesign.keystore import KeyAlgorithm, KeyStore, StoredKey
from remotesign.storage.db import Database
from remotesign.storage import text_search
from remotesign.storage.models import CertificateRecord, SystemSetting
from remotesign.storage.tenancy import owned_by
from remotesign.trust import qc
from remotesign.trust.ca_naming import CaNaming, save_ca_naming
from remotesign.trust.profiles import ISSUABLE_PROFILES, Profile, ProfileError, get_profile
from remotesign.trust.signing import asn1_time, key_identifier, sign_der, signature_algorithm

REVOCATION_REASONS = (
    "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", "certificate_hold", "privilege_withdrawn",
)
# Backdating notBefore a little keeps freshly issued certificates valid on clients whose clock lags.
CLOCK_SKEW = timedelta(minutes=5)


class CertificateError(ValueError):
    """A request to the CA cannot be honoured (bad CSR, unknown certificate, already revoked, ...)."""


@dataclass(frozen=True)
class IssuedCertificate:
    id: str
    serial: int
    profile: str
    subject: str
    tenant_id: str | None
    issuer_id: str | None
    key_id: str | None
    not_before: datetime
    not_after: datetime
    der: bytes
    revoked_at: datetime | None
    revocation_reason: str | None

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")

    def asn1(self) -> x509.Certificate:
        return x509.Certificate.load(self.der)

    def pem(self) -> str:
        return pem.armor("CERTIFICATE", self.der).decode()

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at else "valid"


# A revoked row first, should one serial ever appear twice under one issuer.
_REVOCATION_STATUS = (select(CertificateRecord.revoked_at, CertificateRecord.revocation_reason)
                      .where(CertificateRecord.serial_hex == bindparam("serial"),
                             CertificateRecord.issuer_id == bindparam("issuer"))
                      .order_by(CertificateRecord.revoked_at.is_(None)).limit(1))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _issued(rec: CertificateRecord) -> IssuedCertificate:
    return IssuedCertificate(
        id=rec.id, serial=int(rec.serial_hex, 16), profile=rec.profile, subject=rec.subject, tenant_id=rec.tenant_id,
        issuer_id=rec.issuer_id, key_id=rec.key_id, not_before=_utc(rec.not_before),  # type: ignore[arg-type]
        not_after=_utc(rec.not_after), der=rec.der, revoked_at=_utc(rec.revoked_at),  # type: ignore[arg-type]
        revocation_reason=rec.revocation_reason,
    )


def load_csr(data: bytes) -> cx509.CertificateSigningRequest:
    """Parse a PEM or DER CSR and check its self-signature (proof of possession)."""
    try:
        csr = cx509.load_pem_x509_csr(data) if data.lstrip().startswith(b"-----") else cx509.load_der_x509_csr(data)
    except ValueError as exc:
        raise CertificateError(f"not a PKCS#10 certificate request: {exc}") from exc
    try:
        valid = csr.is_signature_valid
    except (ValueError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"certificate request signature cannot be checked: {exc}") from exc
    if not valid:
        raise CertificateError("certificate request signature is invalid (no proof of key possession)")
    return csr


def subject_from_text(text: str) -> x509.Name:
    """Build a Name from 'CN=Alice,SERIALNUMBER=PNOLV-123,C=LV' (RFC 4514, most specific first)."""
    try:
        name = cx509.Name.from_rfc4514_string(
            text, {"SERIALNUMBER": cx509.NameOID.SERIAL_NUMBER,
                   "ORGANIZATIONIDENTIFIER": cx509.ObjectIdentifier("2.5.4.97"),
                   "GIVENNAME": cx509.NameOID.GIVEN_NAME, "SURNAME": cx509.NameOID.SURNAME,
                   "EMAILADDRESS": cx509.NameOID.EMAIL_ADDRESS})
    except ValueError as exc:
        raise CertificateError(f"bad subject {text!r}: {exc}") from exc
    if not len(name):
        raise CertificateError("subject is empty")
    return x509.Name.load(name.public_bytes())


class CertificateAuthority:
    """Issues and revokes certificates; knows its own CA, TSA and OCSP certificates."""

    ROOT, ISSUING, TSA, OCSP = "root_ca_id", "issuing_ca_id", "tsa_cert_id", "ocsp_cert_id"

    def __init__(self, db: Database, keystore: KeyStore, audit: AuditLog, base_url: str,
                 organization: str = "remotesign", country: str | None = "LV", name: str | None = None) -> None:
        self.db = db
        self.keystore = keystore
        self.audit = audit
        self.base_url = base_url.rstrip("/")
        self.naming = CaNaming(name=name or organization, organization=organization, country=country)
        self._system: dict[str, tuple[IssuedCertificate, StoredKey]] = {}

    @property
    def organization(self) -> str:
        return self.naming.organization

    @property
    def country(self) -> str | None:
        """The country of the PKI's certificates and of users' ones (None: no C attribute)."""
        return self.naming.country

    def choose_naming(self, naming: CaNaming) -> None:
        """Names for the PKI that ``initialize`` will create; an existing PKI keeps its own."""
        if self.is_initialized():
            if naming != self.naming:
                raise CertificateError(f"the PKI already exists ({self.naming.describe()}); its names are chosen "
                                       "when it is created and cannot change")
            return
        self.naming = naming

    # -- URLs published in certificates ---------------------------------------------------------
    def ca_issuers_url(self, ca_id: str) -> str:
        return f"{self.base_url}/pki/ca/{ca_id}.crt"

    def crl_url(self, ca_id: str) -> str:
        return f"{self.base_url}/pki/crl/{ca_id}.crl"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/pki/ocsp"

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/pki/tsa"

    # -- initialisation ---------------------------------------------------------------------------
    def is_initialized(self) -> bool:
        with self.db.session() as s:
            return s.get(SystemSetting, self.OCSP) is not None

    def initialize(self, ca_algorithm: KeyAlgorithm = KeyAlgorithm.RSA_3072,
                   service_algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048) -> bool:
        """Create the root CA, issuing CA, TSA and OCSP certificates if they do not exist yet."""
        if self.is_initialized():
            return False
        naming = self.naming
        save_ca_naming(self.db, naming)  # later processes name users' certificates the same way
        root_key = self.keystore.create(ca_algorithm, "root-ca", tenant_id=None)
        root = self._issue(
            subject=naming.subject(f"{naming.name} Root CA"), public_key_der=root_key.public_key_der,
            profile=get_profile("root-ca"), tenant_id=None, key_id=root_key.id, issuer=None, issuer_key=root_key)
        self._set(self.ROOT, root.id)
        issuing_key = self.keystore.create(ca_algorithm, "issuing-ca", tenant_id=None)
        issuing = self._issue(
            subject=naming.subject(f"{naming.name} Issuing CA"),
            public_key_der=issuing_key.public_key_der, profile=get_profile("issuing-ca"), tenant_id=None,
            key_id=issuing_key.id, issuer=root, issuer_key=root_key)
        self._set(self.ISSUING, issuing.id)
        for setting, profile, cn in ((self.TSA, "tsa", f"{naming.name} Time-Stamping Unit"),
                                     (self.OCSP, "ocsp", f"{naming.name} OCSP Responder")):
            key = self.keystore.create(service_algorithm, profile, tenant_id=None)
            cert = self._issue(subject=naming.subject(cn), public_key_der=key.public_key_der,
                               profile=get_profile(profile), tenant_id=None, key_id=key.id, issuer=issuing,
                               issuer_key=issuing_key)
            self._set(setting, cert.id)
        return True

    def _set(self, name: str, value: str) -> None:
        with self.db.session() as s:
            s.merge(SystemSetting(name=name, value=value))

    def _system_pair(self, name: str) -> tuple[IssuedCertificate, StoredKey]:
        pair = self._system.get(name)
        if pair is None:
            with self.db.session() as s:
                setting = s.get(SystemSetting, name)
                if setting is None:
                    raise CertificateError("the PKI is not initialised; run 'remotesign init'")
                rec = s.get(CertificateRecord, setting.value)
                assert rec is not None and rec.key_id is not None
                cert = _issued(rec)
            pair = (cert, self.keystore.get(cert.key_id, tenant_id=None))  # type: ignore[arg-type]
            self._system[name] = pair
        return pair

    @property
    def root(self) -> IssuedCertificate:
        return self._system_pair(self.ROOT)[0]

    @property
    def issuing(self) -> IssuedCertificate:
        return self._system_pair(self.ISSUING)[0]

    def tsa_signer(self) -> tuple[IssuedCertificate, StoredKey]:
        return self._system_pair(self.TSA)

    def ocsp_signer(self) -> tuple[IssuedCertificate, StoredKey]:
        return self._system_pair(self.OCSP)

    def ca_key(self, ca_id: str) -> StoredKey:
        """Signing key of one of the two CAs (for CRLs)."""
        for name in (self.ROOT, self.ISSUING):
            cert, key = self._system_pair(name)
            if cert.id == ca_id:
                return key
        raise CertificateError(f"{ca_id} is not a CA of this service")

    def chain(self) -> list[IssuedCertificate]:
        """Issuing CA first, then the root (the order validators expect for 'other certs')."""
        return [self.issuing, self.root]

    # -- issuance ---------------------------------------------------------------------------------
    def issue_from_csr(self, csr_data: bytes, profile_name: str, tenant_id: str | None = None,
                       validity: timedelta | None = None) -> IssuedCertificate:
        csr = load_csr(csr_data)
        subject = x509.Name.load(csr.subject.public_bytes())
        spki = _spki_der(csr)
        return self.issue(subject=subject, public_key_der=spki, profile_name=profile_name, tenant_id=tenant_id,
                          validity=validity)

    def issue(self, *, subject: x509.Name, public_key_der: bytes, profile_name: str, tenant_id: str | None,
              key_id: str | None = None, validity: timedelta | None = None,
              not_after: datetime | None = None) -> IssuedCertificate:
        """Issue an end-entity certificate from the issuing CA with the extensions of ``profile_name``;
        it ends after ``validity`` (default the profile's) or at ``not_after`` exactly."""
        if profile_name not in ISSUABLE_PROFILES:
            raise ProfileError(f"unknown profile {profile_name!r}; choose one of {', '.join(ISSUABLE_PROFILES)}")
        profile = get_profile(profile_name)
        profile.check_subject(subject)
        try:
            serialization.load_der_public_key(public_key_der)
            algo = keys.PublicKeyInfo.load(public_key_der)["algorithm"]["algorithm"].native
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CertificateError("public key is not a valid SubjectPublicKeyInfo") from exc
        if algo not in ("rsa", "ec"):
            raise CertificateError(f"public key algorithm {algo} is not supported (RSA or EC only)")
        issuer, issuer_key = self._system_pair(self.ISSUING)
        return self._issue(subject=subject, public_key_der=public_key_der, profile=profile, tenant_id=tenant_id,
                           key_id=key_id, issuer=issuer, issuer_key=issuer_key, validity=validity, not_after=not_after)

    def _issue(self, *, subject: x509.Name, public_key_der: bytes, profile: Profile, tenant_id: str | None,
               key_id: str | None, issuer: IssuedCertificate | None, issuer_key: StoredKey,
               validity: timedelta | None = None, not_after: datetime | None = None) -> IssuedCertificate:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        not_before = now - CLOCK_SKEW
        not_after = not_after.replace(microsecond=0) if not_after is not None else now + (validity or profile.validity)
        if not_after <= now:
            raise CertificateError("a certificate must end in the future")
        if issuer is not None and not_after > issuer.not_after:
            not_after = issuer.not_after  # never outlive the issuer
        serial = secrets.randbits(159) | (1 << 158)  # positive, 20 bytes, unpredictable (CA/B BR 7.1)
        cert_id = str(uuid.uuid4())
        issuer_name = issuer.asn1().subject if issuer else subject
        sig_alg = signature_algorithm(issuer_key)
        tbs = x509.TbsCertificate({
            "version": "v3",
            "serial_number": serial,
            "signature": sig_alg,
            "issuer": issuer_name,
            "validity": {"not_before": asn1_time(not_before), "not_after": asn1_time(not_after)},
            "subject": subject,
            "subject_public_key_info": keys.PublicKeyInfo.load(public_key_der),
            "extensions": self._extensions(profile, public_key_der, issuer, issuer_key, cert_id),
        })
        signature = sign_der(self.keystore, issuer_key, tbs.dump())
        cert = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": sig_alg,
                                 "signature_value": signature})
        der = cert.dump()
        rec = CertificateRecord(
            id=cert_id, tenant_id=tenant_id, issuer_id=issuer.id if issuer else None, key_id=key_id,
            serial_hex=format(serial, "x"), profile=profile.name,
            subject=cx509.load_der_x509_certificate(der).subject.rfc4514_string(),
            not_before=not_before, not_after=not_after, der=der, sha256_hex=hashlib.sha256(der).hexdigest(),
            created_at=now,
        )
        with self.db.session() as s:
            s.add(rec)
        self.audit.append("certificate.issued", actor="ca", tenant_id=tenant_id, subject=cert_id,
                          details={"serial": format(serial, "x"), "profile": profile.name,
                                   "subject": rec.subject})
        return _issued(rec)

    def _extensions(self, profile: Profile, public_key_der: bytes, issuer: IssuedCertificate | None,
                    issuer_key: StoredKey, cert_id: str) -> list[dict]:
        exts: list[dict] = []
        if profile.is_ca:
            bc: dict = {"ca": True}
            if profile.path_length is not None:
                bc["path_len_constraint"] = profile.path_length
            exts.append({"extn_id": "basic_constraints", "critical": True, "extn_value": bc})
        exts.append({"extn_id": "key_usage", "critical": True, "extn_value": set(profile.key_usage)})
        if profile.extended_key_usage:
            exts.append({"extn_id": "extended_key_usage", "critical": profile.eku_critical,
                         "extn_value": list(profile.extended_key_usage)})
        exts.append({"extn_id": "key_identifier", "critical": False,
                     "extn_value": key_identifier(public_key_der)})
        if issuer is not None:
            exts.append({"extn_id": "authority_key_identifier", "critical": False,
                         "extn_value": {"key_identifier": key_identifier(issuer_key.public_key_der)}})
            exts.append({"extn_id": "crl_distribution_points", "critical": False, "extn_value": [
                {"distribution_point": {"full_name": [_uri(self.crl_url(issuer.id))]}}]})
            aia = [{"access_method": "ca_issuers",
                    "access_location": _uri(self.ca_issuers_url(issuer.id))}]
            if profile.end_entity and not profile.ocsp_no_check:
                aia.insert(0, {"access_method": "ocsp",
                               "access_location": _uri(self.ocsp_url)})
            exts.append({"extn_id": "authority_information_access", "critical": False, "extn_value": aia})
        if profile.policies:
            exts.append({"extn_id": "certificate_policies", "critical": False,
                         "extn_value": [{"policy_identifier": oid} for oid in profile.policies]})
        if profile.ocsp_no_check:
            exts.append({"extn_id": "ocsp_no_check", "critical": False, "extn_value": core.Null()})
        if profile.qc_type:
            exts.append({"extn_id": qc.ID_PE_QC_STATEMENTS, "critical": False,
                         # wrapped explicitly: pyHanko registers its own QCStatements parser in asn1crypto
                         "extn_value": core.ParsableOctetString(qc.qc_statements(
                             profile.qc_type, profile.qc_semantics or "", f"{self.base_url}/pki/pds"))})
        return exts

    # -- lookup and revocation --------------------------------------------------------------------
    def get(self, cert_id: str, tenant_id: str | None) -> IssuedCertificate:
        with self.db.session() as s:
            rec = s.scalar(select(CertificateRecord).where(CertificateRecord.id == cert_id,
                                                           owned_by(CertificateRecord.tenant_id, tenant_id)))
        if rec is None:
            raise CertificateError(f"no certificate {cert_id}")
        return _issued(rec)

    def get_any(self, cert_id: str) -> IssuedCertificate | None:
        """Operator view: any certificate, whoever owns it."""
        with self.db.session() as s:
            rec = s.get(CertificateRecord, cert_id)
        return _issued(rec) if rec else None

    def find_by_serial(self, serial: int, issuer_id: str | None = None, *,
                       session: Session | None = None) -> list[IssuedCertificate]:
        """Certificates with this serial number; read in ``session`` when given (the caller's transaction)."""
        q = select(CertificateRecord).where(CertificateRecord.serial_hex == format(serial, "x"))
        if issuer_id is not None:
            q = q.where(CertificateRecord.issuer_id == issuer_id)
        if session is not None:
            return [_issued(r) for r in session.scalars(q)]
        with self.db.session() as s:
            return [_issued(r) for r in s.scalars(q)]

    def revocation_status(self, serial: int, issuer_id: str) -> tuple[datetime | None, str | None] | None:
        """(revoked_at, reason) of the certificate ``issuer_id`` issued with ``serial``, None when
        there is none: the OCSP responder's per-request lookup (two columns, a statement built once)."""
        with self.db.engine.connect() as conn:
            row = conn.execute(_REVOCATION_STATUS, {"serial": format(serial, "x"), "issuer": issuer_id}).first()
        return None if row is None else (_utc(row[0]), row[1])

    def list(self, tenant_id: str | None = None, *, all_tenants: bool = False) -> list[IssuedCertificate]:
        with self.db.session() as s:
            q = select(CertificateRecord).order_by(CertificateRecord.created_at)
            if not all_tenants:
                q = q.where(owned_by(CertificateRecord.tenant_id, tenant_id))
            return [_issued(r) for r in s.scalars(q)]

    @staticmethod
    def _search_query(text: str | None, status: str | None) -> Select[Any]:
        q = select(CertificateRecord).order_by(CertificateRecord.created_at.desc(), CertificateRecord.id.desc())
        wanted = text_search.needle(text)
        if text is not None and wanted is not None:
            q = q.where(text_search.contains(CertificateRecord.subject, wanted)
                        | text_search.contains(CertificateRecord.serial_hex, wanted.removeprefix("0x").replace(":", ""))
                        | (CertificateRecord.id == text.strip()))
        if status == "revoked":
            q = q.where(CertificateRecord.revoked_at.is_not(None))
        elif status == "valid":
            q = q.where(CertificateRecord.revoked_at.is_(None))
        return q

    def search(self, *, text: str | None = None, status: str | None = None, limit: int = 200,
               offset: int = 0) -> list[IssuedCertificate]:
        """Operator view: certificates of every owner, newest first; ``text`` in the subject or the
        serial (hex), or the id, case-insensitive and literal (``%`` and ``_`` are plain
        characters); ``status`` ``valid`` or ``revoked``."""
        q = self._search_query(text, status).offset(max(0, offset)).limit(max(1, min(limit, 1000)))
        with self.db.session() as s:
            return [_issued(r) for r in s.scalars(q)]

    def search_page(self, *, text: str | None = None, status: str | None = None, offset: int = 0,
                    limit: int = 100) -> tuple[list[IssuedCertificate], int]:
        """``search``'s rows ``offset`` .. ``offset + limit`` and how many match in all (``limit`` 0
        only counts)."""
        with self.db.session() as s:
            rows, total = text_search.page(s, self._search_query(text, status), offset, limit)
            return [_issued(r[0]) for r in rows], total

    def revoked_by(self, issuer_id: str, serials: Iterable[int] | None = None) -> list[IssuedCertificate]:
        """The revoked certificates ``issuer_id`` issued, oldest revocation first; only those with
        one of ``serials`` when given."""
        q = select(CertificateRecord).where(CertificateRecord.issuer_id == issuer_id,
                                            CertificateRecord.revoked_at.is_not(None))
        if serials is not None:
            q = q.where(CertificateRecord.serial_hex.in_(sorted({format(n, "x") for n in serials})))
        with self.db.session() as s:
            return [_issued(r) for r in s.scalars(q.order_by(CertificateRecord.revoked_at))]

    def revoke(self, cert: IssuedCertificate, reason: str = "unspecified", actor: str = "operator") -> IssuedCertificate:
        """Revoke ``cert`` now; OCSP answers 'revoked' from the next request, the next CRL lists it."""
        if reason not in REVOCATION_REASONS:
            raise CertificateError(f"unknown reason {reason!r}; choose one of {', '.join(REVOCATION_REASONS)}")
        if cert.issuer_id is None:
            raise CertificateError("a root certificate cannot be revoked")
        with self.db.session() as s:
            rec = s.get(CertificateRecord, cert.id, with_for_update=True)
            if rec is None:
                raise CertificateError(f"no certificate {cert.id}")
            if rec.revoked_at is not None:
                raise CertificateError(f"certificate {cert.id} is already revoked")
            rec.revoked_at = datetime.now(timezone.utc)
            rec.revocation_reason = reason
            revoked = _issued(rec)
        self.audit.append("certificate.revoked", actor=actor, tenant_id=cert.tenant_id, subject=cert.id,
                          details={"serial": cert.serial_hex, "reason": reason})
        return revoked


def _uri(url: str) -> x509.GeneralName:
    return x509.GeneralName(name="uniform_resource_identifier", value=url)


def _spki_der(csr: cx509.CertificateSigningRequest) -> bytes:
    return csr.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
