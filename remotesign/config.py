"""Service settings, read once from the environment.

Every setting has an embedded default so that a fresh machine runs with no configuration at all:
SQLite and blobs under ``REMOTESIGN_HOME``, software keys encrypted under a master key file kept
next to (not inside) the database, and the built-in PKI.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_seconds_list(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = _env(name)
    if raw is None:
        return default
    try:
        values = tuple(int(x) for x in raw.split(",") if x.strip())
    except ValueError as exc:
        raise SystemExit(f"setting {name} must be comma-separated seconds, got {raw!r}") from exc
    if not values or any(v <= 0 for v in values):
        raise SystemExit(f"setting {name} needs at least one positive number of seconds")
    return values


def _env_secret(name: str, file_name: str) -> str | None:
    """A secret setting given directly (``name``) or as a file holding it (``file_name``, e.g. a
    container secret or a 0600 file, so that the value stays out of the process environment and
    unit files). Surrounding whitespace (the file's trailing newline) is stripped. Both set, or a
    file that cannot be read or is empty, stops the start with one line saying so."""
    value, path = _env(name), _env(file_name)
    if path is None:
        return value
    if value is not None:
        raise SystemExit(f"settings {name} and {file_name} are both set; set only one")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SystemExit(f"setting {file_name}: cannot read {path}: {reason}") from None
    if not value:
        raise SystemExit(f"setting {file_name}: {path} is empty")
    return value


N = TypeVar("N", int, float)


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def _env_number(name: str, default: N, parse: Callable[[str], N], what: str) -> N:
    """The setting parsed, or a clear stop naming it (never a traceback at start)."""
    raw = _env(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise SystemExit(f"setting {name} must be {what}, got {raw!r}") from exc


@dataclass(frozen=True)
class Pkcs11Settings:
    """Where the HSM is; used when ``key_backend == "pkcs11"``."""

    module: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "remotesign"
    user_pin: str | None = None
    pool_size: int = 4


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    blob_dir: Path
    public_url: str | None
    key_backend: str
    master_key_file: Path
    master_key_b64: str | None
    pkcs11: Pkcs11Settings = field(default_factory=Pkcs11Settings)
    token_ttl_seconds: int = 3600
    default_auth_server: str = "lvrtc-eipsign-as"
    extra_auth_servers: tuple[str, ...] = ()
    max_request_bytes: int = 1 << 20
    tsa_policy_oid: str = "1.3.6.1.4.1.59999.1.3.1"
    tsa_accuracy_ms: int = 500
    crl_validity_hours: int = 24
    ocsp_validity_minutes: int = 60
    file_max_bytes: int = 256 << 20
    session_timeout_seconds: int = 86400
    # A finalize/archive claims its operation for this long; after it (or once the claiming process
    # is known dead) a retry may take the operation over. Must exceed the longest legitimate finalize.
    operation_lease_seconds: int = 300
    #: a process of another host whose heartbeat is this old is gone (storage/liveness.py)
    node_silent_seconds: int = 60
    tsa_url: str | None = None
    # Where a relying party's own choice of TSA (Fortress ``tsa`` object) may send requests: ``public``
    # (globally routable addresses), ``loopback``, addresses, CIDR networks, host names, ``*.domain``,
    # or ``none``. Loopback and private networks only when listed (SSRF).
    tsa_allowed_hosts: tuple[str, ...] = ("public",)
    # Where callbacks of asynchronous signature requests may go (same entries as tsa_allowed_hosts),
    # how long one delivery may take, and how many times a failing receiver is tried (backoff
    # doubling from callback_backoff_seconds, at most 10 minutes between tries).
    callback_allowed_hosts: tuple[str, ...] = ("public",)
    callback_timeout_seconds: float = 10.0
    callback_max_attempts: int = 8
    callback_backoff_seconds: float = 2.0
    trust_anchor_files: tuple[Path, ...] = ()
    trusted_lists: tuple[Path, ...] = ()       # local EU trusted-list / LOTL files or directories
    fetch_timeout_seconds: float = 10.0
    validation_fetching: bool = False
    validation_timeout_seconds: float = 120.0
    validation_policy: str = "default"         # built-in policy name or a policy file (TOML)
    validation_page: bool = True               # the public upload page /validate
    operator_name: str = "remotesign"          # shown on the sign-in and consent pages
    operator_logo: Path | None = None          # PNG, JPEG or SVG (at most 64 KiB) shown beside the name
    # Sole control (issue 5): authentication factors and the lifetimes of what they authorize.
    pin_max_attempts: int = 3                 # wrong PINs in a row before the identity locks
    # Escalating locks: the n-th lock in a row lasts the n-th value; after the last, the lock
    # stays until a reset through the user's own channel (or the operator).
    pin_lock_schedule: tuple[int, ...] = (900, 3600, 86400)
    password_max_attempts: int = 5
    password_lock_schedule: tuple[int, ...] = (900, 3600, 86400)
    # Failed attempts one network address / one client may make per window, across accounts.
    address_max_failures: int = 30
    client_max_failures: int = 300
    failure_window_seconds: int = 900
    # Out-of-band codes with which users activate, reset their secrets and pair devices.
    activation_code_ttl_seconds: int = 7 * 86400
    reset_code_ttl_seconds: int = 86400
    device_code_ttl_seconds: int = 900
    smtp_url: str | None = None               # smtp://[user:password@]host:port (smtps:// for TLS)
    mail_from: str = "remotesign <noreply@localhost>"
    sms_gateway_url: str | None = None        # one-time codes by SMS (notify/sms.py); else by e-mail
    sms_gateway_token: str | None = None
    # Without an SMTP server / SMS gateway: write messages to these directories instead (demo and
    # development only: they carry passcodes and one-time codes; notify/file_drop.py)
    mail_dir: Path | None = None
    sms_dir: Path | None = None
    # Messages to signers (passcodes, one-time codes) are retried this many times, the wait
    # doubling from notify_backoff_seconds (notify/outbox.py).
    notify_max_attempts: int = 5
    notify_backoff_seconds: float = 2.0
    # Certificate products agreements are registered under (core/agreements.py parse_products):
    # the Remote Signing (VN) profile codes by default; the first is the default product.
    certificate_products: str = (
        "T2PSB21Y=natural:1y,T2PSB22Y=natural:2y,T2PSB23Y=natural:3y,"
        "T2SFB21Y=natural:1y,T2SFB22Y=natural:2y,T2SFB23Y=natural:3y,"
        "T2OSB21Y=legal:1y,T2OSB22Y=legal:2y,T2OSB23Y=legal:3y,"
        "T2PSE21Y=natural:1y:ec-p256,T2OSE21Y=legal:1y:ec-p256")
    # automatic: an agreement's certificate is issued at registration (the relying party is the
    # registration authority); operator: it waits for ``remotesign agreements approve``
    agreement_approval: str = "automatic"
    # The signature policy of XAdES-EPES signatures the Remote Signing API makes (SIGNATUREFORMAT
    # XADES_EPES): its identifier (OID or URI), the policy document (its SHA-256 goes into each
    # signature) and where it is published (SPURI); without them XADES_EPES is refused.
    xades_policy_id: str | None = None
    xades_policy_file: Path | None = None
    xades_policy_uri: str | None = None
    client_jwt_ttl_seconds: int = 3600          # JWTs of the Remote Signing API's client login
    # Cloud Signature Consortium API (api/csc): the SCAL its credentials have (2: every
    # authorization is bound to its hashes; 1: to a number of signatures), the factors of an
    # explicit authorization (pin | pin+otp | pin-or-otp), how long a SAD lives, how long a
    # transaction may be extended, the most signatures one authorization may cover, and whether
    # auth/login (HTTP Basic with the user's password) is offered.
    csc_scal: int = 2
    csc_factors: str = "pin"
    csc_sad_ttl_seconds: int = 300
    csc_transaction_ttl_seconds: int = 3600
    csc_multisign: int = 100
    csc_basic_login: bool = False
    otp_ttl_seconds: int = 300                  # one-time codes that authorize a signing transaction
    signed_file_retention_seconds: int = 7 * 86400  # signed files of a transaction stay downloadable this long
    otp_max_failures: int = 3
    kdf_log2_n: int = 16                      # scrypt cost of stored passwords and PINs
    heavy_threads: int = 2                    # threads per process for signing/extension work
    max_active_requests: int = 8              # requests worked on at once per process, the rest queue (0: no gate)
    admission_max_wait_seconds: float = 30.0  # a request still queued after this is answered 503
    auth_code_ttl_seconds: int = 60
    authorization_request_ttl_seconds: int = 600
    signing_token_ttl_seconds: int = 300      # a digests-bound token must be spent within this
    process_ttl_seconds: int = 300            # a device request must be answered within this
    process_retention_seconds: int = 3600     # results of finished processes stay readable
    job_concurrency: int = 2                  # background jobs (batch items) one process works on at once
    batch_max_documents: int = 1000           # documents in one batch
    batch_max_bytes: int = 512 << 20          # all documents of one batch submission together
    batch_keep_seconds: int = 7 * 86400       # a batch and its results stay this long after it is created
    allow_sha1: bool = False                  # raw signatures over SHA-1 digests
    # Keyed audit (storage/audit_seal.py): a signed, time-stamped checkpoint after this many events
    # or this many seconds (whichever first), plus at start and shutdown; a copy goes to the anchor file.
    audit_seal_events: int = 1000
    audit_seal_seconds: int = 60
    audit_anchor_file: Path | None = None      # default $REMOTESIGN_HOME/audit-anchors.jsonl
    # Where documents are kept: ``local`` (blob_dir, the default) or ``s3`` (a bucket of an
    # S3-compatible store, shared by every process of a scaled-out installation; storage/s3_blobs.py).
    blob_store: str = "local"
    s3_endpoint: str | None = None            # e.g. http://seaweedfs:8333; None: AWS's endpoint for the region
    s3_bucket: str | None = None              # created at start if missing
    s3_access_key: str | None = None          # None: boto3's credential chain (environment, instance role)
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_region: str = "us-east-1"
    s3_prefix: str = ""                       # keys are <prefix><namespace>/<name>
    s3_temp_dir: Path | None = None           # where writers spool before uploading; None: the system's
    # /health writes a probe object at most this often per process (a HEAD of the bucket in between),
    # so that balancers polling every few seconds do not fill a versioned bucket with probe versions
    s3_health_write_interval_seconds: int = 60

    @property
    def audit_anchor_path(self) -> Path:
        return self.audit_anchor_file or self.home / "audit-anchors.jsonl"

    @property
    def auth_servers(self) -> frozenset[str]:
        """Names accepted in /trustedx-authserver/oauth/{name}/token."""
        return frozenset((self.default_auth_server, *self.extra_auth_servers))

    def base_url(self) -> str:
        """Public base URL baked into issued certificates (AIA, CRL distribution points)."""
        return (self.public_url or "http://127.0.0.1:8080").rstrip("/")


def load_settings(home: Path | None = None) -> Settings:
    """The settings of the instance in ``home`` (the CLI finds it: remotesign/cli/home.py), else in
    ``$REMOTESIGN_HOME`` or ./var."""
    home = (home or Path(_env("REMOTESIGN_HOME", "./var") or "./var")).resolve()
    blob_store = (_env("REMOTESIGN_BLOB_STORE", "local") or "local").lower()
    if blob_store not in ("local", "s3"):
        raise SystemExit(f"setting REMOTESIGN_BLOB_STORE must be local or s3, got {blob_store!r}")
    if blob_store == "s3" and not _env("REMOTESIGN_S3_BUCKET"):
        raise SystemExit("REMOTESIGN_BLOB_STORE=s3 needs REMOTESIGN_S3_BUCKET")
    s3_secret = _env_secret("REMOTESIGN_S3_SECRET_KEY", "REMOTESIGN_S3_SECRET_KEY_FILE")
    pin = _env_secret("REMOTESIGN_PKCS11_PIN", "REMOTESIGN_PKCS11_PIN_FILE")
    database_url = _env_secret("REMOTESIGN_DATABASE_URL", "REMOTESIGN_DATABASE_URL_FILE")
    return Settings(
        home=home,
        database_url=database_url or f"sqlite:///{home / 'remotesign.db'}",
        blob_dir=Path(_env("REMOTESIGN_BLOB_DIR", str(home / "blobs")) or "").resolve(),
        public_url=(_env("REMOTESIGN_PUBLIC_URL") or "").rstrip("/") or None,
        key_backend=_env("REMOTESIGN_KEY_BACKEND", "software") or "software",
        master_key_file=Path(_env("REMOTESIGN_MASTER_KEY_FILE", str(home / "master.key")) or ""),
        master_key_b64=_env("REMOTESIGN_MASTER_KEY"),
        pkcs11=Pkcs11Settings(
            module=_env("REMOTESIGN_PKCS11_MODULE", Pkcs11Settings.module) or Pkcs11Settings.module,
            token_label=_env("REMOTESIGN_PKCS11_TOKEN", Pkcs11Settings.token_label) or "remotesign",
            user_pin=pin,
            pool_size=_env_int("REMOTESIGN_PKCS11_POOL_SIZE", 4),
        ),
        token_ttl_seconds=_env_int("REMOTESIGN_TOKEN_TTL", 3600),
        default_auth_server=_env("REMOTESIGN_AUTH_SERVER", "lvrtc-eipsign-as") or "lvrtc-eipsign-as",
        extra_auth_servers=tuple(a for a in (_env("REMOTESIGN_EXTRA_AUTH_SERVERS", "") or "").split(",") if a),
        tsa_policy_oid=_env("REMOTESIGN_TSA_POLICY_OID", Settings.tsa_policy_oid) or Settings.tsa_policy_oid,
        crl_validity_hours=_env_int("REMOTESIGN_CRL_VALIDITY_HOURS", 24),
        ocsp_validity_minutes=_env_int("REMOTESIGN_OCSP_VALIDITY_MINUTES", 60),
        file_max_bytes=_env_int("REMOTESIGN_FILE_MAX_BYTES", Settings.file_max_bytes),
        session_timeout_seconds=_env_int("REMOTESIGN_SESSION_TIMEOUT", Settings.session_timeout_seconds),
        operation_lease_seconds=max(1, _env_int("REMOTESIGN_OPERATION_LEASE", Settings.operation_lease_seconds)),
        node_silent_seconds=max(5, _env_int("REMOTESIGN_NODE_SILENT_AFTER", Settings.node_silent_seconds)),
        tsa_url=_env("REMOTESIGN_TSA_URL"),
        tsa_allowed_hosts=tuple(h.strip() for h in (_env("REMOTESIGN_TSA_ALLOWED_HOSTS", "public") or "").split(",")
                                if h.strip()),
        callback_allowed_hosts=tuple(h.strip() for h in (_env("REMOTESIGN_CALLBACK_ALLOWED_HOSTS", "public") or ""
                                                         ).split(",") if h.strip()),
        callback_timeout_seconds=float(_env("REMOTESIGN_CALLBACK_TIMEOUT", "10") or "10"),
        callback_max_attempts=max(1, _env_int("REMOTESIGN_CALLBACK_MAX_ATTEMPTS", Settings.callback_max_attempts)),
        callback_backoff_seconds=float(_env("REMOTESIGN_CALLBACK_BACKOFF", "2") or "2"),
        trust_anchor_files=tuple(Path(p) for p in (_env("REMOTESIGN_TRUST_ANCHORS", "") or "").split(",") if p),
        trusted_lists=tuple(Path(p) for p in (_env("REMOTESIGN_TRUSTED_LISTS", "") or "").split(",") if p),
        validation_fetching=(_env("REMOTESIGN_VALIDATION_FETCH", "") or "").lower() in ("1", "true", "yes"),
        validation_timeout_seconds=float(_env("REMOTESIGN_VALIDATION_TIMEOUT", "120") or 120),
        validation_policy=_env("REMOTESIGN_VALIDATION_POLICY", "default") or "default",
        validation_page=(_env("REMOTESIGN_VALIDATION_PAGE", "on") or "on").lower() not in ("0", "off", "false", "no"),
        operator_name=(_env("REMOTESIGN_OPERATOR_NAME", "") or "remotesign").strip()[:100],
        operator_logo=Path(logo) if (logo := _env("REMOTESIGN_OPERATOR_LOGO")) else None,
        pin_max_attempts=_env_int("REMOTESIGN_PIN_MAX_ATTEMPTS", Settings.pin_max_attempts),
        pin_lock_schedule=_env_seconds_list("REMOTESIGN_PIN_LOCK_SECONDS", Settings.pin_lock_schedule),
        password_max_attempts=_env_int("REMOTESIGN_PASSWORD_MAX_ATTEMPTS", Settings.password_max_attempts),
        password_lock_schedule=_env_seconds_list("REMOTESIGN_PASSWORD_LOCK_SECONDS",
                                                 Settings.password_lock_schedule),
        address_max_failures=_env_int("REMOTESIGN_ADDRESS_MAX_FAILURES", Settings.address_max_failures),
        client_max_failures=_env_int("REMOTESIGN_CLIENT_MAX_FAILURES", Settings.client_max_failures),
        failure_window_seconds=_env_int("REMOTESIGN_FAILURE_WINDOW", Settings.failure_window_seconds),
        activation_code_ttl_seconds=_env_int("REMOTESIGN_ACTIVATION_CODE_TTL", Settings.activation_code_ttl_seconds),
        reset_code_ttl_seconds=_env_int("REMOTESIGN_RESET_CODE_TTL", Settings.reset_code_ttl_seconds),
        device_code_ttl_seconds=_env_int("REMOTESIGN_DEVICE_CODE_TTL", Settings.device_code_ttl_seconds),
        smtp_url=_env("REMOTESIGN_SMTP_URL"),
        mail_from=_env("REMOTESIGN_MAIL_FROM", Settings.mail_from) or Settings.mail_from,
        sms_gateway_url=_env("REMOTESIGN_SMS_GATEWAY_URL"),
        sms_gateway_token=_env("REMOTESIGN_SMS_GATEWAY_TOKEN"),
        mail_dir=Path(_env("REMOTESIGN_MAIL_DIR") or "").resolve() if _env("REMOTESIGN_MAIL_DIR") else None,
        sms_dir=Path(_env("REMOTESIGN_SMS_DIR") or "").resolve() if _env("REMOTESIGN_SMS_DIR") else None,
        notify_max_attempts=max(1, _env_int("REMOTESIGN_NOTIFY_MAX_ATTEMPTS", Settings.notify_max_attempts)),
        notify_backoff_seconds=float(_env("REMOTESIGN_NOTIFY_BACKOFF", "2") or "2"),
        certificate_products=_env("REMOTESIGN_CERTIFICATE_PRODUCTS", Settings.certificate_products)
        or Settings.certificate_products,
        agreement_approval=_env("REMOTESIGN_AGREEMENT_APPROVAL", "automatic") or "automatic",
        xades_policy_id=_env("REMOTESIGN_XADES_POLICY_ID"),
        xades_policy_file=Path(_env("REMOTESIGN_XADES_POLICY_FILE") or "") if _env("REMOTESIGN_XADES_POLICY_FILE") else None,
        xades_policy_uri=_env("REMOTESIGN_XADES_POLICY_URI"),
        client_jwt_ttl_seconds=max(1, _env_int("REMOTESIGN_CLIENT_JWT_TTL", Settings.client_jwt_ttl_seconds)),
        otp_ttl_seconds=max(1, _env_int("REMOTESIGN_OTP_TTL", Settings.otp_ttl_seconds)),
        csc_scal=_env_int("REMOTESIGN_CSC_SCAL", Settings.csc_scal),
        csc_factors=_env("REMOTESIGN_CSC_FACTORS", Settings.csc_factors) or Settings.csc_factors,
        csc_sad_ttl_seconds=max(1, _env_int("REMOTESIGN_CSC_SAD_TTL", Settings.csc_sad_ttl_seconds)),
        csc_transaction_ttl_seconds=max(1, _env_int("REMOTESIGN_CSC_TRANSACTION_TTL",
                                                    Settings.csc_transaction_ttl_seconds)),
        csc_multisign=max(1, _env_int("REMOTESIGN_CSC_MULTISIGN", Settings.csc_multisign)),
        csc_basic_login=(_env("REMOTESIGN_CSC_BASIC_LOGIN", "") or "").lower() in ("1", "true", "yes"),
        signed_file_retention_seconds=max(0, _env_int("REMOTESIGN_SIGNED_FILE_RETENTION",
                                                      Settings.signed_file_retention_seconds)),
        otp_max_failures=max(1, _env_int("REMOTESIGN_OTP_MAX_FAILURES", Settings.otp_max_failures)),
        kdf_log2_n=max(14, _env_int("REMOTESIGN_KDF_LOG2_N", Settings.kdf_log2_n)),
        heavy_threads=max(1, _env_int("REMOTESIGN_HEAVY_THREADS", Settings.heavy_threads)),
        max_active_requests=max(0, _env_int("REMOTESIGN_MAX_ACTIVE_REQUESTS", Settings.max_active_requests)),
        admission_max_wait_seconds=max(1.0, _env_float("REMOTESIGN_ADMISSION_MAX_WAIT",
                                                       Settings.admission_max_wait_seconds)),
        auth_code_ttl_seconds=_env_int("REMOTESIGN_AUTH_CODE_TTL", Settings.auth_code_ttl_seconds),
        authorization_request_ttl_seconds=_env_int("REMOTESIGN_AUTHORIZATION_REQUEST_TTL",
                                                   Settings.authorization_request_ttl_seconds),
        signing_token_ttl_seconds=_env_int("REMOTESIGN_SIGNING_TOKEN_TTL", Settings.signing_token_ttl_seconds),
        process_ttl_seconds=_env_int("REMOTESIGN_PROCESS_TTL", Settings.process_ttl_seconds),
        process_retention_seconds=_env_int("REMOTESIGN_PROCESS_RETENTION", Settings.process_retention_seconds),
        job_concurrency=max(1, _env_int("REMOTESIGN_JOB_CONCURRENCY", Settings.job_concurrency)),
        batch_max_documents=max(1, _env_int("REMOTESIGN_BATCH_MAX_DOCUMENTS", Settings.batch_max_documents)),
        batch_max_bytes=max(1 << 20, _env_int("REMOTESIGN_BATCH_MAX_BYTES", Settings.batch_max_bytes)),
        batch_keep_seconds=max(60, _env_int("REMOTESIGN_BATCH_KEEP", Settings.batch_keep_seconds)),
        allow_sha1=(_env("REMOTESIGN_ALLOW_SHA1", "") or "").lower() in ("1", "true", "yes"),
        audit_seal_events=max(1, _env_int("REMOTESIGN_AUDIT_SEAL_EVENTS", Settings.audit_seal_events)),
        audit_seal_seconds=max(1, _env_int("REMOTESIGN_AUDIT_SEAL_SECONDS", Settings.audit_seal_seconds)),
        audit_anchor_file=Path(anchor).resolve() if (anchor := _env("REMOTESIGN_AUDIT_ANCHOR_FILE")) else None,
        blob_store=blob_store,
        s3_endpoint=_env("REMOTESIGN_S3_ENDPOINT"),
        s3_bucket=_env("REMOTESIGN_S3_BUCKET"),
        s3_access_key=_env("REMOTESIGN_S3_ACCESS_KEY"),
        s3_secret_key=s3_secret,
        s3_region=_env("REMOTESIGN_S3_REGION", "us-east-1") or "us-east-1",
        s3_prefix=_env("REMOTESIGN_S3_PREFIX", "") or "",
        s3_temp_dir=Path(tmp).resolve() if (tmp := _env("REMOTESIGN_S3_TEMP_DIR")) else None,
        s3_health_write_interval_seconds=max(0, _env_int("REMOTESIGN_S3_HEALTH_WRITE_INTERVAL",
                                                         Settings.s3_health_write_interval_seconds)),
    )
