"""What the crash and fault tests need besides HTTP: a look at the service's SQLite database and blob
directory (read, and written only to stage a claim as a crashed or remote process leaves it), ids
of processes that really died, and independent signature counts (poppler's pdfsig, pyHanko)."""

from __future__ import annotations

import io
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from remotesign.storage import process_id


@contextmanager
def database(home: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(home / "remotesign.db", timeout=60)) as conn:
        conn.row_factory = sqlite3.Row
        with conn:
            yield conn


def operation(home: Path, sid: str) -> dict[str, Any] | None:
    with database(home) as db:
        row = db.execute("SELECT * FROM signing_operations WHERE session_id = ?", (sid,)).fetchone()
    return dict(row) if row else None


def signed_documents(home: Path, sid: str) -> list[str]:
    with database(home) as db:
        return [r[0] for r in db.execute("SELECT id FROM session_documents WHERE session_id = ? AND kind = 'signed'",
                                         (sid,))]


def _sql_time(value: datetime) -> str:
    """How SQLAlchemy stores a DateTime in SQLite (UTC, naive)."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def stage_claim(home: Path, sid: str, status: str, owner: str, expires_in: float) -> None:
    """Leave the operation as a process that claimed it and stopped would: ``status`` under its lease."""
    expires = datetime.now(timezone.utc) + timedelta(seconds=expires_in)
    with database(home) as db:
        changed = db.execute("UPDATE signing_operations SET status = ?, lease_owner = ?, lease_expires_at = ? "
                             "WHERE session_id = ?", (status, owner, _sql_time(expires), sid)).rowcount
    assert changed == 1


def dead_process_owner() -> str:
    """The lease owner string of a process of this host that was killed (and reaped)."""
    proc = subprocess.Popen(["sleep", "600"])
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    owner = process_id.ProcessId(process_id.current().host, proc.pid, int(fields[19]))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return f"{owner}#0badc0de"


REMOTE_OWNER = "0123456789ab.4242.4242#0badc0de"  # a process on another host: never provably dead


def session_dir(home: Path, sid: str) -> Path | None:
    found = list((home / "blobs").glob(f"*/{sid}"))
    return found[0] if found else None


def session_files(home: Path, sid: str) -> list[str]:
    directory = session_dir(home, sid)
    return sorted(p.name for p in directory.iterdir()) if directory else []


def pdfsig_signatures(pdf: bytes, tmp: Path) -> list[str]:
    """One line per signature poppler finds: its validation verdict ('Signature is Valid.')."""
    path = tmp / "check.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout
    return re.findall(r"Signature Validation: (.*)", out)


def pyhanko_check(pdf: bytes, root: x509.Certificate) -> tuple[int, int, bool]:
    """(regular signatures, document time-stamps, whether the first signature is intact, valid and
    trusted), by pyHanko."""
    reader = PdfFileReader(io.BytesIO(pdf))
    regular = reader.embedded_regular_signatures
    status = validate_pdf_signature(regular[0], ValidationContext(trust_roots=[root], allow_fetching=False))
    return len(regular), len(reader.embedded_timestamp_signatures), bool(status.intact and status.valid
                                                                         and status.trusted)


def restart_with(service: Any, crash_at: str | None) -> None:
    """Restart ``service`` (a tests.harness.Service) dying at the crash point ``crash_at``, or at none."""
    service.stop()
    service.env.pop("REMOTESIGN_CRASH_AT", None)
    if crash_at:
        service.env["REMOTESIGN_CRASH_AT"] = crash_at
    service.start()


def prepared_finalizations(api: Any, card: Any, count: int, chunk: int = 100) -> tuple[list[str], dict[str, bytes]]:
    """``count`` SignAPI sessions each holding one PDF, their PAdES digests calculated and signed by
    ``card``: the session ids and the signature value each finalizeSigning will send."""
    import base64

    from tests.pdfgen import pdf_bytes

    sids: list[str] = []
    while len(sids) < count:
        sids += api.start(min(chunk, count - len(sids)))
    pdf = pdf_bytes()
    for sid in sids:
        api.upload(sid, "contract.pdf", pdf)
    values: dict[str, bytes] = {}
    for i in range(0, count, chunk):
        r = api.calculate(sids[i:i + chunk], card, sign_as_pdf=True)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        values.update({d["sessionId"]: card.sign(base64.b64decode(d["digest"]), data["algorithm"])
                       for d in data["sessionDigests"]})
    return sids, values


def prepared_signing(service: Any, tmp_path: Path, key: str, count: int,
                     chunk: int) -> tuple[str, Any, Any, list[str], dict[str, bytes]]:
    """What the crash tests start from: the demo client's token, its SignApi on ``service``, the
    built-in root, and ``count`` sessions prepared by prepared_finalizations with a fresh ``key``
    card: (token, api, root, sids, values)."""
    import httpx

    from tests.signapi import SignApi, issue_card
    from tests.verifiers import root_of

    demo = service.demo_client()
    token = service.token(demo["client_id"], demo["client_secret"])
    api = SignApi(service, token)
    card = issue_card(service, tmp_path, key)
    root = root_of(httpx.get(service.url + "/pki/ca.pem").content)
    sids, values = prepared_finalizations(api, card, count, chunk=chunk)
    return token, api, root, sids, values


def signed_once(document: bytes, tmp_path: Path, root: Any, with_pyhanko: bool) -> str | None:
    """What is wrong with a finalized session's document, if anything: "double" (more than one
    signature, by poppler's pdfsig) or "lost" (no valid signature; with ``with_pyhanko`` also
    pyHanko's validation against the built-in root); None when it is signed once and valid."""
    verdicts = pdfsig_signatures(document, tmp_path)
    if len(verdicts) > 1:
        return "double"
    if verdicts != ["Signature is Valid."]:
        return "lost"
    if with_pyhanko and pyhanko_check(document, root) != (1, 0, True):
        return "lost"
    return None


def finalize_body(values: dict[str, bytes]) -> dict[str, object]:
    """The finalizeSigning request for these sessions' signature values."""
    import base64

    return {"sessionSignatureValues": [{"sessionId": s, "signatureValue": base64.b64encode(v).decode()}
                                       for s, v in values.items()]}
