"""Certificates that outlive a request are parsed whole before threads share them (asn1_shared.py):
asn1crypto fills its structures in place on first read, so two concurrent first reads could see
one half-built (a KeyError under concurrent finalizations with one signer's cached certificate)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from asn1crypto import core, pem, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from remotesign.asn1_shared import shareable, shared_certificate
from remotesign.formats.pades import _certificates
from remotesign.trust.revocation import TrustStore, load_certificates


def _der(ca: bool) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "Shared"), cx509.NameAttribute(NameOID.COUNTRY_NAME, "LV")])
    now = datetime.now(timezone.utc)
    cert = (cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(cx509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(cx509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(cx509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                          crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(cx509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(cx509.CRLDistributionPoints([cx509.DistributionPoint(
                [cx509.UniformResourceIdentifier("http://ca.example/crl")], None, None, None)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def lazy_parts(value: core.Asn1Value, where: str = "$") -> Iterator[str]:
    """Where ``value`` still has something to parse on a first read."""
    if isinstance(value, (core.Sequence, core.SequenceOf)):
        if value.children is None:
            yield where
            return
        for n, child in enumerate(value.children):
            if isinstance(child, tuple):  # still the raw header and contents
                yield f"{where}[{n}]"
            else:
                yield from lazy_parts(child, f"{where}[{n}]")
    elif isinstance(value, (core.ParsableOctetString, core.ParsableOctetBitString)) and value._parsed is not None:
        yield from lazy_parts(value._parsed[0], f"{where}.parsed")
    elif isinstance(value, core.Choice):
        if value._parsed is None:
            yield where
        else:
            yield from lazy_parts(value.chosen, f"{where}.chosen")


def finished(cert: x509.Certificate) -> bool:
    extensions = cert["tbs_certificate"]["extensions"]
    return (not list(lazy_parts(cert)) and cert._processed_extensions
            and all(e["extn_value"]._parsed is not None for e in extensions))


def test_a_fresh_certificate_is_lazy_and_a_shareable_one_finished() -> None:
    der = _der(ca=False)
    fresh = x509.Certificate.load(der)
    assert list(lazy_parts(fresh)) == ["$"] and not fresh._processed_extensions  # the check can fail
    shared = shared_certificate(der)
    assert finished(shared)
    assert shared.critical_extensions == {"basic_constraints", "key_usage"}
    assert shareable(fresh) is fresh and finished(fresh)


def test_what_the_service_keeps_across_requests_is_finished() -> None:
    leaf, root = _der(ca=False), _der(ca=True)
    signer, registry = _certificates(leaf, (root,))
    assert finished(signer) and all(finished(c) for c in registry)
    bundle = pem.armor("CERTIFICATE", leaf) + pem.armor("CERTIFICATE", root)
    assert all(finished(c) for c in load_certificates(bundle)) and all(finished(c) for c in load_certificates(root))
    store = TrustStore.build([root], ())
    assert store.roots and all(finished(c) for c in store.roots)


def test_threads_reading_a_shared_certificate_at_once_see_it_whole() -> None:
    """Four threads read one certificate at the same moment, switching as often as the interpreter
    allows; on a certificate fresh from ``load`` this saw empty critical-extension sets and
    half-built extensions in nearly every round."""
    der = _der(ca=False)
    problems: list[str] = []

    def read(cert: x509.Certificate, start: threading.Barrier) -> None:
        start.wait()
        try:
            parsed = [e["extn_value"].parsed for e in cert["tbs_certificate"]["extensions"]]
            if len(parsed) != 4 or cert.critical_extensions != {"basic_constraints", "key_usage"} \
                    or not cert.key_usage_value.native:
                problems.append(f"{len(parsed)} extensions, critical {cert.critical_extensions}")
        except Exception as exc:  # noqa: BLE001 - collected, asserted below
            problems.append(repr(exc))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(200):
            cert, start = shared_certificate(der), threading.Barrier(4)
            readers = [threading.Thread(target=read, args=(cert, start)) for _ in range(4)]
            for t in readers:
                t.start()
            for t in readers:
                t.join()
    finally:
        sys.setswitchinterval(interval)
    assert problems == []
