"""How a points command names its member (guarantee 7): a linked customer id, a bare card
number (earn only) or a store code the member showed. The shape is checked without I/O when the
command is built (:func:`who_named`), the till's budget and the store-code secret are read
before the transaction (:func:`admit`), and the member is found inside it (``Who.member_in``)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.errors import ConsentRequired, InvalidInput, UnknownMember
from gateway.ledger.context import LedgerContext
from gateway.ledger.runner import Tx, leave_loop_for_io
from gateway.members import consent
from gateway.members.identity import IdentityRepository, is_card_number


def member_of(tx: Tx, partner_id: str, customer_id: str) -> str:
    member_id = tx.members.member_for_customer(partner_id, customer_id)
    if member_id is None:
        raise UnknownMember(
            f"no member is linked to customer {customer_id!r} at this partner",
            field="customerId",
        )
    return member_id


@dataclass(frozen=True, slots=True)
class Who:
    """How a points command names its member, checked before any transaction: a linked
    customer id, a bare card number (earn only) or a store code (with its signing secret, read
    outside the transaction)."""

    partner_id: str
    customer_id: str | None = None
    card_number: str | None = None
    store_code: str | None = None
    secret: bytes = b""

    @property
    def by_card(self) -> bool:
        return self.card_number is not None

    def member_in(self, tx: Tx, *, spend: bool) -> str:
        """The member, inside the command's transaction (result code UNKNOWN_MEMBER); a store
        code used to spend gives its one consent use here, undone if the command fails."""
        if self.store_code is not None:
            return consent.member_for_store_code(tx.conn, tx.now, self.secret,
                                                 self.partner_id, self.store_code, consent=spend)
        if self.card_number is not None:
            row = IdentityRepository(tx.conn).member_by_card(self.card_number)
            if row is None or row.status != "active":
                raise UnknownMember("no coalition card with this number", field="cardNumber")
            return row.id
        assert self.customer_id is not None
        return member_of(tx, self.partner_id, self.customer_id)


def who_named(partner_id: str, customer_id: str | None, card_number: str | None,
              store_code: str | None, *, spend: bool) -> Who:
    """Exactly one way to name the member, checked without I/O: CONSENT_REQUIRED for a card
    number that would spend (whatever else is wrong), then INVALID_INPUT for the shape."""
    if spend and card_number is not None:
        raise ConsentRequired(
            "a card number may earn but never spend: link the customer with the member's "
            "consent, or scan the store code their app shows", field="cardNumber")
    given = [name for name, value in (("customerId", customer_id), ("cardNumber", card_number),
                                      ("storeCode", store_code)) if value is not None]
    if len(given) != 1:
        ways = "customerId or storeCode" if spend else "customerId, cardNumber or storeCode"
        raise InvalidInput(f"give exactly one of {ways}", field=given[-1] if given
                           else "customerId")
    if card_number is not None:
        if not is_card_number(card_number):
            raise InvalidInput("cardNumber is not a coalition card number (16 digits, Luhn)",
                               field="cardNumber")
        return Who(partner_id, card_number=card_number)
    if store_code is not None:
        consent.check_store_code(store_code)
        return Who(partner_id, store_code=store_code)
    return Who(partner_id, customer_id=customer_id)


def admit(ctx: LedgerContext, who: Who) -> Who:
    """The I/O a valid request needs before its transaction: a store code typed as digits
    counts against the partner's budget (RATE_LIMITED), and its signing secret is read."""
    if who.store_code is None:
        return who
    leave_loop_for_io()  # the budget (maybe Redis) and the secret (the database) block
    if not consent.is_scanned(who.store_code):
        ctx.guesses.store_digits_attempt(who.partner_id)
    return Who(who.partner_id, store_code=who.store_code,
               secret=consent.store_code_secret(ctx.engine, ctx.clock))

