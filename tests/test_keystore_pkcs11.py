"""PKCS#11 backend against a throw-away SoftHSM2 token.

SoftHSM reads SOFTHSM2_CONF at C_Initialize and python-pkcs11 keeps one ``lib`` per module path
for the whole process, so the token, the config and the backend are session-scoped.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import load_der_public_key

from remotesign.keystore.base import GeneratedKey, KeyAlgorithm, KeyStoreError, SignatureScheme

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "T"
PIN = "1234"

pytestmark = [pytest.mark.hsm,
              pytest.mark.skipif(not os.path.exists(MODULE), reason=f"SoftHSM2 module {MODULE} not installed")]

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh token in tmp; SOFTHSM2_CONF is set before anything loads the module."""
    if shutil.which("softhsm2-util") is None:
        pytest.skip("softhsm2-util not installed")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    return conf


@pytest.fixture(scope="session")
def backend(softhsm_token: Path) -> Iterator[object]:
    from remotesign.keystore.pkcs11 import Pkcs11KeyBackend

    b = Pkcs11KeyBackend(MODULE, TOKEN, PIN, pool_size=4)
    yield b
    b.close()


@pytest.fixture(scope="session")
def keys(backend) -> dict[KeyAlgorithm, GeneratedKey]:
    """One key per algorithm, shared by the tests (RSA-3072 generation takes ~1 s on SoftHSM)."""
    return {
        alg: backend.generate(alg, f"test-{alg.value}")
        for alg in (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384)
    }


@pytest.fixture(scope="session")
def inspect_session(backend):
    """A separate session (same process, so it shares the login) for reading token attributes."""
    from remotesign.keystore.pkcs11 import load_library

    token = load_library(MODULE).get_token(token_label=TOKEN)
    session = token.open(rw=True)
    yield session
    session.close()


def _verify(key: GeneratedKey, signature: bytes, digest: bytes, hash_name: str, scheme: SignatureScheme) -> None:
    public = load_der_public_key(key.public_key_der)
    prehashed = utils.Prehashed(_HASHES[hash_name]())
    if scheme is SignatureScheme.ECDSA:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, digest, ec.ECDSA(prehashed))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        pad = (
            padding.PSS(mgf=padding.MGF1(_HASHES[hash_name]()), salt_length=len(digest))
            if scheme is SignatureScheme.RSA_PSS
            else padding.PKCS1v15()
        )
        public.verify(signature, digest, pad, prehashed)


SIGN_CASES = [
    (KeyAlgorithm.RSA_2048, "sha256", SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.RSA_2048, "sha256", SignatureScheme.RSA_PSS),
    (KeyAlgorithm.RSA_2048, "sha512", SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.RSA_2048, "sha384", SignatureScheme.RSA_PSS),
    (KeyAlgorithm.RSA_3072, "sha256", SignatureScheme.RSA_PKCS1V15),
    (KeyAlgorithm.RSA_3072, "sha256", SignatureScheme.RSA_PSS),
    (KeyAlgorithm.EC_P256, "sha256", SignatureScheme.ECDSA),
    (KeyAlgorithm.EC_P384, "sha256", SignatureScheme.ECDSA),
    (KeyAlgorithm.EC_P384, "sha384", SignatureScheme.ECDSA),
]


@pytest.mark.parametrize(("alg", "hash_name", "scheme"), SIGN_CASES, ids=lambda v: getattr(v, "value", v))
def test_sign_verifies_with_cryptography(backend, keys, alg, hash_name, scheme) -> None:
    key = keys[alg]
    public = load_der_public_key(key.public_key_der)
    if alg.is_rsa:
        assert public.key_size == alg.rsa_bits
    else:
        assert public.curve.name == alg.curve_name
    digest = hashlib.new(hash_name, b"document " + alg.value.encode()).digest()
    signature = backend.sign_digest(key.handle, alg, digest, hash_name, scheme)
    _verify(key, signature, digest, hash_name, scheme)


def test_handle_is_marker_plus_random_id(keys) -> None:
    handles = [k.handle for k in keys.values()]
    assert all(h.startswith(b"P11K") and len(h) == 4 + 16 for h in handles)
    assert len(set(handles)) == len(handles)


@pytest.mark.parametrize("alg", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256], ids=lambda a: a.value)
def test_private_key_is_sensitive_token_object(inspect_session, keys, alg) -> None:
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import AttributeSensitive

    key_id = keys[alg].handle[4:]
    (priv,) = inspect_session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id})
    assert priv[Attribute.TOKEN] is True
    assert priv[Attribute.PRIVATE] is True
    assert priv[Attribute.SENSITIVE] is True
    assert priv[Attribute.EXTRACTABLE] is False
    assert priv[Attribute.ALWAYS_SENSITIVE] is True
    assert priv[Attribute.NEVER_EXTRACTABLE] is True
    assert priv[Attribute.SIGN] is True
    assert priv[Attribute.DECRYPT] is False
    assert priv[Attribute.LABEL] == f"test-{alg.value}"
    secret = Attribute.PRIVATE_EXPONENT if alg.is_rsa else Attribute.VALUE
    with pytest.raises(AttributeSensitive):
        priv[secret]
    (pub,) = inspect_session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id})
    assert pub[Attribute.TOKEN] is True


@pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="pkcs11-tool (opensc) not installed")
def test_pkcs11_tool_sees_non_extractable_key(softhsm_token, keys) -> None:
    """A second process reading the token store agrees: the key is sensitive and never extractable."""
    key_id = keys[KeyAlgorithm.EC_P256].handle[4:].hex()
    out = subprocess.run(
        ["pkcs11-tool", "--module", MODULE, "--token-label", TOKEN, "--login", "--pin", PIN,
         "--list-objects", "--type", "privkey", "--id", key_id],
        check=True, capture_output=True, text=True, env=os.environ.copy(),
    ).stdout
    assert "test-ec-p256" in out
    access = next(line for line in out.splitlines() if "Access:" in line)
    assert "sensitive" in access and "never extractable" in access


@pytest.mark.parametrize(
    ("alg", "digest", "hash_name", "scheme"),
    [
        (KeyAlgorithm.RSA_2048, b"\0" * 31, "sha256", SignatureScheme.RSA_PKCS1V15),
        (KeyAlgorithm.RSA_2048, b"\0" * 32, "sha384", SignatureScheme.RSA_PSS),
        (KeyAlgorithm.EC_P256, b"\0" * 33, "sha256", SignatureScheme.ECDSA),
        (KeyAlgorithm.EC_P256, b"\0" * 32, "md5", SignatureScheme.ECDSA),
    ],
)
def test_bad_digest_raises(backend, keys, alg, digest, hash_name, scheme) -> None:
    with pytest.raises(KeyStoreError):
        backend.sign_digest(keys[alg].handle, alg, digest, hash_name, scheme)


def test_unknown_and_malformed_handles_raise(backend) -> None:
    digest = hashlib.sha256(b"x").digest()
    unknown = b"P11K" + secrets.token_bytes(16)
    with pytest.raises(KeyStoreError, match="no private key"):
        backend.sign_digest(unknown, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
    software_handle = b"RSK1" + secrets.token_bytes(40)
    with pytest.raises(KeyStoreError, match="not a PKCS#11 key handle"):
        backend.sign_digest(software_handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)


def test_scheme_and_algorithm_mismatch_raise(backend, keys) -> None:
    digest = hashlib.sha256(b"x").digest()
    rsa_key, ec_key = keys[KeyAlgorithm.RSA_2048], keys[KeyAlgorithm.EC_P256]
    with pytest.raises(KeyStoreError):  # ECDSA needs an EC key (checked before touching the token)
        backend.sign_digest(rsa_key.handle, KeyAlgorithm.RSA_2048, digest, "sha256", SignatureScheme.ECDSA)
    with pytest.raises(KeyStoreError, match="is EC"):  # an EC key used as if it were RSA
        backend.sign_digest(ec_key.handle, KeyAlgorithm.RSA_2048, digest, "sha256", SignatureScheme.RSA_PKCS1V15)


def test_concurrent_signing_8_threads(backend, keys) -> None:
    """8 threads x 50 signatures over a 4-session pool; needs the CKF_OS_LOCKING_OK re-init."""
    assert backend.thread_safe
    algs = [KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P384, KeyAlgorithm.EC_P256]
    results: list[tuple[KeyAlgorithm, bytes, bytes, SignatureScheme]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        alg = algs[n % len(algs)]
        if not alg.is_rsa:
            scheme = SignatureScheme.ECDSA
        else:
            scheme = SignatureScheme.RSA_PSS if n % 2 else SignatureScheme.RSA_PKCS1V15
        try:
            for i in range(50):
                digest = hashlib.sha256(f"{n}-{i}".encode()).digest()
                sig = backend.sign_digest(keys[alg].handle, alg, digest, "sha256", scheme)
                with lock:
                    results.append((alg, digest, sig, scheme))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 400
    for alg, digest, sig, scheme in results:
        _verify(keys[alg], sig, digest, "sha256", scheme)


def test_pool_reuses_logged_in_sessions(backend, keys) -> None:
    """Many more borrows than sessions; still exactly one login for the token in this process."""
    from remotesign.keystore import pkcs11 as p11

    assert backend.pool_size == 4
    assert backend._pool.qsize() == 4
    key = keys[KeyAlgorithm.EC_P256]
    for i in range(200):
        digest = hashlib.sha256(str(i).encode()).digest()
        sig = backend.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
        _verify(key, sig, digest, "sha256", SignatureScheme.ECDSA)
    assert backend._pool.qsize() == 4
    logins = [v for k, v in p11._LOGINS.items() if k[0] == MODULE]
    assert len(logins) == 1 and logins[0].refs == 1


def test_second_backend_shares_login_and_closing_it_keeps_the_first(backend, keys) -> None:
    """A second C_Login would raise UserAlreadyLoggedIn; backends share a reference-counted login."""
    from remotesign.keystore.pkcs11 import Pkcs11KeyBackend

    other = Pkcs11KeyBackend(MODULE, TOKEN, PIN, pool_size=2)
    key = keys[KeyAlgorithm.EC_P256]
    digest = hashlib.sha256(b"shared").digest()
    sig = other.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
    _verify(key, sig, digest, "sha256", SignatureScheme.ECDSA)
    with pytest.raises(KeyStoreError, match="another PIN"):
        Pkcs11KeyBackend(MODULE, TOKEN, "9999", pool_size=1)
    other.close()
    with pytest.raises(KeyStoreError, match="closed"):
        other.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
    # the first backend is still logged in
    sig = backend.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
    _verify(key, sig, digest, "sha256", SignatureScheme.ECDSA)


def test_delete_destroys_the_pair(backend, inspect_session) -> None:
    from pkcs11 import Attribute

    key = backend.generate(KeyAlgorithm.EC_P256, "to-delete")
    digest = hashlib.sha256(b"x").digest()
    backend.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)  # cache it
    backend.delete(key.handle)
    assert list(inspect_session.get_objects({Attribute.ID: key.handle[4:]})) == []
    with pytest.raises(KeyStoreError, match="no private key"):
        backend.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
    backend.delete(key.handle)  # idempotent


def test_key_destroyed_elsewhere_is_reported_not_crashing(backend, inspect_session) -> None:
    """A cached object whose token object vanished is looked up again, then reported unknown."""
    from pkcs11 import Attribute

    key = backend.generate(KeyAlgorithm.EC_P256, "vanishing")
    digest = hashlib.sha256(b"x").digest()
    for _ in range(8):  # populate the caches of all pooled sessions
        backend.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
    for obj in list(inspect_session.get_objects({Attribute.ID: key.handle[4:]})):
        obj.destroy()
    with pytest.raises(KeyStoreError, match="no private key"):
        backend.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)


_FALLBACK_SCRIPT = """
import hashlib, threading, sys
import pkcs11
pkcs11.lib(sys.argv[1])  # someone else loads the module first: C_Initialize(NULL), no OS locking
from remotesign.keystore.pkcs11 import Pkcs11KeyBackend
from remotesign.keystore.base import KeyAlgorithm, SignatureScheme
b = Pkcs11KeyBackend(sys.argv[1], sys.argv[2], sys.argv[3], pool_size=4)
assert not b.thread_safe
key = b.generate(KeyAlgorithm.EC_P256, "fallback")
errors = []
def work():
    try:
        for i in range(300):
            digest = hashlib.sha256(bytes([i % 256])).digest()
            b.sign_digest(key.handle, KeyAlgorithm.EC_P256, digest, "sha256", SignatureScheme.ECDSA)
    except BaseException as exc:
        errors.append(exc)
threads = [threading.Thread(target=work) for _ in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
b.delete(key.handle)
b.close()
print("OK" if not errors else errors)
"""


def test_module_loaded_elsewhere_falls_back_to_serialised_calls(softhsm_token) -> None:
    """Without CKF_OS_LOCKING_OK SoftHSM crashes under concurrent calls; the backend must then serialise.

    Runs in a child process: it needs a process where the module was loaded before the backend.
    """
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-c", _FALLBACK_SCRIPT, MODULE, TOKEN, PIN],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK", proc.stdout + proc.stderr


def test_no_private_key_export(backend) -> None:
    assert not [name for name in dir(backend) if "export" in name.lower() or "private_bytes" in name.lower()]


def test_digest_info_prefixes_match_asn1crypto() -> None:
    from asn1crypto import algos, core

    from remotesign.keystore.pkcs11 import _DIGEST_INFO_PREFIX

    for name, prefix in _DIGEST_INFO_PREFIX.items():
        digest = hashlib.new(name, b"").digest()
        info = algos.DigestInfo(
            {"digest_algorithm": {"algorithm": name, "parameters": core.Null()}, "digest": digest}
        ).dump()
        assert info == prefix + digest, name
