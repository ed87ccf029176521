"""The state directory is private to the service: directories 0700, files 0600, whatever the umask.

The home holds the database, the documents of every relying party and the master key; another
local account must not read any of it. The modes are set explicitly where things are created
(umask can only take bits away, never add them), the roots are tightened at every start (which
also closes an installation made before this rule), and ``serve`` runs with umask 077 so that
files made by libraries (SQLite's -wal/-shm, temporary files of validation) follow suit.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from sqlalchemy.engine import make_url

DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def private_umask() -> int:
    """Make everything this process creates from now on private; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 and make an existing one 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as 0600 unless it exists; make an existing one 0600."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _chmod(path, FILE_MODE)
    return path


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database)


def prepare_state(home: Path, database_url: str, private_files: tuple[Path, ...] = ()) -> None:
    """Before anything is written: the home as 0700, the SQLite file created 0600 before SQLite
    creates it 0644 (its -wal/-shm/-journal copy the database file's mode), and existing private
    files tightened."""
    private_dir(home)
    db = sqlite_path(database_url)
    if db is not None:
        if not db.parent.exists():
            private_dir(db.parent)
        private_file(db)
        for suffix in SQLITE_SIDECARS:
            _chmod(db.with_name(db.name + suffix), FILE_MODE)
    for path in private_files:
        _chmod(path, FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    """chmod when the path exists and is ours; someone else's file (a shared mount) is left alone."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid != os.geteuid() or st.st_mode & 0o777 == mode:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:  # a read-only mount (a container secret, systemd LoadCredential=): its owner's say
        if exc.errno != errno.EROFS:
            raise
