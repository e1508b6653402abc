"""Alembic migrations: the single source of the schema on SQLite and PostgreSQL.

``env.py`` is Alembic's environment, ``versions/`` the revisions (``0001`` is the baseline: every
table of ``gateway.db.tables`` as it stood when migrations began, and the append-only triggers).
Run them through ``gateway.db.migrate`` (the gateway does at start) or ``alembic upgrade head``
with the ``alembic.ini`` at the repository root. See docs/decisions/003-alembic-migrations.md."""
