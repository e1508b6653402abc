"""SQL for members and linked accounts. A partner reaches a member only through its own link."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select

from gateway.db.tables import linked_accounts, members


class MemberRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def member_for_customer(self, partner_id: str, customer_id: str) -> str | None:
        # On every earn and redeem: built once (module end), not per call (issue 11).
        return self.conn.execute(
            _MEMBER_FOR_CUSTOMER, {"partner_id": partner_id, "customer_id": customer_id}
        ).scalar_one_or_none()

    def customer_for_member(self, partner_id: str, member_id: str) -> str | None:
        return self.conn.execute(
            select(linked_accounts.c.customer_id).where(
                linked_accounts.c.partner_id == partner_id,
                linked_accounts.c.member_id == member_id,
            )
        ).scalar_one_or_none()

    def exists(self, member_id: str) -> bool:
        found = self.conn.execute(select(members.c.id).where(members.c.id == member_id)).first()
        return found is not None

    def lock(self, member_id: str) -> bool:
        """Whether the member exists; on PostgreSQL its row stays locked until the transaction
        ends (SQLite's write transactions are serialised whole already)."""
        query = select(members.c.id).where(members.c.id == member_id)
        if self.conn.dialect.name != "sqlite":
            query = query.with_for_update()
        return self.conn.execute(query).first() is not None

    def create(self, member_id: str, at: datetime) -> None:
        self.conn.execute(insert(members), {"id": member_id, "created_at": at})

    def link(self, partner_id: str, customer_id: str, member_id: str, at: datetime) -> None:
        self.conn.execute(
            insert(linked_accounts),
            {"partner_id": partner_id, "customer_id": customer_id, "member_id": member_id,
             "linked_at": at},
        )

    def linked_at(self, partner_id: str, customer_id: str) -> datetime | None:
        return self.conn.execute(
            select(linked_accounts.c.linked_at).where(
                linked_accounts.c.partner_id == partner_id,
                linked_accounts.c.customer_id == customer_id,
            )
        ).scalar_one_or_none()


_MEMBER_FOR_CUSTOMER = select(linked_accounts.c.member_id).where(
    linked_accounts.c.partner_id == bindparam("partner_id"),
    linked_accounts.c.customer_id == bindparam("customer_id"),
)
