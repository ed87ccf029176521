"""The CSC wire format: JSON bodies read into plain dicts with typed getters whose refusals carry
the specification's own messages ("Missing (or invalid type) string parameter credentialID"),
base64 hashes, and the algorithm OIDs of ``hashAlgo`` / ``hashAlgorithmOID`` / ``signAlgo``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import Request

from remotesign.api.errors import OAuthError
from remotesign.core.signature_activation import Digests
from remotesign.keystore import SignatureScheme
from remotesign.keystore.base import KeyAlgorithm

VERSIONS = {"v1": "1.0.4.0", "v2": "2.0.0.2"}

HASH_OIDS = {"1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
             "2.16.840.1.101.3.4.2.3": "sha512"}
OID_OF_HASH = {v: k for k, v in HASH_OIDS.items()}
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
RSA_PSS = "1.2.840.113549.1.1.10"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
#: signAlgo OIDs that name their hash: (key kind, hash)
COMBINED = {"1.2.840.113549.1.1.5": ("rsa", "sha1"), "1.2.840.113549.1.1.11": ("rsa", "sha256"),
            "1.2.840.113549.1.1.12": ("rsa", "sha384"), "1.2.840.113549.1.1.13": ("rsa", "sha512"),
            "1.2.840.10045.4.1": ("ec", "sha1"), "1.2.840.10045.4.3.2": ("ec", "sha256"),
            "1.2.840.10045.4.3.3": ("ec", "sha384"), "1.2.840.10045.4.3.4": ("ec", "sha512")}
CURVE_OIDS = {"ec-p256": "1.2.840.10045.3.1.7", "ec-p384": "1.3.132.0.34"}
MAX_HASHES = 1000


def bad(description: str, code: str = "invalid_request", status: int = 400) -> OAuthError:
    return OAuthError(status, code, description)


def check_version(version: str) -> str:
    if version not in VERSIONS:
        raise bad(f"unknown API version {version[:20]!r} (this service speaks v1 and v2)", "invalid_request", 404)
    return version


async def body(request: Request) -> dict[str, Any]:
    """The JSON object of a request (an empty body is an empty object, as ``info`` allows)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise bad("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad("the request body is a JSON object")
    return data


def text(data: dict[str, Any], name: str, *, required: bool = True, max_length: int = 4096) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise bad(f"Missing (or invalid type) string parameter {name}")
    return value


def number(data: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        value = int(value)  # some clients send numbers as strings
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad(f"Missing (or invalid type) integer parameter {name}")
    return value


def flag(data: dict[str, Any], name: str, default: bool = False) -> bool:
    value = data.get(name, default)
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if not isinstance(value, bool):
        raise bad(f"Invalid type of boolean parameter {name}")
    return value


def strings(data: dict[str, Any], name: str, *, required: bool = True) -> list[str] | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_HASHES or \
            not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value):
        raise bad(f"Missing (or invalid type) array parameter {name}")
    return value


def decode_b64(value: str, what: str = "hash") -> bytes:
    """Base64, or the base64url some clients send (CSC v1's oauth2/authorize asks for it)."""
    cleaned = value.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"Invalid Base64 {what} string parameter") from None


def hash_name(oid: str | None, name: str = "hashAlgo") -> str:
    if oid not in HASH_OIDS:
        raise bad(f"Invalid parameter {name}")
    return HASH_OIDS[oid]


def hash_by_size(values: list[bytes]) -> str:
    """The hash of digests whose algorithm was not named (CSC v1 oauth2/authorize): by their length."""
    sizes = {len(v) for v in values}
    by_size = {32: "sha256", 48: "sha384", 64: "sha512"}
    if len(sizes) != 1 or next(iter(sizes)) not in by_size:
        raise bad("the hashes are not all SHA-256, SHA-384 or SHA-512 values")
    return by_size[sizes.pop()]


def digests(data: dict[str, Any], version: str, *, required: bool = True,
            hash_required: bool = True) -> Digests | None:
    """``hash`` + ``hashAlgo`` (v1) or ``hashes`` + ``hashAlgorithmOID`` (v2, ``hash`` accepted too)."""
    field = "hashes" if version == "v2" and "hashes" in data else "hash"
    values = strings(data, field, required=required)
    if values is None:
        return None
    decoded = [decode_b64(v) for v in values]
    oid_field = "hashAlgorithmOID" if "hashAlgorithmOID" in data else "hashAlgo"
    oid = data.get(oid_field)
    if oid is None:
        if hash_required and version == "v2":
            raise bad("Missing (or invalid type) string parameter hashAlgorithmOID")
        return Digests(hash_by_size(decoded), tuple(decoded))
    return Digests(hash_name(oid if isinstance(oid, str) else None, oid_field), tuple(decoded))


def key_algorithms(algorithm: KeyAlgorithm) -> list[str]:
    """``key.algo`` of a credential: the signAlgo OIDs its key makes."""
    if algorithm.is_rsa:
        return [RSA_ENCRYPTION, "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", RSA_PSS]
    return [EC_PUBLIC_KEY, "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"]


def signature_scheme(algorithm: KeyAlgorithm, sign_algo: str, params_b64: str | None,
                     hash_given: str | None) -> tuple[str, SignatureScheme]:
    """(hash, scheme) of a signHash call: from a combined signAlgo, or from rsaEncryption /
    id-ecPublicKey with the hash named apart, or from RSASSA-PSS parameters (MGF1 with the same
    hash, a salt as long as the hash: what every PSS signer in the field makes)."""
    if sign_algo in COMBINED:
        kind, name = COMBINED[sign_algo]
        if hash_given is not None and hash_given != name:
            raise bad("Invalid parameter hashAlgo: it differs from the hash of signAlgo")
        scheme = SignatureScheme.RSA_PKCS1V15 if kind == "rsa" else SignatureScheme.ECDSA
    elif sign_algo in (RSA_ENCRYPTION, EC_PUBLIC_KEY):
        if hash_given is None:
            raise bad("Missing (or invalid type) string parameter hashAlgo")
        kind, name = ("rsa" if sign_algo == RSA_ENCRYPTION else "ec"), hash_given
        scheme = SignatureScheme.RSA_PKCS1V15 if kind == "rsa" else SignatureScheme.ECDSA
    elif sign_algo == RSA_PSS:
        kind, scheme = "rsa", SignatureScheme.RSA_PSS
        name = _pss_hash(params_b64, hash_given)
    else:
        raise bad("Invalid parameter signAlgo")
    if (kind == "rsa") != algorithm.is_rsa:
        raise bad("Invalid parameter signAlgo: the credential's key cannot make it")
    return name, scheme


def _pss_hash(params_b64: str | None, hash_given: str | None) -> str:
    from asn1crypto import algos

    if params_b64 is None:
        if hash_given is None:
            raise bad("Missing (or invalid type) string parameter signAlgoParams")
        return hash_given
    try:
        params = algos.RSASSAPSSParams.load(decode_b64(params_b64, "signAlgoParams"), strict=True)
        name = params["hash_algorithm"]["algorithm"].native
        mgf = params["mask_gen_algorithm"]
        mgf_hash = mgf["parameters"]["algorithm"].native
        salt = params["salt_length"].native
        trailer = params["trailer_field"].native
        mgf_name = mgf["algorithm"].native
    except (ValueError, TypeError, KeyError):
        raise bad("Invalid parameter signAlgoParams") from None
    sizes = {"sha256": 32, "sha384": 48, "sha512": 64}
    if mgf_name != "mgf1" or mgf_hash != name or name not in sizes or salt != sizes[name] or \
            trailer not in (1, "trailer_field_bc"):
        raise bad("Invalid parameter signAlgoParams: this service makes RSASSA-PSS with SHA-2, MGF1 of the same "
                  "hash and a salt as long as the hash")
    if hash_given is not None and hash_given != name:
        raise bad("Invalid parameter hashAlgo: it differs from the hash of signAlgoParams")
    return str(name)
