#!/usr/bin/env python
"""Audit events appended per second, with and without keyed sealing, on the embedded default
(SQLite, software keys) in a throw-away home.

Answers "what does the keyed audit cost on the hot path?": appending alone; appending while the
sealer runs as the service runs it (a thread polling ``due()`` every second, checkpoint every N
events, each signed with the audit key and time-stamped by the built-in TSA); and, for
comparison, signing every event through the key store (the design the sealer avoids). Also the
cost of one checkpoint and of ``verify`` per event.

    python bench/audit_append.py            # ~1 minute
    python bench/audit_append.py --plain    # appending only (runs on code without audit_seal too)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _rate  # noqa: E402 - next to this script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECONDS = 4.0


def rate(append: Callable[[], object], threads: int, seconds: float = SECONDS) -> float:
    """Calls per second (the shared measurement in bench/_rate.py)."""
    return _rate.rate(append, threads, seconds)


def event(audit: object) -> Callable[[], object]:
    return lambda: audit.append("bench.event", actor="bench", subject="x" * 36,  # type: ignore[attr-defined]
                                details={"n": 1, "label": "a typical small payload"})


def plain(home: Path) -> None:
    from remotesign.storage.audit import AuditLog
    from remotesign.storage.db import Database
    from remotesign.storage.migrate import upgrade_to_head

    url = f"sqlite:///{home / 'plain.db'}"
    upgrade_to_head(url)
    audit = AuditLog(Database(url))
    for threads in (1, 4):
        print(f"append only, {threads} thread(s):                 {rate(event(audit), threads):8.0f} events/s")


class SealerThread:
    """The service's background task, as a thread: poll ``due()`` every second, then seal."""

    def __init__(self, sealer: object) -> None:
        self.sealer = sealer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            if self.sealer.due():  # type: ignore[attr-defined]
                self.sealer.seal()  # type: ignore[attr-defined]

    def __enter__(self) -> SealerThread:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def sealed(home: Path) -> None:
    os.environ["REMOTESIGN_HOME"] = str(home)
    from sqlalchemy import func, select

    from remotesign.config import load_settings
    from remotesign.service import Services
    from remotesign.storage.audit_seal import AuditSealer
    from remotesign.storage.models import AuditCheckpoint
    from remotesign.trust.audit_timestamps import request_token

    svc = Services(load_settings())
    svc.initialize()

    def checkpoints() -> int:
        with svc.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0)

    for threads in (1, 4):
        print(f"append only, {threads} thread(s):                 {rate(event(svc.audit), threads):8.0f} events/s")
    for every in (1000, 100):
        sealer = AuditSealer(svc.audit, svc.audit_key, svc.audit_anchor, lambda i: request_token(svc.tsa, i),
                             every_events=every, every_seconds=60)
        for threads in (1, 4):
            before = checkpoints()
            with SealerThread(sealer):
                r = rate(event(svc.audit), threads)
            print(f"append + sealer (N={every:4d}), {threads} thread(s):    {r:8.0f} events/s "
                  f"({checkpoints() - before} checkpoints)")
    key = svc.audit_key

    def sign_each() -> object:
        seq = svc.audit.append("bench.event", actor="bench", subject="x" * 36, details={"n": 1})
        return key.sign(str(seq).encode())

    print(f"append + key-store signature per event, 1 thread: {rate(sign_each, 1):8.0f} events/s (not done)")
    svc.audit.append("bench.event", actor="bench")
    t0 = time.perf_counter()
    n = 20
    for _ in range(n):
        svc.audit.append("bench.event", actor="bench")
        svc.audit_sealer.seal()
    print(f"one checkpoint (sign + time-stamp + store + anchor):  {(time.perf_counter() - t0) / n * 1000:6.1f} ms")
    t0 = time.perf_counter()
    report = svc.verify_audit()
    took = time.perf_counter() - t0
    assert not report.problems, report.problems[:3]
    print(f"verify: {report.events} events, {report.checkpoints} checkpoints in {took:.1f} s "
          f"({report.events / took:.0f} events/s)")
    svc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help="appending only, without the service's pieces")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.plain:
            plain(Path(tmp))
        else:
            sealed(Path(tmp))


if __name__ == "__main__":
    main()
