"""Cost of PAdES two-step signing at B-LT through the format layer (what CalculateDigest and
finalizeSigning run), against baselines measured in the same run (issue 15, items 2 and 3):

* 1 MB PDF: pyHanko's default B-B in-process signing (``PdfSigner.async_sign_pdf`` with a
  ``SimpleSigner``, output a readable file) vs remotesign's ``data_to_sign`` + signature +
  ``sign_at_level(LT)`` (time-stamp, OCSP, DSS). Goal: ratio at most 1.0.
* 100 MB PDF: the same two steps, wall time vs one SHA-256 pass over the file (goal at most 4x),
  and peak RSS growth of this process (goal at most 30 MB; the largest of the runs).

    .venv/bin/python bench/pades_finalize_cost.py [--count 10] [--big-mb 100] [--big-runs 3] [--key rsa|ec]

Both sides sign with the same RSA-2048 (or P-256) key of the in-process CA (tests/pades_pki.py);
the remotesign side uses the in-process TSA and OCSP responder (tests/format_pki.py), so no HTTP.
Documents are files on disk, as in the service's blob store. Figures are medians. Peak RSS is
VmHWM after resetting it (``/proc/self/clear_refs``), minus VmRSS before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rss import reset_peak, status  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.sign import fields, signers  # noqa: E402

from remotesign.formats.interface import Document, Level, SignParameters  # noqa: E402
from remotesign.formats.pades_format import PadesFormat  # noqa: E402
from tests import format_pki  # noqa: E402
from tests.pades_pki import make_pki  # noqa: E402
from tests.pdfgen import make_pdf  # noqa: E402


async def pyhanko_bb(signer: signers.SimpleSigner, pdf: Path, out: Path) -> float:
    t0 = time.perf_counter()
    meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES)
    with open(pdf, "rb") as inf, open(out, "w+b") as outf:
        await signers.PdfSigner(meta, signer=signer).async_sign_pdf(IncrementalPdfFileWriter(inf), output=outf)
    return time.perf_counter() - t0


async def remotesign_lt(fmt: PadesFormat, spec, key, ctx, pdf: Path, tmp: Path) -> float:  # type: ignore[no-untyped-def]
    params = SignParameters(signer=spec, signing_time=datetime.now(timezone.utc))
    doc = Document(pdf.name, "application/pdf", lambda: open(pdf, "rb"))
    t0 = time.perf_counter()
    with open(tmp / "prepared.pdf", "w+b") as scratch:
        prepared = await fmt.data_to_sign([doc], params, scratch)
        value = format_pki.raw_sign(key, prepared.digest)
        with open(tmp / "signed.pdf", "w+b") as out:
            await fmt.sign_at_level([doc], params, prepared, value, scratch, out, Level.LT, ctx)
    return time.perf_counter() - t0


def sha256_pass(path: Path) -> float:
    t0 = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10, help="timed runs per side for the 1 MB PDF")
    ap.add_argument("--big-mb", type=int, default=100, help="size of the large PDF (0: skip)")
    ap.add_argument("--big-runs", type=int, default=3, help="timed runs for the large PDF")
    ap.add_argument("--key", choices=("rsa", "ec"), default="rsa")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "pki").mkdir()
        with make_pki(tmp / "pki") as pki:
            key = (rsa.generate_private_key(65537, 2048) if args.key == "rsa"
                   else ec.generate_private_key(ec.SECP256R1()))
            signer, issued, key = pki.signer(key=key)
            spec = format_pki.spec(pki, issued.asn1(), key)
            ctx = format_pki.context(pki)
            fmt = PadesFormat()
            pdf = make_pdf(tmp / "one.pdf", pages=2, padding_bytes=1 << 20)
            for _ in range(2):  # warm-up: imports, TSA and OCSP state, key caches
                await pyhanko_bb(signer, pdf, tmp / "bb.pdf")
                await remotesign_lt(fmt, spec, key, ctx, pdf, tmp)
            base_runs, ours_runs = [], []
            for _ in range(args.count):  # interleaved, so both sides see the same machine load
                base_runs.append(await pyhanko_bb(signer, pdf, tmp / "bb.pdf"))
                ours_runs.append(await remotesign_lt(fmt, spec, key, ctx, pdf, tmp))
            base, ours = statistics.median(base_runs), statistics.median(ours_runs)
            print(f"{'row':<58} {'value':>10}")
            print(f"{'1 MB: pyHanko default B-B in-process (baseline), ms':<58} {base * 1000:10.1f}")
            print(f"{'1 MB: remotesign data_to_sign + sign_at_level(LT), ms':<58} {ours * 1000:10.1f}")
            print(f"{'1 MB: ratio remotesign LT / pyHanko B-B (goal <= 1.0)':<58} {ours / base:10.2f}")
            if args.big_mb:
                big = make_pdf(tmp / "big.pdf", pages=2, padding_bytes=args.big_mb << 20)
                (tmp / "prepared.pdf").unlink(missing_ok=True)
                (tmp / "signed.pdf").unlink(missing_ok=True)
                hashes, walls, rss = [], [], 0.0
                for _ in range(args.big_runs):  # interleaved, medians: the disk's write-back is noisy
                    hashes.append(sha256_pass(big))
                    base_rss = reset_peak()
                    walls.append(await remotesign_lt(fmt, spec, key, ctx, big, tmp))
                    rss = max(rss, (status("VmHWM") - base_rss) / 1e6)
                wall = statistics.median(walls)
                sha = statistics.median(hashes)
                label = f"{args.big_mb} MB"
                print(f"{label + ': one SHA-256 pass over the file (baseline), ms':<58} {sha * 1000:10.1f}")
                print(f"{label + ': remotesign data_to_sign + sign_at_level(LT), ms':<58} {wall * 1000:10.1f}")
                print(f"{label + ': ratio remotesign LT / SHA-256 pass (goal <= 4)':<58} {wall / sha:10.2f}")
                print(f"{label + ': peak RSS growth, MB (goal <= 30)':<58} {rss:10.1f}")


if __name__ == "__main__":
    asyncio.run(main())
