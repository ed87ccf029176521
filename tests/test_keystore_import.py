"""Importing a user's own private key (from a PKCS#12) into the key store, on both backends.

The same checks run against the software backend (in this process) and against SoftHSM2. The
SoftHSM2 part runs in a child process: SoftHSM reads ``SOFTHSM2_CONF`` once, at the first
``C_Initialize`` of the process, so a second token directory in the pytest process would either
be invisible to us or hide ``test_keystore_pkcs11.py``'s token from it, depending on test order.
The child reports one result per check; each becomes its own test here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from sqlalchemy import func, select

from remotesign.storage.audit import AuditLog
from remotesign.keystore import EncryptionPadding, KeyAlgorithm, KeyStore, KeyStoreError, SignatureScheme
from remotesign.keystore.base import GeneratedKey, KeyBackend, algorithm_of
from remotesign.keystore.software import SoftwareKeyBackend
from remotesign.storage.db import Database
from remotesign.storage.migrate import upgrade_to_head
from remotesign.storage.models import AuditEvent, KeyRecord

ROOT = Path(__file__).resolve().parents[1]

# -- keys ----------------------------------------------------------------------------------------

ACCEPTED: dict[str, tuple[Callable[[], PrivateKeyTypes], KeyAlgorithm]] = {
    "rsa-2048": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), KeyAlgorithm.RSA_2048),
    "ec-p256": (lambda: ec.generate_private_key(ec.SECP256R1()), KeyAlgorithm.EC_P256),
    "ec-p384": (lambda: ec.generate_private_key(ec.SECP384R1()), KeyAlgorithm.EC_P384),
}
REFUSED: dict[str, tuple[Callable[[], PrivateKeyTypes], str]] = {
    "rsa-1024": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA-1024"),
    "ed25519": (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
    "ec-p521": (lambda: ec.generate_private_key(ec.SECP521R1()), "secp521r1"),
}


def _spki(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pkcs8(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _new_store(tmp: Path, backend: KeyBackend) -> KeyStore:
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    upgrade_to_head(url)
    db = Database(url)
    return KeyStore(db, backend, AuditLog(db))


# -- checks shared by both backends (plain asserts; the SoftHSM child runs them too) -------------


def check_import_signs(store: KeyStore, case: str) -> None:
    """Import, then sign a SHA-256 digest through the store; the original public key verifies it."""
    make, algorithm = ACCEPTED[case]
    original = make()
    assert isinstance(original, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    stored = store.import_key(original, f"imported-{case}", tenant_id=None)
    assert stored.algorithm is algorithm
    assert stored.backend == store.backend.name
    assert stored.public_key_der == _spki(original)
    # through a fresh store: the handle must come back from the database, not from a cache
    fresh = KeyStore(store.db, store.backend)
    again = fresh.get(stored.id, tenant_id=None)
    assert again.public_key_der == _spki(original)

    public = original.public_key()
    schemes = [SignatureScheme.RSA_PKCS1V15, SignatureScheme.RSA_PSS] if algorithm.is_rsa else [SignatureScheme.ECDSA]
    for scheme in schemes:
        digest = hashlib.sha256(f"document for {case} {scheme.value}".encode()).digest()
        signature = fresh.sign_digest(again, digest, "sha256", scheme)
        prehashed = utils.Prehashed(hashes.SHA256())
        if isinstance(public, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                if scheme is SignatureScheme.RSA_PSS else padding.PKCS1v15()
            )
            public.verify(signature, digest, pad, prehashed)
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(signature, digest, ec.ECDSA(prehashed))


def check_refused(store: KeyStore, case: str) -> None:
    """Keys the service does not sign with are refused before anything is stored or audited."""
    make, words = REFUSED[case]
    key = make()
    with store.db.session() as s:
        rows_before = s.scalar(select(func.count()).select_from(KeyRecord))
        events_before = s.scalar(select(func.count()).select_from(AuditEvent))
    try:
        store.import_key(key, f"refused-{case}", tenant_id=None)
    except KeyStoreError as exc:
        assert words in str(exc) and "not accepted" in str(exc), str(exc)
    else:
        raise AssertionError(f"{case} key was imported")
    try:  # the backend refuses on its own too, for callers that bypass the store
        store.backend.import_private_key(key, "direct")  # type: ignore[arg-type]
    except KeyStoreError:
        pass
    else:
        raise AssertionError(f"backend imported a {case} key")
    with store.db.session() as s:
        assert s.scalar(select(func.count()).select_from(KeyRecord)) == rows_before
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == events_before


def check_audit_has_no_key_material(store: KeyStore) -> None:
    original = ec.generate_private_key(ec.SECP256R1())
    stored = store.import_key(original, "audited", tenant_id=None)
    assert store.audit is not None
    (event,) = [e for e in store.audit.events(limit=1000) if e.subject == stored.id]
    assert event.event == "key.imported"
    assert json.loads(event.details) == {"algorithm": "ec-p256", "backend": store.backend.name, "label": "audited"}
    scalar = original.private_numbers().private_value.to_bytes(32, "big")
    for text in (event.details, event.subject, event.actor):
        assert scalar.hex() not in text.lower()


# -- software backend ----------------------------------------------------------------------------

MASTER = b"m" * 32


@pytest.fixture()
def software_store(tmp_path: Path) -> Iterator[KeyStore]:
    store = _new_store(tmp_path, SoftwareKeyBackend(MASTER))
    yield store
    store.db.dispose()


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_software_import_signs_and_verifies(software_store: KeyStore, case: str) -> None:
    check_import_signs(software_store, case)


@pytest.mark.parametrize("case", list(REFUSED))
def test_software_refuses_unsupported_keys(software_store: KeyStore, case: str) -> None:
    check_refused(software_store, case)


def test_software_audit_event(software_store: KeyStore) -> None:
    check_audit_has_no_key_material(software_store)


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_software_handle_is_sealed(software_store: KeyStore, case: str) -> None:
    """The stored handle is the AES-GCM sealed form: no clear PKCS#8, PKCS#1/SEC1 DER or secret integer."""
    original = ACCEPTED[case][0]()
    stored = software_store.import_key(original, "sealed", tenant_id=None)
    with software_store.db.session() as s:
        handle = s.get(KeyRecord, stored.id).handle
    assert handle.startswith(b"RSK1")
    traditional = original.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption())
    numbers = original.private_numbers()
    secret = numbers.d if isinstance(numbers, rsa.RSAPrivateNumbers) else numbers.private_value
    secret_bytes = secret.to_bytes((secret.bit_length() + 7) // 8, "big")
    for clear in (_pkcs8(original), traditional, secret_bytes):
        assert clear not in handle
    # a new backend with the same master key (no cache) signs with it; another master key cannot
    digest = hashlib.sha256(b"x").digest()
    algorithm = ACCEPTED[case][1]
    scheme = SignatureScheme.RSA_PKCS1V15 if algorithm.is_rsa else SignatureScheme.ECDSA
    SoftwareKeyBackend(MASTER).sign_digest(handle, algorithm, digest, "sha256", scheme)
    with pytest.raises(KeyStoreError, match="master key"):
        SoftwareKeyBackend(b"o" * 32).sign_digest(handle, algorithm, digest, "sha256", scheme)


def test_algorithm_of() -> None:
    assert algorithm_of(rsa.generate_private_key(65537, 3072)) is KeyAlgorithm.RSA_3072
    assert algorithm_of(ec.generate_private_key(ec.SECP384R1())) is KeyAlgorithm.EC_P384
    with pytest.raises(KeyStoreError, match="RSA-1024 keys are not accepted"):
        algorithm_of(rsa.generate_private_key(65537, 1024))
    with pytest.raises(KeyStoreError, match="Ed25519 keys are not accepted"):
        algorithm_of(ed25519.Ed25519PrivateKey.generate())


def test_backends_without_import_refuse(tmp_path: Path) -> None:
    class GenerateOnly(KeyBackend):
        name = "generate-only"

        def generate(self, algorithm: KeyAlgorithm, label: str, *, decrypt: bool = False) -> GeneratedKey:
            raise NotImplementedError

        def decrypt(self, handle: bytes, algorithm: KeyAlgorithm, ciphertext: bytes,
                    padding_kind: EncryptionPadding = EncryptionPadding.PKCS1V15) -> bytes:
            raise NotImplementedError

        def sign_digest(self, handle: bytes, algorithm: KeyAlgorithm, digest: bytes, hash_name: str,
                        scheme: SignatureScheme) -> bytes:
            raise NotImplementedError

    store = _new_store(tmp_path, GenerateOnly())
    with pytest.raises(KeyStoreError, match="cannot import keys"):
        store.import_key(ec.generate_private_key(ec.SECP256R1()), "x", tenant_id=None)
    store.db.dispose()


# -- PKCS#11 backend (SoftHSM2, in a child process) ---------------------------------------------

P11_CHECKS = (
    [f"sign[{case}]" for case in ACCEPTED]
    + [f"refused[{case}]" for case in REFUSED]
    + [f"token-objects[{case}]" for case in ("rsa-2048", "ec-p256")]
    + ["audit", "handle-format", "delete"]
)


def check_token_objects(store: KeyStore, session: Any, case: str) -> None:
    """The imported key is a sensitive, non-extractable signing key on the token, with its public half."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import AttributeSensitive

    original = ACCEPTED[case][0]()
    stored = store.import_key(original, f"objects-{case}", tenant_id=None)
    with store.db.session() as s:
        key_id = s.get(KeyRecord, stored.id).handle[4:]
    (priv,) = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id})
    assert priv[Attribute.TOKEN] is True
    assert priv[Attribute.PRIVATE] is True
    assert priv[Attribute.SENSITIVE] is True
    assert priv[Attribute.EXTRACTABLE] is False
    assert priv[Attribute.SIGN] is True
    assert priv[Attribute.DECRYPT] is False
    assert priv[Attribute.LABEL] == f"objects-{case}"
    for secret in ((Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1) if ACCEPTED[case][1].is_rsa else (Attribute.VALUE,)):
        try:
            priv[secret]
        except AttributeSensitive:
            pass
        else:
            raise AssertionError(f"{secret} readable")
    (pub,) = session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id})
    assert pub[Attribute.TOKEN] is True
    assert pub[Attribute.LABEL] == f"objects-{case}"


def check_handle_format(store: KeyStore) -> None:
    generated = store.create(KeyAlgorithm.EC_P256, "generated", tenant_id=None)
    imported = store.import_key(ec.generate_private_key(ec.SECP256R1()), "imported", tenant_id=None)
    with store.db.session() as s:
        handles = [s.get(KeyRecord, k.id).handle for k in (generated, imported)]
    assert all(h.startswith(b"P11K") and len(h) == 4 + 16 for h in handles), handles
    assert handles[0] != handles[1]


def check_delete(store: KeyStore, session: Any) -> None:
    from pkcs11 import Attribute

    stored = store.import_key(ec.generate_private_key(ec.SECP256R1()), "to-delete", tenant_id=None)
    with store.db.session() as s:
        handle = s.get(KeyRecord, stored.id).handle
    store.sign_digest(stored, hashlib.sha256(b"x").digest(), "sha256")
    store.backend.delete(handle)
    assert list(session.get_objects({Attribute.ID: handle[4:]})) == []


def _run_pkcs11_checks(workdir: str) -> None:
    """Child process entry point: every check against SoftHSM2, results as JSON in workdir."""
    from remotesign.keystore.pkcs11 import Pkcs11KeyBackend, load_library

    work = Path(workdir)
    module = os.environ["REMOTESIGN_PKCS11_MODULE"]
    label, pin = os.environ["REMOTESIGN_PKCS11_TOKEN"], os.environ["REMOTESIGN_PKCS11_PIN"]
    store = _new_store(work, Pkcs11KeyBackend(module, label, pin, pool_size=2))
    inspect = load_library(module).get_token(token_label=label).open(rw=True)  # shares the login
    checks: dict[str, Callable[[], None]] = {}
    for case in ACCEPTED:
        checks[f"sign[{case}]"] = lambda case=case: check_import_signs(store, case)  # type: ignore[misc]
    for case in REFUSED:
        checks[f"refused[{case}]"] = lambda case=case: check_refused(store, case)  # type: ignore[misc]
    for case in ("rsa-2048", "ec-p256"):
        checks[f"token-objects[{case}]"] = lambda case=case: check_token_objects(store, inspect, case)  # type: ignore[misc]
    checks["audit"] = lambda: check_audit_has_no_key_material(store)
    checks["handle-format"] = lambda: check_handle_format(store)
    checks["delete"] = lambda: check_delete(store, inspect)
    assert sorted(checks) == sorted(P11_CHECKS)
    results: dict[str, str] = {}
    for name, run in checks.items():
        try:
            run()
            results[name] = "ok"
        except BaseException:  # noqa: BLE001 - reported to the parent test
            results[name] = traceback.format_exc()
    inspect.close()
    store.close()
    (work / "results.json").write_text(json.dumps(results))


@pytest.fixture(scope="module")
def pkcs11_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from tests.harness import make_softhsm_token

    base = tmp_path_factory.mktemp("p11import")
    env = {**os.environ, **make_softhsm_token(base, label="import"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from tests.test_keystore_import import _run_pkcs11_checks as r; "
                               "r(sys.argv[1])", str(base)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((base / "results.json").read_text())


@pytest.mark.hsm
@pytest.mark.parametrize("check", P11_CHECKS)
def test_pkcs11_softhsm(pkcs11_results: dict[str, str], check: str) -> None:
    assert pkcs11_results[check] == "ok", pkcs11_results[check]
