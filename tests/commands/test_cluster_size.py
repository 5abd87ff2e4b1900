"""Counting a cluster's members by a scan of the event store, a page of customers at a
time, judged by the rule engine's own criteria."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.bootstrap import Services
from loyalty.commands.admin import block_card, replace_card
from loyalty.commands.apply import CustomerSpec
from loyalty.commands.cluster_size import count_members, registered_customer_pages
from loyalty.domain import ids
from loyalty.domain.card import CardStatus
from loyalty.domain.cluster import CardStatusIs, City, PurchaseCount
from loyalty.domain.customer import Profile
from tests.builders import Clock, line, program, purchase

TODAY = date(2026, 6, 1)
CLUB = [ids.campaign_id("club")]


def customer(n: int, city: str) -> CustomerSpec:
    return CustomerSpec(
        cards=(f"K{n}",), profile=Profile(first_name=f"N{n}", city=city), signed_up_on=TODAY
    )


@pytest.fixture
def five(services: Services, clock: Clock) -> Services:
    """Five customers, K0..K4; the even ones live in Milano; K0 and K1 bought once."""
    people = tuple(customer(n, "Milano" if n % 2 == 0 else "Roma") for n in range(5))
    services.applier.apply(program(customers=people, cards=()))
    clock.advance(hours=2)
    services.desk.post([purchase(f"p{n}", line("TV", "9.00"), card=f"K{n}") for n in (0, 1)])
    return services


def test_customers_are_read_a_page_at_a_time_and_each_once(five: Services) -> None:
    pages = list(registered_customer_pages(five.ledger, 2))

    assert [len(page) for page in pages] == [2, 2, 1]
    assert len({c for page in pages for c in page}) == 5


@pytest.mark.parametrize("batch", [1, 2, 500])
def test_the_count_does_not_depend_on_the_page_size(five: Services, batch: int) -> None:
    assert count_members(five.ledger, City(values=("Milano",)), TODAY, CLUB, batch) == (5, 3)
    assert count_members(five.ledger, PurchaseCount(min=1), TODAY, CLUB, batch) == (5, 2)


def test_a_customer_is_active_while_any_of_their_cards_is(five: Services) -> None:
    blocked = CardStatusIs(values=(CardStatus.BLOCKED,))
    block_card(five.ledger, "K0", "lost")
    replace_card(five.ledger, "K1", "K1-new")

    assert count_members(five.ledger, blocked, TODAY, CLUB) == (5, 1)
    assert count_members(five.ledger, CardStatusIs(values=(CardStatus.ACTIVE,)), TODAY, CLUB) == (
        5,
        4,
    )


def test_without_criteria_nobody_is_in(five: Services) -> None:
    assert count_members(five.ledger, None, TODAY, CLUB) == (5, 0)
