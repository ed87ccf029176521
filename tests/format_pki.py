"""Format-level test support: an ExtensionContext over the in-process PKI (its TSA, OCSP responder
and CRLs), signer specs for its signers, and two-step signing through a SignatureFormat."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, BinaryIO

from asn1crypto import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from remotesign.formats.base import SignerSpec, ValidationData
from remotesign.formats.interface import Document, ExtensionContext, Level, SignatureFormat, SignParameters
from remotesign.trust.revocation import TrustStore
from remotesign.trust.timestamping import BuiltinTimeStamper
from tests.pades_pki import Pki


class PkiRevocation:
    """The revocation source of the tests: the in-process CA answers for its certificates."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki

    async def collect(self, path: list[x509.Certificate]) -> ValidationData:
        data = self.pki.provide(path)
        return ValidationData(certificates=tuple(c.dump() for c in path)).merged(data)


def context(pki: Pki, timestamper: Any = None) -> ExtensionContext:
    trust = TrustStore(roots=[pki.root], intermediates=[pki.issuing])
    return ExtensionContext(timestamper=timestamper or BuiltinTimeStamper(pki.tsa), revocation=PkiRevocation(pki),
                            trust_roots=(pki.root.dump(),),
                            path_of=lambda cert, extra: trust.path(cert, extra=extra))


def spec(pki: Pki, certificate: x509.Certificate, key: Any, digest: str = "sha256") -> SignerSpec:
    return SignerSpec(certificate=certificate.dump(), chain=(pki.issuing.dump(), pki.root.dump()),
                      digest_algorithm=digest, mechanism="rsa" if isinstance(key, rsa.RSAPrivateKey) else "ecdsa")


def raw_sign(key: Any, digest: bytes, algorithm: str = "sha256") -> bytes:
    prehashed = utils.Prehashed({"sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
                                 "sha512": hashes.SHA512()}[algorithm])
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), prehashed)
    return key.sign(digest, ec.ECDSA(prehashed))


def document(name: str, data: bytes, mime_type: str = "application/octet-stream") -> Document:
    return Document(name=name, mime_type=mime_type, open=lambda: io.BytesIO(data))


async def sign(fmt: SignatureFormat, documents: list[Document], signer: SignerSpec, key: Any,
               level: Level = Level.B, ctx: ExtensionContext | None = None,
               tweak: Callable[[SignParameters], SignParameters] | None = None) -> bytes:
    """Two-step signing through ``fmt``: data to sign, the key signs the digest, signed document."""
    params = SignParameters(signer=signer, signing_time=datetime.now(timezone.utc))
    if tweak is not None:
        params = tweak(params)
    scratch: BinaryIO = io.BytesIO()
    prepared = await fmt.data_to_sign(documents, params, scratch)
    out = io.BytesIO()
    await fmt.sign_at_level(documents, params, prepared, raw_sign(key, prepared.digest, signer.digest_algorithm),
                            scratch, out, level, ctx)
    return out.getvalue()


async def extend(fmt: SignatureFormat, data: bytes, level: Level, ctx: ExtensionContext,
                 detached: tuple[Document, ...] = ()) -> bytes:
    out = io.BytesIO()
    await fmt.extend(io.BytesIO(data), out, level, ctx, detached)
    return out.getvalue()
