"""PKCS#11 keys: private keys are generated on an HSM (or SoftHSM2) token and never leave it.

Design notes (measured with SoftHSM2 2.6.1 and python-pkcs11 0.9.5):

* **Library initialisation.** python-pkcs11 calls ``C_Initialize(NULL)``, which per the PKCS#11
  spec promises the module that it will *not* be called from several threads at once; SoftHSM2
  then disables all its internal mutexes and concurrent ``C_Sign`` calls corrupt its heap
  (``malloc(): unaligned tcache chunk detected`` / SIGSEGV within seconds). ``load_library``
  therefore re-initialises the module with ``CKF_OS_LOCKING_OK`` right after python-pkcs11 loads
  it (nothing else can have sessions yet). If that is impossible (another component loaded the
  module first, or it answers ``CKR_CANT_LOCK``) every PKCS#11 call is serialised with one lock
  instead: slower, but never unsafe.
* **Login.** Login state is per token and process: a second ``C_Login`` fails with
  ``UserAlreadyLoggedIn``, while every session of the process sees the private objects once one
  session is logged in. One dedicated session per token logs in (shared and reference-counted
  between backends of the process); the pooled working sessions are opened without a PIN.
  Logging in per operation would cost ~16x.
* **Imported keys** (a user's PKCS#12) are written with ``C_CreateObject`` as the same pair of
  token objects ``generate`` makes (random ``CKA_ID``, same handle format, same usage flags), so
  lookup, signing and deletion cannot tell them apart. Only ``CKA_ALWAYS_SENSITIVE`` /
  ``CKA_NEVER_EXTRACTABLE`` differ: the token truthfully reports that the key once existed outside.
* **Key objects** returned by python-pkcs11 are bound to the session that found them (they keep
  ``session.handle``), so the id -> object lookup is cached per pooled session.
"""

from __future__ import annotations

import contextlib
import ctypes
import hmac
import logging
import os
import queue
import secrets
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from contextlib import AbstractContextManager
from typing import Any

import pkcs11
from pkcs11 import MGF, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11exc

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from remotesign.keystore.base import (
    EncryptionPadding,
    GeneratedKey,
    ImportableKey,
    KeyAlgorithm,
    KeyBackend,
    KeyStoreError,
    SignatureScheme,
    algorithm_of,
    check_digest,
    check_scheme,
)

log = logging.getLogger(__name__)

_FORMAT_V1 = b"P11K"  # handle = marker + CKA_ID; the marker tells handles of other backends apart
_ID_LEN = 16
_ENCRYPTION_MECHANISMS: dict[EncryptionPadding, tuple[Mechanism, Any]] = {
    EncryptionPadding.PKCS1V15: (Mechanism.RSA_PKCS, None),
    EncryptionPadding.OAEP_SHA1: (Mechanism.RSA_PKCS_OAEP, (Mechanism.SHA_1, MGF.SHA1, None)),
}
_KEY_CACHE_SIZE = 1024  # cached key objects per pooled session

# DER DigestInfo prefixes (RFC 8017, section 9.2, note 1): SEQUENCE { AlgorithmIdentifier
# { hash OID, NULL }, OCTET STRING digest }. CKM_RSA_PKCS only pads, so we provide the DigestInfo.
_DIGEST_INFO_PREFIX: dict[str, bytes] = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
# CK_RSA_PKCS_PSS_PARAMS pieces: (hashAlg, mgf) per hash; sLen = digest length.
_PSS_HASH: dict[str, tuple[Mechanism, pkcs11.MGF]] = {
    "sha1": (Mechanism.SHA_1, pkcs11.MGF.SHA1),
    "sha224": (Mechanism.SHA224, pkcs11.MGF.SHA224),
    "sha256": (Mechanism.SHA256, pkcs11.MGF.SHA256),
    "sha384": (Mechanism.SHA384, pkcs11.MGF.SHA384),
    "sha512": (Mechanism.SHA512, pkcs11.MGF.SHA512),
}
_CURVES: dict[KeyAlgorithm, tuple[str, ec.EllipticCurve]] = {
    KeyAlgorithm.EC_P256: ("1.2.840.10045.3.1.7", ec.SECP256R1()),
    KeyAlgorithm.EC_P384: ("1.3.132.0.34", ec.SECP384R1()),
}


# --------------------------------------------------------------------------------------------
# Library loading with CKF_OS_LOCKING_OK
# --------------------------------------------------------------------------------------------

_CKF_OS_LOCKING_OK = 0x00000002
_CKR_OK = 0


class _InitArgs(ctypes.Structure):
    """CK_C_INITIALIZE_ARGS (PKCS#11 structures are packed to 1 byte on Windows only)."""

    if sys.platform == "win32":
        _pack_ = 1
    _fields_ = [
        ("CreateMutex", ctypes.c_void_p),
        ("DestroyMutex", ctypes.c_void_p),
        ("LockMutex", ctypes.c_void_p),
        ("UnlockMutex", ctypes.c_void_p),
        ("flags", ctypes.c_ulong),
        ("pReserved", ctypes.c_void_p),
    ]


_CK_FN = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)


class _FunctionListHead(ctypes.Structure):
    """The first members of CK_FUNCTION_LIST: version, C_Initialize, C_Finalize."""

    if sys.platform == "win32":
        _pack_ = 1
    _fields_ = [
        ("major", ctypes.c_ubyte),
        ("minor", ctypes.c_ubyte),
        ("C_Initialize", _CK_FN),
        ("C_Finalize", _CK_FN),
    ]


@dataclass
class _Library:
    lib: Any  # pkcs11._pkcs11.lib (only importable once a module is loaded)
    thread_safe: bool
    call_lock: AbstractContextManager[Any]  # nullcontext() if the module locks itself, else a shared lock


_REGISTRY_LOCK = threading.Lock()
_LIBRARIES: dict[str, _Library] = {}


def _reinitialize_with_os_locking(module: str) -> bool:
    """C_Finalize + C_Initialize(CKF_OS_LOCKING_OK) on the module python-pkcs11 just loaded.

    dlopen() of the same path returns the same instance, so this changes the state python-pkcs11
    uses. Only safe while no session exists: callers make sure we are the first user.
    """
    dll = ctypes.CDLL(module)
    get_list = dll.C_GetFunctionList
    get_list.restype = ctypes.c_ulong
    get_list.argtypes = [ctypes.POINTER(ctypes.POINTER(_FunctionListHead))]
    flist = ctypes.POINTER(_FunctionListHead)()
    if get_list(ctypes.byref(flist)) != _CKR_OK:
        return False
    funcs = flist.contents
    if funcs.C_Finalize(None) != _CKR_OK:
        return False
    args = _InitArgs(None, None, None, None, _CKF_OS_LOCKING_OK, None)
    rv = funcs.C_Initialize(ctypes.cast(ctypes.pointer(args), ctypes.c_void_p))
    if rv == _CKR_OK:
        return True
    # CKR_CANT_LOCK or similar: go back to the single-threaded contract python-pkcs11 asked for.
    rv = funcs.C_Initialize(None)
    if rv != _CKR_OK:
        raise KeyStoreError(f"PKCS#11 module {module} cannot be re-initialised (CKR 0x{rv:x})")
    return False


def _library(module: str) -> _Library:
    with _REGISTRY_LOCK:
        found = _LIBRARIES.get(module)
        if found is not None:
            return found
        already_loaded = module in getattr(pkcs11, "_loaded", {})
        try:
            lib = pkcs11.lib(module)
        except (p11exc.PKCS11Error, OSError) as exc:
            raise KeyStoreError(f"cannot load PKCS#11 module {module}: {exc!r}") from exc
        thread_safe = False
        if already_loaded:
            log.warning(
                "PKCS#11 module %s was loaded before the key backend; it was initialised without "
                "CKF_OS_LOCKING_OK, so all PKCS#11 calls are serialised", module
            )
        else:
            thread_safe = _reinitialize_with_os_locking(module)
            if not thread_safe:
                log.warning("PKCS#11 module %s refuses OS locking; PKCS#11 calls are serialised", module)
        entry = _Library(
            lib=lib,
            thread_safe=thread_safe,
            call_lock=contextlib.nullcontext() if thread_safe else threading.RLock(),
        )
        _LIBRARIES[module] = entry
        return entry


def load_library(module: str) -> Any:
    """The process-wide python-pkcs11 ``lib`` for ``module``, initialised for multithreading.

    Code that needs the same module directly (tests, pyHanko) should call this rather than
    ``pkcs11.lib``, so that the first load in the process is the thread-safe one.
    """
    return _library(module).lib


# --------------------------------------------------------------------------------------------
# Token login shared by all backends of the process
# --------------------------------------------------------------------------------------------


@dataclass
class _Login:
    session: Any | None  # the logged-in session; None if someone outside this module logged in
    pin: str
    refs: int


_LOGINS: dict[tuple[str, str], _Login] = {}


def _acquire_login(
    module: str, token: Any, user_pin: str, call_lock: AbstractContextManager[Any]
) -> tuple[str, str]:
    """One logged-in session per token and process, shared: a second C_Login would fail."""
    key = (module, str(token.serial))
    with _REGISTRY_LOCK:
        login = _LOGINS.get(key)
        if login is not None:
            if not hmac.compare_digest(login.pin.encode(), user_pin.encode()):
                raise KeyStoreError(f"token {token.label!r} is already logged in with another PIN")
            login.refs += 1
            return key
        try:
            with call_lock:
                session = token.open(rw=True, user_pin=user_pin)
        except p11exc.UserAlreadyLoggedIn:
            # Logged in by other code in this process (python-pkcs11 leaks the session it opened
            # for the failed C_Login; it is closed at C_Finalize). The login state is shared.
            session = None
        except p11exc.PinIncorrect as exc:
            raise KeyStoreError(f"wrong user PIN for token {token.label!r}") from exc
        except p11exc.PKCS11Error as exc:
            raise KeyStoreError(f"cannot log in to token {token.label!r}: {exc!r}") from exc
        _LOGINS[key] = _Login(session=session, pin=user_pin, refs=1)
        return key


def _release_login(key: tuple[str, str], call_lock: AbstractContextManager[Any]) -> None:
    with _REGISTRY_LOCK:
        login = _LOGINS.get(key)
        if login is None:
            return
        login.refs -= 1
        if login.refs > 0:
            return
        del _LOGINS[key]
        if login.session is not None:
            with call_lock, contextlib.suppress(p11exc.PKCS11Error):
                login.session.close()  # C_Logout + C_CloseSession


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------


class _PooledSession:
    """A working session (opened without PIN) and its id -> (private key, key type) cache."""

    __slots__ = ("session", "keys")

    def __init__(self, session: Any) -> None:
        self.session = session
        self.keys: OrderedDict[bytes, tuple[Any, KeyType]] = OrderedDict()


def _key_id(handle: bytes) -> bytes:
    if len(handle) != len(_FORMAT_V1) + _ID_LEN or not handle.startswith(_FORMAT_V1):
        raise KeyStoreError("not a PKCS#11 key handle")
    return handle[len(_FORMAT_V1):]


def _p11_error(action: str, exc: Exception) -> KeyStoreError:
    # python-pkcs11 exceptions mostly carry no message: the class name is the information.
    detail = str(exc)
    return KeyStoreError(f"PKCS#11 {action} failed: {type(exc).__name__}{': ' + detail if detail else ''}")


def _int_bytes(value: int) -> bytes:
    """A PKCS#11 big integer: unsigned big-endian, no leading zero bytes."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _ec_point(raw: bytes, field_bytes: int) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING per the spec; some modules return the bare point."""
    if len(raw) == 1 + 2 * field_bytes:
        return raw
    from asn1crypto.core import OctetString

    return bytes(OctetString.load(raw))


class Pkcs11KeyBackend(KeyBackend):
    """Keys on a PKCS#11 token, used through a bounded pool of sessions that stay logged in."""

    name = "pkcs11"

    def __init__(self, module: str, token_label: str, user_pin: str, pool_size: int = 4) -> None:
        if pool_size < 1:
            raise KeyStoreError("pool_size must be at least 1")
        self.module = module
        self.token_label = token_label
        self.pool_size = pool_size
        library = _library(module)
        self._call_lock = library.call_lock
        self.thread_safe = library.thread_safe
        try:
            with self._call_lock:
                self._token = library.lib.get_token(token_label=token_label)
        except (p11exc.NoSuchToken, p11exc.MultipleTokensReturned) as exc:
            raise KeyStoreError(f"PKCS#11 token {token_label!r}: {type(exc).__name__}") from exc
        except p11exc.PKCS11Error as exc:
            raise _p11_error("token lookup", exc) from exc
        self._login_key = _acquire_login(module, self._token, user_pin, self._call_lock)
        self._sessions: list[_PooledSession] = []
        self._pool: queue.LifoQueue[_PooledSession | None] = queue.LifoQueue()
        self._cache_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._closed = False
        try:
            for _ in range(pool_size):
                with self._call_lock:
                    pooled = _PooledSession(self._token.open(rw=True))
                self._sessions.append(pooled)
                self._pool.put(pooled)
        except p11exc.PKCS11Error as exc:
            self._close_sessions(self._sessions)
            _release_login(self._login_key, self._call_lock)
            raise _p11_error("open session", exc) from exc

    # -- pool ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[_PooledSession]:
        if self._closed:
            raise KeyStoreError("PKCS#11 backend is closed")
        pooled = self._pool.get()
        if pooled is None:  # close() left sentinels for waiters
            self._pool.put(None)
            raise KeyStoreError("PKCS#11 backend is closed")
        try:
            yield pooled
        finally:
            self._pool.put(pooled)

    def _close_sessions(self, sessions: list[_PooledSession]) -> None:
        for pooled in sessions:
            with self._call_lock, contextlib.suppress(p11exc.PKCS11Error):
                pooled.session.close()  # opened without PIN: no C_Logout

    # -- key lookup ---------------------------------------------------------------------------

    def _find_private(self, pooled: _PooledSession, key_id: bytes) -> tuple[Any, KeyType]:
        with self._cache_lock:
            hit = pooled.keys.get(key_id)
            if hit is not None:
                pooled.keys.move_to_end(key_id)
                return hit
        try:
            with self._call_lock:
                template = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id}
                found = list(pooled.session.get_objects(template))
                key_type = found[0].key_type if len(found) == 1 else None
        except p11exc.PKCS11Error as exc:
            raise _p11_error("key lookup", exc) from exc
        if not found:
            raise KeyStoreError(f"no private key with id {key_id.hex()} on token {self.token_label!r}")
        if key_type is None:
            raise KeyStoreError(f"{len(found)} private keys share id {key_id.hex()} on {self.token_label!r}")
        entry = (found[0], key_type)
        self._remember(pooled, key_id, entry)
        return entry

    def _remember(self, pooled: _PooledSession, key_id: bytes, entry: tuple[Any, KeyType]) -> None:
        with self._cache_lock:
            pooled.keys[key_id] = entry
            if len(pooled.keys) > _KEY_CACHE_SIZE:
                pooled.keys.popitem(last=False)

    def _forget(self, key_id: bytes) -> None:
        with self._cache_lock:
            for pooled in self._sessions:
                pooled.keys.pop(key_id, None)

    # -- KeyBackend -----------------------------------------------------------------------------

    def generate(self, algorithm: KeyAlgorithm, label: str, *, decrypt: bool = False) -> GeneratedKey:
        key_id = secrets.token_bytes(_ID_LEN)
        public_template: dict[Attribute, Any] = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: not decrypt,
            Attribute.ENCRYPT: decrypt,
            Attribute.WRAP: False,
        }
        private_template: dict[Attribute, Any] = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: not decrypt,
            Attribute.DECRYPT: decrypt,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        if algorithm.is_rsa:
            key_type, key_length = KeyType.RSA, algorithm.rsa_bits
        else:
            key_type, key_length = KeyType.EC, None
            oid, _ = _CURVES[algorithm]
            public_template[Attribute.EC_PARAMS] = pkcs11.util.ec.encode_named_curve_parameters(oid)
        with self._borrow() as pooled:
            try:
                with self._call_lock:
                    pub, priv = pooled.session.generate_keypair(
                        key_type,
                        key_length,
                        id=key_id,
                        label=label,
                        store=True,
                        capabilities=(MechanismFlag.DECRYPT | MechanismFlag.ENCRYPT) if decrypt
                        else (MechanismFlag.SIGN | MechanismFlag.VERIFY),
                        public_template=public_template,
                        private_template=private_template,
                    )
            except p11exc.PKCS11Error as exc:
                raise _p11_error(f"{algorithm.value} key generation", exc) from exc
            try:
                with self._call_lock:
                    protected = priv[Attribute.SENSITIVE] and not priv[Attribute.EXTRACTABLE]
                    public_der = self._public_der(algorithm, pub)
                if not protected:
                    raise KeyStoreError("token ignored CKA_SENSITIVE/CKA_EXTRACTABLE; key destroyed")
            except Exception as exc:
                for obj in (priv, pub):
                    with self._call_lock, contextlib.suppress(p11exc.PKCS11Error):
                        obj.destroy()
                if isinstance(exc, KeyStoreError):
                    raise
                raise _p11_error("public key export", exc) from exc
            self._remember(pooled, key_id, (priv, key_type))
        return GeneratedKey(handle=_FORMAT_V1 + key_id, public_key_der=public_der)

    def import_private_key(self, private_key: ImportableKey, label: str) -> GeneratedKey:
        """Write a user's key onto the token as a sensitive, non-extractable signing key pair.

        The objects get a fresh random ``CKA_ID`` and the handle format of generated keys, so
        ``_find_private``, ``sign_digest`` and ``delete`` treat them identically. The public key
        the token reports back must match the one given, otherwise both objects are destroyed.
        """
        algorithm = algorithm_of(private_key)
        key_id = secrets.token_bytes(_ID_LEN)
        common: dict[Attribute, Any] = {Attribute.TOKEN: True, Attribute.ID: key_id, Attribute.LABEL: label}
        public_template: dict[Attribute, Any] = {
            **common,
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        private_template: dict[Attribute, Any] = {
            **common,
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        if isinstance(private_key, rsa.RSAPrivateKey):
            key_type = KeyType.RSA
            priv_numbers = private_key.private_numbers()
            pub_numbers = priv_numbers.public_numbers
            public_part = {
                Attribute.MODULUS: _int_bytes(pub_numbers.n),
                Attribute.PUBLIC_EXPONENT: _int_bytes(pub_numbers.e),
            }
            public_template.update(public_part)
            private_template.update({
                **public_part,
                Attribute.PRIVATE_EXPONENT: _int_bytes(priv_numbers.d),
                Attribute.PRIME_1: _int_bytes(priv_numbers.p),
                Attribute.PRIME_2: _int_bytes(priv_numbers.q),
                Attribute.EXPONENT_1: _int_bytes(priv_numbers.dmp1),
                Attribute.EXPONENT_2: _int_bytes(priv_numbers.dmq1),
                Attribute.COEFFICIENT: _int_bytes(priv_numbers.iqmp),
            })
        else:
            key_type = KeyType.EC
            oid, curve = _CURVES[algorithm]
            field_bytes = (curve.key_size + 7) // 8
            ec_params = pkcs11.util.ec.encode_named_curve_parameters(oid)
            point = private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            from asn1crypto.core import OctetString

            public_template.update({
                Attribute.EC_PARAMS: ec_params,
                Attribute.EC_POINT: OctetString(point).dump(),  # a DER OCTET STRING per the spec
            })
            private_template.update({
                Attribute.EC_PARAMS: ec_params,
                Attribute.VALUE: private_key.private_numbers().private_value.to_bytes(field_bytes, "big"),
            })
        public_template[Attribute.KEY_TYPE] = key_type
        private_template[Attribute.KEY_TYPE] = key_type
        expected_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

        with self._borrow() as pooled:
            created: list[Any] = []
            try:
                with self._call_lock:
                    pub = pooled.session.create_object(public_template)
                    created.append(pub)
                    priv = pooled.session.create_object(private_template)
                    created.append(priv)
                    protected = priv[Attribute.SENSITIVE] and not priv[Attribute.EXTRACTABLE]
                    public_der = self._public_der(algorithm, pub)
                if not protected:
                    raise KeyStoreError("token ignored CKA_SENSITIVE/CKA_EXTRACTABLE; imported key destroyed")
                if public_der != expected_der:
                    raise KeyStoreError("token reports another public key than the imported one; key destroyed")
            except Exception as exc:
                for obj in reversed(created):
                    with self._call_lock, contextlib.suppress(p11exc.PKCS11Error):
                        obj.destroy()
                if isinstance(exc, KeyStoreError):
                    raise
                raise _p11_error(f"{algorithm.value} key import", exc) from exc
            self._remember(pooled, key_id, (priv, key_type))
        return GeneratedKey(handle=_FORMAT_V1 + key_id, public_key_der=public_der)

    @staticmethod
    def _public_der(algorithm: KeyAlgorithm, pub: Any) -> bytes:
        """SubjectPublicKeyInfo built from the token's public attributes (cryptography checks them)."""
        public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
        if algorithm.is_rsa:
            n = int.from_bytes(pub[Attribute.MODULUS], "big")
            e = int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big")
            public = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            _, curve = _CURVES[algorithm]
            point = _ec_point(pub[Attribute.EC_POINT], (curve.key_size + 7) // 8)
            public = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        return public.public_bytes(serialization.Encoding.DER, spki)

    def sign_digest(
        self,
        handle: bytes,
        algorithm: KeyAlgorithm,
        digest: bytes,
        hash_name: str,
        scheme: SignatureScheme,
    ) -> bytes:
        check_digest(digest, hash_name)
        check_scheme(algorithm, scheme)
        key_id = _key_id(handle)
        mechanism: Mechanism
        param: tuple[Mechanism, pkcs11.MGF, int] | None = None
        if scheme is SignatureScheme.RSA_PKCS1V15:
            mechanism, data = Mechanism.RSA_PKCS, _DIGEST_INFO_PREFIX[hash_name] + digest
        elif scheme is SignatureScheme.RSA_PSS:
            hash_mech, mgf = _PSS_HASH[hash_name]
            mechanism, data, param = Mechanism.RSA_PKCS_PSS, digest, (hash_mech, mgf, len(digest))
        elif scheme is SignatureScheme.ECDSA:
            mechanism, data = Mechanism.ECDSA, digest  # SoftHSM2 (Debian) has no CKM_ECDSA_SHA*
        else:  # pragma: no cover - enum is exhaustive
            raise KeyStoreError(f"unsupported signature scheme {scheme!r}")
        expected_type = KeyType.RSA if algorithm.is_rsa else KeyType.EC

        with self._borrow() as pooled:
            for attempt in (1, 2):
                key, key_type = self._find_private(pooled, key_id)
                if key_type != expected_type:
                    raise KeyStoreError(f"key {key_id.hex()} is {key_type.name}, not {algorithm.value}")
                try:
                    with self._call_lock:
                        raw = key.sign(data, mechanism=mechanism, mechanism_param=param)
                    break
                except (p11exc.ObjectHandleInvalid, p11exc.KeyHandleInvalid) as exc:
                    # Destroyed behind our back (delete() elsewhere, another process): look it up again.
                    self._forget(key_id)
                    if attempt == 2:
                        raise _p11_error("sign", exc) from exc
                except p11exc.PKCS11Error as exc:
                    raise _p11_error(f"{scheme.value} sign", exc) from exc

        if scheme is SignatureScheme.ECDSA:
            half = len(raw) // 2
            return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
        return bytes(raw)

    def decrypt(self, handle: bytes, algorithm: KeyAlgorithm, ciphertext: bytes,
                padding_kind: EncryptionPadding = EncryptionPadding.PKCS1V15) -> bytes:
        if not algorithm.is_rsa:
            raise KeyStoreError("decryption needs an RSA key")
        mechanism, param = _ENCRYPTION_MECHANISMS[padding_kind]
        key_id = _key_id(handle)
        with self._borrow() as pooled:
            key, _ = self._find_private(pooled, key_id)
            try:
                with self._call_lock:
                    return bytes(key.decrypt(ciphertext, mechanism=mechanism, mechanism_param=param))
            except p11exc.PKCS11Error as exc:
                raise _p11_error("decrypt", exc) from exc

    def delete(self, handle: bytes) -> None:
        """Destroy the private and public key objects of ``handle``; unknown handles are a no-op."""
        key_id = _key_id(handle)
        self._forget(key_id)
        with self._borrow() as pooled:
            try:
                with self._call_lock:
                    objects = [
                        obj
                        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
                        for obj in pooled.session.get_objects({Attribute.CLASS: cls, Attribute.ID: key_id})
                    ]
                    for obj in objects:
                        obj.destroy()
            except p11exc.PKCS11Error as exc:
                raise _p11_error("key destruction", exc) from exc
        self._forget(key_id)  # a concurrent sign may have cached it again in the meantime

    def close(self) -> None:
        """Wait for borrowed sessions to come back, close them and release the token login."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        returned: list[_PooledSession] = []
        while len(returned) < len(self._sessions):
            pooled = self._pool.get()
            if pooled is not None:
                returned.append(pooled)
        for _ in range(len(self._sessions)):
            self._pool.put(None)  # wakes threads still waiting in _borrow()
        self._close_sessions(returned)
        _release_login(self._login_key, self._call_lock)

    def __repr__(self) -> str:
        module = os.path.basename(self.module)
        return f"<Pkcs11KeyBackend module={module} token={self.token_label!r} pool={self.pool_size}>"
