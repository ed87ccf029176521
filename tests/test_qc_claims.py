"""What a certificate claims in its QCStatements (EN 319 412-5), and the CSC v2
``signatureQualifier`` said from it: QES only for a qualified certificate whose key is in a QSCD."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from remotesign.api.csc.credentials import signature_qualifier
from remotesign.trust.qc import (ID_PE_QC_STATEMENTS, QC_COMPLIANCE, QC_TYPE, QCT_ESEAL, QCT_ESIGN, SEMANTICS_LEGAL,
                                 SEMANTICS_NATURAL, QcClaims, QcStatements, QcTypeSequence, qc_statements,
                                 read_claims)

KEY = ec.generate_private_key(ec.SECP256R1())


def _cert(extension: bytes | None) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QC test")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(KEY.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + timedelta(days=1)))
    if extension is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(ID_PE_QC_STATEMENTS), extension), critical=False)
    return builder.sign(KEY, hashes.SHA256())


QC_NO_SSCD_SEAL = QcStatements([{"statement_id": QC_COMPLIANCE},
                                {"statement_id": QC_TYPE, "statement_info": QcTypeSequence([QCT_ESEAL])}]).dump()


@pytest.mark.parametrize("extension, claims, qualifier", [
    (qc_statements(QCT_ESIGN, SEMANTICS_NATURAL, None), QcClaims(True, True, False), "eu_eidas_qes"),
    (qc_statements(QCT_ESEAL, SEMANTICS_LEGAL, "https://pds.example/en"), QcClaims(True, True, True),
     "eu_eidas_qeseal"),
    (QC_NO_SSCD_SEAL, QcClaims(True, False, True), "eu_eidas_aesealqc"),
    (QcStatements([{"statement_id": QC_COMPLIANCE}]).dump(), QcClaims(True, False, False), "eu_eidas_aesqc"),
    (None, QcClaims(), "eu_eidas_aes"),
    (core.OctetString(b"not a sequence").dump(), QcClaims(), "eu_eidas_aes"),  # malformed: claims nothing
])
def test_claims_and_the_qualifier_they_allow(extension: bytes | None, claims: QcClaims, qualifier: str) -> None:
    cert = _cert(extension)
    assert read_claims(cert) == claims
    assert signature_qualifier(cert) == qualifier
