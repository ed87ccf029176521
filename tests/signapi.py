"""A small client for the eParaksts-style SignAPI as integrators use it, plus a "smart card":
a key the test holds, with a certificate issued by ``remotesign pki issue``."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

from tests.harness import Service
from tests.pdfgen import pdf_bytes

_HASHES = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}


@dataclass
class Card:
    """A signer key held outside the service, as on a smart card."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_b64(self) -> str:
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()

    def sign(self, digest: bytes, algorithm: str = "SHA256", raw_ecdsa: bool = False) -> bytes:
        prehashed = utils.Prehashed(_HASHES[algorithm]())
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, padding.PKCS1v15(), prehashed)
        der = self.key.sign(digest, ec.ECDSA(prehashed))
        if not raw_ecdsa:
            return der
        r, s = utils.decode_dss_signature(der)
        size = (self.key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def make_key(kind: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[kind])


def issue_card(service: Service, tmp: Path, kind: str = "rsa", cn: str = "Anna Paraksta",
               profile: str = "qualified-person", subject_extra: list[x509.NameAttribute] | None = None) -> Card:
    key = make_key(kind)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.COUNTRY_NAME, "LV")]
    if profile == "qualified-seal":
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo Org"))
        attrs.append(x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), "NTRLV-40000000000"))
    else:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOLV-010101-12345"))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs + (subject_extra or []))) \
        .sign(key, hashes.SHA256())
    path = tmp / f"{kind}-{cn.replace(' ', '_')}.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    pem = service.cli("pki", "issue", "--csr", str(path), "--profile", profile).stdout
    return Card(key, x509.load_pem_x509_certificate(pem))


class SignApi:
    def __init__(self, service: Service, token: str) -> None:
        self.service = service
        self.client = httpx.Client(base_url=service.url, timeout=120,
                                   headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def start(self, amount: int | None = None) -> Any:
        r = self.client.get("/api-session/v1.0/start", params={"amount": amount} if amount else None)
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        return data["sessionIds"] if amount else data["sessionId"]

    def upload(self, sid: str, name: str, content: bytes, expect: int = 201) -> dict[str, Any]:
        r = self.client.put(f"/api-storage/v1.0/{sid}/upload", files={"file": (name, content)})
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    def list(self, sid: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/api-storage/v1.0/{sid}/list")
        assert r.status_code == 200, r.text
        return r.json()["data"]  # type: ignore[no-any-return]

    def download(self, sid: str, doc_id: str) -> bytes:
        r = self.client.get(f"/api-storage/v1.0/{sid}/{doc_id}")
        assert r.status_code == 200, r.text
        return r.content

    def result(self, sid: str) -> tuple[dict[str, Any], bytes]:
        docs = self.list(sid)
        assert len(docs) == 1, docs
        return docs[0], self.download(sid, docs[0]["id"])

    def calculate(self, sids: list[str], card: Card, sign_as_pdf: bool, create_new: bool = False) -> httpx.Response:
        return self.client.post("/api-sign/v1.0/CalculateDigest", json={
            "sessions": [{"sessionId": s} for s in sids], "certificate": card.cert_b64,
            "signAsPdf": sign_as_pdf, "createNewEdoc": create_new})

    def finalize(self, values: dict[str, bytes]) -> httpx.Response:
        return self.client.post("/api-sign/v1.0/finalizeSigning", json={
            "sessionSignatureValues": [{"sessionId": s, "signatureValue": base64.b64encode(v).decode()}
                                       for s, v in values.items()],
            "authCertificate": "MIIB"})

    def archive(self, sids: list[str]) -> httpx.Response:
        return self.client.post("/api-sign/v1.0/addArchive", json={
            "sessions": [{"sessionId": s} for s in sids], "authCertificate": "MIIB"})

    def sign_sessions(self, sids: list[str], card: Card, sign_as_pdf: bool, create_new: bool = False,
                      archive: bool = False) -> dict[str, Any]:
        """The whole two-step flow; returns CalculateDigest's data."""
        r = self.calculate(sids, card, sign_as_pdf, create_new)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        values = {d["sessionId"]: card.sign(base64.b64decode(d["digest"]), data["algorithm"])
                  for d in data["sessionDigests"]}
        r = self.finalize(values)
        assert r.status_code == 200, r.text
        assert [x["sessionId"] for x in r.json()["data"]["results"]] == sids
        if archive:
            r = self.archive(sids)
            assert r.status_code == 200, r.text
        return data  # type: ignore[no-any-return]


def run(*args: str | Path, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=input is None, input=input, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc  # type: ignore[return-value]


def pyhanko_signer(card: Card, chain: list[x509.Certificate] = ()) -> Any:  # type: ignore[assignment]
    """The card as pyHanko's SimpleSigner: signing "elsewhere", with another product."""
    from asn1crypto import keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key = keys.PrivateKeyInfo.load(card.key.private_bytes(serialization.Encoding.DER,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    certs = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(card.cert.public_bytes(serialization.Encoding.DER)),
        signing_key=key, cert_registry=SimpleCertificateStore.from_certs(certs))


def sign_bb(card: Card, chain: list[x509.Certificate] = (), source: bytes | None = None) -> bytes:  # type: ignore[assignment]
    """A PAdES B-B signature made outside the service (pyHanko; no time-stamp: no proof of existence)."""
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    out = io.BytesIO()
    writer = IncrementalPdfFileWriter(io.BytesIO(source or pdf_bytes()))
    meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES)
    signers.PdfSigner(meta, pyhanko_signer(card, chain)).sign_pdf(writer, output=out)
    return out.getvalue()
