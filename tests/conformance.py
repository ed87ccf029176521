"""The conformance corpus (tests/data/conformance, a byte-for-byte copy of ../shared/conformance: 73 files from the EU DSS, digidoc4j and
pyHanko test suites) as validator test cases: per row, the trust anchors and validation time
that project's test used, and a judgement of a remotesign report against what it asserts.

Run directly (``python tests/conformance.py``) to print the agreement table and rate."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from asn1crypto import pem, x509

ROOT = Path(os.environ.get("REMOTESIGN_CONFORMANCE_DIR",
                           Path(__file__).resolve().parent / "data" / "conformance"))
TRUST = ROOT / "trust"
PYHANKO_TIME = datetime(2020, 11, 1, tzinfo=timezone.utc)


@dataclass
class Case:
    """One manifest row."""

    id: str
    file: Path
    format: str
    indication: str
    subindication: str
    level: str
    basis: str
    trust: str
    notes: str
    anchors: list[Path] = field(default_factory=list)
    validation_time: datetime | None = None


def _anchor_files(trust: str) -> list[Path]:
    explicit = re.findall(r"trust/[\w./-]+\.(?:pem|cer|crt)", trust)
    if explicit:
        return [ROOT / p for p in explicit]
    if "pyhanko" in trust and "ROOT_CERT" in trust:
        return [TRUST / "pyhanko" / "testing-ca-root.cert.pem"]
    if trust.startswith("PROD LOTL + manually added anchors"):
        certs = TRUST / "digidoc4j" / "testFiles-certs"
        return [certs / "TEST_of_ESTEID-SK_2015.pem.crt", certs / "SK-OCSP-RESPONDER-2011_test.cer",
                certs / "DEMO_OF_SK_TSA_2014.cer"]
    if "Configuration.Mode.PROD" in trust:
        return sorted((TRUST / "digidoc4j" / "prodFiles-certs").iterdir())
    if "TEST mode" in trust or "Configuration.Mode.TEST" in trust:
        return sorted((TRUST / "digidoc4j" / "testFiles-certs").iterdir())
    return []


def cases() -> list[Case]:
    with open(ROOT / "manifest.tsv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out = []
    for row in rows:
        case = Case(id=row["id"], file=ROOT / row["file"], format=row["format"],
                    indication=row["expected_indication"].strip(),
                    subindication=row["expected_subindication"].strip(),
                    level=row["expected_level"].strip(), basis=row["basis"], trust=row["trust_anchor"],
                    notes=row["notes"])
        case.anchors = _anchor_files(case.trust)
        if case.id.startswith("pyh-"):
            case.validation_time = PYHANKO_TIME
        out.append(case)
    return out


def load_anchor(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM or DER file."""
    data = path.read_bytes()
    if pem.detect(data):
        return [x509.Certificate.load(der) for kind, _, der in pem.unarmor(data, multiple=True)
                if kind in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE")]
    return [x509.Certificate.load(data)]


def uses_test_trusted_list(case: Case) -> bool:
    """digidoc4j's TEST mode: the Estonian TEST trusted list (EE_T), here from the local copy."""
    return "TEST mode" in case.trust or "Configuration.Mode.TEST" in case.trust


_REGISTRY: list[object] = []


def test_trusted_list_registry():  # type: ignore[no-untyped-def]
    """The EE_T test trusted list (template with its version placeholder filled) as a TSP registry,
    read through remotesign's own trusted-list loader; loaded once."""
    if not _REGISTRY:
        import tempfile

        from remotesign.validation.trusted_lists import load_trusted_lists
        template = TRUST / "digidoc4j" / "testFiles-tsl" / "test-tl-EE_T-30.xml.template"
        text = template.read_text(encoding="utf-8").replace("{TSL_VERSION_IDENTIFIER}", "5")
        directory = Path(tempfile.mkdtemp(prefix="ee-t-tl-"))
        (directory / "EE_T.xml").write_text(text, encoding="utf-8")
        loaded = load_trusted_lists([directory / "EE_T.xml"])
        _REGISTRY.append(loaded.registry)
    return _REGISTRY[0]


test_trusted_list_registry.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


POLICIES = Path(__file__).resolve().parent / "data" / "policies"


def source_policy(case: Case):
    """The validation policy equivalent to the one the source project's test ran under: EU DSS's
    default policy for DSS rows, digidoc4j's acceptance of SHA-1 in certificates for its rows,
    remotesign's default for pyHanko's (which has no policy of its own)."""
    from remotesign.validation.policy import builtin_policy, load_policy_file
    if case.id.startswith("dss-"):
        return builtin_policy("dss")
    if case.id.startswith("dd4j-"):
        return load_policy_file(POLICIES / "digidoc4j.toml")
    return builtin_policy("default")


def options_for(case: Case, policy=None):  # type: ignore[no-untyped-def]
    """The trust anchors, trusted list, validation time and policy of ``case``'s source test
    (``policy`` overrides the policy)."""
    from remotesign.validation.options import ValidationOptions
    anchors: list[x509.Certificate] = []
    for path in case.anchors:
        anchors.extend(load_anchor(path))
    registry = test_trusted_list_registry() if uses_test_trusted_list(case) else None
    return ValidationOptions(trust_anchors=tuple(anchors), validation_time=case.validation_time,
                             tsp_registry=registry, policy=policy or source_policy(case))  # type: ignore[arg-type]


def _norm(value: str) -> str:
    return value.replace("_", "-") if value.startswith("TOTAL") else value


def _plain(value: str) -> str | None:
    """An asserted value: the first word, unless the whole value is a parenthesised guess."""
    value = value.strip()
    if not value or value.startswith("(") or "(by name)" in value:
        return None
    return value.split()[0]


#: Per-signature expectations of the rows that assert one outcome per signature.
PER_SIGNATURE = {
    "dd4j-bdoc-multi-01": {"S0": ("TOTAL-PASSED", None), "S1": ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")},
    "dd4j-bdoc-nochain-01": {"S0": ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
                             "S1": ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")},
    "dd4j-asice-multi-01": {
        "id-6128479cd68e028c5d2a51bed115534f": ("TOTAL-FAILED", "HASH_FAILURE"),
        "id-6fe70838": ("TOTAL-FAILED", "HASH_FAILURE"),
        "id-cd8654a26c4f2a00f9d77d20a280aade": ("TOTAL-FAILED", "SIG_CRYPTO_FAILURE"),
        "id-3c2450a9": ("INDETERMINATE", None),
        "id-11b9536c": ("INDETERMINATE", None),
        "id-811fee53": ("not TOTAL-PASSED", None),
        "id-a4b5f8ff": ("TOTAL-PASSED", None),
    },
}


def judge(case: Case, document) -> list[str]:
    """Differences between a DocumentResult and what the source project asserts (empty = agree)."""
    problems: list[str] = []
    sigs = document.signatures
    if not sigs:
        return ["no signatures reported"]
    if case.id in PER_SIGNATURE:
        for prefix, (ind, sub) in PER_SIGNATURE[case.id].items():
            match = [s for s in sigs if s.id.startswith(prefix)]
            if not match:
                problems.append(f"signature {prefix} not reported")
                continue
            got = match[0]
            if ind == "not TOTAL-PASSED":
                if got.indication.value == "TOTAL-PASSED":
                    problems.append(f"{prefix}: TOTAL-PASSED, expected not")
            elif got.indication.value != ind:
                problems.append(f"{prefix}: {got.indication.value}, expected {ind}")
            if sub and (got.sub_indication is None or got.sub_indication.value != sub):
                problems.append(f"{prefix}: sub-indication {got.sub_indication}, expected {sub}")
        return problems
    first = sigs[0]
    got_ind = first.indication.value
    got_sub = first.sub_indication.value if first.sub_indication else None
    expected_ind = case.indication
    if expected_ind.startswith("not TOTAL"):
        if got_ind == "TOTAL-PASSED":
            problems.append("TOTAL-PASSED, expected not TOTAL-PASSED")
    elif _plain(expected_ind):
        want = _norm(_plain(expected_ind))
        if got_ind != want:
            problems.append(f"indication {got_ind}/{got_sub}, expected {want}")
    want_sub = _plain(case.subindication)
    if want_sub and got_sub != want_sub:
        problems.append(f"sub-indication {got_sub}, expected {want_sub}")
    want_level = _plain(case.level)
    if want_level and not any(s.signature_format == want_level for s in sigs):
        problems.append(f"level {[s.signature_format for s in sigs]}, expected {want_level}")
    if case.basis == "LEVEL+CRYPTO":
        broken = [s for s in sigs if s.sub_indication is not None and s.sub_indication.value in
                  ("HASH_FAILURE", "SIG_CRYPTO_FAILURE", "FORMAT_FAILURE", "SIGNED_DATA_NOT_FOUND")]
        if broken and "not supplied" not in case.notes:
            problems.append(f"crypto expected intact, got {broken[0].sub_indication.value}")
    return problems


async def run_case(case: Case, policy=None):  # type: ignore[no-untyped-def]
    from remotesign.validation.engine import validate_path
    return await validate_path(case.file, options_for(case, policy), filename=case.file.name)


def main() -> int:
    agree = 0
    all_cases = cases()
    for case in all_cases:
        try:
            document = asyncio.run(run_case(case))
            problems = judge(case, document)
            summary = ", ".join(f"{s.id}:{s.indication.value}/{s.sub_indication.value if s.sub_indication else '-'}"
                                f"/{s.signature_format}" for s in document.signatures[:3])
        except Exception as exc:  # the table must show every row
            problems, summary = [f"error {type(exc).__name__}: {exc}"], ""
        agree += not problems
        print(f"{'OK ' if not problems else 'XX '} {case.id:28} {summary[:110]}")
        for problem in problems:
            print(f"      {problem}")
    print(f"agreement: {agree}/{len(all_cases)} = {100 * agree / len(all_cases):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
