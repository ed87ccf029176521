"""The state directory is private whatever the umask (issue 12 point 7), and a start on a shared blob
directory leaves other live processes' temporary files alone (point 10b).

The service is started with umask 022 (inherited from the test process), used for a whole signing
flow, and every directory and file under its home must then be 0700/0600; a second start on an
installation made world-readable (as before this rule) tightens it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from remotesign.storage import process_id
from tests.crash_tools import session_dir
from tests.harness import Service, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi, issue_card

HARNESS_FILES = {"service.log"}  # written by the test harness, not by the service


def start_with_umask(home: Path, port: int, umask: int) -> Service:
    previous = os.umask(umask)
    try:
        return Service(home, port).start()
    finally:
        os.umask(previous)


def modes(home: Path) -> dict[str, str]:
    """Every path under ``home`` whose mode is not 0700 (directory) / 0600 (file)."""
    wrong = {}
    for path in [home, *home.rglob("*")]:
        if path.name in HARNESS_FILES:
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong[str(path.relative_to(home))] = oct(mode)
    return wrong


def test_state_is_private_whatever_the_umask(tmp_path_factory: pytest.TempPathFactory) -> None:
    home, port = tmp_path_factory.mktemp("private-home"), free_port()
    os.chmod(home, 0o755)
    svc = start_with_umask(home, port, 0o022)
    try:
        demo = svc.demo_client()
        api = SignApi(svc, svc.token(demo["client_id"], demo["client_secret"]))
        card = issue_card(svc, tmp_path_factory.mktemp("card"), "rsa")
        sid = api.start()
        api.upload(sid, "contract.pdf", pdf_bytes())
        api.sign_sessions([sid], card, sign_as_pdf=True, archive=True)
        xsid = api.start()
        api.upload(xsid, "letter.txt", b"hello")
        api.sign_sessions([xsid], card, sign_as_pdf=False)
        names = {p.name for p in home.iterdir()}
        assert {"remotesign.db", "remotesign.db-wal", "master.key", "demo-client.json", "blobs"} <= names, names
        assert modes(home) == {}
    finally:
        svc.stop()

    # An installation from before this rule: world-readable home, database and blobs root.
    for path, mode in ((home, 0o755), (home / "remotesign.db", 0o644), (home / "blobs", 0o755),
                       (home / "master.key", 0o644)):
        os.chmod(path, mode)
    svc = start_with_umask(home, port, 0o022)
    try:
        assert modes(home) == {}
    finally:
        svc.stop()


def test_start_sweeps_only_abandoned_temporaries(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A second process starting on the blob directory: what the live writer (this test process, on
    this host) is writing stays; what a killed writer or a writer idle for hours left goes."""
    home, port = tmp_path_factory.mktemp("sweep-home"), free_port()
    svc = Service(home, port).start()
    try:
        demo = svc.demo_client()
        api = SignApi(svc, svc.token(demo["client_id"], demo["client_secret"]))
        sid = api.start()
        api.upload(sid, "contract.pdf", pdf_bytes())
        directory = session_dir(home, sid)
        assert directory is not None

        killed = subprocess.Popen(["sleep", "600"])
        fields = Path(f"/proc/{killed.pid}/stat").read_text().rsplit(")", 1)[1].split()
        killed_id = process_id.ProcessId(process_id.current().host, killed.pid, int(fields[19]))
        killed.send_signal(signal.SIGKILL)
        killed.wait()

        live = directory / f".tmp-{process_id.current()}-00000001-upload"
        live.write_bytes(b"being written by a live process")
        dead = directory / f".tmp-{killed_id}-00000002-upload"
        dead.write_bytes(b"left by a killed process")
        idle = directory / ".tmp-0123456789abcdef-upload"  # an older version's name
        idle.write_bytes(b"untouched for hours")
        os.utime(idle, (time.time() - 3 * 3600,) * 2)

        second = Service(home, free_port()).start()  # shares the home (database and blobs) with svc
        second.stop()
        assert live.exists() and not dead.exists() and not idle.exists()
        assert api.list(sid)[0]["name"] == "contract.pdf"  # the first service goes on
        live.unlink()
    finally:
        svc.stop()


def test_a_private_file_on_a_read_only_mount_is_left_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A master key mounted read-only (a container secret, systemd's LoadCredential=) cannot be
    tightened: the start goes on with it; any other failure to tighten still stops it."""
    import errno
    import os

    from remotesign.storage import private

    key = tmp_path / "master.key"
    key.write_text("secret\n")
    key.chmod(0o640)

    def refuse(path: object, mode: int, errno_value: int = errno.EROFS) -> None:
        raise OSError(errno_value, os.strerror(errno_value))

    monkeypatch.setattr(private.os, "chmod", refuse)
    private._chmod(key, 0o600)  # read-only file system: left alone
    monkeypatch.setattr(private.os, "chmod", lambda p, m: refuse(p, m, errno.EIO))
    with pytest.raises(OSError):
        private._chmod(key, 0o600)
