"""The one ownership filter every tenant-scoped query uses: ``tenant_id`` None means the operator."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement


def owned_by(column: Any, tenant_id: str | None) -> ColumnElement[bool]:
    """Rows of ``tenant_id`` only; None selects the operator's own rows (the built-in PKI)."""
    return column.is_(None) if tenant_id is None else column == tenant_id
