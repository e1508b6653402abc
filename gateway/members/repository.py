"""SQL for members and linked accounts. A partner reaches a member only through its own open
link; every link made or closed is written to ``link_events`` with how the member consented."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from gateway.db.tables import link_events, linked_accounts, members
from gateway.members.identity import IdentityRepository, NewMember
from gateway.outbox import emit

MAX_MERGED = 50  # members merged into one, followed for history

_OPEN = linked_accounts.c.closed_at.is_(None)


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
                _OPEN,
            )
        ).scalar_one_or_none()

    def exists(self, member_id: str) -> bool:
        found = self.conn.execute(select(members.c.id).where(members.c.id == member_id)).first()
        return found is not None

    def survivor_of(self, member_id: str) -> str:
        """The member that absorbed ``member_id`` (through any chain of merges), or itself."""
        seen = {member_id}
        while True:
            into = self.conn.execute(select(members.c.merged_into)
                                     .where(members.c.id == member_id)).scalar_one_or_none()
            if into is None or into in seen:
                return member_id
            member_id = str(into)
            seen.add(member_id)

    def with_absorbed(self, member_id: str, limit: int) -> list[str]:
        """The member and every member merged into it (transitively), at most ``limit``: their
        history is the survivor's."""
        found, frontier = [member_id], [member_id]
        while frontier and len(found) < limit:
            frontier = [str(m) for m in self.conn.execute(
                select(members.c.id).where(members.c.merged_into.in_(frontier))
                .limit(limit)).scalars()]
            found.extend(frontier)
        return found[:limit]

    def lock(self, member_id: str) -> bool:
        """Whether the member exists; on PostgreSQL its row stays locked until the transaction
        ends (SQLite's write transactions are serialised whole already)."""
        query = select(members.c.id).where(members.c.id == member_id)
        if self.conn.dialect.name != "sqlite":
            query = query.with_for_update()
        return self.conn.execute(query).first() is not None

    def create(self, at: datetime, *, with_activation: bool = False) -> NewMember:
        """A new member with a card number (and a one-time activation code if asked)."""
        return IdentityRepository(self.conn).create_member(at, with_activation=with_activation)

    def link(self, partner_id: str, customer_id: str, member_id: str, at: datetime, *,
             via: str, actor: str) -> None:
        """Link the partner's customer id to the member, recording how the member consented
        (``via``). A closed link of the same customer id is reopened for the new member; an
        open one makes the INSERT fail on the primary key (callers check first)."""
        reopened = self.conn.execute(
            update(linked_accounts)
            .where(linked_accounts.c.partner_id == partner_id,
                   linked_accounts.c.customer_id == customer_id,
                   linked_accounts.c.closed_at.is_not(None))
            .values(member_id=member_id, linked_at=at, consent_via=via, closed_at=None)
        ).rowcount
        if not reopened:
            self.conn.execute(
                insert(linked_accounts),
                {"partner_id": partner_id, "customer_id": customer_id, "member_id": member_id,
                 "linked_at": at, "consent_via": via},
            )
        self._event(at, member_id, partner_id, customer_id, "linked", via, actor)
        emit(self.conn, "member.linked", partner_id=partner_id, member_id=member_id, at=at,
             data={"customer_id": customer_id, "via": via})

    def close_link(self, partner_id: str, member_id: str, at: datetime, *, via: str,
                   actor: str) -> str | None:
        """Close the member's open link at the partner; the customer id it had, or None."""
        customer_id = self.customer_for_member(partner_id, member_id)
        if customer_id is None:
            return None
        self.conn.execute(
            update(linked_accounts)
            .where(linked_accounts.c.partner_id == partner_id,
                   linked_accounts.c.customer_id == customer_id, _OPEN)
            .values(closed_at=at)
        )
        self._event(at, member_id, partner_id, customer_id, "unlinked", via, actor)
        return customer_id

    def open_links(self, member_id: str) -> list[tuple[str, str, datetime, str | None]]:
        """(partner id, customer id, linked at, consent via) of the member's open links."""
        rows = self.conn.execute(
            select(linked_accounts.c.partner_id, linked_accounts.c.customer_id,
                   linked_accounts.c.linked_at, linked_accounts.c.consent_via)
            .where(linked_accounts.c.member_id == member_id, _OPEN)
            .order_by(linked_accounts.c.partner_id)
        ).all()
        return [(str(p), str(c), at, via) for p, c, at, via in rows]

    def _event(self, at: datetime, member_id: str, partner_id: str, customer_id: str,
               action: str, via: str, actor: str) -> None:
        self.conn.execute(insert(link_events), {
            "at": at, "member_id": member_id, "partner_id": partner_id,
            "customer_id": customer_id, "action": action, "via": via, "actor": actor})

    def linked_at(self, partner_id: str, customer_id: str) -> datetime | None:
        return self.conn.execute(
            select(linked_accounts.c.linked_at).where(
                linked_accounts.c.partner_id == partner_id,
                linked_accounts.c.customer_id == customer_id,
                _OPEN,
            )
        ).scalar_one_or_none()


_MEMBER_FOR_CUSTOMER = select(linked_accounts.c.member_id).where(
    linked_accounts.c.partner_id == bindparam("partner_id"),
    linked_accounts.c.customer_id == bindparam("customer_id"),
    _OPEN,
)
