"""Customers' rights over their data: access (everything held, as one JSON document) and
erasure (the profile's key destroyed; the ledger kept, showing the customer as erased).

Erasure records ``Customer.Erased`` (who, why: nothing personal) first, then destroys the
customer's data key; run again, it finishes what an interrupted run began. Afterwards the
personal fields in the log are ciphertext nobody can open, so every replay, read model or
backup made from the log shows the customer as erased.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from loyalty.commands.admin import load_card
from loyalty.commands.customers import accounts_of, customer_of, history
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import receipt_transactions
from loyalty.commands.schemas import Balance, ReceiptTransaction
from loyalty.domain import ids
from loyalty.domain.campaign import Campaign
from loyalty.domain.card import Card, CardStatus
from loyalty.domain.consent import Consent
from loyalty.domain.customer import Customer, Profile
from loyalty.domain.movement import CENT, Line, MovementType


class CardExport(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    status: CardStatus


class MovementExport(msgspec.Struct, frozen=True, kw_only=True):
    campaign: str
    movement_id: str
    type: MovementType
    occurred_at: datetime
    amount: Decimal
    currency: str
    lines: tuple[Line, ...]
    transactions: tuple[ReceiptTransaction, ...]
    balance_after: Balance


class CustomerExport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the ledger holds on a customer (right of access and portability)."""

    customer_id: UUID
    erased: bool
    profile: Profile
    signed_up_on: date
    home_store: str | None
    cards: tuple[CardExport, ...]
    consents: tuple[Consent, ...]
    movements: tuple[MovementExport, ...]


class Erasure(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: UUID
    cards: tuple[str, ...]
    erased: bool


def export(ledger: Ledger, card_code: str, campaigns: Sequence[Campaign]) -> CustomerExport:
    """Everything held on the holder of ``card_code``: profile, cards, consents, and every
    movement of theirs in ``campaigns`` with its transactions (oldest first)."""
    customer = customer_of(ledger, load_card(ledger, card_code))
    found = ledger.load_all([ids.card_id(code) for code in customer.cards])
    cards = [c for c in found.values() if isinstance(c, Card)]
    movements = []
    for card in cards[:1]:  # the accounts are the customer's: any of their cards leads there
        for campaign, account in accounts_of(ledger, card, campaigns):
            if account is None:
                continue
            for event in reversed(history(ledger, account)):
                movement = event.movement
                movements.append(
                    MovementExport(
                        campaign=campaign.code,
                        movement_id=movement.movement_id,
                        type=movement.type,
                        occurred_at=movement.occurred_at,
                        amount=movement.amount,
                        currency=movement.currency,
                        lines=movement.lines,
                        transactions=receipt_transactions(event.derivation),
                        balance_after=Balance(
                            points=event.points_after, credits=event.credits_after.quantize(CENT)
                        ),
                    )
                )
    return CustomerExport(
        customer_id=customer.id,
        erased=customer.erased,
        profile=customer.profile,
        signed_up_on=customer.signed_up_on,
        home_store=customer.home_store,
        cards=tuple(CardExport(code=c.code, status=c.status) for c in cards),
        consents=tuple(customer.consents),
        movements=tuple(movements),
    )


def erase(ledger: Ledger, card_code: str, by: str, reason: str) -> Erasure:
    """Erases the holder of ``card_code``; safe to repeat."""
    return erase_customer(ledger, customer_of(ledger, load_card(ledger, card_code)), by, reason)


def erase_customer(ledger: Ledger, customer: Customer, by: str, reason: str) -> Erasure:
    customer.erase(by, reason)
    ledger.save(customer)
    ledger.keys.destroy(customer.id)
    return Erasure(customer_id=customer.id, cards=tuple(customer.cards), erased=True)
