"""Storage faults as one exception the facades can answer with a stable error.

A full disk, a read-only or unwritable volume, or a database that does not answer are conditions of
the installation, not of the request: callers get ``storage_unavailable`` (HTTP 503 with
Retry-After) in their API's error format instead of an opaque 500, and may retry later. Only the
errnos below are translated; any other OSError is a bug and stays one.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

# Conditions of the volume: full (ENOSPC, EDQUOT), file size limit (EFBIG), read-only (EROFS),
# not writable for this process (EACCES, EPERM), failing device (EIO).
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                            errno.EIO})
RETRY_AFTER_SECONDS = 30


class StorageUnavailable(Exception):
    """The blob store or the database cannot serve the request now. ``component`` is ``blobs`` or
    ``database``; ``reason`` is for the log (it may name paths), ``message`` is safe to show."""

    def __init__(self, component: str, reason: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(f"{component}: {reason}")
        self.component = component
        self.reason = reason
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        what = "document storage" if self.component == "blobs" else "database"
        return f"the service's {what} is unavailable; try again later"


def is_storage_fault(exc: BaseException) -> bool:
    """An OSError that says something about the volume rather than about the caller's data."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


@contextmanager
def blob_faults() -> Iterator[None]:
    """Translate storage OSErrors raised in the block into StorageUnavailable('blobs')."""
    try:
        yield
    except OSError as exc:
        if is_storage_fault(exc):
            raise StorageUnavailable("blobs", f"{errno.errorcode.get(exc.errno or 0, exc.errno)}: {exc}") from exc
        raise
