"""The Customer API's side of the ledger: registering a card's holder, completing the
profile, consents, and reading balances and the movement history of a card's customer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import cast

from loyalty.commands.admin import load_card
from loyalty.commands.ledger import Ledger
from loyalty.commands.operators import network_of
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.campaign import Campaign
from loyalty.domain.card import Card
from loyalty.domain.consent import Consent
from loyalty.domain.customer import Customer, Profile
from loyalty.domain.errors import ConflictError, UnknownCustomer


class AlreadyRegistered(ConflictError):
    code = "already_registered"


def customer_of(ledger: Ledger, card: Card) -> Customer:
    found = ledger.load_all([card.customer_id]).get(card.customer_id)
    if not isinstance(found, Customer):
        raise UnknownCustomer(f"card {card.code!r} is not registered", card=card.code)
    return found


def register(
    ledger: Ledger,
    code: str,
    profile: Profile,
    signed_up_on: date,
    home_store: str | None = None,
    by: str = "",
) -> Customer:
    """Registers the holder of an anonymous card; what it earned stays theirs."""
    card = load_card(ledger, code)
    if ledger.load_all([card.customer_id]):
        raise AlreadyRegistered(f"card {code!r} is already registered", card=code)
    customer = Customer.register(
        customer_id=card.customer_id, profile=profile, signed_up_on=signed_up_on, cards=(code,)
    )
    if home_store is not None:
        customer.set_home_store(network_of(ledger).store(home_store).code, by)
    ledger.save(customer)
    return customer


def move_home_store(ledger: Ledger, code: str, store: str, by: str) -> Customer:
    customer = customer_of(ledger, load_card(ledger, code))
    customer.set_home_store(network_of(ledger).store(store).code, by)
    ledger.save(customer)
    return customer


def complete_profile(ledger: Ledger, code: str, profile: Profile) -> Customer:
    customer = customer_of(ledger, load_card(ledger, code))
    customer.complete_profile(profile)
    ledger.save(customer)
    return customer


def record_consent(ledger: Ledger, code: str, consent: Consent) -> Customer:
    customer = customer_of(ledger, load_card(ledger, code))
    customer.record_consent(consent)
    ledger.save(customer)
    return customer


def accounts_of(
    ledger: Ledger, card: Card, campaigns: Sequence[Campaign]
) -> list[tuple[Campaign, Account | None]]:
    """Each campaign with the card's customer's account in it (``None``: never used)."""
    wanted = {ids.account_id(c.id, card.customer_id): c for c in campaigns}
    found = ledger.load_all(wanted)
    return [(c, cast(Account | None, found.get(account_id))) for account_id, c in wanted.items()]


def history(ledger: Ledger, account: Account) -> list[Account.MovementRecorded]:
    """The account's movements, newest first."""
    events = ledger.events.get(account.id)
    recorded = [e for e in events if isinstance(e, Account.MovementRecorded)]
    return list(reversed(recorded))
