"""RFC 3161 time-stamping authority.

Tokens are CMS SignedData over a TSTInfo, signed by the TSA key through the key store (so the key
can sit in an HSM) with the signed attributes RFC 3161 / RFC 5816 and ETSI EN 319 422 expect:
content-type, message-digest, signing-time and signing-certificate-v2 (ESSCertIDv2, SHA-256).

Every granted token is recorded in the ``timestamps`` table *before* it is signed: the table's
primary key on the serial number makes serials unique across processes and restarts, which RFC 3161
requires and which an in-memory counter cannot guarantee behind a load balancer.

Bad input never raises; it is answered with PKIStatus ``rejection`` and the matching failInfo.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from asn1crypto import core, tsp

from remotesign.keystore import KeyStore
from remotesign.keystore.base import HASH_SIZES
from remotesign.storage.db import Database
from remotesign.trust.ca import CertificateAuthority
from remotesign.trust.signing import sign_der, signature_algorithm
from remotesign.trust.tsa_log import SerialClash, TokenLog
from remotesign.trust.tsa_token import TOKEN_HASH, TokenTemplate

log = logging.getLogger(__name__)

# Message-imprint hash algorithms we accept, with their digest sizes. SHA-1 is accepted for old
# clients: the imprint only identifies the data, the token's own signature uses SHA-256.
ACCEPTED_HASHES: dict[str, int] = dict(HASH_SIZES)
# A TimeStampReq is a few hundred bytes; anything this big is not one.
MAX_QUERY_BYTES = 64 * 1024
SERIAL_ATTEMPTS = 5


@dataclass(frozen=True)
class TsaReply:
    """A DER TimeStampResp and its PKIStatus name ("granted" or "rejection")."""

    der: bytes
    status: str


class _Reject(Exception):
    """The query cannot be granted; carries the PKIFailureInfo bit name and a human message."""

    def __init__(self, fail_info: str, message: str) -> None:
        super().__init__(message)
        self.fail_info = fail_info
        self.message = message


class _StatusOnlyResp(core.Sequence):
    """TimeStampResp without a token; asn1crypto's TimeStampResp wrongly makes the token mandatory."""

    _fields = [("status", tsp.PKIStatusInfo)]


def _rejection(fail_info: str, message: str) -> TsaReply:
    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": [message], "fail_info": {fail_info}})
    return TsaReply(_StatusOnlyResp({"status": status}).dump(), "rejection")


def error_reply(server_fault: bool, message: str) -> TsaReply:
    """The TimeStampResp for a query refused before the TSA saw it (``badDataFormat``: too large,
    malformed) or for a fault of the service (``systemFailure``)."""
    return _rejection("system_failure" if server_fault else "bad_data_format", message[:200])


def _new_serial() -> int:
    """Positive ~104-bit serial: nanosecond time (ordering for humans) + 40 random bits (uniqueness)."""
    return (time.time_ns() << 40) | secrets.randbits(40)


class TimeStampAuthority:
    """Answers TimeStampReq with TimeStampResp; stateless apart from the serial-number table."""

    def __init__(self, db: Database, ca: CertificateAuthority, keystore: KeyStore, policy_oid: str,
                 accuracy_ms: int = 500) -> None:
        self.db = db
        self._log = TokenLog(db)
        self.keystore = keystore
        self.policy = core.ObjectIdentifier(policy_oid)  # validates the OID now, not per request
        self.policy_oid = self.policy.dotted
        cert, key = ca.tsa_signer()
        self._key = key
        self._template = TokenTemplate(cert.asn1(), [c.asn1() for c in ca.chain()], cert.der,
                                       signature_algorithm(key, TOKEN_HASH), self.policy_oid,
                                       self._accuracy_value(accuracy_ms))

    @staticmethod
    def _accuracy_value(accuracy_ms: int) -> dict | None:
        """RFC 3161 Accuracy: millis must be 1..999, larger values go into seconds."""
        if accuracy_ms < 0:
            raise ValueError("accuracy_ms must not be negative")
        if accuracy_ms == 0:
            return None
        seconds, millis = divmod(accuracy_ms, 1000)
        value: dict = {}
        if seconds:
            value["seconds"] = seconds
        if millis:
            value["millis"] = millis
        return value

    # -- entry point ------------------------------------------------------------------------------
    def respond(self, query_der: bytes) -> TsaReply:
        """DER TimeStampResp for ``query_der``; never raises."""
        try:
            query = self._parse(query_der)
        except _Reject as exc:
            return _rejection(exc.fail_info, exc.message)
        except Exception:  # noqa: BLE001 - asn1crypto raises many types on hostile input
            return _rejection("bad_data_format", "the request is not a DER TimeStampReq")
        try:
            return self._grant(query)
        except Exception:  # noqa: BLE001 - a database or HSM failure must become a response
            log.exception("time-stamping failed")
            return _rejection("system_failure", "the time-stamping unit failed; try again")

    # -- validation -------------------------------------------------------------------------------
    def _parse(self, query_der: bytes) -> tsp.TimeStampReq:
        if not isinstance(query_der, (bytes, bytearray)) or not query_der:
            raise _Reject("bad_data_format", "empty request")
        if len(query_der) > MAX_QUERY_BYTES:
            raise _Reject("bad_data_format", "request too large")
        query = tsp.TimeStampReq.load(bytes(query_der), strict=True)  # strict: no trailing data
        query.native  # noqa: B018 - force a full parse, so later access cannot fail half-way
        if query["version"].native != "v1":
            raise _Reject("bad_data_format", "unsupported TimeStampReq version")
        imprint = query["message_imprint"]
        hash_alg = imprint["hash_algorithm"]
        name = hash_alg["algorithm"].native
        size = ACCEPTED_HASHES.get(name)
        if size is None:
            raise _Reject("bad_alg", f"hash algorithm {name} is not accepted")
        if hash_alg["parameters"].native is not None:
            raise _Reject("bad_alg", "hash algorithm parameters must be absent or NULL")
        if len(imprint["hashed_message"].native) != size:
            raise _Reject("bad_data_format", f"a {name} message imprint has {size} bytes")
        policy = query["req_policy"]
        if policy.native is not None and policy.dotted != self.policy_oid:
            raise _Reject("unaccepted_policy", f"this TSA only issues tokens under policy {self.policy_oid}")
        if query["extensions"].native is not None:
            raise _Reject("unaccepted_extensions", "request extensions are not supported")
        return query

    # -- issuance ---------------------------------------------------------------------------------
    def _reserve_serial(self, gen_time: datetime, hash_name: str, imprint: bytes) -> int:
        """Commit the token's record (group-committed with concurrent requests) before the token
        is signed; a serial-number clash (astronomically rare) draws a new serial."""
        for _ in range(SERIAL_ATTEMPTS):
            serial = _new_serial()
            try:
                self._log.record(serial, gen_time, hash_name, imprint)
                return serial
            except SerialClash:
                continue
        raise RuntimeError("could not allocate a unique time-stamp serial number")

    def _grant(self, query: tsp.TimeStampReq) -> TsaReply:
        imprint = query["message_imprint"]
        # Millisecond precision: finer than our accuracy claim would be meaningless.
        now = datetime.now(timezone.utc)
        gen_time = now.replace(microsecond=now.microsecond // 1000 * 1000)
        serial = self._reserve_serial(gen_time, imprint["hash_algorithm"]["algorithm"].native,
                                      imprint["hashed_message"].native)
        nonce = query["nonce"].native
        tst_info = self._template.tst_info(imprint.dump(), serial, gen_time, nonce)
        signed_attrs = self._template.signed_attributes(tst_info, gen_time)
        # The signature covers the DER SET OF encoding of the signed attributes.
        signature = sign_der(self.keystore, self._key, signed_attrs, TOKEN_HASH)
        return TsaReply(self._template.response(tst_info, signed_attrs, signature, bool(query["cert_req"].native)),
                        "granted")


__all__ = ["ACCEPTED_HASHES", "MAX_QUERY_BYTES", "TimeStampAuthority", "TsaReply"]
