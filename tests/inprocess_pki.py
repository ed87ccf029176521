"""The built-in CA without a running service (SQLite in a temporary directory, software keys), for
tests of engines and formats that need real certificates, OCSP responses and time-stamps."""

from __future__ import annotations

from pathlib import Path

from remotesign.storage.audit import AuditLog
from remotesign.keystore import KeyAlgorithm, KeyStore
from remotesign.keystore.software import SoftwareKeyBackend
from remotesign.storage.db import Database
from remotesign.storage.migrate import upgrade_to_head
from remotesign.trust.ca import CertificateAuthority


def build_ca(directory: Path, base_url: str = "http://127.0.0.1:8080",
             ca_algorithm: KeyAlgorithm = KeyAlgorithm.RSA_3072,
             service_algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048) -> tuple[Database, KeyStore, CertificateAuthority]:
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_to_head(url)
    db = Database(url)
    keystore = KeyStore(db, SoftwareKeyBackend(b"k" * 32))
    ca = CertificateAuthority(db, keystore, AuditLog(db), base_url)
    ca.initialize(ca_algorithm, service_algorithm)
    return db, keystore, ca
