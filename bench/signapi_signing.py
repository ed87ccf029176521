"""Two-step signing through the eParaksts-style API over HTTP: wall time of upload,
CalculateDigest and finalizeSigning (B-LT) for PDFs of 1, 20 and 100 MB, and for an ASiC-E with
1,000 small files, with the service's peak RSS growth during each run.

    .venv/bin/python bench/signapi_signing.py [--sizes 1,20,100] [--files 1000]

Starts its own service in a temporary REMOTESIGN_HOME. Peak RSS is the service process's VmHWM,
reset before each run (``/proc/PID/clear_refs``), minus its RSS before the run. The calls are made
with the integrators' client, remotesign_client.SignApiClient (the PDF upload streamed from disk).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rss import reset_peak, status  # noqa: E402
from tests.harness import Service, free_port  # noqa: E402
from tests.pdfgen import make_pdf  # noqa: E402
from remotesign_client import ClientCredentials, SignApiClient  # noqa: E402
from tests.signapi import issue_card  # noqa: E402


def sign_flow(api: SignApiClient, card, sid: str, as_pdf: bool) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    prepared = api.calculate_digest([sid], card.cert, sign_as_pdf=as_pdf)
    t1 = time.perf_counter()
    api.finalize_signing({sid: card.sign(prepared.digest_of(sid), prepared.algorithm)})
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,20,100", help="PDF sizes in MB")
    ap.add_argument("--files", type=int, default=1000, help="files in the ASiC-E run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        svc = Service(home=tmp / "home", port=free_port(), env={"REMOTESIGN_FILE_MAX_BYTES": str(512 << 20)}).start()
        try:
            demo = svc.demo_client()
            api = SignApiClient(svc.url, ClientCredentials(svc.url, demo["client_id"], demo["client_secret"]))
            card = issue_card(svc, tmp, "rsa")
            pid = svc.proc.pid  # type: ignore[union-attr]
            print(f"{'run':<28} {'upload s':>9} {'digest s':>9} {'finalize s':>11} {'total s':>8} {'peak RSS +MB':>13}")
            for mb in [int(x) for x in args.sizes.split(",") if x]:
                pdf = make_pdf(tmp / f"in-{mb}.pdf", pages=2, padding_bytes=mb << 20)
                sid = api.start()
                base = reset_peak(pid)
                t0 = time.perf_counter()
                api.upload(sid, pdf)
                upload = time.perf_counter() - t0
                digest_s, final_s = sign_flow(api, card, sid, as_pdf=True)
                peak = status("VmHWM", pid) - base
                print(f"{f'PDF {pdf.stat().st_size / 1e6:.1f} MB (PAdES B-LT)':<28} {upload:9.2f} {digest_s:9.2f} "
                      f"{final_s:11.2f} {upload + digest_s + final_s:8.2f} {peak / 1e6:13.1f}")
                api.close_session(sid)
                pdf.unlink()
            if args.files:
                sid = api.start()
                base = reset_peak(pid)
                t0 = time.perf_counter()
                for i in range(args.files):
                    api.upload(sid, f"document number {i}\n".encode() * 20, f"file-{i:04d}.txt")
                upload = time.perf_counter() - t0
                digest_s, final_s = sign_flow(api, card, sid, as_pdf=False)
                peak = status("VmHWM", pid) - base
                print(f"{f'ASiC-E, {args.files} files (XAdES B-LT)':<28} {upload:9.2f} {digest_s:9.2f} {final_s:11.2f} "
                      f"{upload + digest_s + final_s:8.2f} {peak / 1e6:13.1f}")
        finally:
            svc.stop()


if __name__ == "__main__":
    main()
