"""Text search in SQL for the operator's lists: a case-insensitive "contains" over several
columns, the user's ``%`` and ``_`` matched literally, and one page of the result with the
number of rows that match in all.

Case folding is Unicode on both databases: PostgreSQL's ``lower()`` follows the database's
collation, SQLite's built-in one folds ASCII only, so on SQLite the search calls
``unicode_lower()``, a Python function every connection registers (storage/db.py) — a Latvian
name typed in lower case finds ``ŠĶĒLE`` as the console's search in Python did before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FunctionElement, Select, String, false, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

MAX_LIMIT = 1000  # rows one call returns at most


class folded(FunctionElement[str]):  # noqa: N801 (an SQL function, named as one)
    """``lower(text)``, Unicode-aware on SQLite too."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _folded(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    return f"unicode_lower({compiler.process(element.clauses, **kw)})"


def unicode_lower(value: object) -> object:
    """SQLite's ``unicode_lower()``: Python's lower case of a text, anything else unchanged."""
    return value.lower() if isinstance(value, str) else value


def needle(text: str | None) -> str | None:
    """What to look for: the text typed, trimmed and lower-cased; None when nothing was typed."""
    folded_text = (text or "").strip().lower()
    return folded_text or None


def contains(column: Any, wanted: str) -> ColumnElement[bool]:
    """``column`` holds ``wanted`` (already lower case: see ``needle``), case-insensitively; ``%``,
    ``_`` and the escape character in ``wanted`` are plain characters."""
    return folded(column).contains(wanted, autoescape=True)


def any_contains(wanted: str, *columns: Any) -> ColumnElement[bool]:
    """One of ``columns`` holds ``wanted`` (NULL columns hold nothing)."""
    return or_(false(), *(contains(c, wanted) for c in columns))


def page(s: Session, query: Select[Any], offset: int, limit: int) -> tuple[list[Any], int]:
    """Rows ``offset`` .. ``offset + limit`` of ``query`` (ordered: give it a unique last key so
    pages never overlap) and how many rows it has in all; ``limit`` 0 only counts."""
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    offset, limit = max(0, offset), max(0, min(limit, MAX_LIMIT))
    if limit == 0 or offset >= total:
        return [], total
    return list(s.execute(query.offset(offset).limit(limit)).all()), total
