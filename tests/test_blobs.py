"""Blob store: atomic writes (never a half-written blob), limits, and names that cannot escape."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remotesign.storage.blobs import BlobError, BlobTooLarge, LocalBlobStore


def test_put_streams_and_hashes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    chunks = [b"a" * 1000, b"b" * 5000, b""]
    info = store.put("tenant-1/session-1", "doc.pdf", iter(chunks))
    assert info.size == 6000 and info.sha256 == hashlib.sha256(b"".join(chunks)).digest()
    assert store.read_bytes("tenant-1/session-1", "doc.pdf") == b"".join(chunks)


def test_crash_mid_write_leaves_old_version_and_no_partial(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put_bytes("t", "doc", b"version 1")

    def failing() -> Iterator[bytes]:
        yield b"version 2, first half"
        raise OSError("disk gone")

    with pytest.raises(OSError):
        store.put("t", "doc", failing())
    assert store.read_bytes("t", "doc") == b"version 1"
    assert [p.name for p in (tmp_path / "t").iterdir()] == ["doc"]


def test_size_limit_is_all_or_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobTooLarge):
        store.put("t", "big", iter([b"x" * 600, b"x" * 600]), max_size=1000)
    assert not store.exists("t", "big")
    assert list((tmp_path / "t").iterdir()) == []


def test_temporaries_of_a_killed_process_are_swept(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    (tmp_path / "t").mkdir()
    old = tmp_path / "t" / ".tmp-deadbeef-doc"  # an older version's name: only its age can tell
    old.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    assert store.sweep_temporaries() == 1
    assert not store.exists("t", "doc") and not old.exists()


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "", ".hidden", "x" * 200, "a\x00b", "a b"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobError):
        store.put_bytes("t", name, b"x")
    if "/" not in name:  # nested namespaces are allowed; every part is checked
        with pytest.raises(BlobError):
            store.put_bytes(f"t/{name}" if name else "t//x", "ok", b"x")


def test_namespace_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put_bytes("t/s1", "a", b"1")
    store.put_bytes("t/s1", "b", b"2")
    store.put_bytes("t/s2", "a", b"3")
    assert store.delete_namespace("t/s1") == 2
    assert not store.exists("t/s1", "a") and store.exists("t/s2", "a")
    with pytest.raises(BlobError):
        store.open("t/s1", "a")
