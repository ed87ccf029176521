"""Blob storage for documents and containers, behind a small interface so an object store can
replace the local disk. Blobs are namespaced by tenant: a caller can only name blobs inside the
namespace it passes, and names are validated so no path escapes its directory.

Writes are atomic: data streams into a temporary file in the target directory, is fsync'ed, then
renamed over the final name (and the directory fsync'ed), so readers see the whole blob or none.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
CHUNK = 1 << 20


class BlobError(Exception):
    """Bad blob name, missing blob, or size limit exceeded."""


class BlobTooLarge(BlobError):
    pass


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
    def writer(self, namespace: str, name: str) -> AbstractContextManager[BinaryIO]:
        """A readable, writable, seekable file that becomes the blob when the block ends without an
        exception (and vanishes otherwise): what PDF signing needs to stream its output."""

    @abc.abstractmethod
    def open(self, namespace: str, name: str) -> BinaryIO:
        """A readable, seekable file object of the blob."""

    @abc.abstractmethod
    def delete(self, namespace: str, name: str) -> bool:
        """Remove a blob; False if it did not exist."""

    @abc.abstractmethod
    def exists(self, namespace: str, name: str) -> bool: ...

    def delete_namespace(self, namespace: str) -> int:  # noqa: B027 - optional bulk delete
        """Remove every blob of a namespace (e.g. a closed session); returns how many."""
        return 0

    def put_bytes(self, namespace: str, name: str, data: bytes) -> BlobInfo:
        return self.put(namespace, name, [data])

    def local_path(self, namespace: str, name: str) -> Path | None:
        """The blob as a local file when the store keeps it on disk (readers that need a path,
        such as validation, then avoid a copy); None otherwise."""
        return None

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
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, namespace: str) -> Path:
        parts = [_check(p) for p in namespace.split("/")]
        return self.root.joinpath(*parts)

    def _path(self, namespace: str, name: str) -> Path:
        return self._dir(namespace) / _check(name)

    def local_path(self, namespace: str, name: str) -> Path | None:
        path = self._path(namespace, name)
        return path if path.is_file() else None

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
    def writer(self, namespace: str, name: str) -> Iterator[BinaryIO]:
        final = self._path(namespace, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{secrets.token_hex(8)}-{name}"
        try:
            with open(tmp, "x+b") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)

    def open(self, namespace: str, name: str) -> BinaryIO:
        try:
            return open(self._path(namespace, name), "rb")
        except FileNotFoundError as exc:
            raise BlobError(f"no blob {namespace}/{name}") from exc

    def delete(self, namespace: str, name: str) -> bool:
        try:
            self._path(namespace, name).unlink()
            return True
        except FileNotFoundError:
            return False

    def exists(self, namespace: str, name: str) -> bool:
        return self._path(namespace, name).is_file()

    def delete_namespace(self, namespace: str) -> int:
        directory = self._dir(namespace)
        if not directory.is_dir():
            return 0
        count = 0
        for path in sorted(directory.rglob("*"), reverse=True):
            if path.is_file():
                path.unlink()
                count += 1
            elif path.is_dir():
                path.rmdir()
        directory.rmdir()
        return count

    def sweep_temporaries(self) -> int:
        """Remove temporaries left by a crash mid-write (they were never visible as blobs)."""
        count = 0
        for tmp in self.root.rglob(".tmp-*"):
            tmp.unlink(missing_ok=True)
            count += 1
        return count


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
