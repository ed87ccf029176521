"""``remotesign batch`` (issue 22 point 3: "the CLI shows a progress bar") against the running test
service over HTTP, each command its own process: the progress on stderr (a line per change when
stderr is not a terminal), one line per document and the exit status, the saved reports and LTA
documents (checked by pdfsig and by the service's own validation), no output written over a file,
credentials refused or a service not there told in one line, Ctrl-C leaving the batch running;
and the typed client (remotesign_client.batches) under it."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from remotesign.cli.progress import ProgressBar, render
from remotesign_client import NotFound, Remotesign
from remotesign_client.batches import _part
from tests import cli_forkserver
from tests.harness import Service, cli, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, issue_card, sign_bb

PROGRESS = re.compile(r"^\[[#-]{20}\] (\d+)/(\d+) done, (\d+) failed, (\d+) running$")


@pytest.fixture(scope="module")
def card(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(service, tmp_path_factory.mktemp("cli-batch-card"), "p256", cn="Batch CLI Signer")


@pytest.fixture(scope="module")
def docs(card: Card, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two well signed PDFs, one changed after signing, one never signed."""
    d = tmp_path_factory.mktemp("cli-batch-docs")
    good = [sign_bb(card, source=pdf_bytes(text=f"order {n}")) for n in range(2)]
    tampered = bytearray(good[0])
    at = tampered.index(b"order 0")
    tampered[at:at + 7] = b"order 9"
    contents = {"a.pdf": good[0], "b.pdf": good[1], "tampered.pdf": bytes(tampered),
                "unsigned.pdf": pdf_bytes(text="no signature")}
    for name, data in contents.items():
        (d / name).write_bytes(data)
    return {name: d / name for name in contents}


@pytest.fixture(scope="module")
def env(service: Service) -> dict[str, str]:
    demo = service.demo_client()
    return {"REMOTESIGN_URL": service.url, "REMOTESIGN_CLIENT_ID": demo["client_id"],
            "REMOTESIGN_CLIENT_SECRET": demo["client_secret"]}


def batch(service: Service, env: dict[str, str], *args: str, input: bytes | None = None) -> tuple[int, str, str]:
    proc = cli(service.home, "batch", *args, env=env, check=False, input=input)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def progress_lines(stderr: str) -> list[tuple[int, ...]]:
    """The progress lines of a non-terminal stderr, as (done, total, failed, running)."""
    assert "\r" not in stderr, stderr
    return [tuple(int(g) for g in m.groups()) for line in stderr.splitlines() if (m := PROGRESS.match(line))]


def submitted_id(stderr: str) -> str:
    m = re.search(r"^batch (b\w+): \d+ document\(s\) submitted", stderr, re.M)
    assert m, stderr
    return m.group(1)


def table(stdout: str) -> dict[str, list[str]]:
    """The per-document lines by name (after the header row)."""
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATE", "PASSED"] or lines[0].split()[:3] == ["NAME", "STATE", "LEVELS"]
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_progress_bar_redraws_on_a_terminal_and_prints_changes_elsewhere() -> None:
    assert render(24, 12, 1, 3) == "[##########----------] 12/24 done, 1 failed, 3 running"
    assert render(2, 2, 0, 0) == "[####################] 2/2 done, 0 failed, 0 running"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream in (Terminal(), io.StringIO()):
        bar = ProgressBar(stream)
        for numbers in ((3, 0, 0, 1), (3, 0, 0, 1), (3, 1, 0, 2), (3, 1, 0, 2), (3, 2, 1, 0)):
            bar.update(*numbers)
        bar.close()
        lines = [render(3, 0, 0, 1), render(3, 1, 0, 2), render(3, 2, 1, 0)]
        if isinstance(stream, Terminal):
            assert stream.getvalue() == "".join("\r" + line for line in lines) + "\n"
        else:
            assert stream.getvalue() == "".join(line + "\n" for line in lines)


def test_the_client_streams_paths_one_open_file_at_a_time(tmp_path: Path) -> None:
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"{n}.bin")
        paths[-1].write_bytes(bytes([n]) * (100_000 + n))
    parts = [_part(p) for p in paths]
    request = httpx.Request("POST", "http://x/v1/batches/validations", files=parts)
    body = b""
    for chunk in request.stream:  # type: ignore[union-attr]
        body += chunk
        assert sum(payload._fh is not None for _, (_, payload) in parts) <= 1
    assert int(request.headers["content-length"]) == len(body)
    assert all(payload._fh is None for _, (_, payload) in parts)
    for p in paths:
        assert p.read_bytes() in body and f'filename="{p.name}"'.encode() in body


def test_validate_good_documents(service: Service, env: dict[str, str], docs: dict[str, Path], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    status, out, err = batch(service, env, "validate", str(docs["a.pdf"]), str(docs["b.pdf"]),
                             "--reports", str(reports), "--interval", "0.2")
    assert status == 0, out + err
    seen = progress_lines(err)
    assert seen[0][:2] == (0, 2) and seen[-1] == (2, 2, 0, 0), err
    assert all(a != b for a, b in zip(seen, seen[1:])), err  # a line only when the numbers change
    rows = table(out)
    assert set(rows) == {"a.pdf", "b.pdf"} and all(r[1:3] == ["done", "1/1"] for r in rows.values()), out
    assert "TOTAL-PASSED" in out
    for name in ("a.pdf", "b.pdf"):
        report = json.loads((reports / f"{name}.json").read_text())
        assert report["simpleReport"]["validSignaturesCount"] == report["simpleReport"]["signaturesCount"] == 1
        assert "detailedReport" in report


def test_validate_reports_each_bad_document_and_exits_1(service: Service, env: dict[str, str],
                                                        docs: dict[str, Path]) -> None:
    files = [str(docs[n]) for n in ("a.pdf", "tampered.pdf", "unsigned.pdf")]
    status, out, err = batch(service, env, "validate", *files, "--interval", "0.2")
    assert status == 1, out + err
    assert progress_lines(err)[-1] == (2, 3, 1, 0), err
    rows = table(out)
    assert rows["a.pdf"][1:3] == ["done", "1/1"], out
    assert rows["tampered.pdf"][1:3] == ["done", "0/1"] and "TOTAL-FAILED" in rows["tampered.pdf"], out
    assert rows["unsigned.pdf"][1:3] == ["failed", "-"] and len(rows["unsigned.pdf"]) > 3, out  # the error follows
    batch_id = submitted_id(err)

    status, out, err = batch(service, env, "status", batch_id)  # once, no waiting
    assert status == 0 and f"batch {batch_id}: validation" in out and "finished" in out, out + err
    assert set(table(out.split("\n\n", 1)[1])) == {"a.pdf", "tampered.pdf", "unsigned.pdf"}, out
    status, out, err = batch(service, env, "wait", batch_id, "--json")  # finished already: the outcome at once
    assert status == 1, out + err
    items = json.loads(out)
    assert [i["state"] for i in items] == ["done", "done", "failed"] and items[2]["error"]["code"], items
    assert progress_lines(err) == [(2, 3, 1, 0)], err
    status, out, err = batch(service, env, "wait", batch_id, "--out", "x")
    assert status == 2 and "is a validation" in err, err


def _validate_lta(service: Service, path: Path) -> dict[str, Any]:
    demo = service.demo_client()
    token = service.token(demo["client_id"], demo["client_secret"])
    r = httpx.post(service.url + "/v1/validations", files=[("file", (path.name, path.read_bytes()))],
                   headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert r.status_code == 200, r.text
    signature, = r.json()["simpleReport"]["signaturesExt"]
    return signature  # type: ignore[no-any-return]


def test_extend_writes_lta_documents_and_never_over_a_file(service: Service, env: dict[str, str],
                                                           docs: dict[str, Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "archive"
    secret = env["REMOTESIGN_CLIENT_SECRET"].encode() + b"\n"
    stdin_env = {k: v for k, v in env.items() if k != "REMOTESIGN_CLIENT_SECRET"}
    status, out, err = batch(service, stdin_env, "extend", str(docs["a.pdf"]), str(docs["b.pdf"]), "--level", "LTA",
                             "--out", str(out_dir), "--interval", "0.2", "--client-secret-stdin", input=secret)
    assert status == 0, out + err
    assert progress_lines(err)[-1] == (2, 2, 0, 0), err
    rows = table(out)
    for name in ("a.pdf", "b.pdf"):
        assert rows[name][1:5] == ["done", "B", "->", "LTA"] and rows[name][5] == str(out_dir / name), out
        path = out_dir / name
        assert path.read_bytes().startswith(docs[name].read_bytes())  # incremental: the signed bytes kept
        check = subprocess.run(["pdfsig", "-nocert", str(path)], capture_output=True, text=True, check=False).stdout
        assert "Signature is Valid." in check and "Timestamp-" in check, check
    signature = _validate_lta(service, out_dir / "a.pdf")
    assert signature["signatureFormat"] == "PAdES_BASELINE_LTA" and signature["indication"] == "TOTAL-PASSED"
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.pdf", "b.pdf"]  # no partial files left

    before = (out_dir / "a.pdf").read_bytes()
    status, out, err = batch(service, env, "extend", str(docs["a.pdf"]), "--level", "LTA", "--out", str(out_dir))
    assert status == 1 and "a.pdf exists (--force replaces)" in err and "submitted" not in err, err
    assert "Traceback" not in err and (out_dir / "a.pdf").read_bytes() == before

    status, out, err = batch(service, env, "extend", str(docs["a.pdf"]), "--level", "T", "--out", str(out_dir),
                             "--force", "--interval", "0.2")
    assert status == 0, out + err
    assert table(out)["a.pdf"][1:5] == ["done", "B", "->", "T"] and (out_dir / "a.pdf").read_bytes() != before


def test_refused_credentials_and_a_service_not_there_are_one_line(service: Service, env: dict[str, str],
                                                                  docs: dict[str, Path], tmp_path: Path) -> None:
    wrong = tmp_path / "secret"
    wrong.write_text("not-the-secret\n")
    bad = {k: v for k, v in env.items() if k != "REMOTESIGN_CLIENT_SECRET"}
    status, out, err = batch(service, bad, "validate", str(docs["a.pdf"]), "--client-secret-file", str(wrong))
    assert status == 1 and "refused the client credentials" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and not out, err

    nowhere = f"http://127.0.0.1:{free_port()}"
    status, out, err = batch(service, env, "validate", str(docs["a.pdf"]), "--url", nowhere)
    assert status == 1 and f"cannot reach the service at {nowhere}" in err and "Traceback" not in err, err

    status, out, err = batch(service, {}, "validate", str(docs["a.pdf"]))
    assert status == 2 and "no client credentials" in err, err
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "a.pdf").write_bytes(docs["a.pdf"].read_bytes())
    status, out, err = batch(service, env, "extend", str(docs["a.pdf"]), str(tmp_path / "copy" / "a.pdf"),
                             "--level", "T", "--out", str(tmp_path / "out"))
    assert status == 2 and "have the same name" in err, err
    status, out, err = batch(service, env, "status", "b" + "0" * 32)
    assert status == 1 and "unknown_batch" in err and "Traceback" not in err, err


def test_ctrl_c_stops_waiting_and_the_batch_goes_on(service: Service, env: dict[str, str], docs: dict[str, Path],
                                                    tmp_path: Path) -> None:
    log = tmp_path / "cli.log"
    proc = cli_forkserver.spawn(["batch", "validate", str(docs["a.pdf"]), str(docs["b.pdf"]), "--interval", "30"],
                                env={**os.environ, **env}, log=log)
    deadline = time.monotonic() + 60
    while not any(PROGRESS.match(line) for line in (log.read_text() if log.exists() else "").splitlines()):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text() if log.exists() else ""
        time.sleep(0.05)
    time.sleep(0.3)  # in the 30 s between polls
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    text = log.read_text()
    batch_id = submitted_id(text)
    assert f"stopped waiting: batch {batch_id} goes on at the service" in text, text
    assert f"remotesign batch wait {batch_id}" in text and "Traceback" not in text, text
    with Remotesign(service.url, env["REMOTESIGN_CLIENT_ID"], env["REMOTESIGN_CLIENT_SECRET"]) as rs:
        assert rs.batches.wait(batch_id, interval=0.2, timeout=120).done == 2  # it went on without the CLI
    status, out, err = batch(service, env, "wait", batch_id)
    assert status == 0 and set(table(out)) == {"a.pdf", "b.pdf"}, out + err


def test_the_client_api(service: Service, env: dict[str, str], docs: dict[str, Path], tmp_path: Path) -> None:
    with Remotesign(service.url, env["REMOTESIGN_CLIENT_ID"], env["REMOTESIGN_CLIENT_SECRET"]) as rs:
        submitted = rs.batches.submit_validations([docs["a.pdf"], ("renamed.pdf", docs["unsigned.pdf"].read_bytes())])
        assert submitted.kind == "validation" and submitted.total == 2 and not submitted.finished
        seen: list[int] = []
        done = rs.batches.wait(submitted.id, interval=0.1, on_progress=lambda b: seen.append(b.done + b.failed))
        assert done.finished and (done.done, done.failed) == (1, 1) and seen[-1] == 2
        first, second = rs.batches.items(done.id)
        assert (first.name, first.all_passed, first.passed, first.signatures) == ("a.pdf", True, 1, 1)
        assert (second.name, second.state, second.all_passed) == ("renamed.pdf", "failed", False) and second.error_code
        assert rs.batches.report(done.id, 0).all_passed
        target = tmp_path / "report.json"
        assert rs.batches.download_result(done.id, 0, target) == len(target.read_bytes())
        with pytest.raises(FileExistsError):
            rs.batches.download_result(done.id, 0, target, overwrite=False)
        assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
        assert done.id in {b.id for b in rs.batches.batches()}
        rs.batches.delete(done.id)
        with pytest.raises(NotFound):
            rs.batches.batch(done.id)
