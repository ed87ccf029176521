"""ZIP reading that :mod:`zipfile` does not offer for untrusted input: a cheap look at the end of
central directory record (to bound work before zipfile parses the directory), local-header
checks (so a reader that walks local headers sees the same entries as one that reads the central
directory), and decompression with a hard cap at the declared size."""

from __future__ import annotations

import os
import stat
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..base import FormatError

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
_LOC64 = struct.Struct("<4sLQL")
_LOC64_SIG = b"PK\x06\x07"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD64_SIG = b"PK\x06\x06"
_LFH = struct.Struct("<4s5H3L2H")
_LFH_SIG = b"PK\x03\x04"

FLAG_ENCRYPTED = 0x1
FLAG_DATA_DESCRIPTOR = 0x8
FLAG_UTF8 = 0x800
MAX_DATA_DESCRIPTOR = 24  # signature + CRC + two 8-byte (ZIP64) sizes
SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_RAW_READ = 256 << 10


def invalid(message: str) -> FormatError:
    return FormatError("invalid_container", message)


class RandomAccess:
    """Positional reads on one seekable file object: generators and threads can interleave
    freely (``os.pread`` on regular files, seek + read under a lock otherwise)."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp
        self._fd: int | None = None
        self._lock = threading.Lock()
        try:
            fd = fp.fileno()
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and hasattr(os, "pread"):
                self._fd, self.size = fd, st.st_size
        except (AttributeError, OSError, ValueError):
            pass
        if self._fd is None:
            with self._lock:
                self.size = fp.seek(0, os.SEEK_END)

    def read(self, offset: int, n: int) -> bytes:
        if n <= 0:
            return b""
        if offset < 0:
            raise invalid(f"a ZIP record points before the start of the file (offset {offset})")
        if self._fd is None:
            with self._lock:
                self._fp.seek(offset)
                return self._fp.read(n)
        data = os.pread(self._fd, n, offset)
        if len(data) == n or not data:
            return data
        parts = [data]
        got = len(data)
        while got < n:
            more = os.pread(self._fd, n - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)


def peek_end_record(ra: RandomAccess) -> tuple[int, int] | None:
    """``(entry count, central directory size)`` as the (ZIP64) end record declares them, or None
    when there is no end record (zipfile then reports the container as invalid)."""
    size = ra.size
    if size < _EOCD.size:
        return None
    tail_len = min(size, _EOCD.size + 0xFFFF)
    tail = ra.read(size - tail_len, tail_len)
    if tail[-_EOCD.size :].startswith(_EOCD_SIG) and tail[-2:] == b"\0\0":
        pos = len(tail) - _EOCD.size
    else:
        pos = tail.rfind(_EOCD_SIG, 0, len(tail) - _EOCD.size + len(_EOCD_SIG))
        if pos < 0:
            return None
    fields = _EOCD.unpack_from(tail, pos)
    count, cd_size, cd_offset = fields[4], fields[5], fields[6]
    if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        at = size - tail_len + pos
        if at >= _LOC64.size + _EOCD64.size and ra.read(at - _LOC64.size, 4) == _LOC64_SIG:
            record = ra.read(at - _LOC64.size - _EOCD64.size, _EOCD64.size)
            if record.startswith(_EOCD64_SIG):
                fields64 = _EOCD64.unpack(record)
                count, cd_size = fields64[7], fields64[8]
    return count, cd_size


def raw_name(info: zipfile.ZipInfo) -> bytes:
    encoding = "utf-8" if info.flag_bits & FLAG_UTF8 else "cp437"
    return info.orig_filename.encode(encoding)


def locate_data(ra: RandomAccess, info: zipfile.ZipInfo) -> int:
    """Offset of the entry's compressed data, after checking that its local header agrees with
    the central directory (name, method, encryption, and CRC/sizes when the header has them)."""
    where = f"entry {info.filename!r}"
    head = ra.read(info.header_offset, _LFH.size)
    if len(head) < _LFH.size or not head.startswith(_LFH_SIG):
        raise invalid(f"{where}: missing local file header")
    _sig, _ver, flags, method, _time, _date, crc, csize, usize, name_len, extra_len = _LFH.unpack(head)
    if ra.read(info.header_offset + _LFH.size, name_len) != raw_name(info):
        raise invalid(f"{where}: local header names a different file")
    if flags & FLAG_ENCRYPTED:
        raise invalid(f"{where}: encrypted")
    if method != info.compress_type:
        raise invalid(f"{where}: local header and central directory disagree on the compression method")
    if not flags & FLAG_DATA_DESCRIPTOR:
        sizes_differ = (csize != 0xFFFFFFFF and csize != info.compress_size) or (
            usize != 0xFFFFFFFF and usize != info.file_size
        )
        if crc != info.CRC or sizes_differ:
            raise invalid(f"{where}: local header and central directory disagree on CRC or sizes")
    data_offset = info.header_offset + _LFH.size + name_len + extra_len
    if data_offset + info.compress_size > ra.size:
        raise invalid(f"{where}: truncated")
    return data_offset


def iter_entry(
    ra: RandomAccess,
    info: zipfile.ZipInfo,
    data_offset: int,
    chunk_size: int,
    on_raw: Callable[[bytes], object] | None = None,
) -> Iterator[bytes]:
    """Decompressed content in chunks of at most ``chunk_size`` bytes. Raises ``zip_bomb`` before
    yielding anything past the declared size and ``invalid_container`` on truncation, size or CRC
    mismatch. ``on_raw`` sees every compressed byte as it is read (used to copy entries as is)."""
    where = f"entry {info.filename!r}"
    declared = info.file_size
    state = {"pos": data_offset, "left": info.compress_size}

    def read_raw(n: int) -> bytes:
        data = ra.read(state["pos"], min(n, state["left"]))
        if not data:
            raise invalid(f"{where}: truncated")
        state["pos"] += len(data)
        state["left"] -= len(data)
        if on_raw is not None:
            on_raw(data)
        return data

    produced = 0
    crc = 0
    if info.compress_type == zipfile.ZIP_STORED:
        while state["left"]:
            data = read_raw(chunk_size)
            produced += len(data)
            if produced > declared:
                raise FormatError("zip_bomb", f"{where}: more data than its declared size {declared}")
            crc = zlib.crc32(data, crc)
            yield data
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if state["left"] or declared:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            pending = b""
            while not inflater.eof:
                if not pending and state["left"]:
                    pending = read_raw(min(chunk_size, _RAW_READ))
                try:
                    out = inflater.decompress(pending, chunk_size)
                except zlib.error as exc:
                    raise invalid(f"{where}: corrupt deflate data ({exc})") from exc
                pending = inflater.unconsumed_tail
                if out:
                    produced += len(out)
                    if produced > declared:
                        raise FormatError("zip_bomb", f"{where}: inflates past its declared size {declared}")
                    crc = zlib.crc32(out, crc)
                    yield out
                elif not pending and not state["left"]:
                    break
            if not inflater.eof:
                raise invalid(f"{where}: truncated deflate data")
        if on_raw is not None:
            while state["left"]:  # bytes after the end of the deflate stream still belong to the entry
                read_raw(_RAW_READ)
    else:
        raise invalid(f"{where}: unsupported compression method {info.compress_type}")
    if produced != declared:
        raise invalid(f"{where}: {produced} bytes instead of the declared {declared}")
    if crc != info.CRC:
        raise invalid(f"{where}: CRC mismatch")
