"""Real parts for the tests: the service as a subprocess talking HTTP, a PostgreSQL server started
from Debian's binaries, and SoftHSM2 tokens. Nothing here is mocked."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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
    proc = subprocess.run([sys.executable, "-m", "remotesign", *args], env=full_env, capture_output=True,
                          input=input, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"remotesign {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout.decode()}\n{proc.stderr.decode()}")
    return proc


@dataclass
class Service:
    home: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    args: tuple[str, ...] = ()  # more `remotesign serve` arguments, e.g. ("--workers", "2")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "Service":
        self.home.mkdir(parents=True, exist_ok=True)
        from tests.mailbox import mailbox

        env = {**os.environ, "REMOTESIGN_HOME": str(self.home), "REMOTESIGN_PUBLIC_URL": self.url,
               "REMOTESIGN_SMTP_URL": mailbox().url, **self.env}
        log = open(self.home / "service.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "remotesign", "serve", "--port", str(self.port), *self.args],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
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

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return cli(self.home, *args, env=self.env, check=check)

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
