"""Simulating a movement: what the rule engine would derive for a hypothetical basket at a
till, now or at a given time, for a card or for a new anonymous one. Nothing is written."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from loyalty.commands.movements import MovementDesk, balance_of, context_for, receipt_of
from loyalty.commands.schemas import Balance, Currency, Key, ReceiptTransaction
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.card import Card
from loyalty.domain.errors import InvalidMovement, UnknownCard
from loyalty.domain.movement import Line, Movement, MovementType, VersionRef, check_movement
from loyalty.rules.engine import derive
from loyalty.rules.schedule import local_time

SIMULATED_TYPES = (
    MovementType.PURCHASE,
    MovementType.REGISTRATION,
    MovementType.PROFILE_COMPLETION,
)
ANONYMOUS = "~simulation"


class SimulatedMovement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    terminal: Key
    type: MovementType = MovementType.PURCHASE
    occurred_at: datetime | None = None
    """Default: now."""
    card: Key | None = None
    """Default: a new anonymous card (no history, no cluster)."""
    amount: Decimal
    currency: Currency
    lines: Annotated[tuple[Line, ...], msgspec.Meta(max_length=1000)] = ()


class Simulation(msgspec.Struct, frozen=True, kw_only=True):
    transactions: tuple[ReceiptTransaction, ...]
    fired: tuple[VersionRef, ...]
    """The promotion versions that gave something."""
    balance_after: Balance
    receipt_messages: tuple[str, ...]


def simulate(desk: MovementDesk, command: SimulatedMovement) -> Simulation:
    if command.type not in SIMULATED_TYPES:
        raise InvalidMovement(
            "simulate purchases, registrations or profile completions", field="type"
        )
    program = desk.program.current()
    location = program.location(command.terminal)
    movement = Movement(
        movement_id="simulation",
        type=command.type,
        card=command.card or ANONYMOUS,
        occurred_at=command.occurred_at or desk.clock(),
        amount=command.amount,
        currency=command.currency,
        lines=command.lines,
        location=location,
        source=f"simulation:{command.terminal}",
    )
    check_movement(movement)
    desk.check_not_in_future(movement)
    campaign = program.campaign_at(
        location, local_time(movement.occurred_at, location.timezone).date()
    )
    card = existing_card(desk, command.card) if command.card else Card.issue(ANONYMOUS)
    card.check_can_move()
    account_id = ids.account_id(campaign.id, card.customer_id)
    aggregates = desk.ledger.load_all(
        [card.customer_id, account_id, *program.budgets.get(campaign.id, ())]
    )
    found = aggregates.get(account_id)
    account = (
        found
        if isinstance(found, Account)
        else Account(campaign_id=campaign.id, customer_id=card.customer_id)
    )
    derivation = derive(
        movement, context_for(program, campaign, movement, card, account, aggregates)
    )
    account.record(movement, derivation)
    receipt = receipt_of(movement, derivation, account)
    return Simulation(
        transactions=receipt.transactions,
        fired=derivation.fired,
        balance_after=balance_of(account),
        receipt_messages=receipt.receipt_messages,
    )


def existing_card(desk: MovementDesk, code: str) -> Card:
    found = desk.ledger.load_all([ids.card_id(code)]).get(ids.card_id(code))
    if not isinstance(found, Card):
        raise UnknownCard(f"no card has the code {code!r}", card=code)
    return found
