"""Cards: active, blocked or replaced; only an active card earns or spends."""

from __future__ import annotations

import pytest

from loyalty.domain import ids
from loyalty.domain.card import Card, CardStatus
from loyalty.domain.errors import CardBlocked, CardReplaced, InvalidProgram


def test_a_card_issued_without_a_customer_is_its_own_anonymous_customer() -> None:
    card = Card.issue("C1")

    assert card.id == ids.card_id("C1")
    assert card.customer_id == ids.customer_id_for_card("C1")
    assert card.status is CardStatus.ACTIVE


def test_a_card_may_be_issued_to_a_known_customer() -> None:
    assert Card.issue("C1", ids.customer_id("crm-7")).customer_id == ids.customer_id("crm-7")


def test_a_card_code_is_trimmed_and_must_not_be_blank() -> None:
    assert Card.issue("  C1 ").code == "C1"
    with pytest.raises(InvalidProgram):
        Card.issue("   ")


def test_an_active_card_may_earn_and_spend() -> None:
    Card.issue("C1").check_can_move()


def test_a_blocked_card_cannot_earn_or_spend() -> None:
    card = Card.issue("C1")

    card.block("lost")

    with pytest.raises(CardBlocked):
        card.check_can_move()


def test_an_unblocked_card_earns_again() -> None:
    card = Card.issue("C1")
    card.block("lost")

    card.unblock("found")

    assert card.status is CardStatus.ACTIVE
    card.check_can_move()


def test_blocking_a_blocked_card_records_nothing() -> None:
    card = Card.issue("C1")
    card.block("lost")

    card.block("lost again")

    assert [type(e) for e in card.collect_events()] == [Card.Issued, Card.Blocked]


def test_unblocking_an_active_card_records_nothing() -> None:
    card = Card.issue("C1")

    card.unblock("by mistake")

    assert card.version == 1


def test_a_replaced_card_points_at_its_successor_and_cannot_move() -> None:
    old, new = Card.issue("C1"), Card.issue("C2", ids.customer_id_for_card("C1"))

    old.replace_with(new)

    assert (old.status, old.successor) == (CardStatus.REPLACED, "C2")
    with pytest.raises(CardReplaced) as refused:
        old.check_can_move()
    assert refused.value.context["successor"] == "C2"


def test_a_blocked_card_can_still_be_replaced() -> None:
    old, new = Card.issue("C1"), Card.issue("C2", ids.customer_id_for_card("C1"))
    old.block("stolen")

    old.replace_with(new)

    assert old.status is CardStatus.REPLACED


def test_replacement_is_final() -> None:
    customer = ids.customer_id("crm-7")
    old, new, newer = (Card.issue(code, customer) for code in ("C1", "C2", "C3"))
    old.replace_with(new)

    with pytest.raises(CardReplaced):
        old.replace_with(newer)
    with pytest.raises(CardReplaced):
        old.block("lost")
    old.unblock("no effect")
    assert old.status is CardStatus.REPLACED


def test_a_card_is_replaced_only_by_another_card_of_the_same_customer() -> None:
    card = Card.issue("C1")

    with pytest.raises(InvalidProgram):
        card.replace_with(Card.issue("C2"))
    with pytest.raises(InvalidProgram):
        card.replace_with(Card.issue("C1"))
    assert card.status is CardStatus.ACTIVE


def test_a_card_is_not_replaced_by_a_blocked_or_replaced_card() -> None:
    customer = ids.customer_id("crm-7")
    card, blocked = Card.issue("C1", customer), Card.issue("C2", customer)
    blocked.block("lost")

    with pytest.raises(CardBlocked):
        card.replace_with(blocked)
    assert card.status is CardStatus.ACTIVE
