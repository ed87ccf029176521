"""Sign DER structures (TBSCertificate, TBSCertList, ResponseData, CMS signed attributes) with a
key from the key store. asn1crypto builds the structures; the key store only ever sees a digest."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from asn1crypto import algos, core, x509

from remotesign.keystore import KeyStore, StoredKey


def signature_algorithm(key: StoredKey, hash_name: str | None = None) -> algos.SignedDigestAlgorithm:
    """The X.509 AlgorithmIdentifier matching ``key`` (RSA gets the NULL parameters RFC 4055 asks for)."""
    hash_name = hash_name or key.algorithm.default_hash
    if key.algorithm.is_rsa:
        return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_rsa", "parameters": core.Null()})
    return algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_ecdsa"})


def sign_der(keystore: KeyStore, key: StoredKey, tbs_der: bytes, hash_name: str | None = None) -> bytes:
    """Signature value over ``tbs_der``: hashed here, signed inside the key store."""
    hash_name = hash_name or key.algorithm.default_hash
    return keystore.sign_digest(key, hashlib.new(hash_name, tbs_der).digest(), hash_name)


def asn1_time(value: datetime) -> x509.Time:
    """UTCTime up to 2049, GeneralizedTime after, as RFC 5280 requires."""
    value = value.astimezone(timezone.utc).replace(microsecond=0)
    if value.year < 2050:
        return x509.Time({"utc_time": value})
    return x509.Time({"general_time": value})


def key_identifier(public_key_info_der: bytes) -> bytes:
    """RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING."""
    from asn1crypto import keys

    info = keys.PublicKeyInfo.load(public_key_info_der)
    return hashlib.sha1(info["public_key"].contents[1:]).digest()
