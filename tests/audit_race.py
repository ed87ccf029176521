"""A race of audit appends inside callers' transactions against plain appends, run against
SQLite (test_audit.py) and PostgreSQL (test_storage_postgres.py)."""

from __future__ import annotations

import threading

from remotesign.storage.audit import AuditLog
from remotesign.storage.db import Database


class _Abort(Exception):
    pass


def race_appends_in_transactions(url: str) -> None:
    """Events appended inside callers' transactions (two per transaction, as a raw signing call
    writes, every fifth rolled back) racing plain appends, through two AuditLog objects (two
    processes): the chain verifies and holds exactly the committed events."""
    logs = [AuditLog(Database(url)), AuditLog(Database(url))]
    errors: list[BaseException] = []

    def in_transactions(log: AuditLog, n: int) -> None:
        try:
            for i in range(15):
                try:
                    with log.db.session() as s:
                        log.append_in(s, "test.authorized", actor=f"tx-{n}", subject=str(i))
                        log.append_in(s, "test.used", actor=f"tx-{n}", subject=str(i))
                        if i % 5 == 4:
                            raise _Abort()
                except _Abort:
                    pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def plain(log: AuditLog, n: int) -> None:
        try:
            for i in range(20):
                log.append("test.event", actor=f"writer-{n}", subject=str(i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=in_transactions, args=(logs[0], 0)),
               threading.Thread(target=in_transactions, args=(logs[1], 1)),
               threading.Thread(target=plain, args=(logs[0], 2)), threading.Thread(target=plain, args=(logs[1], 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    count, problems = logs[0].verify()
    assert problems == []
    assert count == 2 * 12 * 2 + 2 * 20 == logs[0].appended + logs[1].appended
    for log in logs:
        log.db.dispose()

