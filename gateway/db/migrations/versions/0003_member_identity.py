"""Member identity and consent: card numbers, activation codes, link codes,
link events, consents (issue 10).

Reserved so that work on parallel branches chains without conflicts; filled in by that work.

Revision ID: 0003_member_identity
Revises: 0002_hot_path_indexes
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003_member_identity"
down_revision: str | Sequence[str] | None = "0002_hot_path_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
