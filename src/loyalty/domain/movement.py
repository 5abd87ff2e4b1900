"""Movements (what a customer does) and the transactions derived from them.

A movement is an immutable fact posted by a till, an import or an operator. The rule
engine derives its transactions (points, credits, discounts, prizes); the pair is
recorded in one event on the customer's account, so a replay can prove the derivation.

Invariants checked by :func:`check_movement`:
- lines have positive quantities and non-negative prices and amounts;
- money has at most two decimal places; a purchase's lines add up to its amount;
- a return names the movement it returns; a prize redemption spends whole points;
- a redemption cancellation names the redemption and gives all of it back (no lines).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from loyalty.domain.errors import InvalidMovement

POINTS = "PTS"
CREDITS = "CREDITS"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal(1_000_000_000)
"""The largest amount, unit price or credit a movement may carry (and points, as a count)."""
MAX_QUANTITY = Decimal(1_000_000)
QUANTITY_STEP = Decimal("0.001")
MAX_KEY_LENGTH = 64
"""Quantities are counts or weights, to the gram."""


class MovementType(StrEnum):
    PURCHASE = "purchase"
    RETURN = "return"
    REGISTRATION = "registration"
    PROFILE_COMPLETION = "profile_completion"
    PRIZE_REDEMPTION = "prize_redemption"
    REDEMPTION_CANCELLATION = "redemption_cancellation"
    ADJUSTMENT = "adjustment"


class Line(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sku: Annotated[str, msgspec.Meta(max_length=64)]
    department: Annotated[str, msgspec.Meta(max_length=64)]
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


class Location(msgspec.Struct, frozen=True, kw_only=True):
    """Where a movement happened, as the network stood when it was recorded: the node codes
    from the root down to the terminal, and the store's time zone."""

    terminal_id: UUID
    store_id: UUID
    path: tuple[str, ...]
    timezone: str

    @property
    def terminal(self) -> str:
        return self.path[-1]

    @property
    def store(self) -> str:
        return self.path[-2]


class Movement(msgspec.Struct, frozen=True, kw_only=True):
    """A movement as the engine sees it and the ledger stores it."""

    movement_id: str
    type: MovementType
    card: str
    occurred_at: datetime
    amount: Decimal
    currency: str
    lines: tuple[Line, ...] = ()
    location: Location | None = None
    original_movement_id: str | None = None
    points: int = 0
    credits: Decimal = Decimal(0)
    reason: str | None = None
    source: str = ""


class TransactionKind(StrEnum):
    POINTS = "points"
    CREDITS = "credits"
    DISCOUNT = "discount"
    PRIZE = "prize"


class Transaction(msgspec.Struct, frozen=True, kw_only=True):
    """One benefit of a movement. ``allocation`` splits ``amount`` over the movement's lines
    (it sums to ``amount``), so that a later return can reverse exactly what its lines earned."""

    kind: TransactionKind
    amount: Decimal
    currency: str
    promotion: str | None = None
    promotion_version: int | None = None
    allocation: tuple[Decimal, ...] = ()


class VersionRef(msgspec.Struct, frozen=True, kw_only=True):
    """Which version of a promotion or cluster took part in a derivation."""

    id: UUID
    code: str
    version: int


class UsageDelta(msgspec.Struct, frozen=True, kw_only=True):
    """Points and uses a promotion consumed against a cap bucket (``period``)."""

    promotion_id: UUID
    period: str
    points: int
    uses: int


class ReturnOf(msgspec.Struct, frozen=True, kw_only=True):
    """The movement a return gives back, and how much of each of its lines is now returned."""

    terminal: str
    movement_id: str
    account_version: int
    returned: tuple[Decimal, ...]


class Derivation(msgspec.Struct, frozen=True, kw_only=True):
    """What the rule engine derived from a movement, with the evidence to replay it."""

    transactions: tuple[Transaction, ...]
    fired: tuple[VersionRef, ...] = ()
    clusters: tuple[VersionRef, ...] = ()
    points_delta: int = 0
    credits_delta: Decimal = Decimal(0)
    usage: tuple[UsageDelta, ...] = ()
    budgets: tuple[UsageDelta, ...] = ()
    local_date: date | None = None
    return_of: ReturnOf | None = None
    unrecovered_points: int = 0
    receipt_messages: tuple[str, ...] = ()
    input_digest: str = ""


def has_cents_at_most(value: Decimal) -> bool:
    """Finite, within ``MAX_AMOUNT`` either way, and to the cent."""
    if not value.is_finite() or abs(value) > MAX_AMOUNT:
        return False
    return value == value.quantize(CENT)


def check_amount(value: Decimal, field: str, name: str) -> None:
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise InvalidMovement(f"{name} must be between 0 and {MAX_AMOUNT:,}", field=field)
    if not has_cents_at_most(value):
        raise InvalidMovement(f"{name} has more than two decimal places", field=field)


def check_movement(movement: Movement) -> None:
    """Refuses content no rule could make sense of; raises :class:`InvalidMovement`."""
    if not movement.movement_id.strip():
        raise InvalidMovement("movement_id must not be empty", field="movement_id")
    if movement.occurred_at.tzinfo is None:
        raise InvalidMovement("occurred_at needs a UTC offset", field="occurred_at")
    if not movement.amount.is_finite() or movement.amount < 0 or movement.amount > MAX_AMOUNT:
        raise InvalidMovement(f"amount must be between 0 and {MAX_AMOUNT:,}", field="amount")
    if not has_cents_at_most(movement.credits):
        raise InvalidMovement(
            f"credits must be to the cent and within {MAX_AMOUNT:,} either way", field="credits"
        )
    if abs(movement.points) > MAX_AMOUNT:
        raise InvalidMovement(f"points must be within {MAX_AMOUNT:,} either way", field="points")
    for index, line in enumerate(movement.lines):
        check_line(line, index)
    if movement.type is MovementType.PRIZE_REDEMPTION:
        check_prize_redemption(movement)
    elif movement.type is MovementType.REDEMPTION_CANCELLATION:
        check_cancellation(movement)
    else:
        if not has_cents_at_most(movement.amount):
            raise InvalidMovement("amount has more than two decimal places", field="amount")
        if movement.type in (MovementType.PURCHASE, MovementType.RETURN):
            check_lines_add_up(movement)
    if movement.type in REFERS_TO_ORIGINAL and not movement.original_movement_id:
        raise InvalidMovement(
            f"a {movement.type} needs original_movement_id", field="original_movement_id"
        )
    if len(movement.original_movement_id or "") > MAX_KEY_LENGTH:
        raise InvalidMovement(
            f"original_movement_id is longer than {MAX_KEY_LENGTH} characters",
            field="original_movement_id",
        )


def check_line(line: Line, index: int) -> None:
    field = f"lines[{index}]"
    if not line.sku.strip():
        raise InvalidMovement("a line needs a sku", field=f"{field}.sku")
    quantity = line.quantity
    if not (quantity.is_finite() and 0 < quantity <= MAX_QUANTITY):
        raise InvalidMovement(
            f"line quantity must be positive and at most {MAX_QUANTITY:,}",
            field=f"{field}.quantity",
        )
    if quantity != quantity.quantize(QUANTITY_STEP):
        raise InvalidMovement(
            "line quantity has more than three decimal places", field=f"{field}.quantity"
        )
    check_amount(line.unit_price, f"{field}.unit_price", "line unit_price")
    check_amount(line.amount, f"{field}.amount", "line amount")


def check_lines_add_up(movement: Movement) -> None:
    if not movement.lines:
        raise InvalidMovement(f"a {movement.type} needs lines", field="lines")
    total = sum((line.amount for line in movement.lines), Decimal(0))
    if total != movement.amount:
        raise InvalidMovement(
            f"lines add up to {total}, not to the amount {movement.amount}",
            field="amount",
        )


REFERS_TO_ORIGINAL = (MovementType.RETURN, MovementType.REDEMPTION_CANCELLATION)


def check_cancellation(movement: Movement) -> None:
    if movement.lines or movement.amount:
        raise InvalidMovement(
            "a redemption cancellation gives back the whole redemption: no lines, amount 0",
            field="lines" if movement.lines else "amount",
        )


def check_prize_redemption(movement: Movement) -> None:
    if movement.currency != POINTS:
        raise InvalidMovement(
            f"a prize redemption is paid in points: currency must be {POINTS}",
            field="currency",
        )
    if movement.amount != movement.amount.to_integral_value() or movement.amount <= 0:
        raise InvalidMovement(
            "a prize redemption spends a positive whole number of points", field="amount"
        )
    if movement.lines:
        total = sum((line.amount for line in movement.lines), Decimal(0))
        if total != movement.amount:
            raise InvalidMovement(
                f"prize lines add up to {total}, not to the amount {movement.amount}",
                field="amount",
            )
