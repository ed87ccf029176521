"""Validation throughput: validations per second of a PAdES B-LTA, an ASiC-E with XAdES B-LT and
a detached CAdES B-T, each made by a running remotesign, validated in-process with the service's
own trust configuration; next to pyHanko's ``ades_lta_validation`` alone on the same PAdES file,
and the ratio of the two medians (``B-LTA validation / pyHanko ades_lta_validation: 0.93x (goal
<= 1.0x)``, issue 15 item 6).

    .venv/bin/python bench/validation.py [--runs 20]

Starts its own service in a temporary REMOTESIGN_HOME; the PAdES and ASiC-E files are made through
its SignAPI with the integrators' client (remotesign_client). Files are read from disk on every run
(as the service does); 3 warm-up runs, then the median and mean of ``--runs`` timed runs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import Service, free_port  # noqa: E402
from tests.pdfgen import pdf_bytes  # noqa: E402
from remotesign_client import ClientCredentials, SignApiClient  # noqa: E402
from tests.signapi import issue_card  # noqa: E402


def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(3):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def make_cades(svc: Service, card, tmp: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """Detached CAdES B-T over a 100 kB file, time-stamped by the service's TSA over HTTP."""
    from asn1crypto import keys, x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.sign import signers
    from pyhanko.sign.timestamps import HTTPTimeStamper

    data = os.urandom(100_000)
    content = tmp / "data.bin"
    content.write_bytes(data)
    key = keys.PrivateKeyInfo.load(card.key.private_bytes(serialization.Encoding.DER,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    signer = signers.SimpleSigner(signing_cert=x509.Certificate.load(card.cert.public_bytes(serialization.Encoding.DER)),
                                  signing_key=key, cert_registry=None)  # type: ignore[arg-type]
    tsa = HTTPTimeStamper(svc.url + "/pki/tsa")
    ci = asyncio.run(signer.async_sign_general_data(io.BytesIO(data), "sha256", detached=True, use_cades=True,
                                                    timestamper=tsa))
    sig = tmp / "data.bin.p7s"
    sig.write_bytes(ci.dump())
    return sig, content


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--keep", type=Path, help="copy the signed files to this directory (for profiling)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        home = tmp / "home"
        svc = Service(home=home, port=free_port()).start()
        try:
            demo = svc.demo_client()
            api = SignApiClient(svc.url, ClientCredentials(svc.url, demo["client_id"], demo["client_secret"]))
            card = issue_card(svc, tmp, "rsa")
            sid = api.start()
            api.upload(sid, pdf_bytes(pages=3), "contract.pdf")
            api.sign([sid], card.cert, card.sign, sign_as_pdf=True, archive=True)
            pades = tmp / "pades-lta.pdf"
            pades.write_bytes(api.result(sid)[1])
            sid = api.start()
            for i in range(3):
                api.upload(sid, os.urandom(30_000), f"file{i}.txt")
            api.sign([sid], card.cert, card.sign, sign_as_pdf=False, create_new_edoc=True)
            asice = tmp / "xades-lt.asice"
            asice.write_bytes(api.result(sid)[1])
            api.close()
            cades, content = make_cades(svc, card, tmp)
            if args.keep:
                import shutil
                args.keep.mkdir(parents=True, exist_ok=True)
                for f in (pades, asice, cades, content):
                    shutil.copy(f, args.keep / f.name)
                shutil.copytree(home, args.keep / "home", dirs_exist_ok=True)
        finally:
            svc.stop()

        os.environ["REMOTESIGN_HOME"] = str(home)
        from remotesign.config import load_settings
        from remotesign.service import Services
        from remotesign.validation.engine import validate_path
        from remotesign.validation.options import DetachedDocument

        services = Services(load_settings())
        validation = services.validation
        base = validation.options(None)
        with_content = validation.options(None, detached=[DetachedDocument(name=content.name, path=content)])
        cases = [("PAdES B-LTA (remotesign)", pades, base, "PAdES_BASELINE_LTA"),
                 ("ASiC-E XAdES B-LT (remotesign)", asice, base, "XAdES_BASELINE_LT"),
                 ("CAdES B-T detached (remotesign)", cades, with_content, "CAdES_BASELINE_T")]
        print(f"{'validation':<36} {'result':<32} {'median ms':>10} {'mean ms':>8} {'per s':>7}")
        loop = asyncio.new_event_loop()
        medians: dict[str, float] = {}
        for label, path, options, level in cases:
            doc = loop.run_until_complete(validate_path(path, options))
            sig = doc.signatures[0]
            result = f"{sig.indication.value} {sig.signature_format}"
            assert sig.passed and sig.signature_format == level, (label, result, sig.errors)
            times = timed(lambda p=path, o=options: loop.run_until_complete(validate_path(p, o)), args.runs)
            median = statistics.median(times)
            medians[level] = median
            print(f"{label:<36} {result:<32} {median * 1e3:10.1f} {statistics.mean(times) * 1e3:8.1f} "
                  f"{1 / median:7.1f}")

        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.validation.ades import ades_lta_validation
        from pyhanko.sign.validation.policy_decl import PdfSignatureValidationSpec

        spec = PdfSignatureValidationSpec(base.signature_spec())

        from pyhanko.pdf_utils import generic

        fast_reader = generic.read_hex_string_from_stream
        stock_reader = generic._remotesign_original_hex_reader  # type: ignore[attr-defined]

        def pyhanko_only() -> str:
            with open(pades, "rb") as fh:
                sig = PdfFileReader(fh).embedded_signatures[0]
                res = loop.run_until_complete(ades_lta_validation(sig, spec))
            return f"{res.ades_subindic.status.name}/{res.ades_subindic.name}"

        def stock_pyhanko() -> str:
            # The baseline is pyHanko as shipped: remotesign's hex-string reader
            # (remotesign/pdf_hexfix.py) is taken out while it runs.
            generic.read_hex_string_from_stream = stock_reader
            try:
                return pyhanko_only()
            finally:
                generic.read_hex_string_from_stream = fast_reader

        outcome = stock_pyhanko()
        times = timed(stock_pyhanko, args.runs)
        median = statistics.median(times)
        print(f"{'pyHanko ades_lta_validation alone':<36} {outcome:<32} {median * 1e3:10.1f} "
              f"{statistics.mean(times) * 1e3:8.1f} {1 / median:7.1f}")
        patched = statistics.median(timed(pyhanko_only, args.runs))
        print(f"{'  same, with remotesign hex reader':<36} {outcome:<32} {patched * 1e3:10.1f}")
        # Issue 15 item 6: remotesign's whole PAdES validation against pyHanko's LTA process
        # alone (as shipped), medians of this run (a summary script parses this line).
        print(f"B-LTA validation / pyHanko ades_lta_validation: {medians['PAdES_BASELINE_LTA'] / median:.2f}x "
              f"(goal <= 1.0x)")
        print(f"B-LTA validation / pyHanko ades_lta_validation with remotesign's hex reader: "
              f"{medians['PAdES_BASELINE_LTA'] / patched:.2f}x")
        services.close()


if __name__ == "__main__":
    main()
