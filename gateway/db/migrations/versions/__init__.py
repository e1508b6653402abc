"""Alembic revisions, one module each, oldest first (``0001`` is the baseline)."""
