"""SQL statements per call of the eParaksts flow, and what they are.

    .venv/bin/python bench/sql_per_call.py [--flows 3] [--show CALL]

Runs the service in this process on its embedded default (SQLite, local files; no background
loops), drives the load test's flow through its ASGI app (token, start, upload, CalculateDigest,
finalizeSigning, list, download, close) and counts the statements each call sends, grouped by
their first words. Why: on PostgreSQL each statement is a round trip and a few tens of
microseconds of driver and ORM work in a node; bench/README.md counted 52 per flow.
The figures are those of the last flow (the first ones also fill caches).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from sqlalchemy import event  # noqa: E402

from tests.pdfgen import pdf_bytes  # noqa: E402
from tests.signapi import Card  # noqa: E402

BASE = "http://127.0.0.1:8080"


def _shape(statement: str) -> str:
    """The statement's kind and table, without its values."""
    flat = " ".join(statement.split())
    m = re.match(r"(SELECT|INSERT INTO|UPDATE|DELETE FROM|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b\s*(\S*)", flat, re.I)
    if not m:
        return flat[:50]
    kind, rest = m.group(1).upper(), m.group(2)
    if kind == "SELECT":
        table = re.search(r"\bFROM (\w+)", flat)
        rest = table.group(1) if table else rest
    return f"{kind} {rest}".strip()


async def flow(http: httpx.AsyncClient, token: str, card: Card, pdf: bytes, mark: Any) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    mark("start")
    sid = (await http.get("/api-session/v1.0/start", headers=bearer)).json()["data"]["sessionId"]
    mark("upload")
    await http.put(f"/api-storage/v1.0/{sid}/upload", headers=bearer, files={"file": ("a.pdf", pdf, "application/pdf")})
    mark("CalculateDigest")
    data = (await http.post("/api-sign/v1.0/CalculateDigest", headers=bearer, json={
        "sessions": [{"sessionId": sid}], "certificate": card.cert_b64, "signAsPdf": True})).json()["data"]
    value = card.sign(base64.b64decode(data["sessionDigests"][0]["digest"]), data["algorithm"])
    mark("finalizeSigning")
    r = await http.post("/api-sign/v1.0/finalizeSigning", headers=bearer, json={
        "sessionSignatureValues": [{"sessionId": sid, "signatureValue": base64.b64encode(value).decode()}]})
    assert r.status_code == 200 and "error" not in r.json()["data"]["results"][0], r.text
    mark("list")
    doc = (await http.get(f"/api-storage/v1.0/{sid}/list", headers=bearer)).json()["data"][0]["id"]
    mark("download")
    assert (await http.get(f"/api-storage/v1.0/{sid}/{doc}", headers=bearer)).status_code == 200
    mark("close")
    await http.get(f"/api-session/v1.0/{sid}/close", headers=bearer)
    mark(None)


def embedded_service() -> tuple[Any, Any, str, str, Card]:
    """The service on its embedded default in a fresh home, in this process (no background
    loops): its Services, ASGI app, a relying party's client id and secret, and a signer's card."""
    home = Path(tempfile.mkdtemp(prefix="flow-bench-"))
    for name in [n for n in os.environ if n.startswith("REMOTESIGN_")]:
        del os.environ[name]
    os.environ.update(REMOTESIGN_HOME=str(home), REMOTESIGN_PUBLIC_URL=BASE, REMOTESIGN_KDF_LOG2_N="14")

    from remotesign.api.app import create_app
    from remotesign.config import load_settings
    from remotesign.service import Services
    from remotesign.trust.ca import subject_from_text

    svc = Services(load_settings())
    svc.initialize()
    client, secret = svc.tenants.create("flow-bench")
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    issued = svc.ca.issue(subject=subject_from_text("CN=Bench Signer,SERIALNUMBER=PNOLV-010101-12345,C=LV"),
                          public_key_der=pub, profile_name="qualified-person", tenant_id=None,
                          validity=timedelta(days=30))
    card = Card(key, x509.load_der_x509_certificate(issued.der))
    return svc, create_app(svc), client.client_id, secret, card


async def access_token(http: httpx.AsyncClient, client_id: str, secret: str) -> str:
    r = await http.post("/trustedx-authserver/oauth/lvrtc-eipsign-as/token",
                        data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    return str(r.json()["access_token"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=3)
    parser.add_argument("--show", help="print the statements of this call")
    args = parser.parse_args()
    svc, app, client_id, secret, card = embedded_service()
    current: list[str | None] = [None]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    shown: list[str] = []

    @event.listens_for(svc.db.engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if current[0] is not None:
            counts[current[0]][_shape(statement)] += 1
            if current[0] == args.show:
                shown.append(" ".join(statement.split())[:200])

    def mark(call: str | None) -> None:
        current[0] = call

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=120) as http:
            token = await access_token(http, client_id, secret)
            pdf = pdf_bytes()
            for _ in range(args.flows):
                counts.clear()
                shown.clear()
                await flow(http, token, card, pdf, mark)

    asyncio.run(run())
    total = 0
    for call, counter in counts.items():
        n = sum(counter.values())
        total += n
        print(f"{call:16} {n:3}  " + ", ".join(f"{k} x{v}" if v > 1 else k for k, v in counter.most_common()))
    print(f"{'flow':16} {total:3}")
    for line in shown:
        print("   ", line)
    svc.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
