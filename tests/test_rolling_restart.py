"""What a node behind a load balancer needs for rolling restarts (deploy/README.md): ``remotesign
drain`` turns its ``/health`` to 503 "draining" (the other fields as usual, every other request still
served) until ``drain --off`` or the next ``serve``; and ``REMOTESIGN_DATABASE_URL_FILE`` keeps the
database URL, which carries the password, in a file. A real service and real CLI processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import Service, cli, free_port

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secrets")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("database") / "from-the-file.db"


@pytest.fixture(scope="module")
def url_file(secrets_dir: Path, db_path: Path) -> Path:
    path = secrets_dir / "database-url"
    path.write_text(f"sqlite:///{db_path}\n")  # a trailing newline, as `echo` and editors leave
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, url_file: Path) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("node-home"), free_port(),
                  env={"REMOTESIGN_DATABASE_URL_FILE": str(url_file)}).start()
    yield svc
    svc.stop()


def unavailable_schema(http: httpx.Client) -> Any:
    """The description's schema of /health's 503 answer, its references resolvable."""
    doc = http.get("/openapi.json").json()
    schema = doc["paths"]["/health"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def test_database_url_from_a_file(node: Service, db_path: Path) -> None:
    health = httpx.get(node.url + "/health", timeout=30).json()
    assert health["status"] == "ok" and health["database"] == "sqlite", health
    assert db_path.is_file()                              # the file's URL, its newline dropped
    assert not (node.home / "remotesign.db").exists()     # not the default beside the home
    clients = node.cli("client", "list").stdout.decode()  # the commands read the same file
    assert node.demo_client()["client_id"] in clients


@pytest.mark.parametrize("case", ["both", "missing", "unreadable", "empty"])
def test_a_bad_database_url_file_stops_with_one_line(tmp_path: Path, secrets_dir: Path, url_file: Path,
                                                     case: str) -> None:
    env = {"REMOTESIGN_DATABASE_URL_FILE": str(url_file)}
    expected = {"both": "REMOTESIGN_DATABASE_URL and REMOTESIGN_DATABASE_URL_FILE are both set",
                "missing": "cannot read", "unreadable": "cannot read", "empty": "is empty"}[case]
    if case == "both":
        env["REMOTESIGN_DATABASE_URL"] = url_file.read_text().strip()
    elif case == "missing":
        env["REMOTESIGN_DATABASE_URL_FILE"] = str(secrets_dir / "no-such-file")
    elif case == "unreadable":
        env["REMOTESIGN_DATABASE_URL_FILE"] = str(secrets_dir)  # a directory: EISDIR, as root too
    else:
        empty = secrets_dir / "empty-url"
        empty.write_text("\n")
        env["REMOTESIGN_DATABASE_URL_FILE"] = str(empty)
    commands: list[tuple[str, ...]] = [("client", "list")]
    if case == "missing":  # serve too (it stops before listening); once: its imports cost two seconds
        commands.append(("serve", "--port", str(free_port())))
    for args in commands:
        proc = cli(tmp_path, *args, env=env, check=False)  # the settings stop it before any instance is looked at
        err = proc.stderr.decode()
        assert proc.returncode != 0, (args, err)
        last = err.strip().splitlines()[-1]
        assert expected in last and "REMOTESIGN_DATABASE_URL_FILE" in last, (args, err)
        assert "Traceback" not in err, (args, err)


def test_drain_turns_health_to_503_until_off_or_the_next_serve(node: Service) -> None:
    with httpx.Client(base_url=node.url, timeout=30) as http:
        ready = http.get("/health")
        assert ready.status_code == 200, ready.text
        drained = node.cli("drain")
        assert b"draining" in drained.stdout
        assert (node.home / "draining").is_file()

        r = http.get("/health")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "draining"
        # the other fields as usual: an operator still sees what the node would answer
        assert set(body) == set(ready.json())
        for key in ("version", "key_backend", "database", "components"):
            assert body[key] == ready.json()[key], key
        errors = [e.message for e in unavailable_schema(http).iter_errors(body)]
        assert not errors, errors
        assert "retry-after" not in r.headers  # not a fault to retry: the node is going away
        # every other request is still served: only the balancer's health check sees the drain
        assert http.get("/pki/ca.pem").status_code == 200
        assert b"already" in node.cli("drain").stdout

        assert b"not draining any more" in node.cli("drain", "--off").stdout
        assert http.get("/health").status_code == 200
        assert b"was not draining" in node.cli("drain", "--off").stdout

    node.cli("drain")
    node.stop()
    node.start()  # waits for /health 200: the start removed the marker
    assert not (node.home / "draining").exists()
    assert "removed the drain marker" in node.log()


def test_drain_needs_a_home(tmp_path: Path) -> None:
    proc = cli(tmp_path / "nowhere", "drain", check=False)
    assert proc.returncode == 1
    assert b"no remotesign instance found" in proc.stderr and b"Traceback" not in proc.stderr
    assert not (tmp_path / "nowhere").exists()
