"""The raw signing fast path (issue 15 item 4) signs only what the ORM path would sign, and writes
the same audit trail.

``RawSigningService.sign_bearer`` tries the fast path first (the bearer token read by the call's
own joined query, a few Core statements, ``AuditLog.pending_in``); whatever it does not accept
rolls back having written nothing and goes to ``resolve`` (the facade's token check) and the ORM
path. In process against the shared service's database, a ``resolve`` that fails the test shows
which path answered: a valid call never needs it, and a replay, another identity, a disabled
identity or an unknown token always do, and are then refused by the ORM path with its audit.
The audit appends of the fast path race plain appends and the ORM path's in-transaction appends
with the chain intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.consent import USE_SERVER, Enrolled, enrol, register_redirect, summary_of, user_token
from tests.device_client import certificate_of, verify_raw
from tests.harness import Service


@pytest.fixture(scope="module")
def users(http: httpx.Client, demo_token: str) -> dict[str, Enrolled]:
    register_redirect(http, demo_token)
    return {"rsa": enrol(http, demo_token, algorithm="rsa-2048"), "ec": enrol(http, demo_token, algorithm="ec-p256")}


def _requests(svc: Any, digests: list[bytes]) -> Any:
    from remotesign.core.raw_signing import parse_request

    return lambda key_algorithm: [parse_request(key_algorithm, None, digest=d) for d in digests]


def _must_not_resolve() -> Any:
    raise AssertionError("the fast path should have taken this call")


def _events(service: Service, after: int) -> list[tuple[str, str, dict[str, Any]]]:
    with sqlite3.connect(service.home / "remotesign.db") as db:
        rows = db.execute("SELECT event, subject, details FROM audit_events WHERE seq > ? ORDER BY seq", (after,))
        return [(e, s, json.loads(d)) for e, s, d in rows]


def _head(service: Service) -> int:
    with sqlite3.connect(service.home / "remotesign.db") as db:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_events").fetchone()[0])


def test_a_cold_key_handle_costs_no_second_connection(service: Service, http: httpx.Client, demo: dict[str, str],
                                                      users: dict[str, Enrolled], in_process: Any) -> None:
    """The first signature of an identity in a process reads its key handle (not yet cached) on the
    call's own connection. It used to open a second pooled connection while holding the fast
    path's write lock, which the calls waiting for that lock each hold a connection of their own
    to do: with more concurrent calls than the pool has connections (bench/load.py, 200 clients on
    one node, PostgreSQL), every call stalled until the pool's 30 s timeout answered 500."""
    from sqlalchemy import event

    svc, who = in_process, users["rsa"]
    svc.keystore._handles.clear()  # a process that has not used this key yet
    checkouts: list[int] = []

    def checkout(*_: Any) -> None:
        checkouts.append(threading.get_ident())

    for path in ("fast", "orm"):
        digests = [hashlib.sha256(os.urandom(16)).digest()]
        bearer = user_token(http, demo, who, USE_SERVER, summary=summary_of(digests), summary_alg="SHA256")
        token = svc.tenants.resolve(bearer)
        svc.keystore._handles.clear()
        checkouts.clear()
        event.listen(svc.db.engine, "checkout", checkout)
        try:
            if path == "fast":
                values = svc.raw_signing.sign_bearer(bearer, who.identity_id, _requests(svc, digests), _must_not_resolve)
            else:  # the path of every call the fast path declines
                values = svc.raw_signing._sign(token, who.identity_id, _requests(svc, digests))
        finally:
            event.remove(svc.db.engine, "checkout", checkout)
        verify_raw(certificate_of(who.identity), digests[0], values[0])
        assert len(checkouts) == 1, f"{path} path: {len(checkouts)} connections taken for one call"


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_valid_call_takes_the_fast_path_and_a_replay_does_not(service: Service, http: httpx.Client,
                                                                demo: dict[str, str], users: dict[str, Enrolled],
                                                                in_process: Any, kind: str) -> None:
    from remotesign.core.sole_control import SoleControlRefused

    svc, who = in_process, users[kind]
    digests = [hashlib.sha256(os.urandom(16)).digest() for _ in range(3)]
    bearer = user_token(http, demo, who, USE_SERVER, summary=summary_of(digests), summary_alg="SHA256")
    before = _head(service)
    values = svc.raw_signing.sign_bearer(bearer, who.identity_id, _requests(svc, digests), _must_not_resolve)
    cert = certificate_of(who.identity)
    for d, v in zip(digests, values):
        verify_raw(cert, d, v)
    # exactly the ORM path's two events, in this order, with its details
    [(authorized, subject_a, details_a), (used, subject_u, details_u)] = _events(service, before)
    assert (authorized, used) == ("scal2.authorized", "identity_key.used")
    assert subject_a == subject_u == who.identity_id
    token_prefix = hashlib.sha256(bearer.encode()).hexdigest()[:16]
    assert details_a["digests"] == 3 and details_a["digest_types"] == ["sha256"] * 3
    assert details_a["token_sha256_prefix"] == token_prefix
    assert details_u["authorization"] == f"scal2:{before + 1}:{token_prefix}" and details_u["digests"] == 3
    assert details_u["digests_sha256"] == hashlib.sha256(b"".join(digests)).hexdigest()

    # the same token again: the fast path declines, the ORM path refuses it as a replay, audited
    resolved = []

    def resolve() -> Any:
        info = svc.tenants.resolve(bearer)
        resolved.append(info)
        return info

    with pytest.raises(SoleControlRefused) as refused:
        svc.raw_signing.sign_bearer(bearer, who.identity_id, _requests(svc, digests), resolve)
    assert refused.value.reason == "replayed" and len(resolved) == 1
    assert [e for e, _, _ in _events(service, before + 2)] == ["scal2.refused"]
    count, problems = svc.audit.verify()
    assert problems == [] and count > 0


def test_what_the_fast_path_declines_is_refused_by_the_orm_path(service: Service, http: httpx.Client,
                                                                 demo: dict[str, str], users: dict[str, Enrolled],
                                                                 demo_token: str, in_process: Any) -> None:
    from remotesign.core.identities import IdentityError
    from remotesign.core.sole_control import SoleControlRefused

    svc, who, other = in_process, users["rsa"], users["ec"]
    [d] = [hashlib.sha256(os.urandom(16)).digest()]
    calls: list[str] = []

    def resolve_with(bearer: str) -> Any:
        def resolve() -> Any:
            calls.append(bearer)
            info = svc.tenants.resolve(bearer)
            if info is None:
                raise LookupError("unknown token")
            return info
        return resolve

    # a token bound to one identity, used with another identity of another user: not found for this user
    bearer = user_token(http, demo, who, USE_SERVER, summary=summary_of([d]), summary_alg="SHA256")
    with pytest.raises((SoleControlRefused, IdentityError)):
        svc.raw_signing.sign_bearer(bearer, other.identity_id, _requests(svc, [d]), resolve_with(bearer))
    # other digests than the consent's
    with pytest.raises(SoleControlRefused) as refused:
        svc.raw_signing.sign_bearer(bearer, who.identity_id, _requests(svc, [hashlib.sha256(b"x").digest()]),
                                    resolve_with(bearer))
    assert refused.value.reason == "digests_mismatch"
    # an unknown token
    with pytest.raises(LookupError):
        svc.raw_signing.sign_bearer("not-a-token", who.identity_id, _requests(svc, [d]), resolve_with("not-a-token"))
    # a disabled identity: refused, and the token stays unspent
    patch, admin = f"/v1/identities/{who.identity_id}", {"Authorization": f"Bearer {demo_token}"}
    r = http.patch(patch, json={"status": "disabled", "reason": "lost"}, headers=admin)
    assert r.status_code == 200, r.text
    try:
        with pytest.raises(IdentityError) as disabled:
            svc.raw_signing.sign_bearer(bearer, who.identity_id, _requests(svc, [d]), resolve_with(bearer))
        assert disabled.value.code == "identity_disabled"
    finally:
        assert http.patch(patch, json={"status": "enabled"}, headers=admin).status_code == 200
    assert len(calls) == 4  # every one of them went to the facade's token check and the ORM path
    # the consent was never spent: it still signs, on the fast path
    [value] = svc.raw_signing.sign_bearer(bearer, who.identity_id, _requests(svc, [d]), _must_not_resolve)
    verify_raw(certificate_of(who.identity), d, value)


def _race(url: str) -> None:
    """Fast-path style appends (``pending_in``: two events per transaction, every fifth rolled
    back) racing ORM in-transaction appends and plain appends, through two AuditLog objects."""
    from remotesign.storage.audit import AuditLog
    from remotesign.storage.db import Database

    class Abort(Exception):
        pass

    logs = [AuditLog(Database(url)), AuditLog(Database(url))]
    errors: list[BaseException] = []

    def pending(log: AuditLog, n: int) -> None:
        try:
            for i in range(15):
                try:
                    with log.db.session() as s:
                        batch = log.pending_in(s.connection())
                        batch.append("test.authorized", actor=f"core-{n}", subject=str(i))
                        batch.append("test.used", actor=f"core-{n}", subject=str(i))
                        batch.write()
                        if i % 5 == 4:
                            raise Abort()
                        s.commit()
                        batch.committed()
                except Abort:
                    pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def orm(log: AuditLog, n: int) -> None:
        try:
            for i in range(10):
                with log.db.session() as s:
                    log.append_in(s, "test.orm", actor=f"orm-{n}", subject=str(i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def plain(log: AuditLog, n: int) -> None:
        try:
            for i in range(10):
                log.append("test.event", actor=f"writer-{n}", subject=str(i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=f, args=(logs[n % 2], n))
               for n, f in enumerate((pending, pending, orm, plain, pending, plain))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    count, problems = logs[0].verify()
    assert problems == []
    assert count == 3 * 12 * 2 + 10 + 2 * 10 == logs[0].appended + logs[1].appended
    for log in logs:
        log.db.dispose()


def test_fast_path_appends_keep_the_chain_on_sqlite(tmp_path: Path) -> None:
    from remotesign.storage.migrate import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade_to_head(url)
    _race(url)


@pytest.mark.postgres
@pytest.mark.slow
def test_fast_path_appends_keep_the_chain_on_postgresql(postgres: Any) -> None:
    from remotesign.storage.migrate import upgrade_to_head

    url = postgres.create_database("remotesign_fast_path_audit")
    upgrade_to_head(url)
    _race(url)
