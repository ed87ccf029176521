"""Blob store under crashes and faults (issue 12 points 7 and 10b/c), in-process with real files and
real processes: the start-up sweep removes only provably abandoned temporaries, results are written
exclusively, everything is private whatever the umask, and storage errors become StorageUnavailable."""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remotesign.storage import process_id
from remotesign.storage.blobs import BlobExists, LocalBlobStore, temporary_name, temporary_owner
from remotesign.storage.faults import StorageUnavailable, blob_faults
from remotesign.storage.process_id import ProcessId


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _tmp(store: LocalBlobStore, owner: str, name: str = "doc", age: float = 0.0) -> Path:
    directory = store.root / "tenant" / "session"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".tmp-{owner}-0badc0de-{name}"
    path.write_bytes(b"half written")
    if age:
        os.utime(path, (time.time() - age,) * 2)
    return path


def _id_of(pid: int) -> ProcessId:
    stat_fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return ProcessId(process_id.current().host, pid, int(stat_fields[19]))


def test_sweep_keeps_what_live_processes_write_and_removes_what_is_abandoned(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    live = _id_of(sleeper.pid)
    dead_proc = subprocess.Popen(["sleep", "60"])
    dead = _id_of(dead_proc.pid)
    dead_proc.send_signal(signal.SIGKILL)
    dead_proc.wait()
    elsewhere = ProcessId("0123456789ab", live.pid, live.started)  # same pid on another host

    keep = {
        "live writer on this host": _tmp(store, str(live), "a"),
        "this process": _tmp(store, str(process_id.current()), "b"),
        "writer on another host": _tmp(store, str(elsewhere), "c"),
        "older version's name, recent": _tmp(store, "deadbeefdeadbeef", "d"),
    }
    remove = {
        "killed writer on this host": _tmp(store, str(dead), "e"),
        "pid now running another program": _tmp(store, str(ProcessId(live.host, live.pid, live.started + 1)), "f"),
        "another host, untouched for two hours": _tmp(store, str(elsewhere), "g", age=2 * 3600),
        "older version's name, untouched for two hours": _tmp(store, "deadbeefdeadbeef", "h", age=2 * 3600),
    }
    assert store.sweep_temporaries() == len(remove)
    assert [what for what, path in keep.items() if not path.exists()] == []
    assert [what for what, path in remove.items() if path.exists()] == []


def test_temporary_names_say_who_writes_them() -> None:
    name = temporary_name("prep-1234")
    assert temporary_owner(name) == process_id.current()
    assert temporary_owner(".tmp-deadbeefdeadbeef-doc") is None
    assert not process_id.known_dead(process_id.current())
    assert not process_id.known_dead(ProcessId("0123456789ab", 1, 1))  # another host: never provably dead


def test_a_zombie_owner_is_dead(tmp_path: Path) -> None:
    proc = subprocess.Popen(["true"])
    owner = _id_of(proc.pid)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert process_id.known_dead(owner)  # killed, not yet reaped by its parent
    proc.wait()
    assert process_id.known_dead(owner)


def test_exclusive_write_never_replaces_a_finished_result(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with store.writer("t/s", "result", exclusive=True) as out:
        out.write(b"first owner's signature")
    with pytest.raises(BlobExists), store.writer("t/s", "result", exclusive=True) as out:
        out.write(b"second owner's signature")
    assert store.read_bytes("t/s", "result") == b"first owner's signature"
    assert [p.name for p in (tmp_path / "t" / "s").iterdir()] == ["result"]


def test_everything_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        store = LocalBlobStore(tmp_path / "blobs")
        store.put_bytes("tenant/session", "doc", b"secret")
        with store.writer("tenant/other", "result", exclusive=True) as out:
            out.write(b"x")
    finally:
        os.umask(previous)
    for path in [tmp_path / "blobs", *(tmp_path / "blobs").rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_storage_errnos_become_storage_unavailable() -> None:
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EFBIG, errno.EDQUOT):
        with pytest.raises(StorageUnavailable) as info, blob_faults():
            raise OSError(code, os.strerror(code))
        assert info.value.component == "blobs" and "try again later" in info.value.message
    with pytest.raises(FileNotFoundError), blob_faults():  # not a condition of the volume: stays what it is
        raise FileNotFoundError(errno.ENOENT, "gone")


def test_a_write_past_the_file_size_limit_is_storage_unavailable(tmp_path: Path) -> None:
    """A genuine EFBIG (RLIMIT_FSIZE) in a child process: the write fails, nothing half-written stays."""
    code = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from remotesign.storage.blobs import LocalBlobStore
from remotesign.storage.faults import StorageUnavailable
store = LocalBlobStore(__import__('pathlib').Path({str(tmp_path)!r}))
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    store.put_bytes("t/s", "big", b"x" * (256 * 1024))
except StorageUnavailable as exc:
    print("storage_unavailable", exc.reason)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("storage_unavailable EFBIG"), out.stdout + out.stderr
    assert list((tmp_path / "t" / "s").iterdir()) == []
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the limit was the child's only


def test_health_probe_fails_on_an_unusable_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.check_writable()
    (tmp_path / "blobs").rmdir()
    (tmp_path / "blobs").write_bytes(b"not a directory any more")
    with pytest.raises(StorageUnavailable):
        store.check_writable()
