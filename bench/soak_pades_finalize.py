"""Soak of PAdES finalizeSigning (B-LT) over HTTP, with a probe that measures how long other requests
wait meanwhile: N two-step signings (session start, upload, CalculateDigest, the client signs the
digest itself, finalizeSigning) from a few concurrent clients, signers taking turns: ECDSA P-256
(the value sent as DER and as raw r||s in turn) and RSA-2048, each once with a plain certificate and
once with an "edge" certificate whose subject is padded so that the signature CMS's SignedData
length is 128 past a multiple of 256 (its DER length ends in 0x80, which asn1crypto 1.5.1 took for
BER's indefinite length: the issue 13.8 stall, see remotesign/asn1fix.py). Meanwhile one more client
calls session start in a loop. Prints count, p50/p95/p99/max of finalize and of the probe, and how
many took over 2 s.

    .venv/bin/python bench/soak_pades_finalize.py [--count 200] [--clients 3] [--pages 2]
    .venv/bin/python bench/soak_pades_finalize.py --url http://127.0.0.1:8080 --home /path/to/REMOTESIGN_HOME

Without --url it starts its own service in a temporary REMOTESIGN_HOME, as the tests do. With --url
it needs that service's --home too: the signer certificates are issued with ``remotesign pki issue``
and the demo client's credentials are read from there.
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path

from asn1crypto import cms
from cryptography import x509
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.reader import PdfFileReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import Service, free_port  # noqa: E402
from tests.pdfgen import pdf_bytes  # noqa: E402
from tests.signapi import Card, SignApi, issue_card  # noqa: E402

SLOW_SECONDS = 2.0
SIGNERS = ("p256", "rsa", "p256-edge", "rsa-edge")


def signed_data_length(pdf: bytes) -> int:
    """Content length of the SignedData in the (first) signature of ``pdf``."""
    der = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].pkcs7_content
    header = cms.ContentInfo.load(der, strict=False)["content"]._header  # [0] EXPLICIT + SEQUENCE header
    return int.from_bytes(header[-2:], "big")  # two length octets at these sizes


def sign_once(api: SignApi, card: Card, pdf: bytes) -> int:
    sid = api.start()
    api.upload(sid, "calibrate.pdf", pdf)
    data = api.sign_sessions([sid], card, sign_as_pdf=True)
    assert data["sessionDigests"][0]["digest"]
    _, signed = api.result(sid)
    api.client.get(f"/api-session/v1.0/{sid}/close")
    return signed_data_length(signed)


def edge_card(svc: Service, api: SignApi, tmp: Path, kind: str, pdf: bytes) -> Card:
    """A certificate whose signature CMS comes out with a SignedData length of 128 mod 256 (the
    time-stamp token and an ECDSA value vary by a byte or two, so some signatures miss it)."""
    padding, card = 0, issue_card(svc, tmp, kind, cn=f"Edge {kind}")
    for _ in range(6):
        length = sign_once(api, card, pdf)
        if length % 256 == 0x80:
            return card
        padding += (0x80 - length) % 256
        cn, ou = padding, 0
        if padding > 40:  # a CN has at most 64 characters; an OU costs 11 bytes besides its value
            cn, ou = 0, padding - 11
        extra = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * ou)] if ou > 0 else None
        card = issue_card(svc, tmp, kind, cn=f"Edge {kind} " + "x" * cn, subject_extra=extra)
    return card


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<14} {0:>6}"
    return (f"{name:<14} {len(values):>6} {percentile(values, 50):>8.3f} {percentile(values, 95):>8.3f} "
            f"{percentile(values, 99):>8.3f} {max(values):>8.3f} {sum(v > SLOW_SECONDS for v in values):>7}")


class Soak:
    def __init__(self, svc: Service, token: str, cards: dict[str, Card], count: int, pdf: bytes) -> None:
        self.svc, self.token, self.cards, self.pdf = svc, token, cards, pdf
        self.jobs = iter(range(count))
        self.lock = threading.Lock()
        self.finalize: list[tuple[str, float]] = []
        self.probe: list[float] = []
        self.errors: list[str] = []
        self.hits = 0
        self.done = threading.Event()

    def client(self) -> None:
        api = SignApi(self.svc, self.token)
        while True:
            with self.lock:
                i = next(self.jobs, None)
            if i is None:
                return
            kind = SIGNERS[i % len(SIGNERS)]
            raw = kind.startswith("p256") and (i // len(SIGNERS)) % 2 == 1
            try:
                sid = api.start()
                api.upload(sid, f"soak-{i}.pdf", self.pdf)
                r = api.calculate([sid], self.cards[kind], sign_as_pdf=True)
                if r.status_code != 200:
                    raise RuntimeError(f"CalculateDigest {r.status_code}: {r.text[:200]}")
                data = r.json()["data"]
                digest = base64.b64decode(data["sessionDigests"][0]["digest"])
                value = self.cards[kind].sign(digest, data["algorithm"], raw_ecdsa=raw)
                t0 = time.perf_counter()
                r = api.finalize({sid: value})
                elapsed = time.perf_counter() - t0
                if r.status_code != 200:
                    raise RuntimeError(f"finalizeSigning {r.status_code}: {r.text[:200]}")
                hit = False
                if kind.endswith("edge"):
                    _, signed = api.result(sid)
                    hit = signed_data_length(signed) % 256 == 0x80
                with self.lock:
                    self.finalize.append((kind + ("-raw" if raw else ""), elapsed))
                    self.hits += hit
                api.client.get(f"/api-session/v1.0/{sid}/close")
            except Exception as exc:  # noqa: BLE001 - counted and reported, the soak goes on
                with self.lock:
                    self.errors.append(f"#{i} {kind}: {exc}")

    def prober(self) -> None:
        api = SignApi(self.svc, self.token)
        while not self.done.is_set():
            t0 = time.perf_counter()
            sid = api.start()
            self.probe.append(time.perf_counter() - t0)
            api.client.get(f"/api-session/v1.0/{sid}/close")
            self.done.wait(0.05)

    def run(self, clients: int) -> float:
        workers = [threading.Thread(target=self.client) for _ in range(clients)]
        probe = threading.Thread(target=self.prober)
        t0 = time.perf_counter()
        probe.start()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        self.done.set()
        probe.join()
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200, help="finalizations (default 200)")
    ap.add_argument("--clients", type=int, default=3, help="concurrent signing clients (default 3)")
    ap.add_argument("--pages", type=int, default=2, help="pages of the test PDF (default 2)")
    ap.add_argument("--url", help="base URL of a running service (else one is started)")
    ap.add_argument("--home", help="REMOTESIGN_HOME of the service at --url")
    args = ap.parse_args()
    if args.url and not args.home:
        ap.error("--url needs --home (to issue signer certificates and read the demo client)")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if args.url:
            port = int(args.url.rsplit(":", 1)[1].split("/")[0])
            svc, own = Service(home=Path(args.home), port=port), False
        else:
            svc, own = Service(home=tmp / "home", port=free_port()).start(), True
        try:
            demo = svc.demo_client()
            token = svc.token(demo["client_id"], demo["client_secret"])
            pdf = pdf_bytes(pages=args.pages)
            cards = {kind: issue_card(svc, tmp, kind, cn=f"Soak {kind}") for kind in ("p256", "rsa")}
            api = SignApi(svc, token)
            for kind in ("p256", "rsa"):
                cards[f"{kind}-edge"] = edge_card(svc, api, tmp, kind, pdf)
            soak = Soak(svc, token, cards, args.count, pdf)
            wall = soak.run(args.clients)
        finally:
            if own:
                svc.stop()
    times = [t for _, t in soak.finalize]
    print(f"{len(times)} finalizations from {args.clients} clients in {wall:.1f} s "
          f"({len(times) / wall:.1f}/s), {len(soak.errors)} errors; {soak.hits} with a SignedData length "
          f"ending in 0x80; probe: session start every 50 ms")
    print(f"{'':<14} {'count':>6} {'p50 s':>8} {'p95 s':>8} {'p99 s':>8} {'max s':>8} {'> 2 s':>7}")
    print(summary("finalize", times))
    for kind in sorted({k for k, _ in soak.finalize}):
        print(summary(f" {kind}", [t for k, t in soak.finalize if k == kind]))
    print(summary("probe", soak.probe))
    for err in itertools.islice(soak.errors, 10):
        print("error:", err)


if __name__ == "__main__":
    main()
