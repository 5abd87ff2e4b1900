"""check_movement: content no rule could make sense of is refused before the engine runs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec
import pytest

from loyalty.domain.errors import InvalidMovement
from loyalty.domain.movement import Line, Movement, MovementType, check_movement
from tests.builders import line, movement, store_location


def bad_line(**fields: str) -> Line:
    """A one-unit line of 5.00 with some fields replaced."""
    values = {"sku": "A", "quantity": "1", "unit_price": "5.00", "amount": "5.00", **fields}
    return Line(
        sku=values["sku"],
        department="grocery",
        quantity=Decimal(values["quantity"]),
        unit_price=Decimal(values["unit_price"]),
        amount=Decimal(values["amount"]),
    )


def redemption(points: str, *lines: Line, currency: str = "PTS") -> Movement:
    return movement(
        "r1", *lines, type=MovementType.PRIZE_REDEMPTION, amount=Decimal(points), currency=currency
    )


def refusal(subject: Movement) -> str:
    """The field check_movement blames."""
    with pytest.raises(InvalidMovement) as refused:
        check_movement(subject)
    return str(refused.value.context["field"])


def test_a_purchase_whose_lines_add_up_to_its_amount_is_accepted() -> None:
    check_movement(movement("m1", line("A", "2.50"), line("B", "7.49", quantity="3")))


def test_a_purchase_whose_lines_do_not_add_up_to_its_amount_is_refused() -> None:
    subject = movement("m1", line("A", "2.50"), line("B", "7.50"), amount=Decimal("10.01"))

    assert refusal(subject) == "amount"


def test_a_purchase_needs_lines() -> None:
    assert refusal(movement("m1", amount=Decimal("10.00"))) == "lines"


def test_a_movement_needs_an_id() -> None:
    assert refusal(movement("  ", line("A", "1.00"))) == "movement_id"


def test_a_movement_time_needs_a_utc_offset() -> None:
    subject = movement("m1", line("A", "1.00"), at=datetime(2026, 6, 3, 10, 0))

    assert refusal(subject) == "occurred_at"


def test_a_negative_amount_is_refused() -> None:
    subject = movement("m1", type=MovementType.REGISTRATION, amount=Decimal("-1.00"))

    assert refusal(subject) == "amount"


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_an_amount_that_is_not_a_number_is_refused_as_invalid(value: str) -> None:
    subject = movement("m1", type=MovementType.REGISTRATION, amount=Decimal(value))

    assert refusal(subject) == "amount"


def test_money_has_at_most_two_decimal_places() -> None:
    subject = movement("m1", bad_line(amount="5.005", unit_price="5.005"))

    assert refusal(subject) == "lines[0].unit_price"


@pytest.mark.parametrize("quantity", ["-1", "0", "NaN"])
def test_a_line_quantity_must_be_positive(quantity: str) -> None:
    subject = movement("m1", line("A", "1.00"), bad_line(quantity=quantity))

    assert refusal(subject) == "lines[1].quantity"


@pytest.mark.parametrize("name", ["unit_price", "amount"])
def test_a_line_price_or_amount_must_not_be_negative(name: str) -> None:
    subject = movement("m1", line("A", "6.00"), bad_line(**{name: "-1.00"}), amount=Decimal(0))

    assert refusal(subject) == f"lines[1].{name}"


def test_a_line_needs_a_sku() -> None:
    assert refusal(movement("m1", bad_line(sku=" "))) == "lines[0].sku"


def test_a_free_line_is_accepted() -> None:
    check_movement(movement("m1", line("A", "3.00"), bad_line(unit_price="0", amount="0")))


def test_a_return_names_the_movement_it_returns() -> None:
    subject = movement("x1", line("A", "1.00"), type=MovementType.RETURN)

    assert refusal(subject) == "original_movement_id"


def test_a_return_with_its_original_is_accepted() -> None:
    check_movement(
        movement("x1", line("A", "1.00"), type=MovementType.RETURN, original_movement_id="m1")
    )


def test_a_return_lines_must_add_up_too() -> None:
    subject = movement(
        "x1",
        line("A", "1.00"),
        type=MovementType.RETURN,
        original_movement_id="m1",
        amount=Decimal("2.00"),
    )

    assert refusal(subject) == "amount"


def test_a_registration_needs_no_lines() -> None:
    check_movement(movement("g1", type=MovementType.REGISTRATION))


def test_a_prize_redemption_spends_a_whole_number_of_points() -> None:
    check_movement(redemption("150"))

    assert refusal(redemption("150.5")) == "amount"
    assert refusal(redemption("0")) == "amount"


def test_a_prize_redemption_is_paid_in_points() -> None:
    assert refusal(redemption("150", currency="EUR")) == "currency"


def test_a_prize_redemption_lines_add_up_to_its_points() -> None:
    mug = bad_line(sku="MUG", unit_price="100", amount="100")

    check_movement(redemption("100", mug))
    assert refusal(redemption("150", mug)) == "amount"


def test_a_location_names_its_terminal_and_its_store() -> None:
    location = store_location("chain", "north", "s1", "t1")

    assert (location.store, location.terminal) == ("s1", "t1")


def test_a_line_with_an_unknown_field_cannot_be_decoded() -> None:
    raw = (
        b'{"sku":"A","department":"d","quantity":"1","unit_price":"1","amount":"1","discount":"1"}'
    )

    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=Line)


def test_an_adjustment_may_take_credits_back_to_the_cent() -> None:
    check_movement(movement("a1", type=MovementType.ADJUSTMENT, credits=Decimal("-2.50")))


@pytest.mark.parametrize("credits", ["0.005", "NaN", "Infinity"])
def test_adjusted_credits_are_a_finite_amount_to_the_cent(credits: str) -> None:
    subject = movement("a1", type=MovementType.ADJUSTMENT, credits=Decimal(credits))

    assert refusal(subject) == "credits"
