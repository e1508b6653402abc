"""Links carried over from a partner's legacy loyalty program: the one way in that is not the
member's consent given here, so it is an admin's act, checked whole and written to the audit log.

The file is CSV with a header naming the columns ``partner_id``, ``customer_id`` and
``card_number`` (any order, nothing else). Every line is validated before anything is written:
the partner exists, the customer id is 1 to 128 characters, the card number is a coalition card
(Luhn) of an active member, the customer id is not linked to another member at that partner, the
member is not linked there under another customer id, and no line repeats a customer or a member
of an earlier line at the same partner. Any error, and the answer is the list of every error with
its line and column; nothing is written. Otherwise each link is recorded with ``via`` =
``legacy_import`` and one ``audit_log`` row, in one transaction. A line whose link already exists
exactly is skipped, so running the same file twice is safe."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from gateway.core.clock import Clock
from gateway.core.errors import InvalidInput
from gateway.db import audit
from gateway.db.tables import partners
from gateway.db.uow import UnitOfWork
from gateway.members.identity import IdentityRepository, is_card_number
from gateway.members.repository import MemberRepository

COLUMNS = ("partner_id", "customer_id", "card_number")
MAX_CUSTOMER_ID = 128


class LegacyImportInvalid(InvalidInput):
    """The file has errors; ``errors`` lists each as 'line N, column C: message'."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} error(s); nothing was imported:\n" + "\n".join(errors),
                         field="file")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class LegacyLink:
    line: int
    partner_id: str
    customer_id: str
    member_id: str


@dataclass
class ImportResult:
    linked: list[LegacyLink] = field(default_factory=list)
    already: list[LegacyLink] = field(default_factory=list)


def import_links(engine: Engine, clock: Clock, text: str, *, actor: str) -> ImportResult:
    with UnitOfWork(engine) as uow:
        plan = _validate(uow, text)
        now = clock.now()
        repo = MemberRepository(uow.conn)
        for link in plan.linked:
            repo.link(link.partner_id, link.customer_id, link.member_id, now,
                      via="legacy_import", actor=actor)
            audit.record(uow.conn, at=now, actor=actor, action="members.link_imported",
                         subject=f"{link.partner_id}:{link.customer_id}",
                         detail={"partner_id": link.partner_id,
                                 "customer_id": link.customer_id,
                                 "member_id": link.member_id, "line": link.line})
        uow.commit()
        return plan


def _validate(uow: UnitOfWork, text: str) -> ImportResult:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or sorted(h.strip() for h in header) != sorted(COLUMNS):
        raise LegacyImportInvalid([f"line 1: the header must name the columns "
                                   f"{', '.join(COLUMNS)}, got {', '.join(header or [])!r}"])
    index = {name.strip(): i for i, name in enumerate(header)}
    known = set(uow.conn.execute(select(partners.c.id)).scalars())
    identity, repo = IdentityRepository(uow.conn), MemberRepository(uow.conn)
    errors: list[str] = []
    plan = ImportResult()
    customers_seen: dict[tuple[str, str], int] = {}
    members_seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(COLUMNS):
            errors.append(f"line {line}: {len(row)} columns, expected {len(COLUMNS)}")
            continue
        partner_id, customer_id, card = (row[index[c]].strip() for c in COLUMNS)
        problem = _row_problem(known, partner_id, customer_id, card)
        if problem is not None:
            errors.append(f"line {line}, column {problem[0]}: {problem[1]}")
            continue
        member = identity.member_by_card(card)
        if member is None or member.status != "active":
            errors.append(f"line {line}, column card_number: no active member has this card")
            continue
        first = customers_seen.setdefault((partner_id, customer_id), line)
        if first != line:
            errors.append(f"line {line}, column customer_id: {customer_id!r} at {partner_id!r} "
                          f"is on line {first} already")
            continue
        first = members_seen.setdefault((partner_id, member.id), line)
        if first != line:
            errors.append(f"line {line}, column card_number: this member is linked at "
                          f"{partner_id!r} on line {first} already")
            continue
        link = LegacyLink(line, partner_id, customer_id, member.id)
        current = repo.member_for_customer(partner_id, customer_id)
        if current == member.id:
            plan.already.append(link)
        elif current is not None:
            errors.append(f"line {line}, column customer_id: {customer_id!r} is linked to "
                          f"another member at {partner_id!r}")
        elif repo.customer_for_member(partner_id, member.id) is not None:
            errors.append(f"line {line}, column card_number: this member is linked at "
                          f"{partner_id!r} under another customer id")
        else:
            plan.linked.append(link)
    if errors:
        raise LegacyImportInvalid(errors)
    return plan


def _row_problem(known: set[str], partner_id: str, customer_id: str,
                 card: str) -> tuple[str, str] | None:
    if partner_id not in known:
        return "partner_id", f"no partner {partner_id!r}"
    if not customer_id or len(customer_id) > MAX_CUSTOMER_ID:
        return "customer_id", f"must be 1 to {MAX_CUSTOMER_ID} characters, not blank"
    if not is_card_number(card):
        return "card_number", "not a coalition card number (16 digits, Luhn)"
    return None
