"""Alembic environment: runs online against the URL set by ``remotesign.storage.migrate``."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from remotesign.storage.db import use_wal
from remotesign.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        if connection.dialect.name == "sqlite":
            # born in WAL mode, so the service's first connections never race to switch it
            cursor = connection.connection.driver_connection.cursor()
            use_wal(cursor)
            cursor.close()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
