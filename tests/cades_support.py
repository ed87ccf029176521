"""Real parts for the CAdES / ASiC format tests: the service's built-in CA, its RFC 3161 TSA over HTTP
(pyHanko's HTTPTimeStamper) and its OCSP responder and CRLs, reached through the URLs in the issued
certificates (a revocation source without a built-in CA fetches everything over HTTP); and
the independent verifiers: openssl cms / openssl ts, pyHanko's CMS validation, remotesign's validator."""

from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import cms, crl as asn1_crl, ocsp as asn1_ocsp, pem, x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import async_validate_detached_cms
from pyhanko.sign.validation.generic_cms import cms_basic_validation, collect_timing_info
from pyhanko.sign.validation.status import StandardCMSSignatureStatus
from pyhanko_certvalidator import ValidationContext

from remotesign.formats.base import SignerSpec
from remotesign.formats.cades import der
from remotesign.formats.cades.layout import SignedDataLayout
from remotesign.formats.interface import ExtensionContext
from remotesign.trust.revocation import TrustStore
from remotesign.trust.revocation_source import RevocationSource
from remotesign.validation.options import DetachedDocument, ValidationOptions
from tests.harness import Service
from tests.signapi import Card, issue_card

SIGNATURE_TIMESTAMP = "1.2.840.113549.1.9.16.2.14"
ARCHIVE_TIMESTAMP_V3 = "0.4.0.1733.2.4"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class ServicePki:
    service: Service
    dir: Path
    root: x509.Certificate
    issuing: x509.Certificate

    @property
    def root_pem(self) -> Path:
        return self.dir / "root.pem"

    @property
    def chain_pem(self) -> Path:
        return self.dir / "ca.pem"

    def card(self, kind: str) -> Card:
        return issue_card(self.service, self.dir, kind=kind, cn=f"CAdES {kind}")

    def spec(self, card: Card) -> SignerSpec:
        return SignerSpec(certificate=card.cert.public_bytes(serialization.Encoding.DER),
                          chain=(self.issuing.dump(), self.root.dump()), digest_algorithm="sha256",
                          mechanism="rsa" if kind_of(card) == "rsa" else "ecdsa")

    def context(self) -> ExtensionContext:
        trust = TrustStore(roots=[self.root], intermediates=[self.issuing])
        return ExtensionContext(timestamper=HTTPTimeStamper(self.service.url + "/pki/tsa"),
                                revocation=RevocationSource.online_only(),
                                trust_roots=(self.root.dump(),),
                                path_of=lambda cert, extra: trust.path(cert, extra=extra))

    def options(self, level: str, content: Path | None = None) -> ValidationOptions:
        """LT and LTA are validated from what the signature carries only; B and T may fetch
        (the service's OCSP responder and CRLs)."""
        detached = (DetachedDocument(content.name, content),) if content is not None else ()
        return ValidationOptions(trust_anchors=(self.root,), allow_fetching=level in ("B", "T"), detached=detached)


def kind_of(card: Card) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return "rsa" if isinstance(card.key, rsa.RSAPrivateKey) else "ec"


def service_pki(service: Service, directory: Path) -> ServicePki:
    bundle = httpx.get(service.url + "/pki/ca.pem", timeout=30).content
    certs = [x509.Certificate.load(d) for _, _, d in pem.unarmor(bundle, multiple=True)]
    root = next(c for c in certs if c.self_signed != "no")
    issuing = next(c for c in certs if c.self_signed == "no")
    (directory / "ca.pem").write_bytes(bundle)
    (directory / "root.pem").write_bytes(pem.armor("CERTIFICATE", root.dump()))
    return ServicePki(service, directory, root, issuing)


async def _validate_attached(signed_data: cms.SignedData, signer_vc: ValidationContext,
                             ts_vc: ValidationContext) -> StandardCMSSignatureStatus:
    """What async_validate_detached_cms does, for a signature that encapsulates its content."""
    signer_info = signed_data["signer_infos"][0]
    content = bytes(signed_data["encap_content_info"]["content"])
    kwargs = await collect_timing_info(signer_info, ts_validation_context=ts_vc,
                                       raw_digest=lambda algo: hashlib.new(algo, content).digest())
    kwargs = await cms_basic_validation(signed_data, raw_digest=None, validation_context=signer_vc,
                                        status_kwargs=kwargs,
                                        key_usage_settings=StandardCMSSignatureStatus.default_usage_constraints())
    return StandardCMSSignatureStatus(**kwargs)


# --- independent verifiers -------------------------------------------------------------------------

def openssl_verify(pki: ServicePki, signature: bytes, tmp: Path, content: bytes | None = None) -> None:
    """``openssl cms -verify -binary`` against the root only (the signature carries the rest)."""
    sig = tmp / "verify.p7s"
    sig.write_bytes(signature)
    args = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig), "-CAfile",
            str(pki.root_pem), "-purpose", "any", "-out", str(tmp / "verified.out")]
    if content is not None:
        (tmp / "verify.content").write_bytes(content)
        args += ["-content", str(tmp / "verify.content")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    if content is None:
        return
    assert (tmp / "verified.out").read_bytes() == content


def openssl_ts_verify(pki: ServicePki, token: bytes, tmp: Path, *, data: bytes | None = None,
                      digest: bytes | None = None) -> None:
    """``openssl ts -verify`` of one time-stamp token over ``data`` (or a precomputed imprint)."""
    (tmp / "token.der").write_bytes(token)
    args = ["openssl", "ts", "-verify", "-token_in", "-in", str(tmp / "token.der"), "-CAfile", str(pki.chain_pem)]
    if data is not None:
        (tmp / "stamped.bin").write_bytes(data)
        args += ["-data", str(tmp / "stamped.bin")]
    else:
        assert digest is not None
        args += ["-digest", digest.hex()]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stdout + result.stderr


def unsigned_values(signature: bytes, type_oid: str, signer: int = 0) -> list[bytes]:
    layout = SignedDataLayout.read(io.BytesIO(signature))
    wanted = cms.ContentType(type_oid).dump()
    out = []
    for attr in layout.signer_infos[signer].unsigned_attrs:
        fields = der.children_of(attr)
        if fields[0] == wanted:
            out.extend(der.children_of(fields[1]))
    return out


def embedded_material(signature: bytes) -> tuple[list[x509.Certificate], list[Any], list[Any]]:
    signed_data = cms.ContentInfo.load(signature)["content"]
    certs = [c.chosen for c in signed_data["certificates"] or () if c.name == "certificate"]
    crls, ocsps = [], []
    for choice in signed_data["crls"] or ():
        if choice.name == "crl":
            crls.append(asn1_crl.CertificateList.load(choice.chosen.dump()))
        else:
            assert choice.chosen["other_rev_info_format"].dotted == "1.3.6.1.5.5.7.16.2"
            ocsps.append(asn1_ocsp.OCSPResponse.load(choice.chosen["other_rev_info"].dump()))
    return certs, crls, ocsps


def pyhanko_verify(pki: ServicePki, signature: bytes, content: bytes, *, offline: bool, timestamped: bool) -> None:
    """pyHanko's CMS validation: intact, valid, trusted; the signature time-stamp valid too. With
    ``offline`` revocation is hard-fail from the signature's own certificates, CRLs and OCSP
    responses (what LT promises), else fetched from the service."""
    certs, crls, ocsps = embedded_material(signature)
    signed_data = cms.ContentInfo.load(signature)["content"]

    def vc() -> ValidationContext:
        if offline:
            return ValidationContext(trust_roots=[pki.root], other_certs=certs, crls=crls, ocsps=ocsps,
                                     allow_fetching=False, revocation_mode="hard-fail")
        return ValidationContext(trust_roots=[pki.root], other_certs=certs, allow_fetching=True,
                                 revocation_mode="hard-fail")

    if signed_data["encap_content_info"]["content"].native is None:
        status = run(async_validate_detached_cms(content, signed_data, signer_validation_context=vc(),
                                                 ts_validation_context=vc()))
    else:
        status = run(_validate_attached(signed_data, vc(), vc()))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    if timestamped:
        assert status.timestamp_validity is not None, "no signature time-stamp seen"
        ts = status.timestamp_validity
        assert ts.intact and ts.valid and ts.trusted, ts
