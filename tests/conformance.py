"""The conformance corpus (tests/data/conformance: signed files taken byte for byte from the test
suites of EU DSS, digidoc4j, libdigidocpp, SiVa and pyHanko, each row with its provenance and the
outcome that project's test asserts; the first 73 are ../shared/conformance) as validator test
cases: per row, the trust anchors, trusted list, validation time, detached content and policy
that project's test used, and a judgement of a remotesign report against what it asserts, facet
by facet (indication, sub-indication, level, integrity, time-stamps).

``python tests/conformance.py`` prints the agreement table and rates;
``python tests/conformance.py --disagreements`` rewrites disagreements.tsv (the strict xfails)."""

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
    detached: list[Path] = field(default_factory=list)   # the content the test supplies to a detached signature


def _anchor_files(trust: str) -> list[Path]:
    found = _mode_anchor_files(trust)
    if "ddoc4j certificate store" in trust:
        # digidoc4j validates DDOC against the CA and OCSP-responder certificates its
        # configuration lists (DIGIDOC_CAS of digidoc4j.yaml, shipped in ddoc4j's resources)
        found += sorted(p for p in (TRUST / "digidoc4j" / "ddoc4j-certs").iterdir() if p.suffix == ".crt")
    return found


def _mode_anchor_files(trust: str) -> list[Path]:
    explicit = [p for p in re.findall(r"trust/[\w./-]+\.(?:pem|cer|crt)", trust)
                if not Path(p).name.startswith(("adjunct", "lotl_signer"))]  # named, but not anchors
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
    if "TEST mode" in trust or "Configuration.Mode.TEST" in trust or trust.startswith("SiVa"):
        # the TEST trusted list's own certificates, and those the row's test adds by hand (a
        # production CA is trusted only where a test adds it)
        certs = TRUST / "digidoc4j" / "testFiles-certs"
        added = set(re.findall(r"testFiles/certs/([\w.-]+)", trust))
        return sorted(p for p in certs.iterdir() if re.search(r"test|demo|ocsp", p.name, re.I) or p.name in added)
    if trust.startswith("libdigidocpp unit-test configuration"):
        return [TRUST / "eid" / "libdigidocpp" / name for name in ("ca.crt", "inter.crt")]
    return []


_TIME = re.compile(r"validation time(?: set by test)?:? (\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2})Z?)?")


def _validation_time(case: Case) -> datetime | None:
    """The time the source test validates at: the first one its notes name, else pyHanko's
    2020-11-01 for its rows, else now."""
    found = _TIME.search(case.notes)
    if found:
        return datetime.fromisoformat(f"{found.group(1)}T{found.group(2) or '00:00:00'}+00:00")
    return PYHANKO_TIME if case.id.startswith("pyh-") else None


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
        case.validation_time = _validation_time(case)
        case.detached = sorted((ROOT / "detached" / case.id).glob("*")) if (ROOT / "detached" / case.id).is_dir() \
            else []
        out.append(case)
    return out


def load_anchor(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM or DER file."""
    data = path.read_bytes()
    if pem.detect(data):
        return [x509.Certificate.load(der) for kind, _, der in pem.unarmor(data, multiple=True)
                if kind in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE")]
    return [x509.Certificate.load(data)]


_DDPP_REGISTRY: list[object] = []


def libdigidocpp_trusted_list_registry():  # type: ignore[no-untyped-def]
    """libdigidocpp's test configuration: its cached Estonian TEST trusted list (EE_T.xml)."""
    if not _DDPP_REGISTRY:
        from remotesign.validation.trusted_lists import load_trusted_lists
        _DDPP_REGISTRY.append(load_trusted_lists([TRUST / "eid" / "libdigidocpp" / "EE_T.xml"]).registry)
    return _DDPP_REGISTRY[0]


def uses_test_trusted_list(case: Case) -> bool:
    """digidoc4j's TEST mode (and SiVa's demo configuration): the Estonian TEST trusted list
    (EE_T), here from the local copy."""
    return ("TEST mode" in case.trust or "Configuration.Mode.TEST" in case.trust or case.trust.startswith("SiVa")
            or "test-tl-EE_T-30" in case.trust)


_REGISTRY: dict[bool, object] = {}
#: The Estonian production trusted list as EU DSS cached it (2023-10): what the EU LOTL gives
#: digidoc4j's PROD mode and SiVa's demo configuration, offline.
PRODUCTION_LIST = TRUST / "ee" / "EE.xml"
_PRODUCTION: list[object] = []


def production_trusted_list_registry():  # type: ignore[no-untyped-def]
    """The Estonian production list alone (digidoc4j's PROD mode)."""
    if not _PRODUCTION:
        from remotesign.validation.trusted_lists import load_trusted_lists
        _PRODUCTION.append(load_trusted_lists([PRODUCTION_LIST]).registry)
    return _PRODUCTION[0]


def test_trusted_list_registry(with_production: bool = False):  # type: ignore[no-untyped-def]
    """The EE_T test trusted list (template with its version placeholder filled) as a TSP registry,
    read through remotesign's own trusted-list loader, with the Estonian production list (SiVa's
    demo configuration loads the EU LOTL as well) when ``with_production``; loaded once."""
    if with_production not in _REGISTRY:
        import tempfile

        from remotesign.validation.trusted_lists import load_trusted_lists
        template = TRUST / "digidoc4j" / "testFiles-tsl" / "test-tl-EE_T-30.xml.template"
        text = template.read_text(encoding="utf-8").replace("{TSL_VERSION_IDENTIFIER}", "5")
        directory = Path(tempfile.mkdtemp(prefix="ee-t-tl-"))
        (directory / "EE_T.xml").write_text(text, encoding="utf-8")
        production = [PRODUCTION_LIST] if with_production else []
        loaded = load_trusted_lists([directory / "EE_T.xml", *production])
        _REGISTRY[with_production] = loaded.registry
    return _REGISTRY[with_production]


test_trusted_list_registry.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


POLICIES = Path(__file__).resolve().parent / "data" / "policies"


def source_policy(case: Case):
    """The validation policy equivalent to the one the source project's test ran under: EU DSS's
    default policy for DSS rows, digidoc4j's acceptance of SHA-1 in certificates for its rows
    (and libdigidocpp's and SiVa's, which share its trust model), revocation soft-fail for pyHanko's."""
    from remotesign.validation.policy import builtin_policy, load_policy_file
    if case.id.startswith("dss-"):
        return builtin_policy("dss")
    if case.id.startswith(("dd4j-", "ddpp-", "siva-")):
        return load_policy_file(POLICIES / "digidoc4j.toml")
    if case.id.startswith("pyh-"):
        return load_policy_file(POLICIES / "pyhanko.toml")
    return builtin_policy("default")


def options_for(case: Case, policy=None):  # type: ignore[no-untyped-def]
    """The trust anchors, trusted list, validation time and policy of ``case``'s source test
    (``policy`` overrides the policy)."""
    from remotesign.validation.options import DetachedDocument, ValidationOptions
    anchors: list[x509.Certificate] = []
    for path in case.anchors:
        anchors.extend(load_anchor(path))
    registry = test_trusted_list_registry(case.trust.startswith("SiVa")) if uses_test_trusted_list(case) else None
    if case.trust.startswith("libdigidocpp unit-test configuration"):
        registry = libdigidocpp_trusted_list_registry()
    if "Configuration.Mode.PROD" in case.trust:
        registry = production_trusted_list_registry()
    detached = tuple(DetachedDocument(name=p.name, path=p) for p in case.detached)
    return ValidationOptions(trust_anchors=tuple(anchors), validation_time=case.validation_time,
                             tsp_registry=registry, policy=policy or source_policy(case),  # type: ignore[arg-type]
                             detached=detached)


def _norm(value: str) -> str:
    return value.replace("_", "-") if value.startswith("TOTAL") else value


def _plain(value: str) -> str | None:
    """An asserted value: the first word, unless the whole value is a parenthesised guess."""
    value = value.strip()
    if not value or value.startswith(("(", "per ")) or "(by name)" in value or "=" in value.split()[0]:
        return None  # a guess, or per-signature values the row spells out in its notes
    return value.split()[0]


#: Per-signature expectations of the rows that assert one outcome per signature.
PER_SIGNATURE = {
    "dd4j-bdoc-multi-01": {"S0": ("TOTAL-PASSED", None), "S1": ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")},
    "dd4j-bdoc-nochain-01": {"S0": ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
                             "S1": ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")},
    # DDocSignatureTest: the second signature (Belgian eID signer) "Signers cert not trusted, missing CA cert!"
    "dd4j-ddoc-nochain-01": {"S1": ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")},
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


def _targets(case: Case, sigs: list) -> list:  # type: ignore[type-arg]
    """The signatures a row's expectation is about: its counter-signatures when it says so, any
    one of them when the test asserts "one signature" of several, else the first."""
    text = f"{case.indication} {case.subindication}".lower()
    if "counter-signature" in text:
        return [s for s in sigs if s.parent_id] or sigs[:1]
    if "one signature" in text or "the failed one" in text:
        return list(sigs)
    return sigs[:1]


_TST_WORDS = {"PASSED": "TOTAL-PASSED", "TOTAL-PASSED": "TOTAL-PASSED", "TOTAL_PASSED": "TOTAL-PASSED",
              "FAILED": "TOTAL-FAILED", "TOTAL_FAILED": "TOTAL-FAILED", "INDETERMINATE": "INDETERMINATE"}
_TST = re.compile(r"(TST\d+(?:\s*,\s*TST\d+)*)\s*(=|\s+not\s+)\s*([A-Z_-]+)")


def tst_expectations(text: str) -> dict[int, str]:
    """``TST1=PASSED; TST2,TST3=FAILED`` -> {1: "TOTAL-PASSED", 2: "TOTAL-FAILED", ...} (guesses in
    parentheses left out; ``TST1 not PASSED`` -> "not TOTAL-PASSED")."""
    out: dict[int, str] = {}
    if text.strip().startswith("("):
        return out
    for names, relation, value in _TST.findall(text):
        word = _TST_WORDS.get(value, value)
        for n in re.findall(r"\d+", names):
            out[int(n)] = ("not " + word) if "not" in relation else word
    return out


def _judge_timestamps(case: Case, stamps: list) -> list[str]:  # type: ignore[type-arg]
    problems = []
    for number, want in sorted(tst_expectations(case.indication).items()):
        if number > len(stamps):
            problems.append(f"TST{number} not reported")
            continue
        got = stamps[number - 1].conclusion
        if want.startswith("not "):
            if got.indication.value == want[4:]:
                problems.append(f"TST{number}: {got.indication.value}, expected {want}")
        elif got.indication.value != want:
            problems.append(f"TST{number}: {got.indication.value}/{got.sub_indication}, expected {want}")
    for number, want in sorted(tst_expectations(case.subindication).items()):
        got = stamps[number - 1].conclusion if number <= len(stamps) else None
        if got is not None and (got.sub_indication is None or got.sub_indication.value != want):
            problems.append(f"TST{number}: sub-indication {got.sub_indication}, expected {want}")
    return problems


def judge(case: Case, document) -> list[str]:
    """Differences between a DocumentResult and what the source project asserts (empty = agree)."""
    problems: list[str] = []
    sigs = document.signatures
    if tst_expectations(case.indication):
        return _judge_timestamps(case, list(document.timestamps))
    if not sigs and document.timestamps and case.indication.startswith("not TOTAL"):
        passed = all(t.conclusion.indication.value == "TOTAL-PASSED" for t in document.timestamps)
        return ["every time-stamp TOTAL-PASSED, expected not TOTAL-PASSED"] if passed else []
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
    targets = _targets(case, sigs)
    first = targets[0] if targets else sigs[0]
    got_ind = first.indication.value
    got_sub = first.sub_indication.value if first.sub_indication else None
    expected_ind = case.indication
    want_sub = _plain(case.subindication)
    if len(targets) > 1:  # "one of the signatures": the one that shows the asserted outcome
        want = _norm(_plain(expected_ind) or "")
        chosen = [s for s in targets if s.indication.value == want and
                  (not want_sub or (s.sub_indication is not None and s.sub_indication.value == want_sub))]
        if chosen:
            first = chosen[0]
            got_ind, got_sub = first.indication.value, first.sub_indication.value if first.sub_indication else None
    if expected_ind.startswith("not TOTAL"):
        if got_ind == "TOTAL-PASSED":
            problems.append("TOTAL-PASSED, expected not TOTAL-PASSED")
    elif _plain(expected_ind):
        want = _norm(_plain(expected_ind))
        if got_ind != want:
            problems.append(f"indication {got_ind}/{got_sub}, expected {want}")
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
    if case.basis == "DIFF-ONLY" and got_sub == "FORMAT_FAILURE":
        problems.append("the later revisions are allowed changes, got FORMAT_FAILURE")
    return problems


def facets(case: Case) -> int:
    """How many facets (indication, sub-indication, level, integrity, allowed changes) the row
    asserts: what agreement is counted over."""
    if case.id in PER_SIGNATURE:
        return sum(1 + (sub is not None) for _, sub in PER_SIGNATURE[case.id].values())
    if tst_expectations(case.indication):
        return len(tst_expectations(case.indication)) + len(tst_expectations(case.subindication))
    count = int(case.indication.startswith("not TOTAL") or _plain(case.indication) is not None)
    count += _plain(case.subindication) is not None
    count += _plain(case.level) is not None
    count += case.basis in ("LEVEL+CRYPTO", "DIFF-ONLY")
    return count


async def run_case(case: Case, policy=None):  # type: ignore[no-untyped-def]
    from remotesign.validation.engine import validate_path
    return await validate_path(case.file, options_for(case, policy), filename=case.file.name)


def evaluate(case: Case) -> tuple[list[str], object]:
    """(the differences from what the source asserts, the report or the refusal). A file the
    validator refuses as an invalid container agrees with a source that only says it is not valid."""
    from remotesign.validation.model import ValidationInputError

    try:
        document = asyncio.run(run_case(case))
    except ValidationInputError as exc:
        if case.indication.startswith("not TOTAL") and exc.code in ("invalid_container", "invalid_document"):
            return [], exc
        return [f"refused: {exc.code}: {exc.message}"], exc
    return judge(case, document), document


SOURCES = {"dss": "EU DSS", "dd4j": "digidoc4j", "ddpp": "libdigidocpp", "siva": "SiVa", "pyh": "pyHanko"}


#: Rows whose disagreement the generic categories below would misname.
KNOWN_REASONS = {
    "dd4j-asice-struct-02": "the DSS version digidoc4j pins throws on two EncapsulatedTimeStamp elements in one "
                            "SignatureTimeStamp (\"More than one result for XPath\"); current EU DSS validates both "
                            "tokens and calls the signature XAdES_T (dss-xades-t-04), as remotesign does",
    "dd4j-asice-lv-05": "digidoc4j's test trusts an internal trusted list (http://10.0.25.57/tsl/trusted-test-mp.xml) "
                        "that is not public, so the Latvian CA E-ME SI (CA1) has no anchor here; the signature "
                        "value (a DigestInfo without NULL parameters) verifies, as digidoc4j's does",
    "dd4j-asice-struct-03": "the DSS version digidoc4j pins throws on two EncapsulatedTimeStamp elements in the second "
                            "SignatureTimeStamp; current EU DSS validates both tokens (dss-xades-t-06), as remotesign "
                            "does",
}


def reason_for(case: Case, problems: list[str]) -> str:
    """A reader's explanation of a disagreement, from what differs (the table's categories)."""
    if case.id in KNOWN_REASONS:
        return KNOWN_REASONS[case.id]
    src = SOURCES.get(case.id.split("-")[0], "the source")
    out = []
    for p in problems:
        if "OUT_OF_BOUNDS_NO_POE, expected TOTAL-PASSED" in p or "S0: INDETERMINATE, expected TOTAL-PASSED" in p:
            out.append("the signer's certificate has expired and remotesign finds no proof that the chain was valid "
                       "and unrevoked when the signature was made (trust-anchor validity or trusted-list service "
                       f"history, or the OCSP data, does not cover that time) -> OUT_OF_BOUNDS_NO_POE; {src}: "
                       "TOTAL_PASSED")
        elif "CERTIFICATE_CHAIN_GENERAL_FAILURE, expected TOTAL-PASSED" in p:
            out.append("remotesign has no revocation data for the chain (none embedded, no online fetching by "
                       f"default; {src}'s test fetched it online or soft-failed) -> CERTIFICATE_CHAIN_GENERAL_FAILURE")
        elif "crypto expected intact, got SIGNED_DATA_NOT_FOUND" in p or "SIGNED_DATA_NOT_FOUND, expected" in p:
            out.append(f"remotesign does not find (or does not accept where it is) the data a reference points to "
                       f"-> SIGNED_DATA_NOT_FOUND; {src} finds it")
        elif p.startswith("level "):
            out.append(f"level detection differs: remotesign {p.split(', expected')[0][6:]}, {src} "
                       f"{p.split('expected ')[-1]}")
        elif re.match(r"TST\d+: INDETERMINATE/SubIndication.NO_CERTIFICATE_CHAIN_FOUND", p):
            out.append(f"the TSA is not in the offline substitute of {src}'s online trust configuration "
                       f"-> {p.split(':')[0]} NO_CERTIFICATE_CHAIN_FOUND")
        elif "TOTAL-PASSED, expected not TOTAL-PASSED" in p or "TOTAL-PASSED/None, expected" in p:
            out.append(f"{src} refuses it by a rule of its own profile that EN 319 102-1 / EN 319 162-1 do not "
                       f"make ({case.notes[:140]}); remotesign: TOTAL-PASSED")
        elif p.startswith("refused: "):
            out.append(f"remotesign refuses the file as input ({p[9:][:140]}); {src} reports a validation")
        elif "NO_CERTIFICATE_CHAIN_FOUND, expected TOTAL-FAILED" in p or "sub-indication NO_CERTIFICATE_CHAIN_FOUND" in p:
            out.append(f"remotesign concludes on the chain (NO_CERTIFICATE_CHAIN_FOUND) where {src} reports the "
                       f"signature's own failure ({p.split('expected ')[-1]})")
        elif "SIG_CRYPTO_FAILURE" in p:
            out.append(f"the signature value does not verify for remotesign (SIG_CRYPTO_FAILURE); {src} accepts its "
                       "encoding")
        elif "got FORMAT_FAILURE" in p:
            out.append(f"remotesign refuses the structure (FORMAT_FAILURE, e.g. duplicate Ids as XML signature "
                       f"wrapping) where {src} finds the signature intact")
        elif "no signatures reported" in p:
            out.append(f"remotesign reports no signature in it; {src} finds one")
        else:
            out.append(f"remotesign: {p}")
    return "; ".join(dict.fromkeys(out))


def write_disagreements(path: Path) -> None:
    """Regenerate tests/data/conformance/disagreements.tsv (id, failing facets, reason)."""
    rows = []
    for case in cases():
        problems, _ = evaluate(case)
        if problems:
            rows.append(f"{case.id}\t{min(len(problems), facets(case))}\t{reason_for(case, problems)}\n")
    path.write_text("id\tfacets\treason\n" + "".join(rows), encoding="utf-8")


def disagreements() -> dict[str, tuple[int, str]]:
    """The rows where remotesign decides differently: id -> (failing facets, reason)."""
    path = ROOT / "disagreements.tsv"
    with open(path, newline="", encoding="utf-8") as handle:
        return {r["id"]: (int(r["facets"]), r["reason"]) for r in csv.DictReader(handle, delimiter="\t")}


def main() -> int:
    if "--disagreements" in sys.argv:
        write_disagreements(ROOT / "disagreements.tsv")
        return 0
    agree = 0
    compared = failed = 0
    all_cases = cases()
    for case in all_cases:
        try:
            problems, document = evaluate(case)
            summary = ", ".join(f"{s.id}:{s.indication.value}/{s.sub_indication.value if s.sub_indication else '-'}"
                                f"/{s.signature_format}" for s in getattr(document, "signatures", [])[:3])
        except Exception as exc:  # the table must show every row
            problems, summary = [f"error {type(exc).__name__}: {exc}"], ""
        agree += not problems
        compared += facets(case)
        failed += min(len(problems), facets(case))
        print(f"{'OK ' if not problems else 'XX '} {case.id:28} {summary[:110]}", flush=True)
        for problem in problems:
            print(f"      {problem}")
    print(f"rows agreeing: {agree}/{len(all_cases)} = {100 * agree / len(all_cases):.1f}%")
    print(f"facets agreeing: {compared - failed}/{compared} = {100 * (compared - failed) / max(compared, 1):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
