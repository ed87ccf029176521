"""Reading ASiC-E containers (ETSI EN 319 162-1) uploaded by relying parties: validated once on
open, then streamed entry by entry with bounded memory."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import struct
import zipfile
from collections.abc import Callable, Iterator
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import unquote

from ..base import FormatError, Limits
from .manifest import parse_manifest
from .names import MANIFEST_NAME, META_INF, MIMETYPE, MIMETYPE_NAME, check_name, guess_mime_type, name_key
from .zipio import (
    FLAG_DATA_DESCRIPTOR,
    FLAG_ENCRYPTED,
    MAX_DATA_DESCRIPTOR,
    SUPPORTED_METHODS,
    RandomAccess,
    invalid,
    iter_entry,
    locate_data,
    peek_end_record,
)

_BOMB_THRESHOLD = 1 << 20  # ratio checks apply above 1 MiB uncompressed
_MAX_CD_RECORD = 2048  # generous average central-directory record size, bounds zipfile's parsing
_MAX_MIMETYPE_BYTES = 256

#: A path, or a readable, seekable binary file object.
Source = str | os.PathLike[str] | BinaryIO


ADOC_MIMETYPE_PREFIX = "application/vnd.lt.archyvai.adoc"


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    mime_type: str


def _too_large(message: str) -> FormatError:
    return FormatError("container_too_large", message)


class _ChunkReader(io.RawIOBase):
    """A read-only binary stream over an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


class AsicContainer:
    """An opened, validated ASiC-E container. Keeps the file open until :meth:`close`."""

    data_objects: list[Entry]
    signature_names: list[str]
    cades_signature_names: list[str]
    manifest: dict[str, str]
    names: list[str]  # every entry, in zip order
    comment: bytes  # the zip comment

    def __init__(self, fp: BinaryIO, limits: Limits, lenient: bool = False) -> None:
        self.limits = limits
        #: Lenient opening is for validation: ASiC-S and a missing or wrong mimetype are
        #: accepted, and manifest entries without a file are recorded instead of refused, so
        #: the validator can report them per signature. Safety checks stay strict.
        self.lenient = lenient
        #: what a lenient reader tolerated but a validator must report (duplicate entries)
        self.structure_errors: list[str] = []
        self.mimetype: str | None = None
        self.manifest_missing: list[str] = []
        self._fp = fp
        self._zip: zipfile.ZipFile | None = None
        self._ra: RandomAccess
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._offsets: dict[str, int] = {}
        self._keys: set[str] = set()

    @classmethod
    def open(cls, source: Source, limits: Limits | None = None, *, lenient: bool = False) -> AsicContainer:
        """Open and validate a container from a path, or from a readable, seekable binary file
        object, which the container then owns (closed by :meth:`close`, also on failure)."""
        fp = _as_file(source)
        container = cls(fp, limits or Limits(), lenient)
        try:
            container._load()
        except BaseException:
            container.close()
            raise
        return container

    # -- validation ---------------------------------------------------------------------------

    def _load(self) -> None:
        limits = self.limits
        self._ra = RandomAccess(self._fp)
        end = peek_end_record(self._ra)
        if end is not None:
            count, cd_size = end
            if count > limits.max_entries:
                raise _too_large(f"{count} entries, the limit is {limits.max_entries}")
            if cd_size > max(limits.max_entries, 1) * _MAX_CD_RECORD:
                raise _too_large(f"central directory of {cd_size} bytes")
        try:
            self._zip = zipfile.ZipFile(self._fp, "r")
        except MemoryError:
            raise
        except Exception as exc:  # zipfile raises many types on hostile input
            raise invalid(f"not a readable ZIP file ({exc})") from exc
        self.comment = self._zip.comment
        infos = self._zip.infolist()
        if len(infos) > limits.max_entries:
            raise _too_large(f"{len(infos)} entries, the limit is {limits.max_entries}")
        self._check_entries(infos)
        self._check_layout(infos)
        infos = [info for info in infos if self._infos.get(info.filename) is info]  # a duplicate's first entry
        self.names = [info.filename for info in infos]
        self._check_mimetype()
        self.manifest = self._read_manifest()
        self._classify(infos)

    def _check_entries(self, infos: list[zipfile.ZipInfo]) -> None:
        limits = self.limits
        total = 0
        for info in infos:
            check_name(info.orig_filename)  # orig_filename keeps what zipfile cuts at a NUL
            key = name_key(info.filename)
            if key in self._keys:
                message = f"entry {info.filename!r} appears more than once"
                if not self.lenient:
                    raise FormatError("duplicate_entry", message)
                # a validator reports it (every signature fails its format check); the first one is read
                self.structure_errors.append(message)
                continue
            self._keys.add(key)
            self._infos[info.filename] = info
            if info.flag_bits & FLAG_ENCRYPTED:
                raise invalid(f"entry {info.filename!r} is encrypted")
            if info.compress_type not in SUPPORTED_METHODS:
                raise invalid(f"entry {info.filename!r}: unsupported compression method {info.compress_type}")
            if info.file_size > limits.max_entry_uncompressed:
                raise _too_large(f"entry {info.filename!r} has {info.file_size} bytes uncompressed")
            total += info.file_size
            if total > limits.max_total_uncompressed:
                raise _too_large(f"more than {limits.max_total_uncompressed} bytes uncompressed in total")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise invalid(f"stored entry {info.filename!r} has different compressed and plain sizes")
            if info.file_size > _BOMB_THRESHOLD and info.file_size > limits.max_ratio * info.compress_size:
                raise FormatError(
                    "zip_bomb",
                    f"entry {info.filename!r} inflates {info.compress_size} bytes to {info.file_size}",
                )

    def _check_layout(self, infos: list[zipfile.ZipInfo]) -> None:
        """Entries must tile the file from offset 0 to the central directory: no overlap (the
        overlapping-entries bomb) and no hidden bytes between entries, only room for a data
        descriptor, so every ZIP reader sees the same entries."""
        spans = []
        for info in infos:
            offset = locate_data(self._ra, info)
            self._offsets[info.filename] = offset
            spans.append((info.header_offset, offset + info.compress_size, info))
        spans.sort(key=lambda span: span[0])
        cd_start = getattr(self._zip, "start_dir", None)
        bounds = [start for start, _, _ in spans[1:]] + [cd_start]
        if spans and spans[0][0] != 0:
            raise invalid("data before the first entry")
        for (_, end, info), next_start in zip(spans, bounds):
            if next_start is None:
                continue
            gap = next_start - end
            slack = MAX_DATA_DESCRIPTOR if info.flag_bits & FLAG_DATA_DESCRIPTOR else 0
            if gap < 0:
                raise invalid(f"entry {info.filename!r} overlaps the next entry")
            if gap > slack:
                raise invalid(f"{gap} unexpected bytes after entry {info.filename!r}")

    def _check_mimetype(self) -> None:
        info = self._infos.get(MIMETYPE_NAME)
        if info is None:
            if self.lenient:
                return
            raise FormatError("invalid_mimetype", "no mimetype entry")
        if info.file_size > _MAX_MIMETYPE_BYTES:
            raise FormatError("invalid_mimetype", "mimetype entry is too large")
        content = b"".join(self.stream(MIMETYPE_NAME))
        self.mimetype = content.strip().decode("ascii", "replace")
        if self.lenient:
            return
        if content.strip() != MIMETYPE.encode("ascii"):
            raise FormatError("invalid_mimetype", f"mimetype is {content[:80]!r}, expected {MIMETYPE}")

    def _read_manifest(self) -> dict[str, str]:
        if MANIFEST_NAME not in self._infos:
            return {}
        manifest: dict[str, str] = {}
        for path, media_type in parse_manifest(self.read_small(MANIFEST_NAME)):
            name = self._resolve(path)
            if name is None and self.lenient:
                self.manifest_missing.append(path)
                continue
            if name is None:
                raise FormatError("invalid_manifest", f"manifest lists {path!r}, which is not in the container")
            manifest[name] = media_type
        return manifest

    def _resolve(self, path: str) -> str | None:
        """The entry a manifest full-path designates: as written, else percent-decoded (some
        producers write IRIs); a directory path matches when entries live under it."""
        for candidate in dict.fromkeys((path, unquote(path))):
            if candidate in self._infos:
                return candidate
            if candidate.endswith("/") and any(n.startswith(candidate) for n in self._infos):
                return candidate
        return None

    def _classify(self, infos: list[zipfile.ZipInfo]) -> None:
        self.data_objects, self.signature_names, self.cades_signature_names = [], [], []
        for info in infos:
            name = info.filename
            if info.is_dir() or name == MIMETYPE_NAME:
                continue
            if name.strip().lower() == MIMETYPE_NAME and self.lenient:
                # "Mimetype", "mimetype ": meant as the media type entry, but not one; which
                # container this is cannot be told, so nothing in it is validated as signed
                self.structure_errors.append(f"entry {name!r} is not named exactly {MIMETYPE_NAME!r}")
                continue
            if name.startswith(META_INF):
                base = name[len(META_INF) :]
                if "/" in base:
                    # the Lithuanian ADOC keeps its XAdES signatures in META-INF/signatures/
                    if (self.mimetype or "").startswith(ADOC_MIMETYPE_PREFIX) and base.startswith("signatures/") \
                            and "/" not in base[len("signatures/"):] and base.endswith(".xml"):
                        self.signature_names.append(name)
                    continue
                if fnmatch.fnmatchcase(base, "*signatures*.xml"):
                    self.signature_names.append(name)
                elif fnmatch.fnmatchcase(base, "*signature*.p7s"):
                    self.cades_signature_names.append(name)
                continue
            mime = self.manifest.get(name) or guess_mime_type(name)
            self.data_objects.append(Entry(name=name, size=info.file_size, mime_type=mime))

    # -- access -------------------------------------------------------------------------------

    def _info(self, name: str) -> zipfile.ZipInfo:
        if self._zip is None:
            raise ValueError("container is closed")
        info = self._infos.get(name)
        if info is None:
            raise FormatError("not_found", f"no entry {name!r} in the container")
        return info

    def size(self, name: str) -> int:
        """Declared uncompressed size of an entry."""
        return self._info(name).file_size

    def stream(self, name: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Decompressed content in chunks of at most ``chunk_size`` bytes, capped at the declared
        size (``zip_bomb`` if more comes out) and CRC-checked at the end."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        info = self._info(name)
        return iter_entry(self._ra, info, self._offsets[name], chunk_size)

    def open_entry(self, name: str) -> BinaryIO:
        """The entry as a read-only file, streamed: what a format or a validator reads a data
        object through (never the whole entry in memory)."""
        return io.BufferedReader(_ChunkReader(self.stream(name)))  # type: ignore[arg-type]

    def read_small(self, name: str, max_bytes: int | None = None) -> bytes:
        limit = self.limits.max_xml_bytes if max_bytes is None else max_bytes
        info = self._info(name)
        if info.file_size > limit:
            raise _too_large(f"entry {name!r} has {info.file_size} bytes, the limit is {limit}")
        return b"".join(self.stream(name))

    def digest(self, name: str, hash_name: str = "sha256") -> bytes:
        hasher = hashlib.new(hash_name)
        for chunk in self.stream(name):
            hasher.update(chunk)
        return hasher.digest()

    def next_signature_name(self) -> str:
        n = 0
        while name_key(f"{META_INF}signatures{n}.xml") in self._keys:
            n += 1
        return f"{META_INF}signatures{n}.xml"

    def _has_key(self, name: str) -> bool:
        return name_key(name) in self._keys

    def _raw_entries(self) -> Iterator[tuple[zipfile.ZipInfo, Callable[[Callable[[bytes], object]], None]]]:
        """For the writer: each entry in zip order with a function that feeds its compressed
        bytes, verified (size cap, CRC) on the way, to a callback."""
        self._info(MIMETYPE_NAME)  # raises when closed
        for name in self.names:
            info = self._infos[name]

            def copy(write: Callable[[bytes], object], info: zipfile.ZipInfo = info) -> None:
                for _ in iter_entry(self._ra, info, self._offsets[info.filename], 1 << 20, on_raw=write):
                    pass

            yield info, copy

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        self._fp.close()

    def __enter__(self) -> AsicContainer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _as_file(source: Source) -> BinaryIO:
    if isinstance(source, (str, bytes, os.PathLike)):
        return io.open(os.fspath(source), "rb")
    return source


def is_asic_e(source: Source) -> bool:
    """Cheap sniff: ``mimetype`` first with the ASiC-E media type, or (as some producers do) a
    ZIP with META-INF/manifest.xml and that mimetype anywhere. Never raises. A file object is
    left open, at the position it had."""
    position = None
    try:
        if not isinstance(source, (str, bytes, os.PathLike)):
            position = source.tell()
        with _as_file(source) if position is None else nullcontext(source) as fp:
            ra = RandomAccess(fp)
            end = peek_end_record(ra)
            if end is None:
                return False
            head = ra.read(0, 30 + len(MIMETYPE_NAME) + 0xFFFF + _MAX_MIMETYPE_BYTES)
            if _first_entry_is_mimetype(head):
                return True
            limits = Limits()
            if end[0] > limits.max_entries or end[1] > limits.max_entries * _MAX_CD_RECORD:
                return False
            with zipfile.ZipFile(fp) as zf:
                infos = zf.infolist()
                first = bool(infos) and infos[0].filename == MIMETYPE_NAME
                names = {info.filename for info in infos}
                if MIMETYPE_NAME not in names or not (first or MANIFEST_NAME in names):
                    return False
                info = zf.getinfo(MIMETYPE_NAME)
                if info.file_size > _MAX_MIMETYPE_BYTES:
                    return False
                with zf.open(info) as member:
                    return member.read(_MAX_MIMETYPE_BYTES + 1).strip() == MIMETYPE.encode("ascii")
    except Exception:
        return False
    finally:
        if position is not None:
            with suppress(Exception):
                source.seek(position)  # type: ignore[union-attr]


def _first_entry_is_mimetype(head: bytes) -> bool:
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return False
    _sig, _ver, flags, method, _t, _d, _crc, csize, _usize, name_len, extra_len = struct.unpack_from(
        "<4s5H3L2H", head
    )
    if method != zipfile.ZIP_STORED or flags & (FLAG_ENCRYPTED | FLAG_DATA_DESCRIPTOR):
        return False
    if head[30 : 30 + name_len] != MIMETYPE_NAME.encode("ascii") or csize > _MAX_MIMETYPE_BYTES:
        return False
    start = 30 + name_len + extra_len
    return head[start : start + csize].strip() == MIMETYPE.encode("ascii")
