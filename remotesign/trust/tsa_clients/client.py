"""An RFC 3161 client for a TSA a request chose: a pyHanko ``TimeStamper`` over httpx.

pyHanko's own ``async_timestamp`` builds the request (with a nonce), calls
:meth:`HttpTsaClient.async_request_tsa_response` and checks the status and the nonce; this class
sends the request and adds what pyHanko's HTTP clients leave out: the URL allow-list (SSRF), a
connection pinned to the checked address, a total deadline, no redirects, no proxy from the
environment, a cap on the response size (read as a stream, the connection dropped past it), and a
check that the token's imprint is the one asked for. Every failure is a :class:`TsaError`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import algos, cms, core, tsp
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError

from remotesign.trust.tsa_clients.choice import TsaAuth, TsaChoice, check_url
from remotesign.trust.tsa_clients.credentials import TsaCredentialStore, client_context
from remotesign.trust.tsa_clients.errors import TsaError
from remotesign.trust.tsa_clients.policy import TsaUrlPolicy

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 1 << 20
REPLY_TYPES = ("application/timestamp-reply", "application/timestamp-response")
_REFUSED_TLS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN", "ACCESS_DENIED",
                "CERTIFICATE_REVOKED", "CERTIFICATE_EXPIRED", "UNSUPPORTED_CERTIFICATE", "HANDSHAKE_FAILURE")
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class HttpTsaClient(TimeStamper):
    """One chosen TSA URL. ``timeout`` bounds the whole exchange (name resolution, connection, TLS,
    request and response together)."""

    def __init__(self, choice: TsaChoice, *, policy: TsaUrlPolicy, credentials: TsaCredentialStore | None = None,
                 tenant_id: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 max_response_bytes: int = MAX_RESPONSE_BYTES, tls_ca_file: Path | None = None) -> None:
        super().__init__(include_nonce=True)
        if choice.url is None:
            raise TsaError("tsa_invalid_choice", "the service's own TSA has no URL client")
        if choice.auth is TsaAuth.CLIENT_CERTIFICATE and credentials is None:
            raise TsaError("tsa_credential_unknown", "this service holds no TSA client certificates")
        self.choice = choice
        self.url = check_url(choice.url)
        self.policy = policy
        self.credentials = credentials
        self.tenant_id = tenant_id
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.tls_ca_file = tls_ca_file
        self._context: ssl.SSLContext | None = None

    @property
    def hash_algorithm(self) -> str:
        return self.choice.hash_algorithm

    async def prepare(self) -> None:
        """Check now what a request would check first (allow-list, credential, password), so a
        caller can refuse before doing any document work. Optional."""
        async with asyncio.timeout(self.timeout):
            await self.policy.pin(self.url)
            await self._ssl_context()

    async def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            if self.choice.auth is TsaAuth.CLIENT_CERTIFICATE:
                assert self.credentials is not None and self.choice.certificate_code is not None
                self._context = await asyncio.to_thread(self.credentials.ssl_context, self.choice.certificate_code,
                                                        self.tenant_id, self.choice.password)
            else:
                self._context = _plain_context(self.tls_ca_file)
        return self._context

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        try:
            token = await super().async_timestamp(message_digest, md_algorithm)
        except TsaError:
            raise
        except TimestampRequestError as exc:  # pyHanko's status / nonce checks
            raise TsaError("tsa_bad_response", str(exc)) from exc
        except _PARSE_ERRORS as exc:
            raise TsaError("tsa_bad_response", f"the TSA's time-stamp token cannot be read: {exc}") from exc
        _check_imprint(token, message_digest, md_algorithm)
        return token

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._exchange(req.dump())
        except TimeoutError as exc:
            raise TsaError("tsa_unreachable", f"the TSA did not answer within {self.timeout:g} s") from exc
        response = _parse_reply(body)
        _check_answers(response, req)
        return response

    async def _exchange(self, query: bytes) -> bytes:
        address = await self.policy.pin(self.url)
        context = await self._ssl_context()
        headers = {"Host": self.url.netloc.decode("ascii"), "Content-Type": "application/timestamp-query",
                   "Accept": "application/timestamp-reply", "User-Agent": "remotesign"}
        extensions: dict[str, Any] = {}
        if self.url.scheme == "https" and not _is_ip(self.url.host):
            extensions["sni_hostname"] = self.url.host  # TLS name check against the name, not the pinned address
        auth = (httpx.BasicAuth(self.choice.user or "", self.choice.password or "")
                if self.choice.auth is TsaAuth.BASIC else None)
        timeout = httpx.Timeout(self.timeout)
        try:
            async with httpx.AsyncClient(verify=context, trust_env=False, follow_redirects=False, timeout=timeout,
                                         limits=httpx.Limits(max_connections=1, max_keepalive_connections=0)
                                         ) as client:
                async with client.stream("POST", self.url.copy_with(host=address), content=query, headers=headers,
                                         auth=auth, extensions=extensions) as response:
                    _check_status(response)
                    return await self._read_capped(response)
        except TsaError:
            raise
        except httpx.TimeoutException as exc:
            raise TsaError("tsa_unreachable", f"the TSA did not answer within {self.timeout:g} s") from exc
        except (httpx.TransportError, OSError) as exc:  # OSError: ssl.SSLError may come through unwrapped
            raise _transport_error(exc) from exc

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_response_bytes:
            raise TsaError("tsa_bad_response", f"the TSA's answer ({declared} bytes) is larger than "
                                               f"{self.max_response_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:  # leaving the block closes the connection: no more is read
                raise TsaError("tsa_bad_response", f"the TSA's answer is larger than {self.max_response_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


_PLAIN_CONTEXTS: dict[Path | None, ssl.SSLContext] = {}


def _plain_context(ca_file: Path | None) -> ssl.SSLContext:
    context = _PLAIN_CONTEXTS.get(ca_file)
    if context is None:
        context = _PLAIN_CONTEXTS.setdefault(ca_file, client_context(ca_file))
    return context


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status in (401, 403, 407):
        raise TsaError("tsa_refused", f"the TSA refused the request (HTTP {status})")
    if status in (502, 503, 504):
        raise TsaError("tsa_unreachable", f"the TSA is unavailable (HTTP {status})")
    if 300 <= status < 400:
        raise TsaError("tsa_bad_response", f"the TSA answered a redirect (HTTP {status}); redirects are not followed")
    if status != 200:
        raise TsaError("tsa_bad_response", f"the TSA answered HTTP {status}")
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type not in REPLY_TYPES:
        raise TsaError("tsa_bad_response", f"the TSA answered {media_type or 'no content type'}, "
                                           f"not application/timestamp-reply")


def _transport_error(exc: Exception) -> TsaError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TsaError("tsa_unreachable", f"the TSA's TLS certificate is not trusted: {cause.verify_message}")
        if isinstance(cause, ssl.SSLError):
            reason = (cause.reason or "").upper()
            if any(r in reason for r in _REFUSED_TLS):
                return TsaError("tsa_refused", f"the TSA refused the TLS client authentication ({cause.reason})")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ProtocolError):
        return TsaError("tsa_bad_response", f"the TSA did not answer HTTP: {exc}")
    return TsaError("tsa_unreachable", f"the TSA cannot be reached ({type(exc).__name__}{': ' if str(exc) else ''}"
                                       f"{exc}); a TSA that demands a TLS client certificate may also just hang up")


def _parse_reply(body: bytes) -> tsp.TimeStampResp:
    """A TimeStampResp, fully parsed; ``tsa_refused`` when its PKIStatus rejects the request (a
    rejection has no timeStampToken, which asn1crypto's TimeStampResp wrongly demands, so the status
    is read on its own first)."""
    try:
        outer = core.Sequence.load(body, strict=True)
        if not 1 <= len(outer) <= 2:
            raise ValueError(f"{len(outer)} elements")
        status_info = tsp.PKIStatusInfo.load(outer[0].dump(), strict=True)
        status = status_info["status"].native
    except _PARSE_ERRORS as exc:
        raise TsaError("tsa_bad_response", f"the TSA's answer is not a TimeStampResp: {exc}") from exc
    if status not in ("granted", "granted_with_mods"):
        try:
            texts = "; ".join(status_info["status_string"].native or [])
            fail = ", ".join(sorted(status_info["fail_info"].native or []))
        except _PARSE_ERRORS:
            texts, fail = "", ""
        raise TsaError("tsa_refused", f"the TSA rejected the request (status {status}"
                                      f"{', ' + fail if fail else ''}{': ' + texts if texts else ''})")
    try:
        response = tsp.TimeStampResp.load(body, strict=True)
        token = response["time_stamp_token"]
        if token["content_type"].native != "signed_data":
            raise ValueError("the token is not SignedData")
        signed = token["content"]
        if signed["encap_content_info"]["content_type"].native != "tst_info":
            raise ValueError("the token does not encapsulate a TSTInfo")
        info = signed["encap_content_info"]["content"].parsed
        if not isinstance(info, tsp.TSTInfo):
            raise ValueError("the token does not encapsulate a TSTInfo")
        _ = info.native, signed["signer_infos"].native, signed["certificates"].native  # parse it all now
        if not len(signed["signer_infos"]):
            raise ValueError("the token has no signer")
    except _PARSE_ERRORS as exc:
        raise TsaError("tsa_bad_response", f"the TSA's time-stamp token is malformed: {exc}") from exc
    return response


def _check_answers(response: tsp.TimeStampResp, req: tsp.TimeStampReq) -> None:
    """The token answers this request: its nonce and its imprint are the request's (pyHanko checks
    the nonce too, but its message for a mismatch fails to format)."""
    try:
        info = response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
        nonce = info["nonce"].native
        imprint = info["message_imprint"]
        same_imprint = (imprint["hash_algorithm"]["algorithm"].native
                        == req["message_imprint"]["hash_algorithm"]["algorithm"].native
                        and hmac.compare_digest(imprint["hashed_message"].native,
                                                req["message_imprint"]["hashed_message"].native))
    except _PARSE_ERRORS as exc:
        raise TsaError("tsa_bad_response", f"the TSA's time-stamp token is malformed: {exc}") from exc
    if req["nonce"].native is not None and nonce != req["nonce"].native:
        raise TsaError("tsa_bad_response", "the TSA's answer carries another nonce than the request (a replay?)")
    if not same_imprint:
        raise TsaError("tsa_bad_response", "the TSA time-stamped another imprint than the one asked for")


def _check_imprint(token: cms.ContentInfo, digest: bytes, md_algorithm: str) -> None:
    try:
        imprint = token["content"]["encap_content_info"]["content"].parsed["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
    except _PARSE_ERRORS as exc:
        raise TsaError("tsa_bad_response", f"the TSA's time-stamp token has no readable imprint: {exc}") from exc
    expected = algos.DigestAlgorithmId(md_algorithm).native
    if algorithm != expected or not hmac.compare_digest(hashed, digest):
        raise TsaError("tsa_bad_response", "the TSA time-stamped another imprint than the one asked for")


class TsaClients:
    """Turns a request's :class:`TsaChoice` into a pyHanko ``TimeStamper``: ``default`` (the
    service's own, or REMOTESIGN_TSA_URL) for the default choice, else an :class:`HttpTsaClient`."""

    def __init__(self, default: TimeStamper, policy: TsaUrlPolicy, credentials: TsaCredentialStore | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, max_response_bytes: int = MAX_RESPONSE_BYTES,
                 tls_ca_file: Path | None = None) -> None:
        self.default = default
        self.policy = policy
        self.credentials = credentials
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.tls_ca_file = tls_ca_file

    def timestamper(self, choice: TsaChoice, tenant_id: str | None = None) -> TimeStamper:
        return make_timestamper(choice, default=self.default, policy=self.policy, credentials=self.credentials,
                                tenant_id=tenant_id, timeout=self.timeout,
                                max_response_bytes=self.max_response_bytes, tls_ca_file=self.tls_ca_file)

    @classmethod
    def for_services(cls, services: Any, *, tls_ca_file: Path | None = None) -> "TsaClients":
        """Built from a ``service.Services``: its time-stamper for the default choice,
        REMOTESIGN_TSA_ALLOWED_HOSTS, its database and key store for client certificates, and its
        fetch timeout. TSA servers' TLS certificates are checked against the system trust store
        (SSL_CERT_FILE / SSL_CERT_DIR apply) plus ``tls_ca_file``."""
        settings = services.settings
        store = TsaCredentialStore(services.db, services.keystore, services.audit, kdf_log2_n=settings.kdf_log2_n,
                                   tls_ca_file=tls_ca_file)
        return cls(services.timestamper, TsaUrlPolicy.parse(settings.tsa_allowed_hosts), store,
                   timeout=settings.fetch_timeout_seconds, tls_ca_file=tls_ca_file)


def make_timestamper(choice: TsaChoice, *, default: TimeStamper, policy: TsaUrlPolicy,
                     credentials: TsaCredentialStore | None = None, tenant_id: str | None = None,
                     timeout: float = DEFAULT_TIMEOUT, max_response_bytes: int = MAX_RESPONSE_BYTES,
                     tls_ca_file: Path | None = None) -> TimeStamper:
    """The ``TimeStamper`` for ``choice`` (no I/O here: the allow-list, the credential and the TSA
    are consulted at the first time-stamp, or by ``await stamper.prepare()``). The caller hashes
    with ``choice.hash_algorithm`` (``ExtensionContext.digest_algorithm``)."""
    if choice.is_default:
        return default
    return HttpTsaClient(choice, policy=policy, credentials=credentials, tenant_id=tenant_id, timeout=timeout,
                         max_response_bytes=max_response_bytes, tls_ca_file=tls_ca_file)
