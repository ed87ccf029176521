"""PAdES baseline signatures through pyHanko's interrupted-signing API.

prepare: write the document with a signature placeholder, hash its byte ranges, build the CMS
signed attributes and return their digest (what a smart card or the key store signs).
embed: put the signature value into the CMS, add the signature time-stamp (B-T) and fill the
placeholder. extend: add a DSS with the validation data (B-LT), then a document time-stamp
(B-LTA). Every step streams: outputs are readable+writable files (pyHanko buffers the whole
document when its output is write-only), and nothing reads a PDF into memory.
"""

from __future__ import annotations

import binascii
import dataclasses
import errno
import hashlib
import io
import os
import stat
import threading
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any, BinaryIO

from asn1crypto import algos, cms, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument, PdfTimeStamper
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from remotesign.asn1_shared import shared_certificate
from remotesign.formats.base import FormatError, SignerSpec, ValidationData
from remotesign.formats.cms_attributes import pades_signed_attributes
from remotesign.formats.stamps import StampSpec, add_stamp_field, stamped_field

#: The placeholder holds the CMS of the signature at level B-T (LT data goes to the DSS): the
#: signer's certificates, its value and signed attributes, and a signature time-stamp token. Its
#: size is reckoned per signer (``cms_reserved_bytes``), in DER bytes; the file holds twice as
#: many hex digits. A fixed 48 KB made each signature ~80 KB larger than the ~9 KB CMS needed.
#: Room for a time-stamp token with the TSA's certificates: those of public TSAs are 2-8 KB.
TIMESTAMP_TOKEN_ALLOWANCE = 16 * 1024
#: The signed attributes, the CMS's own structure and the unsigned attribute around the token.
CMS_STRUCTURE_ALLOWANCE = 4 * 1024
PDF_MAGIC = b"%PDF-"
COPY_CHUNK = 1 << 20
PARALLEL_HASH_MIN_BYTES = 8 << 20  # from this size on, finalize hashes in a second thread while copying


@dataclass(frozen=True)
class PreparedPades:
    digest: bytes
    signed_attrs: bytes
    document_digest: bytes
    reserved_region_start: int
    reserved_region_end: int
    field_name: str

    def to_state(self) -> dict[str, object]:
        return {"signed_attrs": self.signed_attrs.hex(), "document_digest": self.document_digest.hex(),
                "start": self.reserved_region_start, "end": self.reserved_region_end, "field": self.field_name}

    @classmethod
    def from_state(cls, state: dict[str, object], digest: bytes) -> "PreparedPades":
        return cls(digest=digest, signed_attrs=bytes.fromhex(str(state["signed_attrs"])),
                   document_digest=bytes.fromhex(str(state["document_digest"])),
                   reserved_region_start=int(state["start"]),  # type: ignore[call-overload]
                   reserved_region_end=int(state["end"]),  # type: ignore[call-overload]
                   field_name=str(state["field"]))


_PLAIN_FILES = (io.BufferedReader, io.BufferedRandom, io.FileIO)


def _kernel_copy(source: BinaryIO, output: BinaryIO) -> int | None:
    """Copy the whole of ``source`` to ``output`` at its position, inside the kernel
    (``copy_file_range``: no pass through Python, a reflink where the file system has them), and
    leave ``output`` after the copy. None when either is not a plain file (a wrapper's ``fileno``
    may not be its content) or the kernel refuses before copying anything: copy by hand then."""
    if type(source) not in _PLAIN_FILES or type(output) not in _PLAIN_FILES or not hasattr(os, "copy_file_range"):
        return None
    try:
        src_fd, dst_fd = source.fileno(), output.fileno()
        if not stat.S_ISREG(os.fstat(src_fd).st_mode):
            return None
        output.flush()
        size, at = os.fstat(src_fd).st_size, output.tell()
    except (OSError, ValueError):
        return None
    copied = 0
    while copied < size:
        try:
            n = os.copy_file_range(src_fd, dst_fd, size - copied, copied, at + copied)
        except OSError:
            if copied:
                raise
            return None  # EXDEV, ENOSYS, EINVAL...: nothing written yet
        if n == 0:
            if copied:  # the source shrank under us: never hand back a partial copy
                raise OSError(errno.EIO, "the document changed while it was copied")
            return None  # a file system whose copy_file_range copies nothing: copy by hand
        copied += n
    output.seek(at + copied)
    return copied


def _hash_spliced(fd: int, size: int, start: int, insert: bytes, hasher: Any,
                  failures: list[BaseException]) -> None:
    """Feed ``hasher`` the file ``fd`` (``size`` bytes) with ``insert`` in place of its bytes at
    ``start``, read with pread (no shared file position)."""
    try:
        buffer = bytearray(COPY_CHUNK)
        view = memoryview(buffer)
        for begin, end in ((0, start), (start + len(insert), size)):
            at = begin
            while at < end:
                n = os.preadv(fd, [view[:min(COPY_CHUNK, end - at)]], at)
                if n <= 0:
                    raise FormatError("invalid_pdf", "the prepared document is shorter than its placeholder")
                hasher.update(view[:n])
                at += n
            if begin == 0:
                hasher.update(insert)
    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
        failures.append(exc)


def is_pdf(head: bytes) -> bool:
    """PDF files start with %PDF- within the first KiB (ISO 32000 allows leading junk)."""
    return PDF_MAGIC in head[:1024]


def _mechanism(signer: SignerSpec) -> algos.SignedDigestAlgorithm:
    kind = "rsa" if signer.mechanism == "rsa" else "ecdsa"
    return algos.SignedDigestAlgorithm({"algorithm": f"{signer.digest_algorithm}_{kind}"})


def cms_reserved_bytes(signer: SignerSpec) -> int:
    """DER bytes to reserve for ``signer``'s CMS: its certificate and chain (all embedded), the
    largest value its key can make, and the allowances for the signed attributes and a signature
    time-stamp token."""
    key = _certificates(signer.certificate, signer.chain)[0].public_key
    value = key.bit_size // 8 + 16 if signer.mechanism == "rsa" else 2 * (key.bit_size + 7) // 8 + 16
    return (len(signer.certificate) + sum(len(c) for c in signer.chain) + value
            + CMS_STRUCTURE_ALLOWANCE + TIMESTAMP_TOKEN_ALLOWANCE)


def _external_signer(signer: SignerSpec, value: bytes | int) -> signers.ExternalSigner:
    certificate, registry = _certificates(signer.certificate, signer.chain)
    return signers.ExternalSigner(signing_cert=certificate, cert_registry=registry, signature_value=value,
                                  signature_mechanism=_mechanism(signer), embed_roots=True)


@lru_cache(maxsize=256)
def _certificates(certificate: bytes, chain: tuple[bytes, ...]) -> tuple[x509.Certificate, SimpleCertificateStore]:
    """The signer's certificate and a registry of its chain, parsed and indexed once per signer:
    both steps of every signing of the same signer need them (about 0.6 ms each time). Shared
    read-only by concurrent signings, so parsed whole first (asn1_shared)."""
    return shared_certificate(certificate), SimpleCertificateStore.from_certs([shared_certificate(c) for c in chain])


class _Writer(IncrementalPdfFileWriter):
    """pyHanko's incremental writer, copying the original document in the kernel when it can
    (and in 1 MiB pieces, not 4 KiB, when it cannot)."""

    IO_CHUNK_SIZE = COPY_CHUNK

    def _write_header(self, stream: BinaryIO) -> None:  # type: ignore[override]
        position = self.input_stream.tell()
        copied = _kernel_copy(self.input_stream, stream)
        self.input_stream.seek(position)
        if copied is None:
            super()._write_header(stream)


def _reader(source: BinaryIO) -> PdfFileReader:
    try:
        source.seek(0)
        if not is_pdf(source.read(1024)):
            raise FormatError("not_a_pdf", "the document is not a PDF")
        source.seek(0)
        return PdfFileReader(source, strict=False)
    except FormatError:
        raise
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise FormatError("invalid_pdf", f"the PDF cannot be read: {exc}") from exc


def _writer(source: BinaryIO) -> IncrementalPdfFileWriter:
    return _writer_of(_reader(source))


def _writer_of(reader: PdfFileReader) -> IncrementalPdfFileWriter:
    if reader.encrypted:
        raise FormatError("encrypted_pdf", "encrypted PDFs cannot be signed")
    try:
        return _Writer.from_reader(reader)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise FormatError("invalid_pdf", f"the PDF cannot be updated: {exc}") from exc


def signature_count(source: BinaryIO) -> int:
    """Embedded signatures (document time-stamps included); 0 for an unreadable PDF."""
    try:
        return len(_reader(source).embedded_signatures)
    except (FormatError, PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
        return 0


def next_field_name(source: BinaryIO, prefix: str = "Signature") -> str:
    """Signature1, Signature2, ... (or another ``prefix``): the first name not taken by a field."""
    return _free_field_name(_reader(source), prefix)


def _anchored(source: BinaryIO, stamp: StampSpec) -> StampSpec:
    """``stamp`` placed by its anchor text: on the page where the text stands (the stamp's page, or
    the first page that has it), at the text's lower left corner moved by the anchor offsets."""
    from remotesign.formats.pdf_text import find_text

    assert stamp.anchor is not None
    found = find_text(source, stamp.anchor, None if stamp.page in (0, -1) else [stamp.page])
    source.seek(0)
    if found is None:
        raise FormatError("anchor_not_found", f"the text {stamp.anchor!r} to place the signature by is not on "
                          f"{'the document' if stamp.page in (0, -1) else f'page {stamp.page}'}")
    x, y = max(0.0, found.x0 + stamp.anchor_dx), max(0.0, found.y0 + stamp.anchor_dy)
    return dataclasses.replace(stamp, page=found.page, x=x, y=y, anchor=None)


def locked_by(reader: PdfFileReader) -> str | None:
    """The signature field that locks the document against any change (a certification with
    DocMDP /P 1, or a filled field whose /Lock says /P 1), or None."""
    try:
        perms = reader.root.get("/Perms")
        if perms is not None:
            docmdp = perms.get_object().get("/DocMDP")
            if docmdp is not None:
                for ref in docmdp.get_object().get("/Reference", []):
                    params = ref.get_object().get("/TransformParams")
                    if params is not None and int(params.get_object().get("/P", 2)) == 1:
                        return "certifying it with no changes allowed"
        for name, value, field_ref in fields.enumerate_sig_fields(reader, filled_status=True):
            lock = field_ref.get_object().get("/Lock")
            if lock is not None and int(lock.get_object().get("/P", 0)) == 1:
                return name
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
        return None  # an unreadable form: signing it fails later with invalid_pdf
    return None


def _free_field_name(reader: PdfFileReader, prefix: str = "Signature") -> str:
    try:
        taken = {name for name, _, _ in fields.enumerate_sig_fields(reader, filled_status=None)}
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
        taken = set()  # an unreadable form: signing it fails below with invalid_pdf
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


async def prepare(source: BinaryIO, output: BinaryIO, signer: SignerSpec, signing_time: datetime, *,
                  reason: str | None = None, location: str | None = None,
                  stamp: StampSpec | None = None, lock: bool = False) -> PreparedPades:
    """Write ``source`` + a signature placeholder to ``output`` (readable, writable, seekable) and
    return the digest to be signed. With ``stamp`` the signature field is visible: its widget
    shows the stamp (and, for every page of an unsigned PDF, the other pages get the same stamp in
    the revision the signature covers); the appearance is final here, embed only fills the CMS."""
    reader = _reader(source)  # read once: the free field name and the incremental writer
    if stamp is not None and stamp.anchor is not None:
        stamp = _anchored(source, stamp)
    locked = locked_by(reader)
    if locked:
        raise FormatError("document_locked", f"the PDF is locked by its signature {locked}: no signature can be "
                          "added without invalidating it")
    writer = _writer_of(reader)
    field_name = _free_field_name(reader)
    placeholder = 512 if signer.mechanism == "rsa" else 132
    ext = _external_signer(signer, placeholder)
    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm=signer.digest_algorithm,
                                        subfilter=fields.SigSeedSubFilter.PADES, reason=reason,
                                        location=location)
    text_params = None
    locking = dict(field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
                   doc_mdp_update_value=fields.MDPPerm.NO_CHANGES) if lock else {}
    if stamp is None:
        pdf_signer = signers.PdfSigner(meta, signer=ext, new_field_spec=fields.SigFieldSpec(field_name, **locking))
    else:
        try:
            placement = stamped_field(writer, stamp, field_name, signing_time, signer_display_name(signer))
        except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            raise FormatError("invalid_pdf", f"the PDF cannot take a stamp: {exc}") from exc
        pdf_signer = signers.PdfSigner(meta, signer=ext, stamp_style=placement.style,
                                       new_field_spec=dataclasses.replace(placement.field_spec, **locking))
        text_params = placement.text_params
    try:
        prep, _tbs, _out = await pdf_signer.async_digest_doc_for_signing(
            writer, bytes_reserved=cms_reserved_bytes(signer) * 2, output=output, appearance_text_params=text_params,
            chunk_size=COPY_CHUNK)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise FormatError("invalid_pdf", f"the PDF cannot be prepared for signing: {exc}") from exc
    der = pades_signed_attributes(ext.signing_cert, signer.certificate, prep.document_digest)
    return PreparedPades(digest=hashlib.new(signer.digest_algorithm, der).digest(), signed_attrs=der,
                         document_digest=prep.document_digest, reserved_region_start=prep.reserved_region_start,
                         reserved_region_end=prep.reserved_region_end, field_name=field_name)


async def signature_container(prepared: PreparedPades, signer: SignerSpec, signature_value: bytes,
                              timestamper: TimeStamper | None) -> tuple[cms.ContentInfo, bytes]:
    """The CMS carrying ``signature_value`` (DER for ECDSA) over the prepared signed attributes
    and, with a timestamper, a signature time-stamp (B-T); with its DER, checked to fit."""
    ext = _external_signer(signer, signature_value)
    sig_cms = await ext.async_sign_prescribed_attributes(
        signer.digest_algorithm, signed_attrs=cms.CMSAttributes.load(prepared.signed_attrs),
        timestamper=timestamper)
    der = sig_cms.dump()  # serialised once; these bytes are embedded as they are
    if len(der) * 2 > prepared.reserved_region_end - prepared.reserved_region_start - 2:
        raise FormatError("signature_too_large", "the signature container does not fit its placeholder")
    return sig_cms, der


async def embed(prepared_file: BinaryIO, prepared: PreparedPades, signer: SignerSpec, signature_value: bytes,
                timestamper: TimeStamper | None) -> cms.ContentInfo:
    """Fill the placeholder of ``prepared_file`` (readable+writable) with the CMS carrying
    ``signature_value`` (DER for ECDSA) and, with a timestamper, a signature time-stamp (B-T).
    Returns the CMS embedded (what extension to LT works from: nothing is read back)."""
    sig_cms, der = await signature_container(prepared, signer, signature_value, timestamper)
    digest = PreparedByteRangeDigest(document_digest=prepared.document_digest,
                                     reserved_region_start=prepared.reserved_region_start,
                                     reserved_region_end=prepared.reserved_region_end)
    await PdfTBSDocument.async_finish_signing(prepared_file, digest, der)
    return sig_cms


async def embed_copy(prepared_file: BinaryIO, output: BinaryIO, prepared: PreparedPades, signer: SignerSpec,
                     signature_value: bytes, timestamper: TimeStamper | None,
                     hasher: Any = None) -> cms.ContentInfo:
    """``embed`` into a copy: ``prepared_file`` is streamed once to ``output`` (emptied first) with
    the placeholder filled on the way, each byte written fed to ``hasher`` (a hashlib object) if
    given. ``prepared_file`` stays as it was. Returns the CMS embedded."""
    sig_cms, der = await signature_container(prepared, signer, signature_value, timestamper)
    content_hex = binascii.hexlify(der).upper()
    start = prepared.reserved_region_start + 1  # after the '<'; the placeholder is hex zeros
    prepared_file.seek(0)
    output.seek(0)
    output.truncate()

    def put(data: bytes | memoryview) -> None:
        output.write(data)
        if hasher is not None:
            hasher.update(data)

    def copy(limit: int | None) -> int:
        copied = 0
        while limit is None or copied < limit:
            chunk = prepared_file.read(COPY_CHUNK if limit is None else min(COPY_CHUNK, limit - copied))
            if not chunk:
                break
            put(chunk)
            copied += len(chunk)
        return copied

    # Large plain files: the kernel copies while a second thread hashes the same bytes (the
    # prepared file with the CMS spliced in) straight from the prepared file, so the copy costs no
    # pass. Small ones are hashed after the copy: a thread's start and join cost more than that.
    worker: threading.Thread | None = None
    failures: list[BaseException] = []
    if hasher is not None and type(prepared_file) in _PLAIN_FILES and type(output) in _PLAIN_FILES \
            and os.fstat(prepared_file.fileno()).st_size >= PARALLEL_HASH_MIN_BYTES:
        fd = prepared_file.fileno()
        worker = threading.Thread(target=_hash_spliced, name="pades-hash", daemon=True,
                                  args=(fd, os.fstat(fd).st_size, start, content_hex, hasher, failures))
        worker.start()
    try:
        copied = _kernel_copy(prepared_file, output)
    finally:
        if worker is not None:
            worker.join()
    if failures:
        raise failures[0]
    if copied is not None:  # copied in the kernel: fill the placeholder
        if copied < start + len(content_hex):
            raise FormatError("invalid_pdf", "the prepared document is shorter than its placeholder")
        output.seek(start)
        output.write(content_hex)
        output.flush()
        if hasher is not None and worker is None:
            output.seek(0)
            buffer = memoryview(bytearray(COPY_CHUNK))
            while n := output.readinto(buffer):  # type: ignore[attr-defined]
                hasher.update(buffer[:n])
        output.seek(0, 2)
        return sig_cms
    if worker is not None:  # copied by hand below: the thread hashed it already
        hasher = None
    if copy(start) != start:
        raise FormatError("invalid_pdf", "the prepared document is shorter than its placeholder")
    put(content_hex)
    prepared_file.seek(start + len(content_hex))
    copy(None)
    output.flush()
    return sig_cms


def validation_context(trust_roots: list[bytes], data: ValidationData) -> ValidationContext:
    """A context that knows everything it needs and fetches nothing: what the DSS will hold."""
    from asn1crypto import crl as asn1_crl
    from asn1crypto import ocsp as asn1_ocsp

    return ValidationContext(
        trust_roots=[x509.Certificate.load(c) for c in trust_roots],
        other_certs=[x509.Certificate.load(c) for c in data.certificates],
        ocsps=[asn1_ocsp.OCSPResponse.load(o) for o in data.ocsp_responses],
        crls=[asn1_crl.CertificateList.load(c) for c in data.crls],
        allow_fetching=False, revocation_mode="hard-fail")


def append_dss(document: BinaryIO, data: ValidationData, hasher: Any = None) -> None:
    """Append one DSS revision holding ``data`` (certificates, OCSP responses, CRLs; no VRI) to
    ``document`` in place, from the material as it is: no signature in the document is read and
    no path validated. With ``hasher`` (fed every byte of ``document`` so far), the bytes
    appended are fed to it too."""
    from asn1crypto import crl as asn1_crl
    from asn1crypto import ocsp as asn1_ocsp
    from pyhanko.sign.validation import DocumentSecurityStore

    try:
        writer = IncrementalPdfFileWriter(document)
        DocumentSecurityStore.supply_dss_in_writer(
            writer, None, certs=[x509.Certificate.load(c) for c in data.certificates],
            ocsps=[asn1_ocsp.OCSPResponse.load(o) for o in data.ocsp_responses],
            crls=[asn1_crl.CertificateList.load(c) for c in data.crls])
        end = document.seek(0, 2)
        writer.write_in_place()
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise FormatError("invalid_pdf", f"the PDF cannot be updated: {exc}") from exc
    document.flush()
    if hasher is not None:
        document.seek(end)
        while chunk := document.read(COPY_CHUNK):
            hasher.update(chunk)


async def add_document_timestamp(document: BinaryIO, output: BinaryIO, timestamper: TimeStamper,
                                 context: ValidationContext, hash_name: str = "sha256", *,
                                 stamp: StampSpec | None = None) -> None:
    """B-LT -> B-LTA: DSS update for the new time-stamp's TSA, then a document time-stamp. With
    ``stamp`` the time-stamp's field is visible and shows it (one page; the date printed is the
    time of this call, the token's own time follows within the TSA round trip)."""
    reader = _reader(document)
    if not reader.embedded_signatures:
        raise FormatError("not_signed", "the PDF holds no signature to archive")
    writer = IncrementalPdfFileWriter.from_reader(reader)
    field_name = None
    if stamp is not None:
        field_name = next_field_name(document, "Timestamp")
        try:
            add_stamp_field(writer, stamp, field_name, datetime.now(timezone.utc))
        except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            raise FormatError("invalid_pdf", f"the PDF cannot take a stamp: {exc}") from exc
    await PdfTimeStamper(timestamper, field_name=field_name).async_timestamp_pdf(
        writer, hash_name, validation_context=context, output=output)


def signer_display_name(signer: SignerSpec) -> str | None:
    """The name a stamp prints for the signer: the certificate's common name (else its subject)."""
    subject = x509.Certificate.load(signer.certificate).subject
    name = subject.native.get("common_name")
    if isinstance(name, list):
        name = " ".join(name)
    return name or subject.human_friendly or None
