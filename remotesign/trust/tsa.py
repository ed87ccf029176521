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

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

from asn1crypto import algos, cms, core, tsp, x509
from sqlalchemy.exc import IntegrityError

from remotesign.keystore import KeyStore
from remotesign.keystore.base import HASH_SIZES
from remotesign.storage.db import Database
from remotesign.storage.models import TimestampRecord
from remotesign.trust.ca import CertificateAuthority
from remotesign.trust.signing import sign_der, signature_algorithm

log = logging.getLogger(__name__)

# Message-imprint hash algorithms we accept, with their digest sizes. SHA-1 is accepted for old
# clients: the imprint only identifies the data, the token's own signature uses SHA-256.
ACCEPTED_HASHES: dict[str, int] = dict(HASH_SIZES)
# Hash of the token's SignerInfo (digestAlgorithm) and of signing-certificate-v2.
TOKEN_HASH = "sha256"
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


_T = TypeVar("_T", bound=core.Asn1Value)


def _frozen(value: _T) -> _T:
    """Re-load a constant structure from its DER so asn1crypto reuses the encoding instead of
    re-serialising it (and its nested certificate names) on every token: ~5 ms per token saved."""
    return type(value).load(value.dump())  # type: ignore[return-value]


def _new_serial() -> int:
    """Positive ~104-bit serial: nanosecond time (ordering for humans) + 40 random bits (uniqueness)."""
    return (time.time_ns() << 40) | secrets.randbits(40)


class TimeStampAuthority:
    """Answers TimeStampReq with TimeStampResp; stateless apart from the serial-number table."""

    def __init__(self, db: Database, ca: CertificateAuthority, keystore: KeyStore, policy_oid: str,
                 accuracy_ms: int = 500) -> None:
        self.db = db
        self.keystore = keystore
        self.policy = core.ObjectIdentifier(policy_oid)  # validates the OID now, not per request
        self.policy_oid = self.policy.dotted
        cert, key = ca.tsa_signer()
        self._key = key
        self._cert = cert.asn1()
        self._chain = [c.asn1() for c in ca.chain()]
        self._accuracy = self._accuracy_value(accuracy_ms)
        self._tsa_name = _frozen(x509.GeneralName(name="directory_name", value=self._cert.subject))
        self._sid = _frozen(cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": self._cert.issuer, "serial_number": self._cert.serial_number}))
        self._digest_alg = _frozen(algos.DigestAlgorithm({"algorithm": TOKEN_HASH}))
        self._sig_alg = _frozen(signature_algorithm(key, TOKEN_HASH))
        self._certificates = _frozen(cms.CertificateSet([self._cert, *self._chain]))
        # ESSCertIDv2: hashAlgorithm omitted because SHA-256 is its DEFAULT (DER forbids encoding it).
        self._signing_cert_attr = _frozen(cms.CMSAttribute({
            "type": "signing_certificate_v2",
            "values": [tsp.SigningCertificateV2({"certs": [{
                "cert_hash": hashlib.sha256(cert.der).digest(),
                "issuer_serial": {
                    "issuer": [x509.GeneralName(name="directory_name", value=self._cert.issuer)],
                    "serial_number": self._cert.serial_number,
                },
            }]})],
        }))
        self._content_type_attr = _frozen(cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}))

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
        """Insert the token's record; a primary-key clash (astronomically rare) draws a new serial."""
        for _ in range(SERIAL_ATTEMPTS):
            serial = _new_serial()
            try:
                with self.db.session() as s:
                    s.add(TimestampRecord(serial=format(serial, "x"), gen_time=gen_time, hash_algorithm=hash_name,
                                          message_imprint_hex=imprint.hex()))
                return serial
            except IntegrityError:
                continue
        raise RuntimeError("could not allocate a unique time-stamp serial number")

    def _grant(self, query: tsp.TimeStampReq) -> TsaReply:
        imprint = query["message_imprint"]
        # Millisecond precision: finer than our accuracy claim would be meaningless.
        now = datetime.now(timezone.utc)
        gen_time = now.replace(microsecond=now.microsecond // 1000 * 1000)
        serial = self._reserve_serial(gen_time, imprint["hash_algorithm"]["algorithm"].native,
                                      imprint["hashed_message"].native)
        info: dict = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": imprint,  # copied as received (RFC 3161 2.4.2)
            "serial_number": serial,
            "gen_time": gen_time,
            "tsa": self._tsa_name,
        }
        if self._accuracy is not None:
            info["accuracy"] = self._accuracy
        if query["nonce"].native is not None:
            info["nonce"] = query["nonce"]
        tst_info = tsp.TSTInfo(info)
        tst_der = tst_info.dump()
        signed_attrs = cms.CMSAttributes([
            self._content_type_attr,
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time(name="utc_time", value=gen_time.replace(
                microsecond=0))]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.new(TOKEN_HASH, tst_der).digest()]}),
            self._signing_cert_attr,
        ])
        # The signature covers the DER SET OF encoding (asn1crypto sorts SET OF members).
        signature = sign_der(self.keystore, self._key, signed_attrs.dump(), TOKEN_HASH)
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": self._sid,
            "digest_algorithm": self._digest_alg,
            "signed_attrs": signed_attrs,
            "signature_algorithm": self._sig_alg,
            "signature": signature,
        })
        signed_data: dict = {
            "version": "v3",
            "digest_algorithms": [self._digest_alg],
            "encap_content_info": {"content_type": "tst_info",
                                   "content": core.ParsableOctetString(tst_der, parsed=tst_info)},
            "signer_infos": [signer],
        }
        if query["cert_req"].native:
            signed_data["certificates"] = self._certificates
        token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
        der = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()
        return TsaReply(der, "granted")


__all__ = ["ACCEPTED_HASHES", "MAX_QUERY_BYTES", "TimeStampAuthority", "TsaReply"]
