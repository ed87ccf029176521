"""Several nodes, one installation: service processes with their own home directories and
temporary directories sharing one PostgreSQL database and one blob directory, as the README's
"Several nodes" section sets them up (a joining node gets the first node's master key and the
same settings). A session started on one node is finished on another; exactly one node is the
background leader, another takes over when it is killed; a node joining does not disturb the
others or create anything; `audit verify` passes with checkpoints sealed by successive leaders.

Everything is polled with generous deadlines (hang guards), never slept on: the machine may be
slow and busy."""

from __future__ import annotations

import base64
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.harness import PostgresServer, Service, cli, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi, issue_card

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

T = TypeVar("T")
SEAL_EVERY = 5
DEADLINE = 180.0  # seconds: a hang guard, not an expectation


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = DEADLINE) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def health(node: Service) -> dict[str, Any] | None:
    try:
        r = httpx.get(node.url + "/health", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]


def leaders(nodes: list[Service]) -> list[Service]:
    return [n for n in nodes if (h := health(n)) is not None and h["leader"]]


class Cluster:
    def __init__(self, base: Path, database_url: str) -> None:
        self.base = base
        self.database_url = database_url
        self.blobs = base / "blobs"  # one blob directory for every node (REMOTESIGN_BLOB_DIR)
        self.public_url = f"http://127.0.0.1:{free_port()}"  # the load balancer's URL, the same on every node
        self.db: Engine = create_engine(database_url)
        self.nodes: list[Service] = []

    def env(self, name: str) -> dict[str, str]:
        tmp = self.base / f"{name}-tmp"
        tmp.mkdir(exist_ok=True)
        return {"REMOTESIGN_DATABASE_URL": self.database_url, "REMOTESIGN_BLOB_DIR": str(self.blobs),
                "REMOTESIGN_PUBLIC_URL": self.public_url, "TMPDIR": str(tmp),
                "REMOTESIGN_AUDIT_SEAL_EVENTS": str(SEAL_EVERY), "REMOTESIGN_AUDIT_SEAL_SECONDS": "3600"}

    def node(self, name: str, secrets_from: Service | None = None) -> Service:
        """A node with its own home; a joining node gets the secrets the README says to copy."""
        home = self.base / name
        home.mkdir(mode=0o700)
        if secrets_from is not None:
            shutil.copy2(secrets_from.home / "master.key", home / "master.key")
        node = Service(home=home, port=free_port(), env=self.env(name))
        self.nodes.append(node)
        return node

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.db.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.db.connect() as conn:
            return list(conn.execute(text(sql), params))

    def instance_state(self) -> dict[str, Any]:
        """What start-up work would create: keys, certificates, relying parties, system settings."""
        return {"keys": self.scalar("SELECT count(*) FROM keys"),
                "certificates": self.scalar("SELECT count(*) FROM certificates"),
                "tenants": self.scalar("SELECT count(*) FROM tenants"),
                "settings": sorted(tuple(r) for r in self.rows("SELECT name, value FROM system_settings")),
                "anchor pins": self.scalar("SELECT count(*) FROM audit_anchors WHERE kind <> 'checkpoint'")}

    def checkpoint_sealers(self) -> list[tuple[int, int]]:
        """(seq, pid of the process that sealed it) of every checkpoint (anchors' node: HOST.PID.START)."""
        rows = self.rows("SELECT seq, node FROM audit_anchors WHERE kind = 'checkpoint' ORDER BY seq")
        return [(int(seq), int(node.split(".")[1])) for seq, node in rows]

    def sealers(self, since_seq: int = 0) -> set[int]:
        """The pids of the processes that sealed checkpoints after event ``since_seq``."""
        return {pid for seq, pid in self.checkpoint_sealers() if seq > since_seq}

    def head(self) -> int:
        return int(self.scalar("SELECT coalesce(max(last_seq), 0) FROM audit_head"))

    def sealed(self) -> int:
        return int(self.scalar("SELECT coalesce(max(seq), 0) FROM audit_checkpoints"))

    def lock_sessions(self) -> list[tuple[int, int]]:
        """(pid of the node's process, pid of its server session) of each session holding the
        background leader's advisory lock (application_name: "remotesign background HOST.PID.START")."""
        from remotesign.storage.leader import LEADER_KEY

        return [(int(name.split()[-1].split(".")[1]), backend) for name, backend in self.rows(
            "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1",
            hi=LEADER_KEY >> 32, lo=LEADER_KEY & 0xFFFFFFFF)]

    def lock_holders(self) -> list[int]:
        """The pids of the processes holding the background leader's advisory lock."""
        return [node for node, _backend in self.lock_sessions()]


@pytest.fixture(scope="module")
def cluster(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"), postgres.create_database("remotesign_cluster"))
    yield c
    for node in c.nodes:
        node.stop()
    c.db.dispose()


def serve_fails(cluster: Cluster, name: str, master_key: bytes | None) -> str:
    """``remotesign serve`` on a fresh home (with ``master_key`` as its key file): its error."""
    home = cluster.base / name
    home.mkdir(mode=0o700)
    if master_key is not None:
        (home / "master.key").write_text(base64.b64encode(master_key).decode() + "\n")
    r = cli(home, "serve", "--port", str(free_port()), env=cluster.env(name), check=False)
    assert r.returncode == 1, r.stdout.decode() + r.stderr.decode()
    if master_key is None:
        assert not (home / "master.key").exists()  # never a new master key for an instance that has one
    assert not (home / "demo-client.json").exists()
    return r.stderr.decode()


def test_nodes_share_one_installation(cluster: Cluster, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    a = cluster.node("a").start(timeout=DEADLINE)  # the first node initialises the instance
    timings["first node ready"] = time.monotonic() - t0
    state = cluster.instance_state()
    assert state["keys"] and state["certificates"] and state["tenants"] == 1

    # A node without the instance's master key, or with another one, refuses to start and creates nothing.
    err = serve_fails(cluster, "keyless", None)
    assert "master key file" in err and "already holds keys sealed under this instance's master key" in err
    err = serve_fails(cluster, "wrong-key", secrets.token_bytes(32))
    assert "does not open this instance's keys" in err
    assert cluster.instance_state() == state

    t0 = time.monotonic()
    b = cluster.node("b", secrets_from=a).start(timeout=DEADLINE)
    timings["second node ready"] = time.monotonic() - t0
    assert cluster.instance_state() == state  # joined: no second PKI, demo client, audit key or pins
    assert not (b.home / "demo-client.json").exists()

    # Exactly one leader: the first node, which took the lock before the second started.
    assert wait_for("one leader", lambda: leaders([a, b]) == [a])
    for _ in range(5):
        assert leaders([a, b]) == [a]
        assert cluster.lock_holders() == [a.proc.pid]  # type: ignore[union-attr]
        time.sleep(0.2)

    # A SignAPI session started and uploaded on node A, downloaded, signed and finalised through node B.
    demo = a.demo_client()
    token = a.token(demo["client_id"], demo["client_secret"])
    api_a, api_b = SignApi(a, token), SignApi(b, token)
    card = issue_card(a, tmp_path, "rsa")
    pdf = pdf_bytes(text="signed across nodes")
    sid = api_a.start()
    uploaded = api_a.upload(sid, "across.pdf", pdf)
    docs = api_b.list(sid)
    assert len(docs) == 1, (uploaded, docs)
    assert api_b.download(sid, docs[0]["id"]) == pdf
    api_b.sign_sessions([sid], card, sign_as_pdf=True)
    _doc, signed = api_b.result(sid)
    assert signed.startswith(b"%PDF") and b"/ByteRange" in signed and len(signed) > len(pdf)
    assert api_a.result(sid)[1] == signed  # node A sees the same signed document

    # Events appended on node B are sealed by the leader A (it watches the shared chain, not its own events).
    before = cluster.sealed()
    seal_events_of(b, cluster, demo)
    assert cluster.sealers(before) == {a.proc.pid}  # type: ignore[union-attr]

    # A third node starting while A serves: A's requests all succeed meanwhile, nothing is initialised again.
    state = cluster.instance_state()
    load = RequestLoop(a, token, demo)
    load.start()
    try:
        wait_for("requests on node A", lambda: load.done >= 1)
        t0 = time.monotonic()
        c = cluster.node("c", secrets_from=a).start(timeout=DEADLINE)
        timings["third node ready (under load)"] = time.monotonic() - t0
        done_at_ready = load.done
        wait_for("requests on node A after the third node started", lambda: load.done > done_at_ready)
    finally:
        load.stop()
    assert load.failures == [], load.failures[:5]
    assert cluster.instance_state() == state
    assert not (c.home / "demo-client.json").exists()
    assert leaders([a, b, c]) == [a]

    # kill -9 the leader: another node takes over within a few ticks and seals from then on.
    a.proc.kill()  # type: ignore[union-attr]
    a.proc.wait()  # type: ignore[union-attr]
    t0 = time.monotonic()
    new = wait_for("a new leader", lambda: (found := leaders([b, c])) and found)
    timings["takeover after kill -9"] = time.monotonic() - t0
    assert len(new) == 1
    leader = new[0]
    for _ in range(5):
        assert leaders([b, c]) == [leader]
        time.sleep(0.2)
    seal_events_of(b if leader is c else c, cluster, demo)
    last_by_a = max(seq for seq, pid in cluster.checkpoint_sealers() if pid == a.proc.pid)  # type: ignore[union-attr]
    assert cluster.sealers(last_by_a) == {leader.proc.pid}  # type: ignore[union-attr]
    assert {a.proc.pid, leader.proc.pid} <= cluster.sealers()  # type: ignore[union-attr]

    # The leader's database session ends (a server restart, a network cut): it stops leading at its
    # next tick and one node, the same reconnected or another, leads again.
    [(holder, session)] = cluster.lock_sessions()
    assert holder == leader.proc.pid  # type: ignore[union-attr]
    assert cluster.scalar("SELECT pg_terminate_backend(:pid)", pid=session)
    t0 = time.monotonic()

    def led_again() -> bool:
        sessions = cluster.lock_sessions()
        if len(sessions) != 1 or sessions[0][1] == session:
            return False
        return [n.proc.pid for n in leaders([b, c])] == [sessions[0][0]]  # type: ignore[union-attr]

    wait_for("a leader on a new session", led_again)
    timings["leader again after its session was ended"] = time.monotonic() - t0

    # `audit verify` against the shared database, from a node's home: every checkpoint of both leaders.
    checkpoints = int(cluster.scalar("SELECT count(*) FROM audit_checkpoints"))
    t0 = time.monotonic()
    out = b.cli("audit", "verify").stdout.decode()
    timings["audit verify"] = time.monotonic() - t0
    assert "audit log OK" in out and "hash chain intact" in out, out
    counted = re.search(r"(\d+) signed checkpoint\(s\) \((\d+) time-stamped", out)
    assert counted and int(counted[1]) == int(counted[2]) >= checkpoints, out  # every one verified and time-stamped
    print("\n" + "\n".join(f"{what}: {seconds:.1f} s" for what, seconds in timings.items()))


def seal_events_of(node: Service, cluster: Cluster, demo: dict[str, str]) -> None:
    """Append events on ``node`` (one token each) until a checkpoint seals one of them: the
    leader seals every SEAL_EVERY events of the shared chain, whichever node appended them."""
    first = cluster.head() + 1

    def sealed_one() -> bool:
        if cluster.sealed() >= first:
            return True
        node.token(demo["client_id"], demo["client_secret"])
        return False

    wait_for(f"a checkpoint of the events appended on {node.url}", sealed_one)


class RequestLoop:
    """Requests on one node, one after the other, until stopped: a token, a session started, a
    document uploaded and read back. Any failure is kept."""

    def __init__(self, node: Service, token: str, demo: dict[str, str]) -> None:
        self.node = node
        self.api = SignApi(node, token)
        self.demo = demo
        self.done = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=DEADLINE)

    def _run(self) -> None:
        content = pdf_bytes(pages=30, text="in flight")
        while not self._stop.is_set():
            try:
                self.node.token(self.demo["client_id"], self.demo["client_secret"])
                sid = self.api.start()
                self.api.upload(sid, "load.pdf", content)
                doc = self.api.list(sid)[0]
                assert self.api.download(sid, doc["id"]) == content
                self.done += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.failures.append(f"{type(exc).__name__}: {exc}")


def test_nodes_starting_at_once_on_an_empty_database_make_one_instance(postgres: PostgresServer,
                                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two nodes provisioned with the same master key, started together on an empty database:
    migrations and initialisation run one node at a time, so there is one PKI, one audit key and
    one demo client, and both serve."""
    cluster = Cluster(tmp_path_factory.mktemp("twins"), postgres.create_database("remotesign_twins"))
    key = base64.b64encode(secrets.token_bytes(32)).decode() + "\n"
    nodes = [cluster.node(name) for name in ("x", "y")]
    for node in nodes:
        (node.home / "master.key").write_text(key)
    errors: list[BaseException] = []

    def start(node: Service) -> None:
        try:
            node.start(timeout=DEADLINE)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(node,)) for node in nodes]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert cluster.scalar("SELECT count(*) FROM certificates") == 4  # root, issuing, TSA, OCSP: once
        assert cluster.scalar("SELECT count(*) FROM tenants") == 1
        assert cluster.scalar("SELECT count(*) FROM system_settings WHERE name = 'audit_key_id'") == 1
        assert cluster.scalar("SELECT count(*) FROM keys WHERE label = 'audit'") == 1
        assert [(n.home / "demo-client.json").exists() for n in nodes].count(True) == 1
        assert len(wait_for("one leader", lambda: leaders(nodes))) == 1
    finally:
        for node in nodes:
            node.stop()
        cluster.db.dispose()
