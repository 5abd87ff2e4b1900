"""Customers: a profile, cards, and the facts cluster criteria may ask about."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
import pytest

from loyalty.domain import ids
from loyalty.domain.card import CardStatus
from loyalty.domain.customer import ANONYMOUS, Customer, CustomerFacts, Profile
from loyalty.domain.errors import InvalidProgram

SIGNED_UP = date(2026, 6, 1)


def anna(**fields: Any) -> Profile:
    return Profile(first_name="Anna", last_name="Rossi", **fields)


def register(profile: Profile | None = None, cards: tuple[str, ...] = ("C1",)) -> Customer:
    return Customer.register(
        customer_id=ids.customer_id_for_card("C1"),
        profile=profile or anna(),
        signed_up_on=SIGNED_UP,
        cards=cards,
    )


def test_registering_an_anonymous_card_keeps_its_customer_id() -> None:
    customer = register()

    assert customer.id == ids.customer_id_for_card("C1")
    assert (customer.cards, customer.signed_up_on) == (["C1"], SIGNED_UP)


@pytest.mark.parametrize("profile", [Profile(), Profile(first_name=" ", last_name="")])
def test_a_registration_needs_a_first_or_last_name(profile: Profile) -> None:
    with pytest.raises(InvalidProgram):
        register(profile)


def test_a_last_name_alone_is_enough_to_register() -> None:
    assert register(Profile(last_name="Rossi")).profile.last_name == "Rossi"


def test_completing_the_profile_replaces_it() -> None:
    customer = register()

    customer.complete_profile(anna(city="Milano"))

    assert customer.profile.city == "Milano"
    assert isinstance(customer.collect_events()[-1], Customer.ProfileCompleted)


def test_completing_the_profile_cannot_blank_the_name() -> None:
    customer = register()

    with pytest.raises(InvalidProgram):
        customer.complete_profile(Profile(city="Milano"))
    assert (customer.profile, customer.version) == (anna(), 1)


def test_completing_with_the_same_profile_records_nothing() -> None:
    customer = register()

    customer.complete_profile(anna())

    assert customer.version == 1


def test_attaching_a_card_twice_records_it_once() -> None:
    customer = register()

    customer.attach_card("C2")
    customer.attach_card("C2")

    assert customer.cards == ["C1", "C2"]
    assert customer.version == 2


def test_facts_carry_what_criteria_may_ask_and_nothing_else() -> None:
    customer = register(
        anna(
            birth_date=date(1990, 5, 17),
            gender="F",
            city="Milano",
            postal_code="20121",
            email="anna@example.com",
        )
    )

    facts = customer.facts(CardStatus.BLOCKED)

    assert facts == CustomerFacts(
        registered=True,
        birth_date=date(1990, 5, 17),
        gender="F",
        city="Milano",
        postal_code="20121",
        signed_up_on=SIGNED_UP,
        card_status=CardStatus.BLOCKED,
    )


def test_an_anonymous_customer_is_not_registered_and_has_an_active_card() -> None:
    assert (ANONYMOUS.registered, ANONYMOUS.card_status) == (False, CardStatus.ACTIVE)
    assert ANONYMOUS.birth_date is None and ANONYMOUS.city is None


def test_a_profile_with_an_unknown_field_cannot_be_decoded() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"first_name": "Anna", "tax_code": "X"}', type=Profile)


def test_a_customer_starts_without_a_home_store_and_records_only_a_change() -> None:
    customer = register()
    assert customer.home_store is None

    customer.set_home_store("s1", by="operator:mia")
    customer.set_home_store("s1", by="operator:mia")
    customer.set_home_store("s2", by="operator:mia")

    moves = [e for e in customer.pending_events if isinstance(e, Customer.HomeStoreSet)]
    assert [(e.store, e.by) for e in moves] == [("s1", "operator:mia"), ("s2", "operator:mia")]
    assert customer.home_store == "s2"
