"""Machine instructions per call of the eParaksts flow, counted by Valgrind (callgrind): a cost
figure that does not move with the VM's speed.

    .venv/bin/python bench/flow_instructions.py [--flows 5] [--pdf-kb 100]

Why: on the 2-vCPU VMs the benchmarks run on, the same code's CPU time per flow varies by 30-40 %
from one minute to the next and by 2x from one day to the next (bench/machine_speed.py), so a
change worth 5 % cannot be seen in milliseconds. Instructions executed are nearly deterministic.

Runs the flow of ``bench/sql_per_call.py`` (embedded default, in-process ASGI app: token, start,
upload, CalculateDigest, the card signs, finalizeSigning, list, download, close) under
``valgrind --tool=callgrind`` — about 50 times slower, ~1 min per flow plus ~3 min of start-up.
Two flows warm the caches; then the counters are zeroed and, for each of ``--flows`` flows, dumped
after every call (``callgrind_control -d``), so each dump holds one call. An empty segment (two
dumps in a row) measures what the dump request itself costs; it is subtracted. Prints the median
per call and per flow, in millions of instructions (the client's httpx share included, as the
load generator's is not in the load benchmarks: compare figures of this script with each other).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD_ENV = "FLOW_INSTRUCTIONS_CHILD"
EMPTY = "dump-request"
TOTALS = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.M)
TRIGGER = re.compile(rb"^desc: Trigger: dump (\S+)$", re.M)


def _dump(label: str) -> None:
    subprocess.run(["callgrind_control", f"--dump={label}", str(os.getpid())], check=True, capture_output=True)


def child(flows: int, pdf_kb: int, order_file: Path) -> None:
    """Under callgrind: warm up, then dump after each call; the calls' order goes to ``order_file``."""
    import httpx

    from sql_per_call import BASE, access_token, embedded_service, flow
    from tests.pdfgen import pdf_bytes

    svc, app, client_id, secret, card = embedded_service()
    order: list[str] = []
    measuring = [False]
    previous: list[str | None] = [None]

    def mark(call: str | None) -> None:
        if measuring[0] and previous[0] is not None:
            _dump(previous[0])
            order.append(previous[0])
        previous[0] = call

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=600) as http:
            token = await access_token(http, client_id, secret)
            pdf = pdf_bytes(padding_bytes=pdf_kb * 1024)
            for _ in range(2):
                await flow(http, token, card, pdf, lambda _call: None)
            subprocess.run(["callgrind_control", "-z", str(os.getpid())], check=True, capture_output=True)
            for _ in range(3):
                _dump(EMPTY)
                order.append(EMPTY)
            measuring[0] = True
            for _ in range(flows):
                await flow(http, token, card, pdf, mark)

    asyncio.run(run())
    order_file.write_text("\n".join(order))
    svc.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=5)
    parser.add_argument("--pdf-kb", type=int, default=100, help="padding of the PDF each flow signs (KiB)")
    parser.add_argument("--keep", action="store_true", help="keep the callgrind files (their directory is printed)")
    args = parser.parse_args()
    if os.environ.get(CHILD_ENV):
        child(args.flows, args.pdf_kb, Path(os.environ[CHILD_ENV]))
        return 0
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("flow_instructions: valgrind (with callgrind_control) is needed: apt-get install valgrind",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="flow-instructions-"))
    order_file = work / "order.txt"
    env = dict(os.environ, PYTHONMALLOC="malloc", **{CHILD_ENV: str(order_file)})
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.%p", sys.executable, __file__,
            "--flows", str(args.flows), "--pdf-kb", str(args.pdf_kb)]
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0 or not order_file.exists():
        print(done.stderr.decode(errors="replace")[-3000:], file=sys.stderr)
        return 1
    expected = len(order_file.read_text().splitlines())
    numbered = {int(m.group(1)): p for p in work.iterdir() if (m := re.fullmatch(r"cg\.\d+\.(\d+)", p.name))}
    per_call: dict[str, list[int]] = {}
    for n in sorted(numbered):
        data = numbered[n].read_bytes()
        label, found = TRIGGER.search(data), TOTALS.search(data)
        if label and found:
            per_call.setdefault(label.group(1).decode(), []).append(int(found.group(1)))
    if sum(map(len, per_call.values())) != expected or EMPTY not in per_call:
        print(f"flow_instructions: {sum(map(len, per_call.values()))} dumps for {expected} segments", file=sys.stderr)
        return 1
    overhead = statistics.median(per_call.pop(EMPTY))
    print(f"eParaksts flow, {args.pdf_kb} KiB PDF, embedded default, {args.flows} flows measured; "
          f"millions of instructions (median; the dump request's {overhead / 1e6:.1f} M subtracted)")
    total = 0.0
    for label, values in per_call.items():
        cost = max(0.0, statistics.median(values) - overhead)
        total += cost
        low, high = (min(values) - overhead) / 1e6, (max(values) - overhead) / 1e6
        print(f"{label:16} {cost / 1e6:8.1f}   (min {low:.1f}, max {high:.1f})")
    print(f"{'flow':16} {total / 1e6:8.1f}")
    if args.keep:
        print(f"callgrind files: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
