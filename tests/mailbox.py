"""A real SMTP server for the tests (aiosmtpd), one per test process: every service the harness
starts delivers its mail here, and tests read what a user would find in their inbox."""

from __future__ import annotations

import email
import re
import socket
import threading
import time
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

CODE = re.compile(r"\b([A-Z2-9]{5}-[A-Z2-9]{5}-[A-Z2-9]{5}-[A-Z2-9]{5})\b")


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        msg = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.cond:
            self.messages.append(([r.lower() for r in envelope.rcpt_tos], msg))
            self.cond.notify_all()
        return "250 OK"


class Mailbox:
    def __init__(self) -> None:
        self.inbox = _Inbox()
        with socket.socket() as probe:  # aiosmtpd's start-up self-check needs the real port up front
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def messages_to(self, address: str) -> list[Message]:
        with self.inbox.cond:
            return [m for rcpts, m in self.inbox.messages if address.lower() in rcpts]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30.0) -> Message:
        """The ``count``-th message to ``address`` (waits for it)."""
        deadline = time.monotonic() + timeout
        with self.inbox.cond:
            while True:
                found = [m for rcpts, m in self.inbox.messages if address.lower() in rcpts]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no message #{count} to {address} within {timeout} s")
                self.inbox.cond.wait(left)

    def latest_code(self, address: str, count: int = 1) -> str:
        body = self.wait_for(address, count).get_payload(decode=True).decode()
        m = CODE.search(body)
        assert m, body
        return m.group(1)


_MAILBOX: Mailbox | None = None
_LOCK = threading.Lock()


def mailbox() -> Mailbox:
    """This test process's SMTP server (started on first use)."""
    global _MAILBOX
    with _LOCK:
        if _MAILBOX is None:
            _MAILBOX = Mailbox()
        return _MAILBOX
