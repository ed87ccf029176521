"""The CA used in-process next to pyHanko (as the signing code will): pyHanko registers its own
QCStatements parser in asn1crypto, which must not break issuing qualified certificates."""

from __future__ import annotations

from pathlib import Path

import pyhanko.sign.validation  # noqa: F401 - registers pyHanko's asn1crypto extensions
from asn1crypto import x509 as ax509

from remotesign.storage.audit import AuditLog
from remotesign.keystore import KeyAlgorithm, KeyStore
from remotesign.keystore.software import SoftwareKeyBackend
from remotesign.storage.db import Database
from remotesign.storage.migrate import upgrade_to_head
from remotesign.trust.ca import CertificateAuthority, subject_from_text


def test_qualified_certificates_with_pyhanko_loaded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_to_head(url)
    db = Database(url)
    keystore = KeyStore(db, SoftwareKeyBackend(b"k" * 32))
    ca = CertificateAuthority(db, keystore, AuditLog(db), "http://127.0.0.1:1")
    ca.initialize(KeyAlgorithm.EC_P384, KeyAlgorithm.EC_P256)
    key = keystore.create(KeyAlgorithm.EC_P256, "seal", tenant_id=None)
    cert = ca.issue(subject=subject_from_text("CN=Seal,O=Org,2.5.4.97=NTRLV-1,C=LV"),
                    public_key_der=key.public_key_der, profile_name="qualified-seal", tenant_id=None)
    parsed = ax509.Certificate.load(cert.der)
    qc = [e for e in parsed["tbs_certificate"]["extensions"] if e["extn_id"].dotted == "1.3.6.1.5.5.7.1.3"]
    assert len(qc) == 1
    ids = {s["statement_id"].dotted for s in qc[0]["extn_value"].parsed}
    assert {"0.4.0.1862.1.1", "0.4.0.1862.1.4", "0.4.0.1862.1.6"} <= ids
    assert parsed["signature_algorithm"]["algorithm"].native == "sha384_ecdsa"
    db.dispose()
