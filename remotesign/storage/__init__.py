"""Persistence: SQLAlchemy models and Alembic migrations, plus the blob store for documents."""
