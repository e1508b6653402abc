"""Member sign-in and the authorization code flow: credentials, sessions,
codes, redirect URIs (issue 10).

Reserved so that work on parallel branches chains without conflicts; filled in by that work.

Revision ID: 0004_member_auth
Revises: 0003_member_identity
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004_member_auth"
down_revision: str | Sequence[str] | None = "0003_member_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
