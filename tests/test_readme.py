"""The README's "First steps as an integrator" block, run as written against a fresh instance.

The block is taken from README.md and run by bash in a scratch copy of the scripts (so ``var/``,
``serve.log`` and ``ca.pem`` land there, not in the checkout), with two substitutions only: a free
port for 8080 (``serve.sh`` gets ``--port``), since tests run in parallel. The scratch copy links
this checkout's ``.venv``; ``serve.sh`` must then start without installing anything."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.harness import free_port

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def readme_blocks(heading: str) -> list[str]:
    """The ```sh blocks of the README section ``heading`` (up to the next heading of its level)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    level = heading.split(" ")[0]
    section = re.split(rf"\n{level} ", section, maxsplit=1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks, f"no sh block under {heading!r}"
    return blocks


def readme_block(heading: str) -> str:
    """The first ```sh block under the README heading ``heading``."""
    return readme_blocks(heading)[0]


def scratch_site(tmp: Path) -> Path:
    """A directory that looks like a checkout to serve.sh: its scripts and pyproject.toml, and this
    checkout's virtualenv (stamped as installed: the running tests prove it is)."""
    site = tmp / "site"
    shutil.copytree(REPO / "scripts", site / "scripts")
    shutil.copytree(REPO / "examples", site / "examples")
    shutil.copy2(REPO / "pyproject.toml", site / "pyproject.toml")
    (site / ".venv").symlink_to(REPO / ".venv", target_is_directory=True)
    stamp = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + b".\n").hexdigest()[:16]
    (REPO / ".venv" / f".installed-{stamp}").touch()
    return site


def run_as_written(tmp_path: Path, *blocks: str) -> tuple[Path, str]:
    """``blocks`` run one after the other by one bash (set -euo pipefail) in a scratch site, the
    service on a free port; returns the site and what the blocks printed."""
    port = free_port()
    script = "\n".join(blocks)
    assert "./scripts/serve.sh " in script and "8080" in script
    script = script.replace("./scripts/serve.sh ", f"./scripts/serve.sh --port {port} ", 1).replace("8080", str(port))
    site = scratch_site(tmp_path)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=site, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)   # the service the block left running in the background
    log = (site / "serve.log").read_text(errors="replace") if (site / "serve.log").exists() else ""
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {out}\nstderr: {err}\nserve.log: {log[-3000:]}"
    assert "pip install" not in log and "installing Debian packages" not in log, log
    return site, out


def test_walkthroughs_run_as_written(tmp_path: Path) -> None:
    """The walk-throughs one after the other against one fresh instance, as a reader would run
    them: the first steps; the SignAPI section's key, signing and verification blocks (poppler's
    pdfsig, trusting only the built-in CA, calls the PDF valid and trusted); the curl-only
    server-signing flow (the operator enrols a signer, who signs in and approves with her PIN);
    the Python client's example (it signs with the SignAPI walk-through's key)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    example = re.search(r"## Python client\n.*?```python\n(.*?)```", text, re.S)
    assert example, "no Python example in the README"
    python = f".venv/bin/python - <<'PYTHON'\n{example.group(1)}PYTHON\n"
    site, out = run_as_written(tmp_path, readme_block("## First steps as an integrator"),
                               *readme_blocks("## eParaksts-style SignAPI"),
                               readme_block("### The eParaksts server-signing flow"), python)
    original = (site / "examples" / "contract.pdf").read_bytes()

    # first steps: the demo client, a key created over the native API, the CA chain for validators
    assert (site / "var" / "demo-client.json").is_file()
    assert '"label":"alice"' in out.replace(" ", ""), out
    chain = x509.load_pem_x509_certificates((site / "ca.pem").read_bytes())
    assert any(c.subject == c.issuer for c in chain)
    assert all(c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca for c in chain)
    # the SignAPI walk-through, verified by pdfsig and by remotesign
    assert (site / "signed.pdf").read_bytes().startswith(original)
    assert "Signature is Valid." in out and "Certificate is Trusted." in out, out
    # the server-signing walk-through
    assert (site / "anna-signed.pdf").read_bytes().startswith(original)
    assert out.count("TOTAL-PASSED") >= 2 and "PAdES_BASELINE_LT" in out, out
    # the Python client
    assert "True PAdES_BASELINE_LT" in out and "404 session_not_found" in out, out
    assert (site / "contract-signed.pdf").read_bytes().startswith(original)
