"""The conformance corpus, part 1: the rows from EU DSS and pyHanko (tests/conformance.py; the
digidoc4j, libdigidocpp and SiVa rows are tests/test_conformance_eid.py, so two workers share
them). Each file is validated with the trust, time and policy of its source's test and judged
facet by facet against what that test asserts. The rows where remotesign decides differently are
listed in tests/data/conformance/disagreements.tsv with the reason; they are strict xfails, so
fixing one makes the suite say so. The PDF rows are also validated under remotesign's stricter
default policy.

The agreement over every compared facet of the whole corpus is printed by
``python tests/conformance.py`` and asserted (as a floor) below."""

from __future__ import annotations

import asyncio

import pytest

from tests.conformance import Case, options_for
from tests.conformance_rows import DISAGREEMENTS, ROWS, agreement, check_row, params

PART = [c for c in ROWS if c.id.startswith(("dss-", "pyh-"))]


@pytest.mark.parametrize("case", params(PART))
def test_conformance_row(case: Case) -> None:
    check_row(case)


def test_corpus_size_provenance_and_agreement(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(ROWS) >= 250 and len({c.id for c in ROWS}) == len(ROWS)
    assert all(c.file.is_file() for c in ROWS)
    assert set(DISAGREEMENTS) <= {c.id for c in ROWS}
    agreeing, compared = agreement()
    with capsys.disabled():
        print(f"\nconformance corpus: {len(ROWS)} files, {agreeing}/{compared} facets agree "
              f"({100 * agreeing / compared:.1f}%), {len(ROWS) - len(DISAGREEMENTS)} rows agree fully")
    assert agreeing / compared >= 0.95, (agreeing, compared)


#: Rows where remotesign's default policy is stricter than the source project's, on purpose.
STRICTER_BY_DEFAULT = {  # id: (why, what the default's error says)
    "dss-pades-b-03": ("a later revision changes form field TestField2, which the signature locks (FieldMDP /All)",
                       "TestField2"),
    "dss-pades-annot-01": ("a later revision re-defines the document catalog, adding /Names (document-level "
                           "JavaScript and attachments live there); DSS's policy only warns", "document catalog"),
}


@pytest.mark.parametrize("case", [c for c in ROWS if (c.format.startswith("PAdES") or c.file.suffix == ".pdf")
                                  and c.id not in DISAGREEMENTS and c.id.startswith("dss-")],
                         ids=lambda c: c.id)
def test_default_policy_on_pdf_rows(case: Case) -> None:
    """Under remotesign's own default policy every PDF row of DSS is judged as under DSS's policy,
    except the rows where the default refuses a change DSS only warns about. (The other sources'
    policies differ from the default by design: SHA-1 in certificates, revocation soft-fail.)"""
    from remotesign.validation.engine import validate_path
    from remotesign.validation.policy import builtin_policy

    document = asyncio.run(validate_path(case.file, options_for(case, builtin_policy("default")),
                                         filename=case.file.name))
    if case.id in STRICTER_BY_DEFAULT:
        signature = document.signatures[0]
        assert (signature.indication.value, signature.sub_indication.value) == ("TOTAL-FAILED", "FORMAT_FAILURE")
        assert any(STRICTER_BY_DEFAULT[case.id][1] in e for e in signature.errors), signature.errors
        return
    source = asyncio.run(validate_path(case.file, options_for(case), filename=case.file.name))
    assert [(s.id, s.indication, s.sub_indication) for s in document.signatures] == [
        (s.id, s.indication, s.sub_indication) for s in source.signatures]
