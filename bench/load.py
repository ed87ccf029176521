"""Many concurrent clients against 1, 2 and 4 service nodes sharing one PostgreSQL database and one
S3 bucket (SeaweedFS): per-call p50 / p95 / p99 latency, flows per second and errors for every
(scenario, clients, nodes) combination, with where the CPU went.

    .venv/bin/python bench/load.py [--clients 50,200] [--nodes 1,2,4] [--duration 60] [--warmup 10]
                                   [--scenarios eparaksts,raw] [--quick] [--spread request|client]
                                   [--json results.json] [--keep] [--workdir DIR]

``--quick`` is a smoke run: 10 clients, 1 and 2 nodes, 10 s each (3 s warm-up).

What runs (all on this machine, started by the script, stopped on exit, Ctrl-C or SIGTERM):

* one PostgreSQL server (Debian's binaries, tests/harness.PostgresServer; max_connections raised
  to 400 for up to 4 nodes' pools; the harness runs it with fsync=off) and one SeaweedFS
  (``weed server`` with its S3 gateway, tests/harness.SeaweedFS) holding the documents in one bucket;
* N nodes: ``python -m remotesign serve`` processes, each with its own home and TMPDIR, the same
  REMOTESIGN_DATABASE_URL, REMOTESIGN_BLOB_STORE=s3 settings and REMOTESIGN_PUBLIC_URL; the
  first node initialises the instance, the others get its ``master.key`` copied (README,
  "Several nodes"). Nodes are added as the node count grows (1, then 2, then 4) and keep the
  database, so the later runs meet a database that already holds the earlier runs' rows.
* no load balancer process: the clients spread their calls round-robin over the nodes
  themselves (``--spread request``, the default: every client keeps one keep-alive connection to
  each node and sends each call to the next node, so a session is started on one node, uploaded
  on the next, signed on a third, as behind a balancer without stickiness; ``--spread client``
  pins each client to one node, as a balancer that balances connections). A proxy in this
  process would share the load generator's one core with the clients.

Scenarios, one flow per client iteration, the clients being asyncio tasks on the lean keep-alive
HTTP/1.1 client of bench/_http1.py:

* ``eparaksts``: the eParaksts SignAPI flow of bench/eparaksts_load.py: start, upload (a ~100 KB
  PDF), CalculateDigest (PAdES), the client signs the digest with its own key (a certificate the
  built-in CA issued), finalizeSigning (B-LT: built-in TSA and OCSP), list, download (checked to
  be a larger PDF), close. One client-credentials token for all clients. ``--signer-pause S``: the signer's
  seconds at the card between CalculateDigest and finalizeSigning (default 0: no pause at all).
* ``raw``: eSigP server signing (bench/esigp_raw.py's call) as it happens for real, one SCAL2
  consent per signature: authorize (the login page, for a fresh digest's summary), login
  (password), consent (PIN), token (code exchange), raw (``signatures/server/raw/batch`` with that
  one digest; the signature is verified against the identity's certificate). Every client is its
  own user with its own RSA-2048 identity (enrolled once, before the first raw run). The password
  and PIN checks are scrypt: the nodes run with REMOTESIGN_KDF_LOG2_N=14 (16 MiB, the lowest the
  service accepts, as esigp_raw's services; the default 16 costs 4x), ``--kdf-log2-n`` to change.

Each combination runs ``--warmup`` seconds, then ``--duration`` seconds are measured: calls that
start in the window are timed (to their end, also past the window), flows completed in the window
are counted, errors are calls answered outside 2xx (or the expected redirect), broken connections,
answers that do not hold what the flow needs, and calls without an answer within ``--timeout``.
CPU is read from /proc for the nodes, PostgreSQL, SeaweedFS and this process over the window,
next to the machine's busy time (/proc/stat: anything else running shows there). New ERROR lines
and tracebacks in the nodes' logs are counted per run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

# Nodes as plain `python -m remotesign serve` processes, children of this one (not forked from the
# tests' pre-loaded fork server): what an operator runs, and stopped with this process.
os.environ.setdefault("REMOTESIGN_TEST_CLI_SUBPROCESS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _http1 import Connection, HttpError, Response, multipart  # noqa: E402
from tests.consent import AS, REDIRECT_URI, USE_SERVER, Enrolled, enrol, hidden, register_redirect  # noqa: E402
from tests.harness import PostgresServer, SeaweedFS, Service, free_port  # noqa: E402
from tests.pdfgen import pdf_bytes  # noqa: E402
from tests.signapi import Card, issue_card  # noqa: E402

CALLS = {"eparaksts": ("start", "upload", "CalculateDigest", "finalizeSigning", "list", "download", "close"),
         "raw": ("authorize", "login", "consent", "token", "raw")}
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PAGES = f"/trustedx-authserver/oauth/{AS}"
RAW_BATCH = "/trustedx-resources/esigp/v1/signatures/server/raw/batch"
BUCKET = "remotesign-bench"
IDLE_RECONNECT = 3.0  # seconds: below uvicorn's 5 s keep-alive timeout


# -- the cluster -----------------------------------------------------------------------------------

class Cluster:
    """PostgreSQL, SeaweedFS and the nodes, under ``base``."""

    def __init__(self, base: Path, kdf_log2_n: int, workers: int, access_log: bool) -> None:
        self.base = base
        self.pg = PostgresServer(base / "pg")
        self.s3 = SeaweedFS(base / "seaweedfs")
        self.nodes: list[Service] = []
        self.database_url = ""
        self.public_url = f"http://127.0.0.1:{free_port()}"  # a balancer's URL: the same on every node
        self.kdf_log2_n = kdf_log2_n
        self.serve_args = (("--workers", str(workers)) if workers > 1 else ()) + (() if access_log else
                                                                                  ("--no-access-log",))
        self._pg_started = self._s3_started = False

    def start_storage(self) -> None:
        t0 = time.monotonic()
        self._pg_started = True
        self.pg.start()
        self.pg._run(str(self.pg.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres",
                     "-c", "ALTER SYSTEM SET max_connections = 400")
        self.pg._run(str(self.pg.bindir / "pg_ctl"), "-D", str(self.pg.base / "data"), "-m", "fast", "-w", "stop")
        self.pg.restart()
        self.database_url = self.pg.create_database("remotesign")
        self._s3_started = True
        self.s3.start()
        print(f"PostgreSQL and SeaweedFS up in {time.monotonic() - t0:.1f} s", flush=True)

    def env(self, name: str) -> dict[str, str]:
        tmp = self.base / f"{name}-tmp"
        tmp.mkdir(exist_ok=True)
        return {"REMOTESIGN_DATABASE_URL": self.database_url, **self.s3.env(bucket=BUCKET),
                "REMOTESIGN_PUBLIC_URL": self.public_url, "TMPDIR": str(tmp),
                "REMOTESIGN_KDF_LOG2_N": str(self.kdf_log2_n)}

    def scale(self, n: int) -> None:
        """Exactly ``n`` nodes running: the first initialises the instance, the others join it."""
        while len(self.nodes) > n:
            self.nodes.pop().stop()
        t0 = time.monotonic()
        added: list[Service] = []
        for i in range(len(self.nodes), n):
            name = f"node{i + 1}"
            home = self.base / name
            home.mkdir(mode=0o700, exist_ok=True)
            node = Service(home=home, port=free_port(), env=self.env(name), args=self.serve_args)
            self.nodes.append(node)  # before its start: stopped on exit whatever happens
            if i == 0:
                node.start(timeout=180)
            else:
                shutil.copy2(self.nodes[0].home / "master.key", home / "master.key")
                added.append(node)
        errors: list[BaseException] = []

        def start(node: Service) -> None:
            try:
                node.start(timeout=180)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(node,), daemon=True) for node in added]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        if added or n == 1:
            print(f"{n} node(s) serving ({time.monotonic() - t0:.1f} s to start): "
                  f"{', '.join(node.url for node in self.nodes)}", flush=True)

    def pids(self) -> dict[str, list[int]]:
        pg_pid = 0
        try:
            pg_pid = int((self.pg.base / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        return {"nodes": [n.proc.pid for n in self.nodes if n.proc is not None],
                "postgres": [pg_pid] if pg_pid else [],
                "seaweedfs": [self.s3.proc.pid] if self.s3.proc is not None else []}

    def stop(self) -> None:
        for node in reversed(self.nodes):
            try:
                node.stop()
            except Exception as exc:  # noqa: BLE001 - go on stopping the rest
                print(f"stopping {node.url}: {exc}", file=sys.stderr)
        self.nodes.clear()
        if self._s3_started:
            self.s3.stop()
        if self._pg_started:
            self.pg.stop()


def stop_leftover_children() -> None:
    """Any process this one started that still runs (a node caught mid-start by Ctrl-C): SIGTERM,
    then after 10 s SIGKILL, by pid."""
    children = [pid for pid, (parent, _cpu) in _proc_table().items() if parent == os.getpid()]
    deadline = time.monotonic() + 10
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in children:
        while True:
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.1)


_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of the children it has reaped)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            f = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state is f[0]
            table[int(entry.name)] = (int(f[1]), sum(int(x) for x in f[11:15]) / _TICKS)
    return table


def tree_cpu(table: dict[int, tuple[int, float]], roots: list[int]) -> float:
    """CPU seconds of ``roots`` and their descendants, those that ended and were reaped included
    (a PostgreSQL backend of a closed connection)."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _cpu) in table.items():
        children[parent].append(pid)
    total, todo = 0.0, [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        todo.extend(children[pid])
    return total


# -- measuring ----------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Recorder:
    """Calls started in [t0, t1) are timed; flows completed in it are counted."""

    def __init__(self, timeout: float) -> None:
        self.t0 = self.t1 = float("inf")
        self.timeout = timeout
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, Counter[str]] = defaultdict(Counter)
        self.samples: dict[tuple[str, str], str] = {}
        self.flows = 0
        self.flow_latency: list[float] = []
        self.calls_total = 0

    def over(self) -> bool:
        return time.monotonic() >= self.t1

    def error(self, name: str, kind: str, started: float, detail: str = "") -> None:
        if self.t0 <= started < self.t1:
            self.errors[name][kind] += 1
            self.samples.setdefault((name, kind), detail[:300])

    async def call(self, name: str, conn: Connection, method: str, path: str, body: bytes = b"",
                   content_type: str | None = None, headers: dict[str, str] | None = None,
                   expect: tuple[int, ...] = ()) -> Response | None:
        started = time.monotonic()
        self.calls_total += 1
        try:
            r = await asyncio.wait_for(conn.request(method, path, body, content_type, headers), self.timeout)
        except asyncio.TimeoutError:
            await conn.close()
            self.error(name, "timeout", started, f"no answer within {self.timeout} s from {conn.port}")
            return None
        except HttpError as exc:
            self.error(name, "connection", started, f"{conn.port}: {exc}")
            return None
        if self.t0 <= started < self.t1:
            self.latency[name].append(time.monotonic() - started)
        ok = r.status in expect if expect else 200 <= r.status < 300
        if not ok:
            self.error(name, str(r.status), started, f"{conn.port}: {r.body[:300]!r}")
            return None
        return r

    def flow_done(self, started: float) -> None:
        now = time.monotonic()
        if self.t0 <= now < self.t1:
            self.flows += 1
            if started >= self.t0:
                self.flow_latency.append(now - started)


class Client:
    """One client: a keep-alive connection per node (``request`` spread: each call to the next
    node) or one connection to its own node (``client`` spread)."""

    def __init__(self, index: int, urls: list[str], spread: str) -> None:
        self.index = index
        chosen = urls if spread == "request" else [urls[index % len(urls)]]
        self.conns = [Connection(url, idle_reconnect=IDLE_RECONNECT) for url in chosen]
        self._next = index

    def pick(self) -> Connection:
        self._next += 1
        return self.conns[self._next % len(self.conns)]

    async def connect(self) -> None:
        await asyncio.gather(*(c.connect() for c in self.conns))

    async def close(self) -> None:
        for c in self.conns:
            await c.close()


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


@dataclass
class EParakstsContext:
    token: str
    card: Card
    upload: tuple[bytes, str]
    pdf_size: int
    signer_pause: float = 0.0  # seconds the signer takes between CalculateDigest and finalizeSigning


async def eparaksts_flow(c: Client, ctx: EParakstsContext, rec: Recorder) -> None:
    auth = {"Authorization": f"Bearer {ctx.token}", "Accept": JSON}
    started = time.monotonic()
    if rec.over():
        return
    r = await rec.call("start", c.pick(), "GET", "/api-session/v1.0/start", headers=auth)
    if r is None or rec.over():
        return
    sid = r.json()["data"]["sessionId"]
    if await rec.call("upload", c.pick(), "PUT", f"/api-storage/v1.0/{sid}/upload", *ctx.upload,
                      headers=auth) is None or rec.over():
        return
    t = time.monotonic()
    r = await rec.call("CalculateDigest", c.pick(), "POST", "/api-sign/v1.0/CalculateDigest", _json({
        "sessions": [{"sessionId": sid}], "certificate": ctx.card.cert_b64, "signAsPdf": True}), JSON, auth)
    if r is None or rec.over():
        return
    data = r.json()["data"]
    digest = data["sessionDigests"][0].get("digest")
    if not digest:
        rec.error("CalculateDigest", "no digest", t, r.body.decode(errors="replace"))
        return
    value = ctx.card.sign(base64.b64decode(digest), data["algorithm"])
    if ctx.signer_pause:  # the signer at the card: reading the document, typing the PIN
        await asyncio.sleep(ctx.signer_pause)
        if rec.over():
            return
    if await rec.call("finalizeSigning", c.pick(), "POST", "/api-sign/v1.0/finalizeSigning", _json({
            "sessionSignatureValues": [{"sessionId": sid, "signatureValue": base64.b64encode(value).decode()}],
            "authCertificate": "MIIB"}), JSON, auth) is None or rec.over():
        return
    r = await rec.call("list", c.pick(), "GET", f"/api-storage/v1.0/{sid}/list", headers=auth)
    if r is None or rec.over():
        return
    doc_id = r.json()["data"][0]["id"]
    t = time.monotonic()
    r = await rec.call("download", c.pick(), "GET", f"/api-storage/v1.0/{sid}/{doc_id}", headers=auth)
    if r is None:
        return
    if not r.body.startswith(b"%PDF") or len(r.body) <= ctx.pdf_size:
        rec.error("download", "not the signed PDF", t, f"{len(r.body)} bytes: {r.body[:100]!r}")
        return
    if rec.over():
        return
    if await rec.call("close", c.pick(), "GET", f"/api-session/v1.0/{sid}/close", headers=auth) is None:
        return
    rec.flow_done(started)


@dataclass
class RawContext:
    client_id: str
    client_secret: str
    users: list[Enrolled]
    public_keys: list[Any] = field(default_factory=list)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def raw_flow(c: Client, ctx: RawContext, rec: Recorder) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    who = ctx.users[c.index % len(ctx.users)]
    digest = hashlib.sha256(secrets.token_bytes(32)).digest()
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(8)
    started = time.monotonic()
    if rec.over():
        return
    query = urlencode({"response_type": "code", "client_id": ctx.client_id, "redirect_uri": REDIRECT_URI,
                       "scope": USE_SERVER, "state": state, "code_challenge": challenge,
                       "code_challenge_method": "S256", "sign_identity_id": who.identity_id,
                       "digests_summary": base64.b64encode(hashlib.sha256(digest).digest()).decode(),
                       "digests_summary_algorithm": "SHA256"})
    t = time.monotonic()
    r = await rec.call("authorize", c.pick(), "GET", f"{PAGES}?{query}")
    if r is None or rec.over():
        return
    try:
        request_id = hidden(r.body.decode(), "request_id")
    except AssertionError:
        rec.error("authorize", "no login form", t, r.body.decode(errors="replace"))
        return
    cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in r.cookies().items())}
    t = time.monotonic()
    r = await rec.call("login", c.pick(), "POST", f"{PAGES}/login", urlencode({
        "request_id": request_id, "username": who.username, "password": who.password, "action": "login"}).encode(),
        FORM, cookie)
    if r is None or rec.over():
        return
    if b'name="pin"' not in r.body:
        rec.error("login", "no consent form", t, r.body.decode(errors="replace"))
        return
    t = time.monotonic()
    r = await rec.call("consent", c.pick(), "POST", f"{PAGES}/consent", urlencode({
        "request_id": request_id, "action": "approve", "pin": who.pin}).encode(), FORM, cookie, expect=(302, 303))
    if r is None or rec.over():
        return
    params = {k: v[0] for k, v in parse_qs(urlsplit(r.header("location") or "").query).items()}
    if params.get("state") != state or "code" not in params:
        rec.error("consent", "no code", t, str(r.header("location")))
        return
    basic = base64.b64encode(f"{ctx.client_id}:{ctx.client_secret}".encode()).decode()
    r = await rec.call("token", c.pick(), "POST", f"{PAGES}/token", urlencode({
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier}).encode(), FORM, {"Authorization": f"Basic {basic}"})
    if r is None or rec.over():
        return
    token = r.json()["access_token"]
    t = time.monotonic()
    r = await rec.call("raw", c.pick(), "POST", RAW_BATCH, _json({
        "sign_identity_id": who.identity_id, "signature_algorithm": "rsa-sha256",
        "requests": [{"digest_value": base64.b64encode(digest).decode()}]}), JSON,
        {"Authorization": f"Bearer {token}", "Accept": JSON})
    if r is None:
        return
    try:
        signature = base64.b64decode(r.json()["signatures"][0])
        ctx.public_keys[c.index % len(ctx.users)].verify(signature, digest, padding.PKCS1v15(),
                                                          utils.Prehashed(hashes.SHA256()))
    except Exception as exc:  # noqa: BLE001 - a wrong answer is an error of the call
        rec.error("raw", "bad signature", t, f"{type(exc).__name__}: {exc}; {r.body[:200]!r}")
        return
    rec.flow_done(started)


# -- one run --------------------------------------------------------------------------------------------

def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]  # not guest time
    idle = fields[3] + fields[4]  # idle + iowait
    return float(sum(fields) - idle), float(sum(fields))


def wait_for_quiet(limit: float, threshold: float = 0.3, sample: float = 3.0) -> float:
    """Wait (at most ``limit`` seconds) until the machine is quiet between runs: less than
    ``threshold`` cores busy over ``sample`` seconds (our idle nodes, PostgreSQL and SeaweedFS
    included), so that another job's load does not land in a measurement. Seconds waited."""
    t0 = time.monotonic()
    while True:
        a = machine_busy()
        time.sleep(sample)
        b = machine_busy()
        busy = (b[0] - a[0]) / max(b[1] - a[1], 1.0) * (os.cpu_count() or 1)
        waited = time.monotonic() - t0
        if busy < threshold or waited >= limit:
            if waited > sample + 0.5:
                print(f"  waited {waited:.0f} s for a quiet machine (last {sample:.0f} s: {busy:.2f} cores busy)",
                      flush=True)
            return waited


def own_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


@dataclass
class CpuSnapshot:
    parts: dict[str, float]
    own: float
    busy: tuple[float, float]
    at: float

    @classmethod
    def take(cls, cluster: Cluster) -> "CpuSnapshot":
        table = _proc_table()
        parts = {name: tree_cpu(table, pids) for name, pids in cluster.pids().items()}
        return cls(parts, own_cpu(), machine_busy(), time.monotonic())


@dataclass
class Result:
    scenario: str
    clients: int
    nodes: int
    spread: str
    seconds: float
    flows: int
    latency: dict[str, list[float]]
    errors: dict[str, dict[str, int]]
    samples: dict[str, str]
    flow_latency: list[float]
    cpu: dict[str, float]  # cores over the window
    load1: float
    pg_connections: int
    log_problems: dict[str, int]
    log_samples: list[str]

    @property
    def flows_per_s(self) -> float:
        return self.flows / self.seconds

    @property
    def error_count(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.errors.values())

    def call_figures(self, name: str) -> tuple[int, float, float, float]:
        lat = self.latency.get(name, [])
        return len(lat), percentile(lat, 50) * 1000, percentile(lat, 95) * 1000, percentile(lat, 99) * 1000

    def worst_p99(self) -> float:
        return max((self.call_figures(n)[3] for n in self.latency if self.latency[n]), default=float("nan"))

    def summary(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "clients": self.clients, "nodes": self.nodes, "spread": self.spread,
                "seconds": round(self.seconds, 1), "flows": self.flows, "flows_per_s": round(self.flows_per_s, 2),
                "errors": self.errors, "error_samples": self.samples,
                "calls": {n: dict(zip(("count", "p50_ms", "p95_ms", "p99_ms"),
                                      (round(v, 1) for v in self.call_figures(n)))) for n in CALLS[self.scenario]},
                "flow_p50_s": round(percentile(self.flow_latency, 50), 3),
                "flow_p99_s": round(percentile(self.flow_latency, 99), 3),
                "cpu_cores": {k: round(v, 2) for k, v in self.cpu.items()}, "load1_at_start": self.load1,
                "pg_connections_max": self.pg_connections, "log_problems": self.log_problems,
                "log_samples": self.log_samples}


class PgSampler:
    """The most connections to the instance's database seen, sampled every second."""

    def __init__(self, cluster: Cluster) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(cluster.database_url, pool_size=1, max_overflow=0)
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from sqlalchemy import text

        while not self._stop.wait(1.0):
            try:
                with self.engine.connect() as c:
                    n = int(c.execute(text("SELECT count(*) FROM pg_stat_activity "
                                           "WHERE datname = current_database()")).scalar() or 0)
                self.most = max(self.most, n - 1)  # not this sampler's own
            except Exception:  # noqa: BLE001 - a missed sample
                pass

    def __enter__(self) -> "PgSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.engine.dispose()


LOG_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b")


def log_offsets(cluster: Cluster) -> dict[Path, int]:
    return {(n.home / "service.log"): (n.home / "service.log").stat().st_size
            if (n.home / "service.log").exists() else 0 for n in cluster.nodes}


def log_problems(offsets: dict[Path, int]) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    samples: list[str] = []
    for path, offset in offsets.items():
        with open(path, "rb") as f:
            f.seek(offset)
            lines = [line for line in f.read().decode(errors="replace").splitlines() if LOG_PROBLEM.search(line)]
        if lines:
            counts[path.parent.name] = len(lines)
            samples.extend(f"{path.parent.name}: {line[:300]}" for line in lines[:3])
    return counts, samples


async def drive(scenario: str, clients: list[Client], ctx: Any, rec: Recorder, warmup: float, duration: float,
                cluster: Cluster) -> tuple[CpuSnapshot, CpuSnapshot]:
    flow: Callable[[Client, Any, Recorder], Awaitable[None]] = eparaksts_flow if scenario == "eparaksts" else raw_flow
    await asyncio.gather(*(c.connect() for c in clients))
    now = time.monotonic()
    rec.t0, rec.t1 = now + warmup, now + warmup + duration
    snapshots: list[CpuSnapshot] = []

    async def snap(at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        snapshots.append(CpuSnapshot.take(cluster))

    async def loop(c: Client) -> None:
        while not rec.over():
            started = time.monotonic()
            try:
                await flow(c, ctx, rec)
            except Exception as exc:  # noqa: BLE001 - an answer the flow could not read: an error, go on
                rec.error("(client)", type(exc).__name__, started, repr(exc))

    await asyncio.gather(snap(rec.t0), snap(rec.t1), *(loop(c) for c in clients))
    for c in clients:
        await c.close()
    return snapshots[0], snapshots[1]


def run_one(scenario: str, n_clients: int, cluster: Cluster, ctx: Any, args: argparse.Namespace) -> Result:
    load1 = os.getloadavg()[0]
    urls = [node.url for node in cluster.nodes]
    clients = [Client(i, urls, args.spread) for i in range(n_clients)]
    rec = Recorder(args.timeout)
    offsets = log_offsets(cluster)
    with PgSampler(cluster) as sampler:
        before, after = asyncio.run(drive(scenario, clients, ctx, rec, args.warmup, args.duration, cluster))
    problems, samples = log_problems(offsets)
    seconds = after.at - before.at
    busy = (after.busy[0] - before.busy[0]) / (after.busy[1] - before.busy[1]) * (os.cpu_count() or 1)
    cpu = {name: (after.parts[name] - before.parts.get(name, 0.0)) / seconds for name in after.parts}
    cpu["clients"] = (after.own - before.own) / seconds
    cpu["machine"] = busy
    cpu["other"] = max(0.0, busy - sum(v for k, v in cpu.items() if k != "machine"))
    return Result(scenario, n_clients, len(cluster.nodes), args.spread, seconds, rec.flows, dict(rec.latency),
                  {k: dict(v) for k, v in rec.errors.items()}, {f"{k[0]} {k[1]}": v for k, v in rec.samples.items()},
                  rec.flow_latency, cpu, load1, sampler.most, problems, samples)


# -- set-up of the scenarios -------------------------------------------------------------------------------

def eparaksts_context(cluster: Cluster, pdf_kb: int, signer_pause: float = 0.0) -> EParakstsContext:
    node = cluster.nodes[0]
    demo = node.demo_client()
    card = issue_card(node, cluster.base, "rsa")
    pdf = pdf_bytes(pages=2, padding_bytes=pdf_kb * 1024)
    return EParakstsContext(node.token(demo["client_id"], demo["client_secret"]), card,
                            multipart("file", "contract.pdf", pdf, "application/pdf"), len(pdf), signer_pause)


def raw_context(cluster: Cluster, users: int) -> RawContext:
    import httpx
    from cryptography import x509

    node = cluster.nodes[0]
    demo = node.demo_client()
    t0 = time.monotonic()
    with httpx.Client(base_url=node.url, timeout=120) as http:
        token = node.token(demo["client_id"], demo["client_secret"])
        register_redirect(http, token)

    def one(_: int) -> Enrolled:
        with httpx.Client(base_url=node.url, timeout=120) as own:
            return enrol(own, token, algorithm="rsa-2048")

    with ThreadPoolExecutor(8) as pool:
        enrolled = list(pool.map(one, range(users)))
    keys = [x509.load_der_x509_certificate(base64.b64decode(who.certificate_b64)).public_key() for who in enrolled]
    print(f"{users} users enrolled, each with an RSA-2048 identity and a PIN, in {time.monotonic() - t0:.1f} s",
          flush=True)
    return RawContext(demo["client_id"], demo["client_secret"], enrolled, keys)


# -- output ------------------------------------------------------------------------------------------------

def machine_facts() -> list[str]:
    from machine_speed import cpu_model as model_name, measure

    cpu_model = model_name()
    speed = measure()
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    try:
        weed = subprocess.run([str(SeaweedFS.binary()), "version"], capture_output=True, text=True,
                              timeout=30).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - a fact we do without
        weed = "?"
    try:
        pg = PostgresServer._bindir().parent.name
    except RuntimeError:
        pg = "?"
    load = os.getloadavg()
    return [f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"nproc: {len(os.sched_getaffinity(0))} ({cpu_model}), {mem_kb / 1024 / 1024:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}",
            f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            f"Python {platform.python_version()}, PostgreSQL {pg}, SeaweedFS {weed}",
            f"machine speed (bench/machine_speed.py, ms, lower is faster): Python loop {speed['python_loop_1M_ms']:.0f}, "
            f"JSON {speed['json_20k_ms']:.0f}, RSA-2048 x50 {speed['rsa2048_sign_x50_ms']:.0f}, "
            f"ASN.1 x200 {speed['asn1_certificate_x200_ms']:.0f}"]


def _ms(v: float) -> str:
    return "-" if v != v else f"{v:.0f}"


def summary_table(results: list[Result]) -> list[str]:
    lines = ["| scenario | clients | nodes | flows/s | errors | flow p50 / p99 s | worst call p99 ms "
             "| CPU cores: nodes / PostgreSQL / SeaweedFS / clients / other | node CPU ms/flow | PG conns | load1 |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in results:
        c = r.cpu
        lines.append(f"| {r.scenario} | {r.clients} | {r.nodes} | {r.flows_per_s:.1f} | {r.error_count} "
                     f"| {percentile(r.flow_latency, 50):.2f} / {percentile(r.flow_latency, 99):.2f} "
                     f"| {_ms(r.worst_p99())} | {c['nodes']:.2f} / {c['postgres']:.2f} / {c['seaweedfs']:.2f} / "
                     f"{c['clients']:.2f} / {c['other']:.2f} "
                     f"| {c['nodes'] * 1000 / max(r.flows_per_s, 1e-9):.0f} | {r.pg_connections} | {r.load1:.1f} |")
    return lines


def call_table(results: list[Result], scenario: str) -> list[str]:
    calls = CALLS[scenario]
    lines = [f"{scenario}: per call p50 / p95 / p99 ms",
             "",
             "| clients | nodes | " + " | ".join(calls) + " |",
             "|--:|--:|" + "--:|" * len(calls)]
    for r in results:
        if r.scenario != scenario:
            continue
        cells = []
        for name in calls:
            _n, p50, p95, p99 = r.call_figures(name)
            cells.append(f"{_ms(p50)} / {_ms(p95)} / {_ms(p99)}")
        lines.append(f"| {r.clients} | {r.nodes} | " + " | ".join(cells) + " |")
    return lines


def report_run(r: Result) -> None:
    print(f"  {r.scenario}, {r.clients} clients, {r.nodes} node(s): {r.flows_per_s:.1f} flows/s, "
          f"{r.error_count} errors, worst call p99 {_ms(r.worst_p99())} ms; CPU cores nodes {r.cpu['nodes']:.2f}, "
          f"PostgreSQL {r.cpu['postgres']:.2f}, SeaweedFS {r.cpu['seaweedfs']:.2f}, clients {r.cpu['clients']:.2f}, "
          f"other processes {r.cpu['other']:.2f} (machine busy {r.cpu['machine']:.2f}); PG connections {r.pg_connections}",
          flush=True)
    for name in CALLS[r.scenario]:
        n, p50, p95, p99 = r.call_figures(name)
        errs = r.errors.get(name, {})
        print(f"    {name:<16}{n:>7} calls  p50 {_ms(p50):>5}  p95 {_ms(p95):>5}  p99 {_ms(p99):>5} ms"
              + (f"  errors {dict(errs)}" if errs else ""), flush=True)
    for what, sample in r.samples.items():
        print(f"    first error {what}: {sample}", flush=True)
    if r.log_problems:
        print(f"    node logs: ERROR/traceback lines {r.log_problems}", flush=True)
        for line in r.log_samples:
            print(f"      {line}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="50,200", help="comma-separated concurrent client counts")
    ap.add_argument("--nodes", default="1,2,4", help="comma-separated node counts")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds per combination")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds of load before each measurement")
    ap.add_argument("--scenarios", default="eparaksts,raw", help="eparaksts, raw or both")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 clients, 1 and 2 nodes, 10 s (3 s warm-up)")
    ap.add_argument("--spread", choices=("request", "client"), default="request",
                    help="each call to the next node (default), or each client pinned to one node")
    ap.add_argument("--workers", type=int, default=1, help="`serve --workers` of each node (default 1)")
    ap.add_argument("--pdf-kb", type=int, default=100, help="size of the PDF each eParaksts flow signs")
    ap.add_argument("--signer-pause", type=float, default=0.0, metavar="SECONDS",
                    help="eparaksts: the signer's time at the card between CalculateDigest and finalizeSigning "
                         "(default 0: a closed loop without pauses, the service saturated)")
    ap.add_argument("--kdf-log2-n", type=int, default=14, help="REMOTESIGN_KDF_LOG2_N of the nodes (min 14)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a call without answer is an error")
    ap.add_argument("--no-access-log", dest="access_log", action="store_false",
                    help="nodes without their per-request access log (default: on, as serve's default)")
    ap.add_argument("--wait-idle", type=float, default=180.0,
                    help="before each run, wait up to this many seconds for the machine to be quiet (default 180)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--workdir", type=Path, help="where the nodes, PostgreSQL and SeaweedFS keep their files "
                                                 "(default: a new temporary directory, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs) at the end")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.nodes, args.duration, args.warmup = "10", "1,2", 10.0, 3.0
    client_counts = [int(x) for x in args.clients.split(",")]
    node_counts = [int(x) for x in args.nodes.split(",")]
    scenarios = [s.strip() for s in args.scenarios.split(",")]
    for s in scenarios:
        if s not in CALLS:
            ap.error(f"unknown scenario {s!r} (eparaksts, raw)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # max clients x nodes connections

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    facts = machine_facts()
    command = "bench/load.py " + " ".join(sys.argv[1:])
    runs = len(client_counts) * len(node_counts) * len(scenarios)
    print("\n".join(facts))
    print(f"{runs} runs of {args.warmup:.0f} + {args.duration:.0f} s, clients spread per {args.spread} over the "
          f"nodes; at least {runs * (args.warmup + args.duration) / 60:.1f} min plus set-up", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="remotesign-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workdir, args.kdf_log2_n, args.workers, args.access_log)
    results: list[Result] = []
    failed = crashed = False
    try:
        cluster.start_storage()
        contexts: dict[str, Any] = {}
        for n_nodes in node_counts:
            cluster.scale(n_nodes)
            for scenario in scenarios:
                if scenario not in contexts:
                    contexts[scenario] = (eparaksts_context(cluster, args.pdf_kb, args.signer_pause) if scenario == "eparaksts"
                                          else raw_context(cluster, max(client_counts)))
                for n_clients in client_counts:
                    if args.wait_idle > 0:
                        wait_for_quiet(args.wait_idle)
                    result = run_one(scenario, n_clients, cluster, contexts[scenario], args)
                    results.append(result)
                    report_run(result)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the nodes, SeaweedFS and PostgreSQL", file=sys.stderr, flush=True)
        failed = True
    except BaseException:
        failed = crashed = True
        for node in cluster.nodes:
            print(f"--- {node.home / 'service.log'} (end) ---\n{node.log()}", file=sys.stderr)
        raise
    finally:
        cluster.stop()
        stop_leftover_children()
        if args.keep or crashed:
            print(f"work directory kept (nodes' service.log, pg/pg.log, seaweedfs/weed.log): {workdir}",
                  file=sys.stderr)
        elif args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        if results:
            print()
            print(f"command: {command}")
            print("\n".join(facts))
            print(f"clients spread per {args.spread}; {args.warmup:.0f} s warm-up, {args.duration:.0f} s measured "
                  f"per combination; REMOTESIGN_KDF_LOG2_N={args.kdf_log2_n}"
                  + (f"; signer pause {args.signer_pause:g} s" if args.signer_pause else ""))
            print()
            print("\n".join(summary_table(results)))
            for scenario in scenarios:
                print()
                print("\n".join(call_table(results, scenario)))
            errors = [(r, what, s) for r in results for what, s in r.samples.items()]
            if errors:
                print("\nfirst error of each kind:")
                for r, what, s in errors:
                    print(f"  {r.scenario} {r.clients} clients {r.nodes} nodes, {what}: {s}")
            if args.json:
                args.json.write_text(json.dumps({"command": command, "machine": facts,
                                                 "results": [r.summary() for r in results]}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
