"""Every goal of issue 15 in one run: each benchmark below is run in turn (each measures its own
baseline in the same run: pyHanko, openssl speed, cryptography, one SHA-256 pass) and every line
it prints with a ``(goal ...)`` is collected, then all of them are printed with MET / MISSED.

    .venv/bin/python bench/compare.py [--quick] [--only load,pades,raw,pki,validation]

``--quick`` shortens every benchmark (fewer runs, shorter loads) for a smoke run; the figures
are then noisier. Benchmarks start their own services in temporary directories.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (key, issue item, script, full arguments, quick arguments)
BENCHES = [
    ("load", "1. 50 clients on the eParaksts flow, serve --workers 2", "eparaksts_load.py",
     ["--clients", "50", "--seconds", "30", "--workers", "2"], ["--clients", "50", "--seconds", "10", "--workers", "2"]),
    ("pades", "2./3. PAdES B-LT 1 MB vs pyHanko B-B; 100 MB vs one SHA-256 pass", "pades_finalize_cost.py",
     ["--count", "10", "--big-runs", "3"], ["--count", "3", "--big-runs", "1"]),
    ("raw", "4. raw signing (eSigP), software keys", "esigp_raw.py",
     ["--backends", "software"], ["--backends", "software", "--seconds", "1"]),
    ("pki", "5. TSA and OCSP, 4 clients, vs openssl speed rsa2048", "pki_throughput.py",
     ["--seconds", "5", "--threads", "1,4"], ["--seconds", "2", "--threads", "4"]),
    ("validation", "6. PAdES B-LTA validation vs pyHanko ades_lta_validation", "validation.py",
     ["--runs", "20"], ["--runs", "5"]),
]

_GOAL = re.compile(r"\(goal\s*(<=|>=|<|>)\s*(\d+(?:\.\d+)?)[^)]*\)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def goal_lines(output: str) -> list[tuple[str, float, str, float]]:
    """(label, value, operator, target) of every line carrying a ``(goal OP target)``: the value
    is the number after the goal when there is one (table rows), else the last one before it."""
    found = []
    for line in output.splitlines():
        m = _GOAL.search(line)
        if not m:
            continue
        after = _NUMBER.findall(line[m.end():])
        before = _NUMBER.findall(line[:m.start()])
        if not after and not before:
            continue
        value = float(after[-1] if after else before[-1])
        label = line[:m.start()].strip().rstrip(":")
        if not after:  # "label: value unit" -> keep the label only
            label = label.rsplit(":", 1)[0] if ":" in label else label
        found.append((label, value, m.group(1), float(m.group(2))))
    return found


def met(value: float, op: str, target: float) -> bool:
    return {"<=": value <= target, ">=": value >= target, "<": value < target, ">": value > target}[op]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="comma-separated keys: " + ",".join(b[0] for b in BENCHES))
    ap.add_argument("--verbose", action="store_true", help="also print every benchmark's own output")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    rows: list[tuple[str, str, float, str, float]] = []
    failures: list[str] = []
    for key, item, script, full, quick in BENCHES:
        if only and key not in only:
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        t0 = time.monotonic()
        print(f"running {script} {' '.join(cmd[2:])} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if args.verbose:
            print(proc.stdout)
        found = goal_lines(proc.stdout)
        if proc.returncode != 0 or not found:
            failures.append(f"{script} failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
        for label, value, op, target in found:
            rows.append((item, label, value, op, target))
        print(f"  {script}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    print(f"issue 15 goals, {'quick' if args.quick else 'full'} run, each against a baseline of the same run")
    current = None
    for item, label, value, op, target in rows:
        if item != current:
            print(f"\n{item}")
            current = item
        print(f"  {'MET   ' if met(value, op, target) else 'MISSED'} {label}: {value:g} (goal {op} {target:g})")
    for failure in failures:
        print(f"\nERROR {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
