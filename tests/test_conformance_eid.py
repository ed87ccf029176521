"""The conformance corpus, part 2: the rows from digidoc4j, libdigidocpp and SiVa (Estonian and
other eID containers: BDOC, ASiC-E, ASiC-S with time-stamp tokens, ADOC, EDOC), judged as
tests/test_conformance.py judges part 1 (same disagreements file, same agreement)."""

from __future__ import annotations

import pytest

from tests.conformance import Case
from tests.conformance_rows import ROWS, check_row, params

PART = [c for c in ROWS if not c.id.startswith(("dss-", "pyh-"))]


@pytest.mark.parametrize("case", params(PART))
def test_conformance_row(case: Case) -> None:
    check_row(case)
