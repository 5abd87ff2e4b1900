"""Promotions: the rules of a campaign, in four steps (WHO, WHEN, WHERE, WHAT).

Invariants:
- a promotion belongs to one campaign and has a code unique among promotions;
- every change is a new version that takes effect from now on (never in the past);
- terms are well formed (:func:`check_terms`): at least one benefit, percentages in
  (0, 100], multipliers above 1, amounts and caps positive, sane dates and hours.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidProgram
from loyalty.domain.movement import MovementType
from loyalty.domain.versioning import Version, check_effective_from, version_in_force


class Rounding(StrEnum):
    FLOOR = "floor"
    HALF_UP = "half_up"
    CEILING = "ceiling"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    EVER = "ever"


class FixedPoints(
    msgspec.Struct,
    tag="fixed_points",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    points: int


class PointsPerAmount(
    msgspec.Struct,
    tag="points_per_amount",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """``points`` for every ``per`` of eligible spend, rounded once on the movement total."""

    points: int = 1
    per: Decimal = Decimal(1)
    rounding: Rounding = Rounding.FLOOR
    skus: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()


class PointsPerUnit(
    msgspec.Struct,
    tag="points_per_unit",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """``points`` for every whole unit bought of the named products or departments."""

    points: int
    skus: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()


class Multiplier(
    msgspec.Struct,
    tag="multiplier",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """Multiplies the points the other promotions of the movement earned (floor)."""

    factor: Decimal


class FixedCredits(
    msgspec.Struct,
    tag="fixed_credits",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    amount: Decimal


class PercentCredits(
    msgspec.Struct,
    tag="percent_credits",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    percent: Decimal
    skus: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()


class PercentDiscount(
    msgspec.Struct,
    tag="percent_discount",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    """A discount the till applies: ``percent`` of the eligible lines, to the cent (half up)."""

    percent: Decimal
    skus: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()


class FixedDiscount(
    msgspec.Struct,
    tag="fixed_discount",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    amount: Decimal


class PrizeAward(
    msgspec.Struct,
    tag="prize",
    tag_field="kind",
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
):
    prize: str
    quantity: int = 1


Benefit = (
    FixedPoints
    | PointsPerAmount
    | PointsPerUnit
    | Multiplier
    | FixedCredits
    | PercentCredits
    | PercentDiscount
    | FixedDiscount
    | PrizeAward
)


class HourRange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Local time of day, ``start`` included, ``end`` excluded; an ``end`` of 00:00 is midnight."""

    start: time
    end: time


class When(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Local dates (inclusive), ISO weekdays (1 = Monday) and hours, in the store's zone."""

    starts_on: date | None = None
    ends_on: date | None = None
    weekdays: tuple[int, ...] = ()
    hours: tuple[HourRange, ...] = ()


class Where(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Movement types, and network node codes (each covers its subtree; none = everywhere)."""

    movement_types: tuple[MovementType, ...] = (MovementType.PURCHASE,)
    nodes: tuple[str, ...] = ()


class PeriodCap(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    period: Period
    points: int | None = None
    uses: int | None = None


class BudgetCap(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    points: int | None = None
    uses: int | None = None


class Caps(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    per_movement_points: int | None = None
    per_customer: PeriodCap | None = None
    budget: BudgetCap | None = None


class PromotionTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One version of a promotion. ``cluster`` is WHO (a cluster code; none = everyone);
    ``min_spend`` is a threshold on the movement amount."""

    name: str
    benefits: tuple[Benefit, ...]
    cluster: str | None = None
    when: When = When()
    where: Where = Where()
    min_spend: Decimal | None = None
    priority: int = 0
    exclusive: bool = False
    caps: Caps = Caps()
    active: bool = True
    receipt_message: str | None = None

    @property
    def has_budget(self) -> bool:
        return self.caps.budget is not None


PromotionVersion = Version[PromotionTerms]


class Promotion(Aggregate):
    class Created(Aggregate.Created):
        campaign_id: UUID
        code: str
        terms: PromotionTerms
        effective_from: datetime

    class Versioned(Aggregate.Event):
        terms: PromotionTerms
        effective_from: datetime

    @staticmethod
    def create_id(code: str) -> UUID:
        return ids.promotion_id(code)

    @classmethod
    def create(
        cls,
        *,
        campaign_id: UUID,
        code: str,
        terms: PromotionTerms,
        effective_from: datetime,
        now: datetime,
    ) -> Promotion:
        check_terms(terms)
        check_effective_from((), effective_from, now)
        return cls(campaign_id=campaign_id, code=code, terms=terms, effective_from=effective_from)

    @event(Created)
    def __init__(
        self, campaign_id: UUID, code: str, terms: PromotionTerms, effective_from: datetime
    ) -> None:
        self.campaign_id = campaign_id
        self.code = code
        self.versions: list[PromotionVersion] = [
            PromotionVersion(number=1, effective_from=effective_from, terms=terms)
        ]

    @property
    def current(self) -> PromotionVersion:
        return self.versions[-1]

    def revise(self, terms: PromotionTerms, effective_from: datetime, now: datetime) -> None:
        """Makes ``terms`` the next version, in force from ``effective_from``."""
        check_terms(terms)
        check_effective_from(self.versions, effective_from, now)
        self._add_version(terms=terms, effective_from=effective_from)

    def deactivate(self, effective_from: datetime, now: datetime) -> None:
        self.revise(msgspec.structs.replace(self.current.terms, active=False), effective_from, now)

    def activate(self, effective_from: datetime, now: datetime) -> None:
        self.revise(msgspec.structs.replace(self.current.terms, active=True), effective_from, now)

    @event(Versioned)
    def _add_version(self, terms: PromotionTerms, effective_from: datetime) -> None:
        self.versions.append(
            PromotionVersion(
                number=len(self.versions) + 1, effective_from=effective_from, terms=terms
            )
        )

    def version_at(self, at: datetime) -> PromotionVersion | None:
        return version_in_force(self.versions, at)


def check_terms(terms: PromotionTerms) -> None:
    """Refuses terms the engine could not apply; raises :class:`InvalidProgram`."""
    if not terms.name.strip():
        raise InvalidProgram("a promotion needs a name")
    if not terms.benefits:
        raise InvalidProgram("a promotion needs at least one benefit")
    for benefit in terms.benefits:
        check_benefit(benefit)
    check_when(terms.when)
    if terms.min_spend is not None and terms.min_spend <= 0:
        raise InvalidProgram("min_spend must be positive")
    check_caps(terms.caps)


def check_benefit(benefit: Benefit) -> None:
    match benefit:
        case FixedPoints(points=p) | PointsPerUnit(points=p) if p <= 0:
            raise InvalidProgram("points must be positive")
        case PointsPerAmount(points=p, per=per) if p <= 0 or per <= 0:
            raise InvalidProgram("points_per_amount needs positive points and per")
        case Multiplier(factor=f) if not f > 1:
            raise InvalidProgram("a multiplier factor must be above 1")
        case PercentCredits(percent=pc) | PercentDiscount(percent=pc) if not 0 < pc <= 100:
            raise InvalidProgram("a percentage must be above 0 and at most 100")
        case FixedCredits(amount=a) | FixedDiscount(amount=a) if a <= 0 or a != a.quantize(
            Decimal("0.01")
        ):
            raise InvalidProgram("an amount must be positive, to the cent")
        case PrizeAward(prize=prize, quantity=q) if not prize.strip() or q <= 0:
            raise InvalidProgram("a prize needs a code and a positive quantity")


def check_when(when: When) -> None:
    if when.starts_on and when.ends_on and when.starts_on > when.ends_on:
        raise InvalidProgram("starts_on is after ends_on")
    if any(not 1 <= day <= 7 for day in when.weekdays):
        raise InvalidProgram("weekdays are ISO numbers, 1 (Monday) to 7 (Sunday)")
    if any(hours.end != time(0) and hours.start >= hours.end for hours in when.hours):
        raise InvalidProgram("an hour range must start before it ends (00:00 ends at midnight)")


def check_caps(caps: Caps) -> None:
    limits = [caps.per_movement_points]
    if caps.per_customer:
        limits += [caps.per_customer.points, caps.per_customer.uses]
    if caps.budget:
        limits += [caps.budget.points, caps.budget.uses]
    if any(limit is not None and limit <= 0 for limit in limits):
        raise InvalidProgram("caps must be positive")
