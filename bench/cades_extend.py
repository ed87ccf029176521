"""CAdES with large content: memory (RSS) and time of signing and extending a 100 MB document,
attached (.p7m, the content inside the CMS) and detached (.p7s), through the format interface.

    .venv/bin/python bench/cades_extend.py [--mb 100]

Uses the in-process CA, TSA and OCSP responder of the tests (no service, no network). Each phase
starts with the peak RSS reset (/proc/self/clear_refs) and reports the RSS before it, its peak
during the phase and the growth: a streaming implementation stays flat whatever the size. The
sha256 of the file alone is the floor for time; reading the file into memory once is the control
that shows the measurement sees a whole-content copy.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from remotesign.formats.cades.format import CadesFormat  # noqa: E402
from remotesign.formats.interface import Document, Level, Packaging, SignParameters  # noqa: E402
from tests import format_pki  # noqa: E402
from tests.pades_pki import make_pki  # noqa: E402

FMT = CadesFormat()


def rss_kib(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


ROWS: list[tuple[str, float, int, int, int]] = []


def phase(name: str, fn) -> object:  # type: ignore[no-untyped-def]
    reset_peak()
    before = rss_kib()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    peak = rss_kib("VmHWM")
    ROWS.append((name, seconds, before, peak, peak - before))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        big = tmp / "big.bin"
        block = os.urandom(1 << 20)
        with open(big, "wb") as fh:
            for i in range(args.mb):
                fh.write(hashlib.sha256(bytes([i % 256])).digest() + block[32:])
        (tmp / "pki").mkdir()
        with make_pki(tmp / "pki") as pki:
            _signer, issued, key = pki.signer()
            spec = format_pki.spec(pki, issued.asn1(), key)
            ctx = format_pki.context(pki)
            doc = Document(name="big.bin", mime_type="application/octet-stream", open=lambda: open(big, "rb"))
            run = asyncio.run
            run(FMT.extend(io.BytesIO(run(_sign_small(spec, key))), io.BytesIO(), Level.LTA, ctx,
                           (format_pki.document("s.txt", b"small"),)))  # warm-up: imports, first TSA call

            def hash_only() -> None:
                h = hashlib.sha256()
                with open(big, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        h.update(chunk)

            phase("sha256 of the file (floor)", hash_only)
            phase("control: file read into memory", lambda: len(big.read_bytes()))
            for packaging, suffix in ((Packaging.DETACHED, "p7s"), (Packaging.ENVELOPING, "p7m")):
                params = SignParameters(signer=spec, signing_time=datetime.now(timezone.utc), packaging=packaging)
                out_path = tmp / f"big.{suffix}"

                def sign(params: SignParameters = params, out_path: Path = out_path) -> None:
                    prepared = run(FMT.data_to_sign([doc], params, io.BytesIO()))
                    with open(out_path, "w+b") as out:
                        run(FMT.sign([doc], params, prepared, format_pki.raw_sign(key, prepared.digest),
                                     io.BytesIO(), out))

                phase(f"sign B, {packaging.value} ({suffix})", sign)
                detached = (doc,) if packaging is Packaging.DETACHED else ()
                source = out_path
                for label, level in (("extend B -> LTA", Level.LTA), ("renew LTA", Level.LTA)):
                    target = tmp / f"big-{label[:5].strip()}.{suffix}"

                    def extend(source: Path = source, target: Path = target, level: Level = level,
                               detached: tuple[Document, ...] = detached) -> None:
                        with open(source, "rb") as src, open(target, "w+b") as out:
                            run(FMT.extend(src, out, level, ctx, detached))

                    phase(f"{label}, {packaging.value}", extend)
                    source = target
                size = source.stat().st_size
                verify = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(source),
                          "-noverify", "-out", os.devnull]
                if packaging is Packaging.DETACHED:
                    verify += ["-content", str(big)]
                ok = subprocess.run(verify, capture_output=True, text=True)
                print(f"{suffix}: {size:,} bytes, openssl cms -verify: {ok.stderr.strip()}")
    print(f"\ncontent: {args.mb} MiB; RSS in MiB (peak reset per phase)")
    print(f"{'phase':34} {'seconds':>8} {'RSS before':>11} {'peak':>8} {'growth':>8}")
    for name, seconds, before, peak, growth in ROWS:
        print(f"{name:34} {seconds:8.2f} {before / 1024:11.1f} {peak / 1024:8.1f} {growth / 1024:8.1f}")


async def _sign_small(spec, key) -> bytes:  # type: ignore[no-untyped-def]
    return await format_pki.sign(FMT, [format_pki.document("s.txt", b"small")], spec, key)


if __name__ == "__main__":
    main()
