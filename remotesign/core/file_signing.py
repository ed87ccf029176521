"""Files signed at the operator's terminal (``remotesign sign``): a PDF as PAdES, any files in an
ASiC-E container with XAdES, or any file as CAdES (detached or attached), at B, T, LT or LTA with
the instance's time-stamping authority and revocation data.

The key is either a **server-held sign identity** of the instance or a **PKCS#12** file the
operator holds. An identity key is used as every other facade uses it (core/sole_control.py,
keystore/authorization.py): its user, identity and certificate must be in good standing, the
user's PIN is checked first by ``IdentityService.verify_pin`` (wrong PINs count towards the lock
and are audited as ``identity.pin_refused``), then a SCAL2 authorization for exactly the digest
to sign is recorded (``scal2.authorized``, ``grant: "pin:cli"``) and the key store signs under it,
writing ``identity_key.used``. No access token stands behind that authorization: the PIN was
given here, so a one-time random reference takes the place of a token's hash. Every signed file
is audited as ``document.signed`` (actor ``operator``).

The format layer (formats/registry.py) does the work in its two steps: the data to be signed,
then the value embedded and the signature raised to its level. The signature value is checked
against the certificate before it is embedded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import mimetypes
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from asn1crypto import x509 as asn1_x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from remotesign.core.errors import CoreError
from remotesign.core.signature_values import SignerAlgorithm, SignerInputError, algorithm_for, normalize_and_verify
from remotesign.core.sole_control import TypedDigest, digests_summary
from remotesign.formats.base import FormatError, SignerSpec
from remotesign.formats.interface import Container, Document, Level, Packaging, SignParameters
from remotesign.keystore import KeyUseAuthorization

#: what ``remotesign sign --format`` offers, and the registry's format for each
KINDS = {"pades": "pades", "asice": "asic-e", "cades": "cades"}
EXTENSIONS = {"pades": ".pdf", "asice": ".asice", "cades-detached": ".p7s", "cades-attached": ".p7m"}
HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
GRANT = "pin:cli"


class FileSigningError(CoreError):
    """A file, an option or a key the signature cannot be made with; ``code`` is stable."""


@dataclass(frozen=True)
class FileSignature:
    """What to make: ``kind`` (pades, asice, cades), the level, CAdES's packaging (DETACHED or
    ENVELOPING; the others take their own), the hash (None: the key's usual one), a reason."""

    kind: str
    level: Level = Level.B
    packaging: Packaging | None = None
    hash_name: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FileSigningError("invalid_request", f"unknown format {self.kind!r}: {', '.join(KINDS)}")
        if self.hash_name is not None and self.hash_name not in HASHES:
            raise FileSigningError("invalid_request", f"hash {self.hash_name!r}: one of {', '.join(HASHES)}")
        if self.kind == "cades" and self.packaging not in (None, Packaging.DETACHED, Packaging.ENVELOPING):
            raise FileSigningError("invalid_request", "a CAdES signature is detached or attached (enveloping)")

    @property
    def effective_packaging(self) -> Packaging:
        if self.kind == "pades":
            return Packaging.ENVELOPED
        if self.kind == "cades":
            return self.packaging or Packaging.DETACHED
        return Packaging.DETACHED

    @property
    def extension(self) -> str:
        if self.kind == "cades":
            return EXTENSIONS["cades-attached" if self.effective_packaging is Packaging.ENVELOPING else "cades-detached"]
        return EXTENSIONS[self.kind]


def default_output(first: Path, spec: FileSignature) -> Path:
    """FILE-signed.ext beside the (first) file: contract.pdf -> contract-signed.pdf, notes.txt ->
    notes-signed.asice / notes-signed.p7s; a container keeps its own extension (.edoc)."""
    if spec.kind == "asice" and is_asice([first]):
        return first.with_name(f"{first.stem}-signed{first.suffix or spec.extension}")
    return first.with_name(f"{first.stem}-signed{spec.extension}")


@dataclass(frozen=True)
class SignedFile:
    """What was written: the format's level and name, the signer, the output's SHA-256."""

    output: Path
    kind: str
    level: Level
    signer_subject: str
    sha256: str
    notes: tuple[str, ...] = ()


def _documents(files: Sequence[Path], kind: str) -> list[Document]:
    docs = []
    for path in files:
        mime = "application/pdf" if kind == "pades" else (mimetypes.guess_type(path.name)[0]
                                                          or "application/octet-stream")
        docs.append(Document(name=path.name, mime_type=mime, open=lambda p=path: open(p, "rb")))
    return docs


def is_asice(files: Sequence[Path]) -> bool:
    """One file that is an ASiC-E container already (signed again in parallel, not wrapped)."""
    from remotesign.formats import asic

    if len(files) != 1:
        return False
    try:
        with open(files[0], "rb") as fh:
            return bool(asic.is_asic_e(fh))
    except Exception:  # noqa: BLE001 - not a readable container: a file to put in a new one
        return False


def _check_files(files: Sequence[Path], spec: FileSignature) -> None:
    if not files:
        raise FileSigningError("invalid_request", "no file to sign")
    if spec.kind != "asice" and len(files) > 1:
        raise FileSigningError("invalid_request", "only an ASiC-E container signs several files at once")
    if len({f.name for f in files}) != len(files):
        raise FileSigningError("invalid_request", "two files of one container have the same name")
    for f in files:
        if not f.is_file():
            raise FileSigningError("not_found", f"{f}: no such file", 404)
    if spec.kind == "pades":
        with open(files[0], "rb") as fh:
            if b"%PDF-" not in fh.read(1024):
                raise FileSigningError("not_a_pdf", f"{files[0].name} is not a PDF (choose --format asice or cades)")


async def sign_files(formats: Any, context: Callable[[], Any], spec: FileSignature, files: Sequence[Path],
                     path: Sequence[asn1_x509.Certificate], algorithm: SignerAlgorithm,
                     sign_digest: Callable[[bytes, str], bytes], output: BinaryIO) -> None:
    """The two steps of the format around ``sign_digest(digest, hash name)``; writes ``output``.
    ``path``: the signer's certificate first, up to a trust anchor; ``context``: the instance's
    TSA, revocation source and trust anchors (used from T on)."""
    _check_files(files, spec)
    fmt = formats.get(KINDS[spec.kind])
    hash_name = spec.hash_name or algorithm.digest_algorithm
    signer = SignerSpec(certificate=path[0].dump(), chain=tuple(c.dump() for c in path[1:]),
                        digest_algorithm=hash_name, mechanism=algorithm.mechanism)
    options: dict[str, Any] = {}
    if spec.kind == "asice":  # an ASiC-E given alone gets a further, parallel signature
        options = {"container": None if is_asice(files) else Container.ASIC_E,
                   "signature_file": "META-INF/signatures0.xml"}
    params = SignParameters(signer=signer, signing_time=datetime.now(timezone.utc).replace(microsecond=0),
                            packaging=spec.effective_packaging, reason=spec.reason, **options)
    documents = _documents(files, spec.kind)
    cert = cx509.load_der_x509_certificate(path[0].dump())
    try:
        with tempfile.TemporaryFile() as scratch:
            data = await fmt.data_to_sign(documents, params, scratch)
            value = sign_digest(data.digest, hash_name)
            value = normalize_and_verify(cert, data.digest, value, SignerAlgorithm(hash_name, algorithm.mechanism))
            ctx = dataclasses.replace(context(), digest_algorithm=hash_name) if spec.level > Level.B else None
            await fmt.sign_at_level(documents, params, data, value, scratch, output, spec.level, ctx)
    except FormatError as exc:
        raise FileSigningError(exc.code, exc.message, 422) from exc
    except SignerInputError as exc:
        raise FileSigningError(exc.code, exc.message, 422) from exc


def _signer(svc: Any, cert: cx509.Certificate, extra: Sequence[asn1_x509.Certificate], level: Level,
            notes: list[str]) -> tuple[list[asn1_x509.Certificate], SignerAlgorithm]:
    """The certificate's path to one of the instance's trust anchors; at level B a certificate that
    does not chain is still used with the chain it came with (a note says so)."""
    from remotesign.core.signing import SigningError

    try:
        signer = svc.signing.check_signer(cert, list(extra))
        return list(signer.path), signer.algorithm
    except SignerInputError as exc:
        raise FileSigningError(exc.code, exc.message) from exc
    except SigningError as exc:
        if level > Level.B:
            raise FileSigningError(exc.code, f"{exc.message}; T, LT and LTA need a certificate the instance "
                                             "trusts (its CA, REMOTESIGN_TRUST_ANCHORS)") from exc
        notes.append(f"the certificate does not chain to a trust anchor of this instance ({exc.message}); "
                     "signed at B with the chain it came with")
        try:
            algorithm = algorithm_for(cert)
        except SignerInputError as inner:
            raise FileSigningError(inner.code, inner.message) from inner
        return [asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)), *extra], algorithm


def check_output(output: Path, force: bool) -> None:
    """Refuse an output that exists (without ``force``) or whose directory does not."""
    output = output.absolute()
    if output.exists() and not force:
        raise FileSigningError("exists", f"{output} exists (give --force to replace it)", 409)
    if not output.parent.is_dir():
        raise FileSigningError("not_found", f"{output.parent}: no such directory", 404)


def _write(output: Path, force: bool, write: Callable[[BinaryIO], None]) -> str:
    """``write`` into a temporary file beside ``output``, renamed over it only when complete:
    a failure leaves nothing behind. Returns the SHA-256 of what was written."""
    check_output(output, force)
    output = output.absolute()
    tmp = tempfile.NamedTemporaryFile(dir=output.parent, prefix=f".{output.name}.", suffix=".part", delete=False)
    try:
        with tmp:
            write(tmp)
        digest = hashlib.sha256()
        with open(tmp.name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        Path(tmp.name).replace(output)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _audit(svc: Any, result: SignedFile, files: Sequence[Path], signer: dict[str, Any], tenant_id: str | None,
           subject: str) -> None:
    svc.audit.append("document.signed", actor="operator", tenant_id=tenant_id, subject=subject,
                     details={"via": "cli", "format": result.kind, "level": result.level.name,
                              "files": [f.name for f in files][:50], "output": result.output.name,
                              "output_sha256": result.sha256, **signer})


def sign_with_identity(svc: Any, identity_id: str, pin: str, spec: FileSignature, files: Sequence[Path],
                       output: Path, *, force: bool = False) -> SignedFile:
    """Sign ``files`` with the server-held identity ``identity_id``, its user's ``pin`` checked
    first (PinRefused on a wrong or locked PIN; nothing is written then)."""
    import asyncio

    from remotesign.core.identities import Viewer

    _check_files(files, spec)
    check_output(output, force)  # nothing about the files or the output costs the user a PIN try
    identity = svc.identities.get(identity_id, Viewer(None))
    svc.identities.check_usable(identity)
    svc.identities.verify_pin(identity.id, pin, actor=identity.user_id, tenant_id=identity.user_tenant_id)
    cert = identity.certificate()
    extra = [asn1_x509.Certificate.load(c) for c in identity.chain_der]
    notes: list[str] = []
    path, algorithm = _signer(svc, cert, extra, spec.level, notes)
    key = svc.keystore.identity_key(identity.key_id, identity.user_tenant_id)

    def sign_digest(digest: bytes, hash_name: str) -> bytes:
        auth = authorize_with_checked_pin(svc, identity, [TypedDigest(hash_name, digest)])
        [value] = svc.keystore.sign_with_identity_key(key, [(digest, hash_name, key.default_scheme)], auth)
        return bytes(value)

    sha = _write(output, force, lambda out: asyncio.run(
        sign_files(svc.formats, svc.signing.context, spec, files, path, algorithm, sign_digest, out)))
    result = SignedFile(output.absolute(), spec.kind, spec.level, cert.subject.rfc4514_string(), sha, tuple(notes))
    _audit(svc, result, files, {"signer": "identity", "sign_identity_id": identity.id, "user_id": identity.user_id},
           identity.user_tenant_id, identity.id)
    return result


def authorize_with_checked_pin(svc: Any, identity: Any, digests: list[TypedDigest]) -> KeyUseAuthorization:
    """The SCAL2 authorization of signing exactly ``digests`` with ``identity``, once, given by its
    user whose PIN this process has just checked: recorded as ``scal2.authorized`` (what the key
    store looks up before it signs) with a one-time reference in place of a token's hash."""
    prefix = hashlib.sha256(secrets.token_bytes(32)).hexdigest()[:16]
    hash_names = [d.hash_name for d in digests]
    seq = svc.audit.append("scal2.authorized", actor=identity.user_id, tenant_id=identity.user_tenant_id,
                           subject=identity.id,
                           details={"digests_summary": digests_summary([d.value for d in digests], hash_names[0]),
                                    "digests": len(digests), "digest_types": hash_names,
                                    "token_sha256_prefix": prefix, "grant": GRANT})
    return KeyUseAuthorization(f"scal2:{seq}:{prefix}", identity.id, actor=identity.user_id,
                               tenant_id=identity.user_tenant_id)


def load_pkcs12(data: bytes, password: str | None) -> tuple[Any, cx509.Certificate, list[cx509.Certificate]]:
    """(private key, certificate, other certificates) of a PKCS#12 file."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise FileSigningError("invalid_pkcs12", "cannot open the PKCS#12 file: wrong password or not a PKCS#12 "
                                                 f"({exc})") from exc
    if key is None or cert is None:
        raise FileSigningError("invalid_pkcs12", "the PKCS#12 file holds no private key with its certificate")
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise FileSigningError("unsupported_key", "only RSA and EC keys sign")
    return key, cert, list(extra)


def sign_with_pkcs12(svc: Any, data: bytes, password: str | None, spec: FileSignature, files: Sequence[Path],
                     output: Path, *, force: bool = False) -> SignedFile:
    """Sign ``files`` with the key and certificate of a PKCS#12 file."""
    import asyncio

    _check_files(files, spec)
    key, cert, others = load_pkcs12(data, password)
    extra = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in others]
    notes: list[str] = []
    path, algorithm = _signer(svc, cert, extra, spec.level, notes)

    def sign_digest(digest: bytes, hash_name: str) -> bytes:
        prehashed = utils.Prehashed(HASHES[hash_name]())
        if isinstance(key, rsa.RSAPrivateKey):
            return bytes(key.sign(digest, padding.PKCS1v15(), prehashed))
        return bytes(key.sign(digest, ec.ECDSA(prehashed)))

    sha = _write(output, force, lambda out: asyncio.run(
        sign_files(svc.formats, svc.signing.context, spec, files, path, algorithm, sign_digest, out)))
    result = SignedFile(output.absolute(), spec.kind, spec.level, cert.subject.rfc4514_string(), sha, tuple(notes))
    _audit(svc, result, files, {"signer": "pkcs12", "certificate_serial": format(cert.serial_number, "x")}, None,
           format(cert.serial_number, "x"))
    return result


__all__ = ["FileSignature", "FileSigningError", "KINDS", "SignedFile", "authorize_with_checked_pin",
           "default_output", "sign_files", "sign_with_identity", "sign_with_pkcs12"]
