"""PAdES signed attributes encoded directly are byte for byte what pyHanko builds for the same
certificate and digest (RSA and EC certificates, long and short issuer names, every digest size)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import x509 as ax
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from remotesign.formats.cms_attributes import pades_signed_attributes


def _certificate(kind: str, issuer_cn: str, serial: int) -> bytes:
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ūdens kompānija SIA"),
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 60),
                        x509.NameAttribute(NameOID.COUNTRY_NAME, "LV")])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Anna Paraksta"),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOLV-010101-12345")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("kind,issuer_cn,serial,md", [
    ("rsa", "CA", 1, "sha256"),
    ("rsa", "Issuing CA " + "x" * 50, 2**159 - 1, "sha384"),
    ("ec", "Ē-paraksta CA", 0x80, "sha512"),
    ("ec", "CA 2", 0x7F, "sha256"),
])
def test_pades_signed_attributes_are_pyhankos(kind: str, issuer_cn: str, serial: int, md: str) -> None:
    cert_der = _certificate(kind, issuer_cn, serial)
    digest = hashlib.new(md, b"document").digest()
    ext = signers.ExternalSigner(signing_cert=ax.Certificate.load(cert_der),
                                 cert_registry=SimpleCertificateStore.from_certs([]), signature_value=256)
    expected = asyncio.run(ext.signed_attrs(
        digest, md, attr_settings=signers.pdf_cms.PdfCMSSignedAttributes(
            signing_time=datetime.now(timezone.utc)), use_pades=True)).dump()
    assert pades_signed_attributes(ax.Certificate.load(cert_der), cert_der, digest) == expected
