"""An in-process PKI for PDF signing tests: the built-in CA with its OCSP responder, TSA and CRL
publisher (no service), signers with fresh keys, and pyHanko PAdES signing at B/T/LT/LTA."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from asn1crypto import keys, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import FieldMDPSpec, MDPPerm
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from remotesign.formats.base import ValidationData
from remotesign.trust.ca import CertificateAuthority, IssuedCertificate
from remotesign.trust.crl import CrlPublisher
from remotesign.trust.ocsp import OcspResponder
from remotesign.trust.revocation import ocsp_request
from remotesign.trust.timestamping import BuiltinTimeStamper
from remotesign.trust.tsa import TimeStampAuthority
from remotesign.validation.options import ValidationOptions
from tests.inprocess_pki import build_ca
from tests.pdfgen import pdf_bytes

POLICY = "1.3.6.1.4.1.59999.1.3.1"


@dataclass
class Pki:
    dir: Path
    ca: CertificateAuthority
    ocsp: OcspResponder
    tsa: TimeStampAuthority
    crls: CrlPublisher
    root: x509.Certificate
    issuing: x509.Certificate
    counter: int = 0

    def provide(self, certificates: list[x509.Certificate]) -> ValidationData:
        """What the service adds: fresh OCSP responses for leaves, CRLs for its CA certificates."""
        by_subject = {c.asn1().subject.dump(): c for c in self.ca.chain()}
        ocsps, crls = [], []
        for cert in certificates:
            issuer = by_subject.get(cert.issuer.dump())
            if issuer is None or cert.dump() == issuer.der:
                continue
            if cert.ca:
                crls.append(self.crls.current(issuer.id))
            else:
                ocsps.append(self.ocsp.respond(ocsp_request(cert, issuer.asn1())).der)
        return ValidationData(certificates=tuple(c.der for c in self.ca.chain()),
                              ocsp_responses=tuple(ocsps), crls=tuple(crls))

    def signer(self, validity: timedelta | None = None, key: Any = None) -> tuple[signers.SimpleSigner,
                                                                                  IssuedCertificate, Any]:
        """A signer with a certificate of the built-in CA, for ``key`` (default: a new P-256 key)."""
        self.counter += 1
        key = key or ec.generate_private_key(ec.SECP256R1())
        csr = (cx509.CertificateSigningRequestBuilder().subject_name(cx509.Name([
            cx509.NameAttribute(NameOID.COMMON_NAME, f"Signer {self.counter}"),
            cx509.NameAttribute(NameOID.SERIAL_NUMBER, f"PNOLV-{self.counter:06d}"),
            cx509.NameAttribute(NameOID.COUNTRY_NAME, "LV")])).sign(key, hashes.SHA256()))
        issued = self.ca.issue_from_csr(csr.public_bytes(serialization.Encoding.PEM), "qualified-person",
                                        validity=validity)
        pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        signer = signers.SimpleSigner(signing_cert=issued.asn1(), signing_key=keys.PrivateKeyInfo.load(pkcs8),
                                      cert_registry=SimpleCertificateStore.from_certs([self.issuing, self.root]))
        return signer, issued, key

    def options(self, **kwargs: object) -> ValidationOptions:
        kwargs.setdefault("revocation_provider", self.provide)
        return ValidationOptions(trust_anchors=(self.root,), **kwargs)  # type: ignore[arg-type]

    def embedding_context(self, leaf: x509.Certificate) -> ValidationContext:
        """What pyHanko embeds for B-LT: OCSP for the signer and the TSA, the issuing CA's CRL."""
        from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp

        data = self.provide([leaf, self.ca.tsa_signer()[0].asn1(), self.issuing])
        return ValidationContext(trust_roots=[self.root], other_certs=[self.issuing],
                                 ocsps=[asn1_ocsp.OCSPResponse.load(o) for o in data.ocsp_responses],
                                 crls=[asn1_crl.CertificateList.load(c) for c in data.crls],
                                 allow_fetching=False, revocation_mode="hard-fail")


@contextmanager
def make_pki(directory: Path) -> Iterator[Pki]:
    """The in-process CA with its OCSP responder, TSA and CRL publisher in ``directory``."""
    db, keystore, ca = build_ca(directory)
    try:
        yield Pki(directory, ca, OcspResponder(ca, keystore), TimeStampAuthority(db, ca, keystore, POLICY),
                  CrlPublisher(db, ca, keystore), ca.root.asn1(), ca.issuing.asn1())
    finally:
        db.dispose()


Alice = tuple[signers.SimpleSigner, IssuedCertificate, ec.EllipticCurvePrivateKey]


async def sign_pdf(pki: Pki, signer: signers.SimpleSigner, level: str, out: Path, *,
                   reason: str | None = None, location: str | None = None, source: bytes | None = None,
                   field_name: str = "Signature1", certify: MDPPerm | None = None,
                   lock: FieldMDPSpec | None = None, box: tuple[int, int, int, int] | None = None) -> Path:
    """Sign ``source`` (default: a one-page test PDF) at PAdES ``level`` into ``out``: as a
    certification with DocMDP ``certify``, with field locks ``lock``, visibly in ``box``."""
    lt = level in ("LT", "LTA")
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=lt, use_pades_lta=level == "LTA", reason=reason, location=location,
        validation_context=pki.embedding_context(signer.signing_cert) if lt else None,
        certify=certify is not None, docmdp_permissions=certify or MDPPerm.FILL_FORMS)
    spec = fields.SigFieldSpec(field_name, box=box, field_mdp_spec=lock) if box or lock else None
    pdf_signer = signers.PdfSigner(meta, signer=signer, new_field_spec=spec,
                                   timestamper=BuiltinTimeStamper(pki.tsa) if level != "B" else None)
    with open(out, "w+b") as handle:
        await pdf_signer.async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(source or pdf_bytes()), strict=False),
                                        output=handle)
    return out
