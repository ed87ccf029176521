"""deploy/: the deployment examples name only settings and options the code has, and describe
what the README's "Several nodes" asks for (the same settings on every node, a home each).

Reads files only (no service, no Docker, no systemd), and imports nothing of remotesign: the
setting names come from remotesign/config.py's text, the serve options from remotesign/cli/main.py's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
UNIT = DEPLOY / "systemd" / "remotesign@.service"
ENV_EXAMPLE = DEPLOY / "systemd" / "remotesign.env.example"
HAPROXY = DEPLOY / "haproxy" / "haproxy.cfg"
MAKE_SECRETS = DEPLOY / "make-secrets.sh"

SETTING = re.compile(r"\bREMOTESIGN_[A-Z0-9_]*[A-Z0-9]\b")
# What every node must have alike ("Several nodes"): the database, the blob store, the public URL,
# the key backend and its master key. The database URL is one of DATABASE (itself or a file).
SHARED = ("REMOTESIGN_PUBLIC_URL", "REMOTESIGN_BLOB_STORE", "REMOTESIGN_S3_ENDPOINT",
          "REMOTESIGN_S3_BUCKET", "REMOTESIGN_S3_ACCESS_KEY", "REMOTESIGN_S3_SECRET_KEY_FILE",
          "REMOTESIGN_KEY_BACKEND", "REMOTESIGN_MASTER_KEY_FILE")
DATABASE = ("REMOTESIGN_DATABASE_URL", "REMOTESIGN_DATABASE_URL_FILE")


def known_settings() -> set[str]:
    """The REMOTESIGN_* names remotesign/config.py reads (each appears there as a string literal)."""
    text = (ROOT / "remotesign" / "config.py").read_text(encoding="utf-8")
    return set(re.findall(r"[\"'](REMOTESIGN_[A-Z0-9_]+)[\"']", text))


def serve_options() -> set[str]:
    """The options of `remotesign serve`, from its parser's definition."""
    text = (ROOT / "remotesign" / "cli" / "main.py").read_text(encoding="utf-8")
    start = text.index('sub.add_parser("serve"')
    end = text.index("set_defaults(func=cmd_serve)", start)
    options = set(re.findall(r'add_argument\("(--[a-z-]+)"', text[start:end]))
    if "BooleanOptionalAction" in text[start:end]:
        options |= {"--no-" + o[2:] for o in options}
    return options


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "secrets" not in p.parts and p.name != ".env")


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # resolves the <<: merge of the node anchor


def nodes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run remotesign (built from deploy/Dockerfile)."""
    return {name: svc for name, svc in doc["services"].items()
            if isinstance(svc.get("build"), dict) and svc["build"].get("dockerfile") == "deploy/Dockerfile"}


def unit_entries(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit's sections and their Key=value lines (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, f"{path.name}: stray line {raw!r}"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def test_every_setting_named_in_deploy_exists() -> None:
    known = known_settings()
    assert "REMOTESIGN_DATABASE_URL" in known and "REMOTESIGN_S3_BUCKET" in known  # the scan itself works
    unknown = {f"{path.relative_to(ROOT)}: {name}"
               for path in deploy_files() for name in SETTING.findall(path.read_text(encoding="utf-8"))
               if name not in known}
    assert not unknown, f"settings that remotesign/config.py does not read: {sorted(unknown)}"


def test_serve_options_used_exist() -> None:
    options = serve_options()
    assert {"--host", "--port", "--workers"} <= options
    commands = [" ".join(map(str, svc["command"])) for svc in nodes(compose()).values()]
    commands.append(dict(unit_entries(UNIT)["Service"])["ExecStart"])
    for command in commands:
        assert "remotesign serve" in command, command
        used = set(re.findall(r"(?<!\S)(--[a-z-]+)", command))
        assert used <= options, f"{command}: no such serve option {sorted(used - options)}"


def test_compose_nodes_share_settings_and_have_their_own_homes() -> None:
    doc = compose()
    found = nodes(doc)
    assert len(found) >= 2, f"two remotesign nodes expected, found {sorted(found)}"
    envs = {name: svc["environment"] for name, svc in found.items()}
    for name, env in envs.items():
        assert len([key for key in DATABASE if key in env]) == 1, f"{name}: one of {DATABASE} expected"
    for key in (*SHARED, *(key for key in DATABASE if key in next(iter(envs.values())))):
        values = {name: env.get(key) for name, env in envs.items()}
        assert None not in values.values(), f"{key} missing on a node: {values}"
        assert len(set(values.values())) == 1, f"{key} differs between nodes: {values}"
    first = next(iter(envs.values()))
    assert first["REMOTESIGN_BLOB_STORE"] == "s3"
    # the master key file and the database URL (it carries the password) are secrets every node
    # mounts (/run/secrets/<name>), each defined from one file; make-secrets.sh writes the URL's
    assert "REMOTESIGN_DATABASE_URL" not in first, "the database password belongs in a secret"
    for setting in ("REMOTESIGN_MASTER_KEY_FILE", "REMOTESIGN_DATABASE_URL_FILE"):
        assert first[setting].startswith("/run/secrets/"), setting
        secret = first[setting].removeprefix("/run/secrets/")
        assert secret in doc["secrets"], setting
        for name, svc in found.items():
            assert secret in svc["secrets"], f"{name} does not mount {secret}"
    url_file = doc["secrets"][first["REMOTESIGN_DATABASE_URL_FILE"].removeprefix("/run/secrets/")]["file"]
    script = MAKE_SECRETS.read_text(encoding="utf-8")
    assert url_file.removeprefix("./") in script and "postgresql+psycopg://" in script
    homes = {}
    for name, svc in found.items():
        home = svc["environment"]["REMOTESIGN_HOME"]
        mounts = [v.split(":") for v in svc.get("volumes", []) if isinstance(v, str)]
        sources = [m[0] for m in mounts if len(m) >= 2 and m[1] == home]
        assert len(sources) == 1, f"{name}: no volume of its own at REMOTESIGN_HOME {home}"
        assert sources[0] in doc["volumes"], f"{name}: {sources[0]} is not a named volume"
        homes[name] = sources[0]
    assert len(set(homes.values())) == len(homes), f"nodes share a home: {homes}"


def test_compose_health_checks_and_load_balancer() -> None:
    doc = compose()
    found = nodes(doc)
    for name, svc in found.items():
        assert "/health" in " ".join(svc["healthcheck"]["test"]), name
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
    assert doc["services"]["seaweedfs"]["image"].startswith("chrislusf/seaweedfs")
    assert "-s3" in doc["services"]["seaweedfs"]["command"]
    assert doc["services"]["postgres"]["image"].startswith("postgres:")
    config = HAPROXY.read_text(encoding="utf-8")
    assert re.search(r"http-check send meth GET uri /health\b", config)
    for name in found:  # the balancer routes to every node, with a health check
        assert re.search(rf"^\s*server \S+ {re.escape(name)}:8080 check\b", config, re.M), name
    # trusted for X-Forwarded-*: exactly the balancer's fixed address
    lb_address = doc["services"]["lb"]["networks"]["backend"]["ipv4_address"]
    assert {svc["environment"]["FORWARDED_ALLOW_IPS"] for svc in found.values()} == {lb_address}
    # inactivity timeouts above the operation lease (300 s by default), a body cap above the
    # largest per-path limit (the Fortress API's base64 JSON of a REMOTESIGN_FILE_MAX_BYTES file)
    for side in ("client", "server"):
        seconds = int(re.search(rf"timeout {side} (\d+)s", config).group(1))  # type: ignore[union-attr]
        assert seconds > 300, side
    cap = int(re.search(r"content-length\) gt (\d+)", config).group(1))  # type: ignore[union-attr]
    file_max = int(next(iter(found.values()))["environment"]["REMOTESIGN_FILE_MAX_BYTES"])
    assert cap >= (file_max + 64 * 1024) * 4 // 3 + 64 * 1024


def test_systemd_unit() -> None:
    sections = unit_entries(UNIT)
    service = sections["Service"]
    keys = dict(service)
    assert keys["User"] == "remotesign"
    assert ("EnvironmentFile", "/etc/remotesign/%i.env") in service
    assert re.fullmatch(r"/\S*/remotesign serve( .*)?", keys["ExecStart"]), keys["ExecStart"]
    assert keys["Restart"] == "on-failure"
    assert int(keys["TimeoutStopSec"]) >= 120
    assert keys["NoNewPrivileges"] == "yes" and keys["ProtectSystem"] == "strict" and keys["PrivateTmp"] == "yes"
    # the home the unit gives each instance is the one place it may write
    home = next(v.split("=", 1)[1] for k, v in service if k == "Environment" and v.startswith("REMOTESIGN_HOME="))
    assert home in [v for k, v in service if k == "ReadWritePaths"]
    assert "WantedBy" in dict(sections["Install"])


def test_env_example() -> None:
    names = [line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    assert "REMOTESIGN_HOME" not in names  # the unit sets it per instance; the file would override it
    assert set(SHARED) <= set(names)
    assert len([key for key in DATABASE if key in names]) == 1, names
    unit_vars = set(re.findall(r"\$\{(\w+)\}", dict(unit_entries(UNIT)["Service"])["ExecStart"]))
    assert unit_vars <= set(names), unit_vars - set(names)
