"""remotesign's native API for relying parties: their keys (created and used inside the key store),
their certificates from the built-in CA, and their own audit trail. Vendor facades map onto the
same core calls. Every lookup is scoped to the caller's tenant."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.deps import require_scope, services
from remotesign.api.errors import ApiError
from remotesign.api.utc import UtcDateTime
from remotesign.core import scopes
from remotesign.core.tenants import TokenInfo
from remotesign.keystore import KeyAlgorithm, KeyStoreError, SignatureScheme, StoredKey
from remotesign.service import Services
from remotesign.trust.ca import REVOCATION_REASONS, CertificateError, IssuedCertificate, subject_from_text
from remotesign.trust.profiles import ISSUABLE_PROFILES, ProfileError

router = APIRouter(prefix="/v1", tags=["native"])

Keys = Depends(require_scope(scopes.KEYS))
Certs = Depends(require_scope(scopes.CERTIFICATES))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyCreate(Strict):
    algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256
    label: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    id: str
    label: str
    algorithm: str
    backend: str
    public_key: str = Field(description="SubjectPublicKeyInfo, PEM")
    created_at: UtcDateTime


class SignRequest(Strict):
    digest: str = Field(description="base64 of the hash to sign", max_length=200)
    hash_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    scheme: SignatureScheme | None = None


class SignOut(BaseModel):
    signature: str
    hash_algorithm: str
    scheme: str


class CertificateCreate(Strict):
    profile: str = Field(description="one of " + ", ".join(ISSUABLE_PROFILES))
    key_id: str | None = Field(default=None, description="a key of yours (with subject) ...")
    subject: str | None = Field(default=None, max_length=1000, description="RFC 4514, e.g. CN=Alice,SERIALNUMBER=PNOLV-1,C=LV")
    csr: str | None = Field(default=None, max_length=65536, description="... or a PKCS#10 request, PEM or base64 DER")


class CertificateOut(BaseModel):
    id: str
    serial: str
    profile: str
    subject: str
    status: str
    not_before: UtcDateTime
    not_after: UtcDateTime
    revoked_at: UtcDateTime | None
    revocation_reason: str | None
    key_id: str | None
    certificate: str = Field(description="PEM")
    chain: list[str] = Field(description="issuing CA and root, PEM")


class RevokeRequest(Strict):
    reason: str = "unspecified"


class AuditOut(BaseModel):
    seq: int
    at: UtcDateTime
    event: str
    actor: str
    subject: str


def _key_out(key: StoredKey) -> KeyOut:
    from cryptography.hazmat.primitives import serialization

    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return KeyOut(id=key.id, label=key.label, algorithm=key.algorithm.value, backend=key.backend, public_key=pem,
                  created_at=key.created_at)


def _cert_out(svc: Services, cert: IssuedCertificate) -> CertificateOut:
    return CertificateOut(
        id=cert.id, serial=cert.serial_hex, profile=cert.profile, subject=cert.subject, status=cert.status,
        not_before=cert.not_before, not_after=cert.not_after, revoked_at=cert.revoked_at,
        revocation_reason=cert.revocation_reason, key_id=cert.key_id, certificate=cert.pem(),
        chain=[c.pem() for c in svc.ca.chain()])


def _own_key(svc: Services, caller: TokenInfo, key_id: str) -> StoredKey:
    try:
        return svc.keystore.get(key_id, caller.tenant_id)
    except KeyStoreError as exc:
        raise ApiError(404, "not_found", f"no key {key_id}") from exc


def _own_cert(svc: Services, caller: TokenInfo, cert_id: str) -> IssuedCertificate:
    try:
        return svc.ca.get(cert_id, caller.tenant_id)
    except CertificateError as exc:
        raise ApiError(404, "not_found", f"no certificate {cert_id}") from exc


@router.post("/keys", status_code=201, response_model=KeyOut, summary="Create a key in the key store")
def create_key(body: KeyCreate, caller: TokenInfo = Keys, svc: Services = Depends(services)) -> KeyOut:
    return _key_out(svc.keystore.create(body.algorithm, body.label, caller.tenant_id))


@router.get("/keys", response_model=list[KeyOut], summary="Your keys")
def list_keys(caller: TokenInfo = Keys, svc: Services = Depends(services)) -> list[KeyOut]:
    return [_key_out(k) for k in svc.keystore.list(caller.tenant_id)]


@router.get("/keys/{key_id}", response_model=KeyOut, summary="One of your keys (public part)")
def get_key(key_id: str, caller: TokenInfo = Keys, svc: Services = Depends(services)) -> KeyOut:
    return _key_out(_own_key(svc, caller, key_id))


@router.post("/keys/{key_id}/sign", response_model=SignOut, summary="Sign a digest with one of your keys")
def sign_digest(key_id: str, body: SignRequest, caller: TokenInfo = Keys,
                svc: Services = Depends(services)) -> SignOut:
    key = _own_key(svc, caller, key_id)
    try:
        digest = base64.b64decode(body.digest, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", "digest is not valid base64") from exc
    scheme = body.scheme or key.default_scheme
    try:
        signature = svc.keystore.sign_digest(key, digest, body.hash_algorithm, scheme)
    except KeyStoreError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    svc.audit.append("signature.created", actor=caller.client_id, tenant_id=caller.tenant_id, subject=key.id,
                     details={"hash_algorithm": body.hash_algorithm, "scheme": scheme.value,
                              "digest": digest.hex()})
    return SignOut(signature=base64.b64encode(signature).decode(), hash_algorithm=body.hash_algorithm,
                   scheme=scheme.value)


@router.post("/certificates", status_code=201, response_model=CertificateOut,
             summary="Issue a certificate for one of your keys or for a CSR")
def issue_certificate(body: CertificateCreate, caller: TokenInfo = Certs,
                      svc: Services = Depends(services)) -> CertificateOut:
    try:
        if body.csr is not None:
            if body.key_id or body.subject:
                raise ApiError(400, "invalid_request", "give either csr, or key_id with subject")
            raw = body.csr.encode()
            if not body.csr.lstrip().startswith("-----"):
                try:
                    raw = base64.b64decode(body.csr, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise ApiError(400, "invalid_request", "csr is neither PEM nor base64 DER") from exc
            cert = svc.ca.issue_from_csr(raw, body.profile, tenant_id=caller.tenant_id)
        else:
            if not body.key_id or not body.subject:
                raise ApiError(400, "invalid_request", "give either csr, or key_id with subject")
            key = _own_key(svc, caller, body.key_id)
            cert = svc.ca.issue(subject=subject_from_text(body.subject), public_key_der=key.public_key_der,
                                profile_name=body.profile, tenant_id=caller.tenant_id, key_id=key.id)
    except (CertificateError, ProfileError) as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    return _cert_out(svc, cert)


@router.get("/certificates", response_model=list[CertificateOut], summary="Your certificates")
def list_certificates(caller: TokenInfo = Certs, svc: Services = Depends(services)) -> list[CertificateOut]:
    return [_cert_out(svc, c) for c in svc.ca.list(caller.tenant_id)]


@router.get("/certificates/{cert_id}", response_model=CertificateOut, summary="One of your certificates")
def get_certificate(cert_id: str, caller: TokenInfo = Certs, svc: Services = Depends(services)) -> CertificateOut:
    return _cert_out(svc, _own_cert(svc, caller, cert_id))


@router.post("/certificates/{cert_id}/revoke", response_model=CertificateOut, summary="Revoke one of your certificates")
def revoke_certificate(cert_id: str, body: RevokeRequest, caller: TokenInfo = Certs,
                       svc: Services = Depends(services)) -> CertificateOut:
    cert = _own_cert(svc, caller, cert_id)
    if body.reason not in REVOCATION_REASONS:
        raise ApiError(400, "invalid_request", f"reason must be one of {', '.join(REVOCATION_REASONS)}")
    try:
        return _cert_out(svc, svc.ca.revoke(cert, body.reason, actor=caller.client_id))
    except CertificateError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc


@router.get("/audit", response_model=list[AuditOut], summary="Your most recent audit events")
def audit(limit: int = 100, caller: TokenInfo = Depends(require_scope(scopes.AUDIT)),
          svc: Services = Depends(services)) -> list[AuditOut]:
    if not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_request", "limit must be between 1 and 1000")
    return [AuditOut(seq=e.seq, at=e.at, event=e.event, actor=e.actor, subject=e.subject)
            for e in svc.audit.events(caller.tenant_id, limit)]
