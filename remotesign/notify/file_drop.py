"""Messages written to a directory instead of sent: the demo and development stand-ins for an
SMTP server and an SMS gateway (``REMOTESIGN_MAIL_DIR``, ``REMOTESIGN_SMS_DIR``), so the embedded
default (``scripts/serve.sh``) can register signers and send them codes with nothing else running.

Each message is one file (``.eml`` for mail, ``.txt`` for SMS), private to the service's user and
written whole (a temporary name, then renamed). The messages carry passcodes and one-time codes:
whoever reads the directory can sign as the recipients, so a real deployment sets an SMTP server
and an SMS gateway instead."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from remotesign.notify.smtp import build_message


def _drop(directory: Path, suffix: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}{suffix}"
    tmp = directory / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    final = directory / name
    os.replace(tmp, final)
    return final


class FileMailer:
    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        _drop(self.directory, ".eml", bytes(build_message(self.sender, to, subject, body)))


class FileSmsGateway:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, to: str, text: str) -> None:
        _drop(self.directory, ".txt", f"To: {to}\n\n{text}\n".encode())
