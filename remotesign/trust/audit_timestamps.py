"""Time-stamps for audit checkpoints: ask the built-in TSA in-process, and check a token later.

The checkpoint's imprint is its chain hash (SHA-256). Checking a token is done per token with
asn1crypto + cryptography (imprint, content-type and message-digest attributes, the signature with
the built-in TSA certificate's key, genTime within that certificate's validity): a year of
checkpoints must verify in seconds. The TSA certificate's own path to the built-in root CA
(timeStamping EKU, key usage) is validated once per run with pyhanko-certvalidator.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import datetime, timezone
from functools import cached_property

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from remotesign.storage.audit_verify import TokenCheck
from remotesign.trust.tsa import TimeStampAuthority

IMPRINT_HASH = "sha256"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384,
                                                   "sha512": hashes.SHA512}


class TimestampRefused(RuntimeError):
    """The TSA did not grant a token."""


def request_token(tsa: TimeStampAuthority, imprint: bytes) -> bytes:
    """A DER TimeStampToken over the SHA-256 ``imprint``, without the TSA's certificates (about
    1.2 KB instead of 4.6 KB per checkpoint; the verifier has the TSA certificate, and
    ``GET /pki/tsa.pem`` gives it to anyone else, e.g. ``openssl ts -verify -untrusted``)."""
    nonce = secrets.randbits(63)
    query = tsp.TimeStampReq({"version": "v1", "nonce": nonce, "cert_req": False,
                              "message_imprint": {"hash_algorithm": {"algorithm": IMPRINT_HASH},
                                                  "hashed_message": imprint}})
    reply = tsa.respond(query.dump())
    if reply.status != "granted":
        raise TimestampRefused(f"the TSA answered {reply.status}")
    token = tsp.TimeStampResp.load(reply.der)["time_stamp_token"]
    if token["content"]["encap_content_info"]["content"].parsed["nonce"].native != nonce:
        raise TimestampRefused("the TSA answered another request (nonce differs)")
    return bytes(token.dump())


class TokenVerifier:
    """``(token, imprint) -> TokenCheck`` against the built-in TSA certificate and CA chain."""

    def __init__(self, tsa_cert_der: bytes, chain_ders: list[bytes]) -> None:
        self.tsa_cert_der = tsa_cert_der
        self.chain_ders = chain_ders  # issuing CA first, root last (CertificateAuthority.chain())
        self._cert = x509.load_der_x509_certificate(tsa_cert_der)
        asn1 = asn1_x509.Certificate.load(tsa_cert_der)
        self._issuer_serial = (asn1.issuer.dump(), asn1.serial_number)

    @cached_property
    def chain_problem(self) -> str | None:
        """Why the TSA certificate is not a valid time-stamping certificate of the built-in CA."""
        *intermediates, root = (asn1_x509.Certificate.load(d) for d in self.chain_ders)
        context = ValidationContext(trust_roots=[root], other_certs=intermediates, allow_fetching=False,
                                    revocation_mode="soft-fail")
        validator = CertificateValidator(asn1_x509.Certificate.load(self.tsa_cert_der),
                                         validation_context=context)
        try:
            asyncio.run(validator.async_validate_usage({"digital_signature"}, {"time_stamping"}))
        except Exception as exc:  # noqa: BLE001 - certvalidator raises several path/usage errors
            return f"the TSA certificate does not chain to the built-in root CA: {exc}"
        return None

    def __call__(self, token_der: bytes, imprint: bytes) -> TokenCheck:
        try:
            return self._check(token_der, imprint)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return TokenCheck(f"not a readable time-stamp token ({exc.__class__.__name__})")

    def _check(self, token_der: bytes, imprint: bytes) -> TokenCheck:
        info = cms.ContentInfo.load(token_der, strict=True)
        if info["content_type"].native != "signed_data":
            return TokenCheck("not a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            return TokenCheck("the SignedData does not hold a TSTInfo")
        tst = encap["content"].parsed
        mi = tst["message_imprint"]
        got = mi["hashed_message"].native
        if mi["hash_algorithm"]["algorithm"].native != IMPRINT_HASH or got != imprint:
            return TokenCheck(f"its imprint is {got.hex()}, the checkpoint hash is {imprint.hex()}")
        gen_time: datetime = tst["gen_time"].native
        if len(signed["signer_infos"]) != 1:
            return TokenCheck("the token must have exactly one signer")
        si = signed["signer_infos"][0]
        sid = si["sid"]
        if sid.name != "issuer_and_serial_number" or (
                sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native) != self._issuer_serial:
            return TokenCheck("it was not signed by the built-in TSA")
        problem = self._signature_problem(si, encap["content"].contents)
        if problem:
            return TokenCheck(problem, gen_time)
        if not self._cert.not_valid_before_utc <= gen_time.astimezone(timezone.utc) <= self._cert.not_valid_after_utc:
            return TokenCheck("its genTime is outside the TSA certificate's validity", gen_time)
        if self.chain_problem:
            return TokenCheck(self.chain_problem, gen_time)
        return TokenCheck(None, gen_time)

    def _signature_problem(self, si: cms.SignerInfo, tst_der: bytes) -> str | None:
        hash_name = si["digest_algorithm"]["algorithm"].native
        if hash_name not in _HASHES:
            return f"unsupported digest algorithm {hash_name}"
        attrs = {a["type"].native: a["values"] for a in si["signed_attrs"]}
        if [v.native for v in attrs.get("content_type", [])] != ["tst_info"]:
            return "the content-type attribute is not TSTInfo"
        if [v.native for v in attrs.get("message_digest", [])] != [hashlib.new(hash_name, tst_der).digest()]:
            return "the message-digest attribute does not match the TSTInfo (altered token)"
        signed_bytes = si["signed_attrs"].untag().dump()
        signature = si["signature"].native
        key = self._cert.public_key()
        algo = si["signature_algorithm"].signature_algo
        try:
            if isinstance(key, rsa.RSAPublicKey) and algo == "rsassa_pkcs1v15":
                key.verify(signature, signed_bytes, padding.PKCS1v15(), _HASHES[hash_name]())
            elif isinstance(key, ec.EllipticCurvePublicKey) and algo == "ecdsa":
                key.verify(signature, signed_bytes, ec.ECDSA(_HASHES[hash_name]()))
            else:
                return f"unexpected signature algorithm {algo}"
        except InvalidSignature:
            return "the TSA signature is invalid"
        return None
