"""Member sign-in and the authorization code flow, if they need schema beyond 0003 (issue 10).

Reserved so that work on parallel branches chains without conflicts; filled in by that work.

Revision ID: 0006_member_oauth
Revises: 0005_member_actions
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006_member_oauth"
down_revision: str | Sequence[str] | None = "0005_member_actions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
