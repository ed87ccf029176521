"""The plain-text tables of the ``list`` commands: a header row naming the columns, then one row
per item, each column padded to its widest cell so the columns line up (``--json`` is the
machine-readable form)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def print_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print ``header`` and ``rows``, two spaces between columns; the last column is not padded
    (it holds free text such as names and subjects)."""
    cells = [[str(c) for c in header], *([("" if c is None else str(c)) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    for row in cells:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip())
