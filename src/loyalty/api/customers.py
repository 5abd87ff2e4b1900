"""Customer API, for a customer-facing app (its backend, with a key of the Customer
family) and the chain's staff: register a card's holder, read and complete the profile,
record consents, move the home store, and read balances and the movement history,
addressed by card code.

Scope: admins, managers and unscoped clients reach every card. A scoped caller (store or
distributor manager, scoped client) reaches only the cards of customers whose home store
lies in its scope, registers customers only with such a home store, and gets ``404
unknown_card`` for any other card, exactly as for a card that does not exist."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

import msgspec
from litestar import Controller, Request, get, patch, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import (
    Action,
    actor,
    caller,
    check_in_scope,
    covers,
    covers_everywhere,
    requires,
)
from loyalty.api.i18n import request_messages
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.admin import load_card
from loyalty.commands.consents import (
    ConsentChange,
    ContactMade,
    consent_from,
    contact_from,
    current_consents,
    record_contact,
)
from loyalty.commands.customers import (
    accounts_of,
    complete_profile,
    customer_of,
    history,
    move_home_store,
    record_consent,
    register,
)
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import MovementDesk, balance_of, receipt_transactions
from loyalty.commands.operators import network_of
from loyalty.commands.schemas import Balance, Key, ReceiptTransaction
from loyalty.domain.account import Account
from loyalty.domain.card import Card, CardStatus
from loyalty.domain.consent import Consent, Contact
from loyalty.domain.customer import Customer, Profile
from loyalty.domain.errors import Forbidden, UnknownCampaign, UnknownCard
from loyalty.domain.movement import CENT, MovementType


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    card: str
    card_status: CardStatus
    cards: tuple[str, ...]
    signed_up_on: date
    home_store: str | None
    profile: Profile


class Registration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    card: Key
    profile: Profile
    signed_up_on: date | None = None
    """Default: today (UTC)."""
    home_store: Key | None = None
    """The store the customer belongs to; required of scoped callers (in their scope)."""


class HomeStore(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    store: Key


class CampaignBalance(msgspec.Struct, frozen=True, kw_only=True):
    campaign: str
    balance: Balance


class HistoryItem(msgspec.Struct, frozen=True, kw_only=True):
    movement_id: str
    type: MovementType
    type_name: str
    """The type's name in the request's language."""
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
        home_store=customer.home_store,
        profile=customer.profile,
    )


def card_in_scope(request: Request[object, object, State], code: str) -> Card:
    """The card, if the caller's scope reaches its holder's home store (else not found)."""
    ledger = ledger_of(request)
    card = load_card(ledger, code)
    session, network = caller(request), network_of(ledger)
    if covers_everywhere(session, network):
        return card
    customer = ledger.load_all([card.customer_id]).get(card.customer_id)
    home = customer.home_store if isinstance(customer, Customer) else None
    if home is None or home not in network.nodes or not covers(session, network, home):
        raise UnknownCard(f"no card has the code {code!r}", card=code)
    return card


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
        network = network_of(desk.ledger)
        if not covers_everywhere(caller(request), network):
            if data.home_store is None:
                raise Forbidden("name the customer's home store, a store of your scope")
            check_in_scope(caller(request), network, network.node(data.home_store).code)
        customer = register(
            ledger_of(request),
            data.card,
            data.profile,
            signed_up_on,
            data.home_store,
            actor(request),
        )
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
        found = card_in_scope(request, card)
        return view(card, found.status, customer_of(ledger_of(request), found))

    @put(
        "/{card:str}/home-store",
        operation_id="moveHomeStore",
        summary="Make another store the customer's home store (both in the caller's scope)",
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CUSTOMERS)],
    )
    def move_home_store(
        self,
        request: Request[object, object, State],
        card: FromPath[str],
        data: JSONBody[HomeStore],
    ) -> CustomerView:
        found = card_in_scope(request, card)
        network = network_of(ledger_of(request))
        check_in_scope(caller(request), network, network.node(data.store).code)
        customer = move_home_store(ledger_of(request), card, data.store, actor(request))
        return view(card, found.status, customer)

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
        found = card_in_scope(request, card)
        customer = complete_profile(ledger_of(request), card, data)
        return view(card, found.status, customer)

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
        card_in_scope(request, card)
        consent = consent_from(ledger_of(request), data, desk.clock(), actor(request))
        return list(record_consent(ledger_of(request), card, consent).consents)

    @get(
        "/{card:str}/consents/current",
        operation_id="currentConsents",
        summary="The consent state now: the last decision per purpose and channel",
        sync_to_thread=True,
        guards=[requires(Action.READ_CUSTOMERS)],
    )
    def current(
        self, request: Request[object, object, State], card: FromPath[str]
    ) -> list[Consent]:
        found = card_in_scope(request, card)
        return current_consents(customer_of(ledger_of(request), found))

    @post(
        "/{card:str}/contacts",
        operation_id="recordContact",
        summary="Record a message sent to the customer (purpose, channel, reference)",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CUSTOMERS)],
    )
    def contact(
        self,
        request: Request[object, object, State],
        card: FromPath[str],
        data: JSONBody[ContactMade],
    ) -> list[Contact]:
        desk: MovementDesk = request.app.state.services.desk
        card_in_scope(request, card)
        customer = record_contact(ledger_of(request), card, contact_from(data, desk.clock()))
        return list(customer.contacts)

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
        found = card_in_scope(request, card)
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
        found = card_in_scope(request, card)
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
        found = card_in_scope(request, card)
        program = desk.program.current()
        ((_, account),) = accounts_of(ledger_of(request), found, [program.campaigns[chosen.id]])
        _, names = request_messages(request)
        events = history(ledger_of(request), account) if account else []
        items = [item_of(e, names) for e in events]
        return page_of(items, limit, offset, sort, ("occurred_at", "amount", "type"))


def item_of(event: Account.MovementRecorded, names: Mapping[str, str]) -> HistoryItem:
    """A movement of the history; ``names``: the catalog giving its type's name."""
    movement = event.movement
    return HistoryItem(
        movement_id=movement.movement_id,
        type=movement.type,
        type_name=names.get(f"movement_type_{movement.type}", movement.type),
        occurred_at=movement.occurred_at,
        amount=movement.amount,
        currency=movement.currency,
        transactions=receipt_transactions(event.derivation),
        balance_after=Balance(
            points=event.points_after, credits=event.credits_after.quantize(CENT)
        ),
    )
