"""Extension of signed documents through the format layer (what the Fortress-style extend API and
addArchive run): B-T -> B-LTA of a 1 MB PDF and of a 1 MB ASiC-E (documents per second), and of a
100 MB PDF (wall time and peak RSS growth of this process; the goal is under 30 MB, i.e. the
document is streamed, never held in memory).

    .venv/bin/python bench/extend_signatures.py [--count 20] [--big-mb 100]

Uses the in-process CA, TSA and OCSP responder of the tests (tests/pades_pki.py), so the figures
are the formats' own cost without HTTP. Peak RSS is VmHWM after resetting it
(``/proc/self/clear_refs``), minus VmRSS before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rss import reset_peak, status  # noqa: E402
from remotesign.formats.asic_e_format import AsicEXadesFormat  # noqa: E402
from remotesign.formats.interface import Document, Level, SignParameters  # noqa: E402
from remotesign.formats.pades_format import PadesFormat  # noqa: E402
from tests import format_pki  # noqa: E402
from tests.pades_pki import make_pki  # noqa: E402
from tests.pdfgen import make_pdf  # noqa: E402


async def signed_at_t(fmt, pki, path: Path, name: str, mime: str) -> bytes:  # type: ignore[no-untyped-def]
    _signer, issued, key = pki.signer()
    doc = Document(name, mime, lambda: open(path, "rb"))
    return await format_pki.sign(fmt, [doc], format_pki.spec(pki, issued.asn1(), key), key, Level.T,
                                 format_pki.context(pki))


async def throughput(fmt, pki, source: bytes, count: int) -> float:  # type: ignore[no-untyped-def]
    ctx = format_pki.context(pki)
    await format_pki.extend(fmt, source, Level.LTA, ctx)  # warm-up: TSA probe, OCSP of the chain
    t0 = time.perf_counter()
    for _ in range(count):
        await format_pki.extend(fmt, source, Level.LTA, ctx)
    return count / (time.perf_counter() - t0)


async def big_pdf(pki, tmp: Path, mb: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """Sign (B-T) a PDF of ``mb`` MB into a file, then extend it to LTA file to file: (extension
    wall time, peak RSS growth while signing, while extending). Large buffers are mmap'd by
    Python's allocator and returned on free, so a whole document held in memory would show."""
    pdf = make_pdf(tmp / "big.pdf", pages=2, padding_bytes=mb << 20)
    fmt = PadesFormat()
    _signer, issued, key = pki.signer()
    spec = format_pki.spec(pki, issued.asn1(), key)
    ctx = format_pki.context(pki)
    params = SignParameters(signer=spec, signing_time=datetime.now(timezone.utc))
    doc = Document("big.pdf", "application/pdf", lambda: open(pdf, "rb"))
    base = reset_peak()
    with open(tmp / "scratch.pdf", "w+b") as scratch, open(tmp / "signed.pdf", "w+b") as signed:
        prepared = await fmt.data_to_sign([doc], params, scratch)
        await fmt.sign_at_level([doc], params, prepared, format_pki.raw_sign(key, prepared.digest), scratch, signed,
                                Level.T, ctx)
    signing_rss = (status("VmHWM") - base) / 1e6
    base = reset_peak()
    t0 = time.perf_counter()
    with open(tmp / "signed.pdf", "rb") as src, open(tmp / "lta.pdf", "w+b") as out:
        await fmt.extend(src, out, Level.LTA, ctx)
    return time.perf_counter() - t0, signing_rss, (status("VmHWM") - base) / 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20, help="extensions per small document")
    ap.add_argument("--big-mb", type=int, default=100, help="size of the large PDF (0: skip)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "pki").mkdir()
        with make_pki(tmp / "pki") as pki:
            pdf = make_pdf(tmp / "one.pdf", pages=2, padding_bytes=1 << 20)
            pdf_t = await signed_at_t(PadesFormat(), pki, pdf, "one.pdf", "application/pdf")
            data = tmp / "data.bin"
            data.write_bytes(os.urandom(1 << 20))
            asice_t = await signed_at_t(AsicEXadesFormat(), pki, data, "data.bin", "application/octet-stream")
            print(f"{'run':<34} {'docs/s':>8} {'ms/doc':>8}")
            for label, fmt, source in (("PDF 1 MB, PAdES T -> LTA", PadesFormat(), pdf_t),
                                       ("ASiC-E 1 MB, XAdES T -> LTA", AsicEXadesFormat(), asice_t)):
                rate = await throughput(fmt, pki, source, args.count)
                print(f"{label:<34} {rate:8.2f} {1000 / rate:8.1f}")
            if args.big_mb:
                wall, sign_rss, rss = await big_pdf(pki, tmp, args.big_mb)
                print(f"PDF {args.big_mb} MB, PAdES T -> LTA: {wall:.2f} s, peak RSS +{rss:.1f} MB "
                      f"(two-step signing to T before it: +{sign_rss:.1f} MB)")


if __name__ == "__main__":
    asyncio.run(main())
