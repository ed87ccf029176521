"""Composition root: builds the services from the settings, once per process.

Every facade (HTTP routes, CLI commands) receives this object instead of building its own pieces,
so there is exactly one key store, one CA and one database engine per process.
"""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from remotesign.config import Settings
from remotesign.storage.audit import AuditLog
from remotesign.core.tenants import TenantError, TenantService
from remotesign.instance import check_keys_open, refuse_new_master_key, require_instance
from remotesign.keystore import KeyStore
from remotesign.keystore.factory import make_backend
from remotesign.storage.blob_backends import open_blob_store
from remotesign.storage.db import Database
from remotesign.storage.migrate import upgrade_to_head
from remotesign.storage.models import SystemSetting
from remotesign.storage.private import prepare_state
from remotesign.trust.ca import CertificateAuthority
from remotesign.trust.ca_naming import load_ca_naming

DEMO_CLIENT_NAME = "demo relying party"


log = logging.getLogger("remotesign")

class Services:
    def __init__(self, settings: Settings, default_public_url: str | None = None, *, create: bool = True) -> None:
        """``create=False`` (every CLI command but ``init`` and ``serve``): refuse, with InstanceError,
        settings that name no initialised instance instead of creating a database and master key."""
        if not create:
            require_instance(settings)
        prepare_state(settings.home, settings.database_url,
                      (settings.master_key_file, settings.home / "demo-client.json", settings.audit_anchor_path))
        upgrade_to_head(settings.database_url)
        self.settings = settings
        self.db = Database(settings.database_url)
        refuse_new_master_key(settings, self.db)  # a node joining an instance brings its master key
        self.audit = AuditLog(self.db)
        self.keystore = KeyStore(self.db, make_backend(settings), self.audit)
        self.blobs = open_blob_store(settings)
        self.base_url = self._resolve_base_url(settings.base_url(), default_public_url)
        naming = load_ca_naming(self.db)
        self.ca = CertificateAuthority(self.db, self.keystore, self.audit, self.base_url,
                                       organization=naming.organization, country=naming.country, name=naming.name)
        self.tenants = TenantService(self.db, self.audit, settings.token_ttl_seconds)

    def _resolve_base_url(self, fallback: str, listening: str | None = None) -> str:
        """An explicit REMOTESIGN_PUBLIC_URL wins; else the address ``serve`` listens on now (a
        restart on another port moves the service's own links with it); else, for the other
        commands, the URL the service last ran under. Whatever wins is remembered."""
        from sqlalchemy.exc import IntegrityError

        for attempt in range(3):  # nodes starting together: another may insert the row first
            try:
                with self.db.session() as s:
                    stored = s.get(SystemSetting, "public_url")
                    url = (self.settings.public_url or listening or (stored.value if stored is not None else fallback))
                    url = url.rstrip("/")
                    if stored is None or stored.value != url:
                        if stored is not None:
                            log.info("public URL changed from %s to %s", stored.value, url)
                        s.merge(SystemSetting(name="public_url", value=url))
                    return url
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @cached_property
    def ocsp(self) -> Any:
        from remotesign.trust.ocsp import OcspResponder

        return OcspResponder(self.ca, self.keystore, self.settings.ocsp_validity_minutes)

    @cached_property
    def tsa(self) -> Any:
        from remotesign.trust.tsa import TimeStampAuthority

        return TimeStampAuthority(self.db, self.ca, self.keystore, self.settings.tsa_policy_oid,
                                  self.settings.tsa_accuracy_ms)

    @cached_property
    def crls(self) -> Any:
        from remotesign.trust.crl import CrlPublisher

        return CrlPublisher(self.db, self.ca, self.keystore, self.settings.crl_validity_hours)

    @cached_property
    def sessions(self) -> Any:
        from remotesign.core.sessions import SessionService

        return SessionService(self.db, self.blobs, self.audit, timeout_seconds=self.settings.session_timeout_seconds,
                              file_max_bytes=self.settings.file_max_bytes)

    @cached_property
    def sharing(self) -> Any:
        from remotesign.core.sharing import ShareService

        return ShareService(self.db, self.sessions, self.audit)

    @cached_property
    def trust_store(self) -> Any:
        from remotesign.trust.revocation import TrustStore

        return TrustStore.build([c.der for c in self.ca.chain()], self.settings.trust_anchor_files)

    @cached_property
    def timestamper(self) -> Any:
        from remotesign.trust.timestamping import make_timestamper

        return make_timestamper(self.tsa, self.settings.tsa_url, self.settings.fetch_timeout_seconds)

    @cached_property
    def audit_key(self) -> Any:
        from remotesign.trust.audit_key import AuditKey

        return AuditKey(self.db, self.keystore)

    @cached_property
    def audit_anchor(self) -> Any:
        from remotesign.storage.audit_anchor import Anchors

        return Anchors(self.db, self.settings.audit_anchor_path)

    @cached_property
    def audit_sealer(self) -> Any:
        """Signed, time-stamped audit checkpoints (always from the built-in TSA: verify checks the
        tokens against its certificate)."""
        from remotesign.storage.audit_seal import AuditSealer
        from remotesign.trust.audit_timestamps import request_token

        st = self.settings
        return AuditSealer(self.audit, self.audit_key, self.audit_anchor,
                           lambda imprint: request_token(self.tsa, imprint),
                           every_events=st.audit_seal_events, every_seconds=st.audit_seal_seconds)

    def verify_audit(self) -> Any:
        """``remotesign audit verify``: the chain, the checkpoints, the anchor file (a SealReport)."""
        import hashlib

        from remotesign.storage.audit_verify import TokenCheck, verify_sealed
        from remotesign.trust.audit_timestamps import TokenVerifier
        from remotesign.trust.ca import CertificateError

        try:
            tsa_cert = self.ca.tsa_signer()[0]
        except CertificateError:  # no PKI yet: no TSA whose tokens could be trusted
            return verify_sealed(self.audit, self.audit_key.facts(), self.audit_anchor,
                                 lambda _token, _imprint: TokenCheck("the built-in TSA does not exist"))
        verifier = TokenVerifier(tsa_cert.der, [c.der for c in self.ca.chain()])
        return verify_sealed(self.audit, self.audit_key.facts(), self.audit_anchor, verifier,
                             hashlib.sha256(tsa_cert.der).hexdigest())

    @cached_property
    def revocation(self) -> Any:
        """The one revocation source of signing, extension and validation: the built-in CA
        in-process, other issuers over their OCSP / CRL URLs."""
        from remotesign.trust.revocation_source import BuiltinRevocation, OnlineRevocation, RevocationSource

        chain = {c.der: c.id for c in self.ca.chain()}
        builtin = BuiltinRevocation(list(chain), lambda der: self.ocsp.respond(der).der,
                                    lambda ca_cert: self.crls.current(chain[ca_cert.dump()]),
                                    state=self._revocation_state)
        return RevocationSource(builtin, OnlineRevocation(self.settings.fetch_timeout_seconds))

    @cached_property
    def formats(self) -> Any:
        """The signature formats, most specific first (the registry sniffs in this order)."""
        from remotesign.formats.asic_cades import AsicECadesFormat, AsicSFormat
        from remotesign.formats.asic_e_format import AsicEXadesFormat
        from remotesign.formats.cades.format import CadesFormat
        from remotesign.formats.ooxml import OoxmlFormat
        from remotesign.formats.pades_format import PadesFormat
        from remotesign.formats.registry import FormatRegistry
        from remotesign.formats.xades_xml import XadesXmlFormat

        return FormatRegistry([PadesFormat(), AsicSFormat(), AsicECadesFormat(), AsicEXadesFormat(), CadesFormat(),
                               XadesXmlFormat(), OoxmlFormat()])

    @cached_property
    def tsa_clients(self) -> Any:
        """Time-stampers for a TSA a request chooses (URL, Basic, TLS client certificate)."""
        from remotesign.trust.tsa_clients import TsaClients

        return TsaClients.for_services(self)

    @cached_property
    def extension(self) -> Any:
        from remotesign.core.extension import ExtensionService

        return ExtensionService(self.formats, self.validation, self.revocation, self.timestamper, self.audit)

    @cached_property
    def signing(self) -> Any:
        from remotesign.core.signing import SigningService

        return SigningService(self.db, self.sessions, self.audit, self.trust_store, self.revocation, self.timestamper,
                              self.formats, self.extension, lease_seconds=self.settings.operation_lease_seconds)

    @cached_property
    def trust_anchors(self) -> Any:
        from remotesign.core.validation import TenantTrustAnchors

        return TenantTrustAnchors(self.db, self.audit)

    @cached_property
    def validation(self) -> Any:
        from remotesign.core.validation import ValidationService
        from remotesign.formats.base import Limits
        from remotesign.validation.policy import resolve_policy

        chain = {c.der: c.id for c in self.ca.chain()}
        revocation = self.revocation.provider(online=self.settings.validation_fetching)
        return ValidationService(
            builtin_chain=list(chain), anchor_files=self.settings.trust_anchor_files,
            anchors=self.trust_anchors, revocation=revocation, trusted_lists=self._trusted_lists_loader(),
            allow_fetching=self.settings.validation_fetching, fetch_timeout=self.settings.fetch_timeout_seconds,
            timeout_seconds=self.settings.validation_timeout_seconds, limits=Limits(),
            work_dir=self.settings.home / "work", policy=resolve_policy(self.settings.validation_policy),
            audit=self.audit)

    def _revocation_state(self) -> object:
        """Changes whenever the built-in CA revokes a certificate (count and latest time)."""
        from sqlalchemy import func, select

        from remotesign.storage.models import CertificateRecord

        with self.db.session() as s:
            return tuple(s.execute(select(func.count(), func.max(CertificateRecord.revoked_at))
                                   .where(CertificateRecord.revoked_at.is_not(None))).one())

    def _trusted_lists_loader(self) -> Any:
        """A function returning the TSP registry of the configured local trusted lists (re-read
        only when the files change), or None when none are configured."""
        paths = tuple(getattr(self.settings, "trusted_lists", ()) or ())
        if not paths:
            return None
        from remotesign.validation.trusted_lists import load_trusted_lists

        return lambda: load_trusted_lists([Path(p) for p in paths])

    @cached_property
    def transport(self) -> Any:
        from remotesign.core.eseal import TransportKey

        return TransportKey(self.db, self.keystore)

    @cached_property
    def seal(self) -> Any:
        from remotesign.core.eseal import SealService

        return SealService(self.signing, self.transport, self.audit)

    @cached_property
    def users(self) -> Any:
        from remotesign.core.users import UserService

        st = self.settings
        return UserService(self.db, self.audit, max_attempts=st.password_max_attempts,
                           lock_schedule=st.password_lock_schedule, kdf_log2_n=st.kdf_log2_n)

    @cached_property
    def identities(self) -> Any:
        from remotesign.core.identities import IdentityService

        st = self.settings
        return IdentityService(self.db, self.keystore, self.ca, self.audit, pin_max_attempts=st.pin_max_attempts,
                               pin_lock_schedule=st.pin_lock_schedule, kdf_log2_n=st.kdf_log2_n,
                               country=self.ca.country)

    @cached_property
    def throttle(self) -> Any:
        from remotesign.core.throttle import AttemptThrottle, Limit

        st = self.settings
        return AttemptThrottle(self.db, {"address": Limit(st.address_max_failures, st.failure_window_seconds),
                                         "client": Limit(st.client_max_failures, st.failure_window_seconds)})

    @cached_property
    def mailer(self) -> Any:
        if not self.settings.smtp_url:
            if self.settings.mail_dir is not None:
                from remotesign.notify.file_drop import FileMailer

                return FileMailer(self.settings.mail_dir, self.settings.mail_from)
            return None
        from remotesign.notify.smtp import SmtpMailer

        return SmtpMailer(self.settings.smtp_url, self.settings.mail_from)

    @cached_property
    def sms(self) -> Any:
        if not self.settings.sms_gateway_url:
            if self.settings.sms_dir is not None:
                from remotesign.notify.file_drop import FileSmsGateway

                return FileSmsGateway(self.settings.sms_dir)
            return None
        from remotesign.notify.sms import HttpSmsGateway

        return HttpSmsGateway(self.settings.sms_gateway_url, self.settings.sms_gateway_token)

    @cached_property
    def activation(self) -> Any:
        from remotesign.core.activation import ActivationService

        st = self.settings
        return ActivationService(self.db, self.audit, self.users, self.identities, self.devices, self.throttle,
                                 mailer=self.mailer, base_url=lambda: self.base_url,
                                 ttl_seconds={"activate": st.activation_code_ttl_seconds,
                                              "reset": st.reset_code_ttl_seconds,
                                              "device": st.device_code_ttl_seconds},
                                 kdf_log2_n=st.kdf_log2_n)

    @cached_property
    def devices(self) -> Any:
        from remotesign.core.devices import DeviceService

        return DeviceService(self.db, self.audit)

    @cached_property
    def sole_control(self) -> Any:
        from remotesign.core.sole_control import SoleControl

        return SoleControl(self.db, self.audit)

    @cached_property
    def raw_signing(self) -> Any:
        from remotesign.core.raw_signing import RawSigningService

        return RawSigningService(self.identities, self.keystore, self.sole_control, allow_sha1=self.settings.allow_sha1)

    @cached_property
    def processes(self) -> Any:
        from remotesign.core.processes import ProcessService

        return ProcessService(self.db, self.audit, self.identities, self.devices, self.raw_signing,
                              ttl_seconds=self.settings.process_ttl_seconds,
                              retention_seconds=self.settings.process_retention_seconds)

    @cached_property
    def consent(self) -> Any:
        from remotesign.core.consent import ConsentService
        from remotesign.core.one_time_passwords import OtpSender

        st = self.settings
        return ConsentService(self.db, self.audit, self.tenants, self.users, self.identities, self.devices,
                              self.processes, request_ttl=st.authorization_request_ttl_seconds,
                              code_ttl=st.auth_code_ttl_seconds, token_ttl=st.token_ttl_seconds,
                              signing_token_ttl=st.signing_token_ttl_seconds, allow_sha1=st.allow_sha1,
                              documents_for_summary=lambda tenant, summary:
                                  self.signing.documents_for_summary(tenant, summary),
                              throttle=self.throttle, signature_requests=self.signature_requests,
                              otp=OtpSender(self.mailer, self.sms))

    @cached_property
    def signature_requests(self) -> Any:
        from remotesign.core.document_signer import DocumentSigner
        from remotesign.core.signature_requests import SignatureRequestService

        st = self.settings
        return SignatureRequestService(self.db, self.audit, self.blobs, self.users, self.identities, self.tenants,
                                       self.keystore, self.sole_control, DocumentSigner(self.formats), self.signing,
                                       self.tsa_clients, token_ttl=st.signing_token_ttl_seconds,
                                       lease_seconds=st.operation_lease_seconds,
                                       callback_max_attempts=st.callback_max_attempts,
                                       callback_backoff=st.callback_backoff_seconds,
                                       callback_lease=st.callback_timeout_seconds * 2 + 30)

    @cached_property
    def outbox(self) -> Any:
        """Passcodes and one-time codes to signers, sent in the background and retried."""
        from remotesign.notify.outbox import Outbox

        st = self.settings
        return Outbox(self.db, self.audit, self.mailer, self.sms, max_attempts=st.notify_max_attempts,
                      backoff_seconds=st.notify_backoff_seconds)

    @cached_property
    def agreements(self) -> Any:
        from remotesign.core.agreements import AgreementService, parse_products

        return AgreementService(self.db, self.audit, self.users, self.identities, self.outbox, self.blobs,
                                parse_products(self.settings.certificate_products),
                                kdf_log2_n=self.settings.kdf_log2_n, approval=self.settings.agreement_approval)

    @cached_property
    def signature_activation(self) -> Any:
        """Signature activation data of the CSC API (core/signature_activation.py)."""
        from remotesign.core.one_time_passwords import OtpSender
        from remotesign.core.signature_activation import SignatureActivationService

        st = self.settings
        return SignatureActivationService(self.db, self.audit, self.identities, self.users, self.tenants,
                                          self.throttle, OtpSender(self.mailer, self.sms), self.processes,
                                          scal=st.csc_scal, factors=st.csc_factors, ttl=st.csc_sad_ttl_seconds,
                                          transaction_ttl=st.csc_transaction_ttl_seconds, multisign=st.csc_multisign)

    @cached_property
    def pushed_authorizations(self) -> Any:
        """OAuth2 pushed authorization requests (RFC 9126) of the CSC API."""
        from remotesign.core.pushed_authorizations import PushedAuthorizations

        return PushedAuthorizations(self.db)

    @cached_property
    def batches(self) -> Any:
        """Documents validated or extended in the background (core/batches.py)."""
        from remotesign.core.batches import BatchService

        st = self.settings
        return BatchService(self.db, self.blobs, self.audit, self.validation, self.extension,
                            max_documents=st.batch_max_documents, keep_seconds=st.batch_keep_seconds,
                            file_max_bytes=st.file_max_bytes, callback_max_attempts=st.callback_max_attempts,
                            callback_backoff=st.callback_backoff_seconds,
                            callback_lease=st.callback_timeout_seconds * 2 + 30)

    @cached_property
    def jobs(self) -> Any:
        """This process's side of the job queue (jobs/queue.py): defers batch items and works on them."""
        from remotesign.jobs.queue import JobQueue

        return JobQueue(self.settings.database_url, self.batches, self.request_runner, self.deferred_results,
                        concurrency=self.settings.job_concurrency)

    @cached_property
    def heartbeats(self) -> Any:
        """This serving process's heartbeat, and which processes of other hosts went silent
        (storage/liveness.py)."""
        from remotesign.storage.liveness import Heartbeats

        return Heartbeats(self.db, stale_after=self.settings.node_silent_seconds)

    @cached_property
    def deferred_results(self) -> Any:
        """Answers of asynchronous calls, fetched later (core/deferred_results.py)."""
        from remotesign.core.deferred_results import DeferredResults

        return DeferredResults(self.db, self.blobs, lease_seconds=self.settings.operation_lease_seconds)

    @cached_property
    def transaction_files(self) -> Any:
        """Documents signed with a sign identity in one call (core/transaction_files.py)."""
        from asn1crypto import x509 as asn1_x509

        from remotesign.core.document_signer import DocumentSigner
        from remotesign.core.relying_party_seal import RelyingPartySeals
        from remotesign.core.transaction_files import TransactionFiles

        return TransactionFiles(
            self.blobs, DocumentSigner(self.formats), self.keystore,
            signer_path=lambda identity: self.signing.check_signer(
                identity.certificate(), [asn1_x509.Certificate.load(c) for c in identity.chain_der]).path,
            context=self.signing.context, seals=RelyingPartySeals(self.keystore, self.ca),
            seal_path=lambda seal: self.signing.check_signer(seal.certificate).path)

    @cached_property
    def signing_transactions(self) -> Any:
        from remotesign.core.signing_transactions import SigningTransactionService

        st = self.settings
        files = self.transaction_files
        return SigningTransactionService(self.db, self.audit, self.agreements, self.tenants, self.keystore,
                                         self.sole_control, self.outbox, otp_ttl=st.otp_ttl_seconds,
                                         otp_max_failures=st.otp_max_failures, files=files,
                                         file_retention=st.signed_file_retention_seconds)

    @cached_property
    def xades_policy(self) -> Any:
        """The operator's XAdES-EPES signature policy (REMOTESIGN_XADES_POLICY_*), or None."""
        st = self.settings
        if not st.xades_policy_id or st.xades_policy_file is None:
            return None
        import hashlib

        from remotesign.formats.interface import SignaturePolicy

        digest = hashlib.sha256(st.xades_policy_file.read_bytes()).digest()
        return SignaturePolicy(identifier=st.xades_policy_id, digest_algorithm="sha256", digest=digest,
                               uri=st.xades_policy_uri)

    @cached_property
    def client_jwt(self) -> Any:
        """JWTs for clients that log in with their credentials (the Remote Signing API)."""
        from remotesign.trust.jwt_issuer import JwtIssuer

        return JwtIssuer(self.db, self.keystore, f"{self.base_url}/rs")

    @cached_property
    def request_runner(self) -> Any:
        """Background execution of asynchronous signature requests; every source's callbacks."""
        from remotesign.core.request_runner import SignatureRequestRunner
        from remotesign.notify.webhooks import WebhookSender
        from remotesign.trust.tsa_clients import TsaUrlPolicy

        st = self.settings
        sender = WebhookSender(TsaUrlPolicy.parse(st.callback_allowed_hosts), timeout=st.callback_timeout_seconds)
        runner = SignatureRequestRunner(self.signature_requests, sender, self.tenants.callback_secret)
        from remotesign.core.batches import CALLBACK_SOURCE as BATCH_CALLBACKS

        runner.add_callback_source(BATCH_CALLBACKS, self.batches)  # batches announce their end the same way
        return runner

    @property
    def demo_client_file(self) -> Path:
        return self.settings.home / "demo-client.json"

    def initialize(self) -> dict[str, Any]:
        """First-start work: the PKI, and a demo relying party whose credentials go to a file. On
        an existing instance (another node's, sharing the database) nothing is created: its keys
        must open with this node's master key (or HSM), else InstanceError."""
        from remotesign.storage.leader import startup_lock

        with startup_lock(self.settings.database_url):  # one node at a time
            return self._initialize()

    def _initialize(self) -> dict[str, Any]:
        from remotesign.trust.ca_naming import load_ca_naming

        if self.ca.is_initialized():
            self.ca.naming = load_ca_naming(self.db)  # another node may have made the PKI since we started
            check_keys_open(self.settings, self.keystore, self.ca.ocsp_signer()[1])
        created_pki = self.ca.initialize()
        self.transport.key()
        self.initialize_audit_seal()
        demo: dict[str, Any] | None = None
        if created_pki and not self.tenants.list():
            tenant, secret = self.tenants.create(DEMO_CLIENT_NAME)
            demo = {"client_id": tenant.client_id, "client_secret": secret, "base_url": self.base_url}
            try:  # the demo client's redirect URI: a page of this service showing the code (README walk-through)
                self.tenants.set_redirect_uris(tenant.client_id, [f"{self.base_url}/demo/callback"])
            except TenantError:  # plain http on a non-loopback public URL: no demo redirect URI
                pass
            _write_private_json(self.demo_client_file, demo)
        else:
            self._follow_public_url()
        return {"pki_created": created_pki, "demo_client_created": demo is not None}

    def _follow_public_url(self) -> None:
        """After a move to another public URL, the demo client's callback on this service (kept
        with the old ones) and its file name the current one, so the README's walk-through works."""
        try:
            demo = json.loads(self.demo_client_file.read_text(encoding="utf-8"))
            tenant = self.tenants.by_client_id(demo["client_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        callback = f"{self.base_url}/demo/callback"
        if tenant is None or callback in tenant.redirect_uris:
            return
        try:
            self.tenants.set_redirect_uris(tenant.client_id, [*tenant.redirect_uris, callback], actor="service")
        except TenantError:  # plain http on a non-loopback public URL: no demo redirect URI
            return
        _write_private_json(self.demo_client_file, {**demo, "base_url": self.base_url})

    def initialize_audit_seal(self) -> None:
        """The audit key (first start) and the anchors' pins of it and of the TSA certificate; an
        anchor file of an older version is imported into the anchor table first."""
        import hashlib
        from datetime import datetime, timezone

        self.audit_key.ensure()
        self.audit_anchor.import_file()
        self.audit_sealer.pin_key()
        self.audit_anchor.pin_tsa(hashlib.sha256(self.ca.tsa_signer()[0].der).hexdigest(),
                                  datetime.now(timezone.utc).isoformat())

    def close(self) -> None:
        self.keystore.close()
        self.db.dispose()


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
