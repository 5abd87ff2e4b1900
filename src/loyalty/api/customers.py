"""Customer API, for a customer-facing app (its backend, with a key of the Customer
family): register a card's holder, read and complete the profile, record consents, and
read balances and the movement history, addressed by card code.

Customers have no home store yet, so store and distributor managers cannot use this API
(403): only admins, managers and Customer-family clients."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import Action, caller, requires
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.admin import load_card
from loyalty.commands.customers import (
    accounts_of,
    complete_profile,
    customer_of,
    history,
    record_consent,
    register,
)
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import MovementDesk, balance_of, receipt_transactions
from loyalty.commands.schemas import Balance, Key, ReceiptTransaction
from loyalty.domain.account import Account
from loyalty.domain.card import CardStatus
from loyalty.domain.customer import Consent, Customer, Profile
from loyalty.domain.errors import UnknownCampaign
from loyalty.domain.movement import CENT, MovementType

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    card: str
    card_status: CardStatus
    cards: tuple[str, ...]
    signed_up_on: date
    profile: Profile


class Registration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    card: Key
    profile: Profile
    signed_up_on: date | None = None
    """Default: today (UTC)."""


class ConsentChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    purpose: Text
    channel: Text
    granted: bool
    source: Text
    """Who collected it: the app, a store's till, an operator."""


class CampaignBalance(msgspec.Struct, frozen=True, kw_only=True):
    campaign: str
    balance: Balance


class HistoryItem(msgspec.Struct, frozen=True, kw_only=True):
    movement_id: str
    type: MovementType
    occurred_at: datetime
    amount: Decimal
    currency: str
    transactions: tuple[ReceiptTransaction, ...]
    balance_after: Balance


def ledger_of(request: Request[object, object, State]) -> Ledger:
    ledger: Ledger = request.app.state.services.ledger
    return ledger


def view(card: str, status: CardStatus, customer: Customer) -> CustomerView:
    return CustomerView(
        card=card,
        card_status=status,
        cards=tuple(customer.cards),
        signed_up_on=customer.signed_up_on,
        profile=customer.profile,
    )


class CustomersController(Controller):
    path = "/api/v1/customers"
    tags = ("Customer",)

    @post(
        operation_id="registerCustomer",
        summary="Register the holder of a card (what the card earned stays theirs)",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CUSTOMERS)],
    )
    def register(
        self, request: Request[object, object, State], data: JSONBody[Registration]
    ) -> CustomerView:
        desk: MovementDesk = request.app.state.services.desk
        signed_up_on = data.signed_up_on or desk.clock().date()
        customer = register(ledger_of(request), data.card, data.profile, signed_up_on)
        card = load_card(ledger_of(request), data.card)
        return view(data.card, card.status, customer)

    @get(
        "/{card:str}",
        operation_id="getCustomer",
        summary="The holder of a card: profile and cards",
        sync_to_thread=True,
        guards=[requires(Action.READ_CUSTOMERS)],
    )
    def get_customer(
        self, request: Request[object, object, State], card: FromPath[str]
    ) -> CustomerView:
        found = load_card(ledger_of(request), card)
        return view(card, found.status, customer_of(ledger_of(request), found))

    @patch(
        "/{card:str}/profile",
        operation_id="completeProfile",
        summary="Replace the profile (a first or last name stays required)",
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CUSTOMERS)],
    )
    def complete(
        self, request: Request[object, object, State], card: FromPath[str], data: JSONBody[Profile]
    ) -> CustomerView:
        customer = complete_profile(ledger_of(request), card, data)
        return view(card, load_card(ledger_of(request), card).status, customer)

    @post(
        "/{card:str}/consents",
        operation_id="recordConsent",
        summary="Record a consent given or withdrawn, with its channel and source",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CUSTOMERS)],
    )
    def consent(
        self,
        request: Request[object, object, State],
        card: FromPath[str],
        data: JSONBody[ConsentChange],
    ) -> list[Consent]:
        desk: MovementDesk = request.app.state.services.desk
        consent = Consent(
            purpose=data.purpose,
            channel=data.channel,
            granted=data.granted,
            at=desk.clock(),
            source=f"{data.source} ({caller(request).username})",
        )
        return list(record_consent(ledger_of(request), card, consent).consents)

    @get(
        "/{card:str}/consents",
        operation_id="listConsents",
        summary="Every consent recorded, oldest first",
        sync_to_thread=True,
        guards=[requires(Action.READ_CUSTOMERS)],
    )
    def consents(
        self, request: Request[object, object, State], card: FromPath[str]
    ) -> list[Consent]:
        found = load_card(ledger_of(request), card)
        return list(customer_of(ledger_of(request), found).consents)

    @get(
        "/{card:str}/balances",
        operation_id="getBalances",
        summary="The balance in every campaign",
        sync_to_thread=True,
        guards=[requires(Action.READ_CUSTOMERS)],
    )
    def balances(
        self, request: Request[object, object, State], card: FromPath[str]
    ) -> list[CampaignBalance]:
        desk: MovementDesk = request.app.state.services.desk
        campaigns = sorted(desk.program.current().campaigns.values(), key=lambda c: c.code)
        found = load_card(ledger_of(request), card)
        return [
            CampaignBalance(campaign=c.code, balance=balance_of(account))
            for c, account in accounts_of(ledger_of(request), found, campaigns)
        ]

    @get(
        "/{card:str}/movements",
        operation_id="getMovementHistory",
        summary="The movements of a campaign, newest first, by page",
        sync_to_thread=True,
        guards=[requires(Action.READ_CUSTOMERS)],
    )
    def movements(
        self,
        request: Request[object, object, State],
        card: FromPath[str],
        campaign: FromQuery[str],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
    ) -> Page[HistoryItem]:
        desk: MovementDesk = request.app.state.services.desk
        chosen = desk.program.current().campaign_by_code(campaign)
        if chosen is None:
            raise UnknownCampaign(f"no campaign has the code {campaign!r}", field="campaign")
        found = load_card(ledger_of(request), card)
        program = desk.program.current()
        ((_, account),) = accounts_of(ledger_of(request), found, [program.campaigns[chosen.id]])
        items = [item_of(e) for e in history(ledger_of(request), account)] if account else []
        return page_of(items, limit, offset, sort, ("occurred_at", "amount", "type"))


def item_of(event: Account.MovementRecorded) -> HistoryItem:
    movement = event.movement
    return HistoryItem(
        movement_id=movement.movement_id,
        type=movement.type,
        occurred_at=movement.occurred_at,
        amount=movement.amount,
        currency=movement.currency,
        transactions=receipt_transactions(event.derivation),
        balance_after=Balance(
            points=event.points_after, credits=event.credits_after.quantize(CENT)
        ),
    )
