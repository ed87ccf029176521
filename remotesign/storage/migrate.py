"""Apply Alembic migrations programmatically (at start and from ``remotesign init``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade_to_head(database_url: str) -> None:
    """Every branch to its head: independent schema changes may branch off the same revision
    (a later merge revision joins them), and "heads" applies them all. On PostgreSQL under the
    start-up advisory lock (storage/leader.py): nodes starting at once migrate one after the
    other, the later ones finding nothing left to do."""
    from remotesign.storage.leader import startup_lock

    with startup_lock(database_url):
        command.upgrade(alembic_config(database_url), "heads")
