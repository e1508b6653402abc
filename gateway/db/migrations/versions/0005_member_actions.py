"""Member actions: donations, merges, erasure records (issue 10).

Reserved so that work on parallel branches chains without conflicts; filled in by that work.

Revision ID: 0005_member_actions
Revises: 0004_member_auth
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005_member_actions"
down_revision: str | Sequence[str] | None = "0004_member_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
