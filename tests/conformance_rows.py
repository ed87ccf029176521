"""What the conformance test modules share: one row's check, and the agreement over the corpus."""

from __future__ import annotations

import pytest

from tests.conformance import Case, cases, disagreements, evaluate, facets

ROWS = cases()
DISAGREEMENTS = disagreements()


def params(rows: list[Case]) -> list[object]:
    """The rows as test parameters; a disagreement is a strict xfail with its reason."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=DISAGREEMENTS[c.id][1])]
                         if c.id in DISAGREEMENTS else []) for c in rows]


def check_row(case: Case) -> None:
    problems, document = evaluate(case)
    assert problems == [], problems
    for signature in getattr(document, "signatures", []):
        assert signature.signature_level, signature.id    # qualification ran for every signature


def agreement() -> tuple[int, int]:
    """(facets agreeing, facets compared) over the whole corpus, from the recorded disagreements."""
    compared = sum(facets(c) for c in ROWS)
    failed = sum(n for n, _ in DISAGREEMENTS.values())
    return compared - failed, compared
