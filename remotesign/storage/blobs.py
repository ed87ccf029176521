"""Blob storage for documents and containers, behind a small interface so an object store can
replace the local disk. Blobs are namespaced by tenant: a caller can only name blobs inside the
namespace it passes, and names are validated so no path escapes its directory.

Writes are atomic: data streams into a temporary file in the target directory, is fsync'ed, then
renamed over the final name (and the directory fsync'ed), so readers see the whole blob or none.
An exclusive write links the temporary file to its name instead, so two writers of one result
(a crashed owner and the process that took over its operation) can never replace each other's.

Temporary files are named ``.tmp-<writer process id>-<random>-<name>`` (storage/process_id.py):
the sweep at start removes only those provably abandoned, i.e. of a dead process on this host or
untouched for longer than a bound, never those another live process is writing.

Everything is private (directories 0700, files 0600), and an OSError that says the volume is full,
read-only or unwritable becomes StorageUnavailable (storage/faults.py).
"""

from __future__ import annotations

import abc
import errno
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from remotesign.storage import process_id
from remotesign.storage.faults import StorageUnavailable, blob_faults
from remotesign.storage.private import DIR_MODE, FILE_MODE

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
CHUNK = 1 << 20
TMP_PREFIX = ".tmp-"
# A temporary file nobody wrote to for this long is abandoned whoever made it; a live writer
# touches its file far more often (uploads and signing stream continuously).
TMP_MAX_AGE_SECONDS = 3600.0


class BlobError(Exception):
    """Bad blob name, missing blob, or size limit exceeded."""


class BlobTooLarge(BlobError):
    pass


class BlobExists(BlobError):
    """An exclusive write found the name taken: another writer finished first."""


@dataclass(frozen=True)
class BlobInfo:
    namespace: str
    name: str
    size: int
    sha256: bytes


def _check(part: str) -> str:
    if not _NAME.match(part) or ".." in part:
        raise BlobError(f"invalid blob name {part!r}")
    return part


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def put(self, namespace: str, name: str, chunks: Iterable[bytes], max_size: int | None = None) -> BlobInfo:
        """Store ``chunks`` as one blob, hashing while writing; all-or-nothing."""

    @abc.abstractmethod
    def writer(self, namespace: str, name: str, exclusive: bool = False) -> AbstractContextManager[BinaryIO]:
        """A readable, writable, seekable file that becomes the blob when the block ends without an
        exception (and vanishes otherwise): what PDF signing needs to stream its output. With
        ``exclusive`` an existing blob of that name is kept and BlobExists raised instead."""

    @abc.abstractmethod
    def open(self, namespace: str, name: str) -> BinaryIO:
        """A readable, seekable file object of the blob."""

    @abc.abstractmethod
    def delete(self, namespace: str, name: str) -> None:
        """Remove a blob if there is one (no error when there is none: an object store cannot
        tell without a request of its own, and no caller needs to know)."""

    @abc.abstractmethod
    def exists(self, namespace: str, name: str) -> bool: ...

    def delete_namespace(self, namespace: str) -> int:  # noqa: B027 - optional bulk delete
        """Remove every blob of a namespace (e.g. a closed session); returns how many."""
        return 0

    def delete_known(self, namespace: str, names: Iterable[str]) -> None:
        """Remove the namespace's blobs ``names`` at least (the ones its owner recorded): what a
        closed session needs at once. Here the whole namespace goes, which costs no more on a
        disk; an object store deletes just those in one request and leaves finding the rest
        (a crash's leftovers: listing, pending uploads) to a later ``delete_namespace``."""
        del names
        self.delete_namespace(namespace)

    def check_writable(self) -> None:  # noqa: B027 - optional readiness probe
        """Raise StorageUnavailable unless a small blob can be written now (health checks)."""

    def put_bytes(self, namespace: str, name: str, data: bytes) -> BlobInfo:
        return self.put(namespace, name, [data])

    def local_path(self, namespace: str, name: str) -> Path | None:
        """The blob as a local file when the store keeps it on disk (readers that need a path,
        such as validation, then avoid a copy); None otherwise."""
        return None

    def location(self, namespace: str, name: str) -> str:
        """Where the blob is, for an operator (a path, an s3:// URL)."""
        return f"{namespace}/{name}"

    def read_bytes(self, namespace: str, name: str) -> bytes:
        with self.open(namespace, name) as fh:
            return fh.read()

    def iter_chunks(self, namespace: str, name: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        with self.open(namespace, name) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        with blob_faults():
            self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            if self.root.stat().st_uid == os.geteuid():
                os.chmod(self.root, DIR_MODE)

    def _dir(self, namespace: str) -> Path:
        parts = [_check(p) for p in namespace.split("/")]
        return self.root.joinpath(*parts)

    def _path(self, namespace: str, name: str) -> Path:
        return self._dir(namespace) / _check(name)

    def _make_dirs(self, directory: Path) -> None:
        """Each missing level 0700 (``mkdir(parents=True)`` would give parents the umask's mode)."""
        current = self.root
        for part in directory.relative_to(self.root).parts:
            current = current / part
            try:
                current.mkdir(mode=DIR_MODE)
            except FileExistsError:
                pass

    def local_path(self, namespace: str, name: str) -> Path | None:
        path = self._path(namespace, name)
        return path if path.is_file() else None

    def location(self, namespace: str, name: str) -> str:
        return str(self._path(namespace, name))

    def put(self, namespace: str, name: str, chunks: Iterable[bytes], max_size: int | None = None) -> BlobInfo:
        digest = hashlib.sha256()
        size = 0
        with self.writer(namespace, name) as out:
            for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise BlobTooLarge(f"blob exceeds {max_size} bytes")
                digest.update(chunk)
                out.write(chunk)
        return BlobInfo(namespace=namespace, name=name, size=size, sha256=digest.digest())

    @contextmanager
    def writer(self, namespace: str, name: str, exclusive: bool = False) -> Iterator[BinaryIO]:
        final = self._path(namespace, name)
        with blob_faults():
            self._make_dirs(final.parent)
            tmp = final.parent / temporary_name(name)
            try:
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
                with os.fdopen(fd, "w+b") as out:
                    yield out
                    out.flush()
                    os.fsync(out.fileno())
                if exclusive:
                    _link_new(tmp, final)
                else:
                    os.replace(tmp, final)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(final.parent)

    def open(self, namespace: str, name: str) -> BinaryIO:
        try:
            with blob_faults():
                return open(self._path(namespace, name), "rb")
        except FileNotFoundError as exc:
            raise BlobError(f"no blob {namespace}/{name}") from exc

    def delete(self, namespace: str, name: str) -> None:
        with blob_faults():
            self._path(namespace, name).unlink(missing_ok=True)

    def exists(self, namespace: str, name: str) -> bool:
        return self._path(namespace, name).is_file()

    def delete_namespace(self, namespace: str) -> int:
        directory = self._dir(namespace)
        if not directory.is_dir():
            return 0
        count = 0
        with blob_faults():
            for path in sorted(directory.rglob("*"), reverse=True):
                if path.is_file():
                    path.unlink(missing_ok=True)
                    count += 1
                elif path.is_dir():
                    path.rmdir()
            directory.rmdir()
        return count

    def check_writable(self) -> None:
        """Create, fsync and remove a small file in the root: fails on a full, read-only or
        unwritable volume (the probe is a temporary file, so a crash mid-probe is swept too)."""
        probe = self.root / temporary_name("health-probe")
        try:
            with blob_faults():
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                try:
                    os.write(fd, b"remotesign storage probe\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                    probe.unlink(missing_ok=True)
        except OSError as exc:  # e.g. ENOTDIR: the blob root is no longer a directory
            raise StorageUnavailable("blobs", str(exc)) from exc

    def sweep_temporaries(self, max_age: float = TMP_MAX_AGE_SECONDS, now: float | None = None) -> int:
        """Remove temporaries left by a crash mid-write (they were never visible as blobs), but only
        provably abandoned ones: of a process on this host that is gone, or untouched for
        ``max_age`` seconds. Other live processes sharing the directory keep theirs."""
        now = time.time() if now is None else now
        count = 0
        for tmp in self.root.rglob(TMP_PREFIX + "*"):
            try:
                idle = now - tmp.stat().st_mtime
            except FileNotFoundError:
                continue
            if idle >= max_age or process_id.known_dead(temporary_owner(tmp.name)):
                tmp.unlink(missing_ok=True)
                count += 1
        return count


def temporary_name(name: str) -> str:
    """``.tmp-<this process>-<random>-<name>``: the sweep can tell whose it is."""
    return f"{TMP_PREFIX}{process_id.current()}-{secrets.token_hex(4)}-{name}"


def temporary_owner(file_name: str) -> process_id.ProcessId | None:
    """The writer named in a temporary file name (None for names of older versions)."""
    if not file_name.startswith(TMP_PREFIX):
        return None
    return process_id.ProcessId.parse(file_name[len(TMP_PREFIX):].split("-", 1)[0])


def _link_new(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` unless that name exists (BlobExists)."""
    try:
        os.link(tmp, final)
    except FileExistsError as exc:
        raise BlobExists(f"blob {final.name} exists") from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        # a file system without hard links: the check and the rename are two steps
        if final.exists():
            raise BlobExists(f"blob {final.name} exists") from exc
        os.replace(tmp, final)
        return
    tmp.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
