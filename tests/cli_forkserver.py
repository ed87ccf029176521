"""Run ``remotesign`` commands for the tests in processes forked from a parent that has imported the
stack and done nothing else.

Why: a ``python -m remotesign ...`` spends about a second of CPU importing SQLAlchemy's models,
pyHanko, FastAPI and the rest before it does any work, and the suite runs hundreds of commands. A
child forked from a pre-loaded parent is still a separate process -- its own environment, working
directory, stdin, stdout, stderr and exit status, its own database connections and files -- at a
few milliseconds a start. The parent opens no database, no instance file and no thread, so a child
inherits code and nothing else. ``REMOTESIGN_TEST_CLI_SUBPROCESS=1`` runs every command as a plain
subprocess instead (to rule the fork server out when a test behaves oddly).

Protocol on a Unix socket, one connection per command: the client sends a length-prefixed JSON
request (args, env, cwd, stdin); the server forks; the child answers with its pid, runs the command
and answers with its exit status, stdout and stderr.
"""

from __future__ import annotations

import atexit
import base64
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the interpreter the fork server runs; a test that swaps sys.executable gets a plain process

# What a command may import lazily; loaded once in the parent so that no child pays for it.
_PRELOAD = ("remotesign.cli.main", "remotesign.cli.sign", "remotesign.cli.validate", "remotesign.cli.users",
            "remotesign.cli.operators", "remotesign.cli.agreements", "remotesign.cli.tsa_credentials",
            "remotesign.cli.workers", "remotesign.service",
            # what `serve` imports: the app with its facades, the server, the migrations (~3 s of CPU a start)
            "remotesign.api.app", "remotesign.storage.migrate", "uvicorn")


# -- wire ----------------------------------------------------------------------------------------------
def _send(conn: socket.socket, obj: object) -> None:
    data = json.dumps(obj).encode()
    conn.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = conn.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("the fork server closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(conn: socket.socket) -> object:
    (size,) = struct.unpack(">I", _recv_exact(conn, 4))
    return json.loads(_recv_exact(conn, size))


# -- server side ---------------------------------------------------------------------------------------
def _exit_status(code: object) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _become(request: dict[str, object]) -> None:
    """In the forked child: take the command's environment, directory, arguments and signals."""
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as CPython sets them
    os.environ.clear()
    os.environ.update(request["env"])  # type: ignore[arg-type]
    time.tzset()
    os.chdir(str(request["cwd"]))
    tempfile.tempdir = None  # TMPDIR may differ from the parent's
    sys.argv = [str(ROOT / "remotesign" / "__main__.py"), *request["args"]]  # type: ignore[misc]


def _run_command(args: list[str]) -> int:
    """``remotesign ARGS`` as the interpreter would run it, up to its exit status."""
    status = 1
    try:
        from remotesign.cli.main import main

        status = _exit_status(main(args))
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:  # what the interpreter would print on an uncaught exception
        traceback.print_exc()
        status = 1
    try:
        atexit._run_exitfuncs()  # as a normal interpreter exit would
    except BaseException:
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
    return status


def _run_child(conn: socket.socket, request: dict[str, object]) -> None:
    """A command whose output goes back to the client: run it, then report status and output."""
    _send(conn, os.getpid())
    _become(request)
    stdin = tempfile.TemporaryFile()
    stdin.write(base64.b64decode(str(request["stdin"])))
    stdin.seek(0)
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    os.dup2(stdin.fileno(), 0)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    status = _run_command(request["args"])  # type: ignore[arg-type]
    out.seek(0)
    err.seek(0)
    _send(conn, {"status": status, "stdout": base64.b64encode(out.read()).decode(),
                 "stderr": base64.b64encode(err.read()).decode()})


def _spawn_child(conn: socket.socket, request: dict[str, object]) -> int:
    """A long-running command (``serve``) writing to a log file; the parent reports its exit."""
    _send(conn, os.getpid())
    conn.close()
    _become(request)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    return _run_command(request["args"])  # type: ignore[arg-type]


def serve(path: str) -> None:
    """The parent: pre-load, then fork one child per connection until the test process is gone.
    Single-threaded (a fork from a threaded parent could inherit a held lock): one loop accepts
    requests and reaps children, telling each spawned child's client how it ended."""
    for name in _PRELOAD:
        importlib.import_module(name)
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(0.1)
    spawned: dict[int, socket.socket] = {}  # pid -> the client's connection, kept to report the exit
    print("ready", flush=True)
    while os.getppid() == parent:
        _reap(spawned)
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        request = _recv(conn)
        assert isinstance(request, dict)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                listener.close()
                for other in spawned.values():
                    other.close()
                if request.get("log"):
                    code = _spawn_child(conn, request)
                else:
                    _run_child(conn, request)
                    code = 0
            finally:
                os._exit(code)
        if request.get("log"):
            spawned[pid] = conn
        else:
            conn.close()


def _reap(spawned: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = spawned.pop(pid, None)
        if conn is not None:
            try:
                _send(conn, {"returncode": os.waitstatus_to_exitcode(status)})
            except OSError:
                pass
            conn.close()


# -- client side ---------------------------------------------------------------------------------------
_lock = threading.Lock()
_server: tuple[subprocess.Popen[bytes], str] | None = None


def _server_path() -> str:
    global _server
    with _lock:
        if _server is not None and _server[0].poll() is None:
            return _server[1]
        path = os.path.join(tempfile.mkdtemp(prefix="rs-cli-"), "fork.sock")
        proc = subprocess.Popen([PYTHON, "-m", "tests.cli_forkserver", path], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            proc.wait(timeout=30)
            raise RuntimeError(f"the CLI fork server did not start:\n{proc.stderr.read().decode() if proc.stderr else ''}")
        atexit.register(proc.kill)
        _server = (proc, path)
        return path


def _plain() -> bool:
    """Whether to run a plain ``python -m remotesign`` instead: asked for, or another interpreter
    (e.g. a wrapper that drops capabilities) put in ``sys.executable`` by the test."""
    return os.environ.get("REMOTESIGN_TEST_CLI_SUBPROCESS") == "1" or sys.executable != PYTHON


def run(args: list[str] | tuple[str, ...], *, env: dict[str, str], cwd: str | Path | None = None,
        input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """``remotesign ARGS`` with exactly ``env`` as its environment, like ``subprocess.run``."""
    argv = [sys.executable, "-m", "remotesign", *args]
    workdir = str(cwd) if cwd is not None else os.getcwd()
    if _plain():
        return subprocess.run(argv, env=env, cwd=workdir, input=input or b"", capture_output=True, timeout=timeout)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(_server_path())
        conn.settimeout(timeout)
        _send(conn, {"args": list(args), "env": env, "cwd": workdir,
                     "stdin": base64.b64encode(input or b"").decode()})
        pid = _recv(conn)
        try:
            answer = _recv(conn)
        except (socket.timeout, TimeoutError):
            os.kill(int(pid), signal.SIGKILL)  # type: ignore[arg-type]
            raise subprocess.TimeoutExpired(argv, timeout) from None
    assert isinstance(answer, dict)
    return subprocess.CompletedProcess(argv, int(answer["status"]), base64.b64decode(answer["stdout"]),
                                       base64.b64decode(answer["stderr"]))


class SpawnedProcess:
    """The handle of a ``spawn``-ed command: the part of ``subprocess.Popen`` the tests use."""

    def __init__(self, conn: socket.socket, args: list[str]) -> None:
        self._conn = conn
        self.args = args
        self.pid = int(_recv(conn))  # type: ignore[arg-type]
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._conn], [], [], 0)[0]:
            self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._conn], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._collect()
        assert self.returncode is not None
        return self.returncode

    def _collect(self) -> None:
        try:
            answer = _recv(self._conn)
            self.returncode = int(answer["returncode"])  # type: ignore[index]
        except ConnectionError:  # the fork server itself is gone
            self.returncode = -signal.SIGKILL
        self._conn.close()

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def spawn(args: list[str] | tuple[str, ...], *, env: dict[str, str], log: str | Path,
          cwd: str | Path | None = None) -> "SpawnedProcess | subprocess.Popen[bytes]":
    """Start ``remotesign ARGS`` in the background, stdout and stderr appended to ``log``, like
    ``subprocess.Popen``. Used for ``serve``."""
    workdir = str(cwd) if cwd is not None else os.getcwd()
    if _plain():
        with open(log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "remotesign", *args], env=env, cwd=workdir,
                                    stdout=out, stderr=subprocess.STDOUT)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(_server_path())
    _send(conn, {"args": list(args), "env": env, "cwd": workdir, "log": str(log)})
    return SpawnedProcess(conn, [sys.executable, "-m", "remotesign", *args])


if __name__ == "__main__":
    serve(sys.argv[1])
