"""Hot-path indexes: every query on a request path indexed and bounded (issue 11).

Reserved so that work on parallel branches chains without conflicts; filled in by that work.

Revision ID: 0002_hot_path_indexes
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002_hot_path_indexes"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
