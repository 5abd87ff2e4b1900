"""Operators' commands on cards, customers and terminals: load, one domain call, save."""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from loyalty.commands.apply import key_digest
from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.card import Card
from loyalty.domain.customer import Customer
from loyalty.domain.errors import DuplicateCode, UnknownCard
from loyalty.domain.network import Network


def load_card(ledger: Ledger, code: str) -> Card:
    try:
        card: Aggregate = ledger.repository.get(ids.card_id(code))
    except AggregateNotFoundError:
        raise UnknownCard(f"no card has the code {code!r}", card=code) from None
    assert isinstance(card, Card)
    return card


def block_card(ledger: Ledger, code: str, reason: str) -> None:
    card = load_card(ledger, code)
    card.block(reason)
    ledger.save(card)


def unblock_card(ledger: Ledger, code: str, reason: str) -> None:
    card = load_card(ledger, code)
    card.unblock(reason)
    ledger.save(card)


def replace_card(ledger: Ledger, old_code: str, new_code: str) -> None:
    """Issues ``new_code`` to the same customer and retires ``old_code``: the balance follows."""
    old = load_card(ledger, old_code)
    if ledger.load_all([ids.card_id(new_code)]):
        raise DuplicateCode(f"card {new_code!r} already exists; a replacement must be new")
    new = Card.issue(new_code, old.customer_id)
    old.replace_with(new)
    to_save: list[Aggregate] = [old, new]
    try:
        customer: Aggregate | None = ledger.repository.get(old.customer_id)
    except AggregateNotFoundError:
        customer = None
    if isinstance(customer, Customer):
        customer.attach_card(new_code)
        to_save.append(customer)
    ledger.save(*to_save)


def issue_terminal_key(ledger: Ledger, terminal: str, key: str) -> None:
    network: Aggregate = ledger.repository.get(ids.NETWORK_ID)
    assert isinstance(network, Network)
    digest = key_digest(key)
    network.issue_terminal_key(terminal, digest[:12], digest)
    ledger.save(network)
