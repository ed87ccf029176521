"""ASiC-S containers (EN 319 162-1 §4.3): ``mimetype`` = application/vnd.etsi.asic-s+zip, stored
and first; exactly one data object at the root; META-INF/signature.p7s (a CAdES signature
detached over the data object) or META-INF/timestamp.tst. Written new from a streamed data
object, or copied entry by entry (compressed bytes as they are) with the signature replaced.
Reading goes through :class:`~remotesign.formats.asic.AsicContainer` and its safety limits."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable
from typing import BinaryIO

from ..base import FormatError, Limits
from .names import META_INF, MIMETYPE_NAME, check_media_type, check_name, is_precompressed
from .reader import AsicContainer
from .writer import _copy_entry, _now, _write_small, _zip_writer, _zipinfo

MIMETYPE_S = "application/vnd.etsi.asic-s+zip"
SIGNATURE_NAME = "META-INF/signature.p7s"
TIMESTAMP_NAME = "META-INF/timestamp.tst"
_MAX_MIMETYPE = 256


def _mimetype(zf: zipfile.ZipFile, when: tuple[int, int, int, int, int, int]) -> None:
    zf.writestr(_zipinfo(MIMETYPE_NAME, zipfile.ZIP_STORED, when), MIMETYPE_S.encode("ascii"))


def write_new(out: BinaryIO, name: str, media_type: str, chunks: Iterable[bytes], signature: bytes, *,
              zip64: bool = False) -> None:
    """mimetype, the data object streamed from ``chunks``, META-INF/signature.p7s."""
    check_name(name)
    if name.startswith(META_INF) or "/" in name or name == MIMETYPE_NAME:
        raise FormatError("unsafe_entry_name", f"{name!r} cannot be the data object of an ASiC-S container")
    check_media_type(name, media_type)
    method = zipfile.ZIP_STORED if is_precompressed(name, media_type) else zipfile.ZIP_DEFLATED
    when = _now()
    with _zip_writer(out) as zf:
        _mimetype(zf, when)
        try:
            with zf.open(_zipinfo(name, method, when), "w", force_zip64=zip64) as sink:
                for chunk in chunks:
                    sink.write(chunk)
        except (zipfile.LargeZipFile, RuntimeError) as exc:
            raise FormatError("container_too_large", f"{name!r} needs ZIP64: {exc}") from exc
        _write_small(zf, SIGNATURE_NAME, signature, when)


def write_replacing(src: AsicContainer, out: BinaryIO, replaced: dict[str, bytes]) -> None:
    """``src`` copied with the named META-INF entries substituted; the mimetype stays ASiC-S."""
    for name in replaced:
        if name not in src.names or not name.startswith(META_INF):
            raise FormatError("not_found", f"no {name!r} to replace")
    when = _now()
    entries = list(src._raw_entries())
    with _zip_writer(out) as zf:
        zf.comment = src.comment
        _mimetype(zf, when)
        for info, copy in entries:
            if info.filename == MIMETYPE_NAME:
                continue
            if info.filename in replaced:
                _write_small(zf, info.filename, replaced[info.filename], when)
            else:
                _copy_entry(zf, src, info, copy)


def open_container(source: BinaryIO, limits: Limits | None = None) -> AsicContainer:
    """Open and check an ASiC-S container: its media type and exactly one data object."""
    source.seek(0)
    container = AsicContainer.open(source, limits, lenient=True)
    try:
        if container.mimetype != MIMETYPE_S:
            raise FormatError("invalid_mimetype", f"mimetype is {container.mimetype!r}, expected {MIMETYPE_S}")
        if len(container.data_objects) != 1:
            raise FormatError("invalid_container",
                              f"an ASiC-S container holds exactly one data object, not {len(container.data_objects)}")
    except BaseException:
        container.close()
        raise
    return container


def is_asic_s(source: BinaryIO) -> bool:
    """Cheap sniff: the first entry is ``mimetype``, stored, with the ASiC-S media type; failing
    that, a small ZIP with such a ``mimetype`` entry anywhere. Never raises; keeps the position."""
    try:
        position = source.tell()
    except (OSError, ValueError, AttributeError):
        return False
    try:
        source.seek(0)
        head = source.read(30 + len(MIMETYPE_NAME) + 0xFFFF + _MAX_MIMETYPE)
        if _first_entry(head):
            return True
        if not head.startswith(b"PK\x03\x04"):
            return False
        source.seek(0)
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
            if len(infos) > Limits().max_entries:
                return False
            info = next((i for i in infos if i.filename == MIMETYPE_NAME), None)
            if info is None or info.file_size > _MAX_MIMETYPE:
                return False
            with zf.open(info) as member:
                return member.read(_MAX_MIMETYPE + 1).strip() == MIMETYPE_S.encode("ascii")
    except Exception:  # noqa: BLE001 - garbage is simply not this format
        return False
    finally:
        try:
            source.seek(position)
        except (OSError, ValueError):
            pass


def _first_entry(head: bytes) -> bool:
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return False
    _sig, _ver, flags, method, _t, _d, _crc, csize, _usize, name_len, extra_len = struct.unpack_from(
        "<4s5H3L2H", head)
    if method != zipfile.ZIP_STORED or flags & 0x9 or csize > _MAX_MIMETYPE:
        return False
    if head[30:30 + name_len] != MIMETYPE_NAME.encode("ascii"):
        return False
    start = 30 + name_len + extra_len
    return head[start:start + csize].strip() == MIMETYPE_S.encode("ascii")
