"""Writing ASiC-E containers: new ones from streamed data files, and copies of existing ones with
one signature file added or replaced."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import MappingProxyType
from typing import BinaryIO

from ..base import FormatError
from .manifest import build_manifest
from .names import (
    MANIFEST_NAME,
    META_INF,
    MIMETYPE,
    MIMETYPE_NAME,
    check_media_type,
    check_name,
    guess_mime_type,
    is_precompressed,
    name_key,
)
from .reader import AsicContainer

_NO_SIGNATURES: Mapping[str, bytes] = MappingProxyType({})
_FILE_MODE = 0o644 << 16
# What raw appends touch inside zipfile; without any of it entries are re-compressed instead.
_RAW_APPEND_NEEDS = ("_lock", "fp", "start_dir", "filelist", "NameToInfo", "_writecheck")

DateTime = tuple[int, int, int, int, int, int]


def _now() -> DateTime:
    return tuple(time.localtime()[:6])  # type: ignore[return-value]


@contextmanager
def _zip_writer(out: BinaryIO) -> Iterator[zipfile.ZipFile]:
    """A ZipFile on ``out``; on any error ``out`` is truncated back so that no partial
    container that still looks valid is left behind."""
    if not out.seekable():
        raise ValueError("out must be a seekable binary stream")
    start = out.tell()
    zf = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
    try:
        yield zf
    except BaseException:
        with suppress(Exception):
            zf.close()
        with suppress(Exception):
            out.seek(start)
            out.truncate()
        raise
    zf.close()


def _zipinfo(name: str, compress_type: int, when: DateTime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = compress_type
    info.external_attr = _FILE_MODE
    return info


def _write_mimetype(zf: zipfile.ZipFile, when: DateTime) -> None:
    # STORED, no extra field: the media type sits at offset 38 for sniffers.
    zf.writestr(_zipinfo(MIMETYPE_NAME, zipfile.ZIP_STORED, when), MIMETYPE.encode("ascii"))


def _write_small(zf: zipfile.ZipFile, name: str, data: bytes, when: DateTime) -> None:
    zf.writestr(_zipinfo(name, zipfile.ZIP_DEFLATED, when), data)


def _chunks(chunks: Iterable[bytes] | bytes) -> Iterable[bytes]:
    return (chunks,) if isinstance(chunks, (bytes, bytearray, memoryview)) else chunks


class _Names:
    """Name bookkeeping for one output container."""

    def __init__(self, validate: bool) -> None:
        self.validate = validate
        self.keys: set[str] = set()

    def claim(self, name: str, *, signature: bool) -> None:
        if self.validate:
            check_name(name)
        if name.endswith("/"):
            raise FormatError("unsafe_entry_name", f"{name!r}: directories cannot be written")
        in_meta_inf = name_key(name).startswith(name_key(META_INF) + "/")
        if signature and (not name.startswith(META_INF) or name == MANIFEST_NAME):
            raise FormatError("unsafe_entry_name", f"signature file {name!r} must be in META-INF/")
        if not signature and (in_meta_inf or name_key(name) == MIMETYPE_NAME):
            raise FormatError("unsafe_entry_name", f"{name!r} is reserved for the container itself")
        key = name_key(name) if self.validate else name
        if key in self.keys:
            raise FormatError("duplicate_entry", f"{name!r} appears more than once")
        self.keys.add(key)


def write_new(
    out: BinaryIO,
    files: Iterable[tuple[str, str, Iterable[bytes]]],
    signatures: Mapping[str, bytes] = _NO_SIGNATURES,
    *,
    validate_names: bool = True,
    zip64: bool = False,
) -> None:
    """Write a new ASiC-E container: ``mimetype`` (stored), the data files streamed from their
    chunk iterators (deflated unless already compressed), ``META-INF/manifest.xml``, then the
    signature files. ``zip64=True`` is needed for a data file of 2 GiB or more (it adds ZIP64
    fields to every data file's local header, so it is off by default)."""
    names = _Names(validate_names)
    names.keys.update((MIMETYPE_NAME, name_key(MANIFEST_NAME)))
    for name in signatures:
        names.claim(name, signature=True)
    when = _now()
    listed: list[tuple[str, str]] = []
    with _zip_writer(out) as zf:
        _write_mimetype(zf, when)
        for name, media_type, chunks in files:
            names.claim(name, signature=False)
            media_type = media_type or guess_mime_type(name)
            check_media_type(name, media_type)
            method = zipfile.ZIP_STORED if is_precompressed(name, media_type) else zipfile.ZIP_DEFLATED
            try:
                with zf.open(_zipinfo(name, method, when), "w", force_zip64=zip64) as sink:
                    for chunk in _chunks(chunks):
                        sink.write(chunk)
            except (zipfile.LargeZipFile, RuntimeError) as exc:
                raise FormatError("container_too_large", f"{name!r} needs ZIP64 (zip64=True): {exc}") from exc
            listed.append((name, media_type))
        _write_small(zf, MANIFEST_NAME, build_manifest(listed), when)
        for name, data in signatures.items():
            _write_small(zf, name, bytes(data), when)


def write_with_signature(
    src: AsicContainer,
    out: BinaryIO,
    signature_name: str,
    signature_xml: bytes,
    *,
    replace: bool = False,
) -> None:
    """Copy ``src`` entry by entry (content and order unchanged, compressed bytes copied as is
    and verified on the way) with ``signature_name`` added at the end, or with ``replace=True``
    substituted in place. ``mimetype`` is rewritten first and stored."""
    _Names(validate=True).claim(signature_name, signature=True)
    exists = signature_name in src.names
    if exists and not replace:
        raise FormatError("duplicate_entry", f"{signature_name!r} already exists (use replace=True)")
    if not exists:
        if replace:
            raise FormatError("not_found", f"no {signature_name!r} to replace")
        if src._has_key(signature_name):
            raise FormatError("duplicate_entry", f"{signature_name!r} clashes with an existing entry")
    if replace:
        write_replacing(src, out, {signature_name: signature_xml})
        return
    _write(src, out, {}, (signature_name, signature_xml))


def write_replacing(src: AsicContainer, out: BinaryIO, signatures: dict[str, bytes]) -> None:
    """Copy ``src`` with each of the existing signature files named in ``signatures`` substituted
    in place (an archive time-stamp added to every signature of a container at once)."""
    for name in signatures:
        _Names(validate=True).claim(name, signature=True)
        if name not in src.names:
            raise FormatError("not_found", f"no {name!r} to replace")
    _write(src, out, signatures, None)


def _write(src: AsicContainer, out: BinaryIO, replaced: dict[str, bytes], added: tuple[str, bytes] | None) -> None:
    when = _now()
    entries = list(src._raw_entries())
    with _zip_writer(out) as zf:
        zf.comment = src.comment
        _write_mimetype(zf, when)
        for info, copy in entries:
            if info.filename == MIMETYPE_NAME:
                continue
            if info.filename in replaced:
                _write_small(zf, info.filename, bytes(replaced[info.filename]), when)
            else:
                _copy_entry(zf, src, info, copy)
        if added is not None:
            _write_small(zf, added[0], bytes(added[1]), when)


def _copy_entry(
    zf: zipfile.ZipFile,
    src: AsicContainer,
    src_info: zipfile.ZipInfo,
    copy: Callable[[Callable[[bytes], object]], None],
) -> None:
    info = zipfile.ZipInfo(src_info.filename, date_time=src_info.date_time)
    info.compress_type = src_info.compress_type
    info.external_attr = src_info.external_attr
    info.create_system = src_info.create_system
    info.comment = src_info.comment
    if all(hasattr(zf, attr) for attr in _RAW_APPEND_NEEDS):
        info.CRC = src_info.CRC
        info.file_size = src_info.file_size
        info.compress_size = src_info.compress_size
        _append_raw(zf, info, copy)
        return
    # Fallback: decompress and compress again (same content, possibly different bytes).
    with zf.open(info, "w", force_zip64=src_info.file_size > zipfile.ZIP64_LIMIT) as sink:  # pragma: no cover
        for chunk in src.stream(src_info.filename):
            sink.write(chunk)


def _append_raw(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, copy: Callable[[Callable[[bytes], object]], None]
) -> None:
    """Append an entry whose compressed bytes and CRC/sizes are known, mirroring what
    ``ZipFile._open_to_write`` and ``_ZipWriteFile.close`` do (CPython 3.11-3.13)."""
    with zf._lock:  # type: ignore[attr-defined]
        if getattr(zf, "_writing", False):
            raise ValueError("another write handle is open on the ZIP file")
        info.flag_bits = 0  # sizes go in the local header: no data descriptor
        zf.fp.seek(zf.start_dir)  # type: ignore[union-attr, attr-defined]
        info.header_offset = zf.fp.tell()  # type: ignore[union-attr]
        zf._writecheck(info)  # type: ignore[attr-defined]
        zf.fp.write(info.FileHeader())  # type: ignore[union-attr]
        copy(zf.fp.write)  # type: ignore[union-attr]
        zf.filelist.append(info)
        zf.NameToInfo[info.filename] = info
        zf.start_dir = zf.fp.tell()  # type: ignore[union-attr, attr-defined]
