"""The rule engine by example: one small movement, one promotion, the transactions it earns.

Movements happen at ``AT`` (Wednesday 2026-06-03, 12:00 in Rome) at terminal ``t1`` of store
``s1`` (``chain > north > s1 > t1``) unless a test says otherwise. No I/O anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.card import CardStatus
from loyalty.domain.cluster import Age, ClusterTerms, ClusterVersion, Criterion, TotalSpend
from loyalty.domain.customer import CustomerFacts
from loyalty.domain.errors import (
    AlreadyCancelled,
    InsufficientPoints,
    InvalidMovement,
    ReturnExceedsOriginal,
)
from loyalty.domain.movement import (
    Derivation,
    Line,
    Movement,
    MovementType,
    Transaction,
    TransactionKind,
    UsageDelta,
    VersionRef,
)
from loyalty.domain.promotion import (
    Benefit,
    BudgetCap,
    Caps,
    FixedCredits,
    FixedDiscount,
    FixedPoints,
    HourRange,
    Multiplier,
    PercentCredits,
    PercentDiscount,
    Period,
    PeriodCap,
    PointsPerAmount,
    PointsPerUnit,
    PrizeAward,
    Rounding,
    When,
    Where,
)
from loyalty.rules.allocation import allocate, whole_units
from loyalty.rules.engine import (
    BENEFITS,
    ClusterInForce,
    Context,
    OriginalMovement,
    PromotionInForce,
    PromotionWalk,
    derive,
    eligible_units,
)
from loyalty.rules.schedule import is_within
from tests.builders import AT, campaign_view, in_force, line, movement, new_account

LATE_EVENING_UTC = datetime(2026, 6, 3, 23, 30, tzinfo=UTC)
"""Wednesday 23:30 UTC is already Thursday 2026-06-04, 01:30, in Rome."""

POINTS = TransactionKind.POINTS
CREDITS = TransactionKind.CREDITS
DISCOUNT = TransactionKind.DISCOUNT


def context(*promotions: PromotionInForce, **extra: Any) -> Context:
    extra.setdefault("campaign", campaign_view())
    extra.setdefault("account", new_account())
    return Context(promotions=promotions, **extra)


def earn(subject: Movement, *promotions: PromotionInForce, **extra: Any) -> Derivation:
    return derive(subject, context(*promotions, **extra))


def sale(*amounts: str, **extra: Any) -> Movement:
    """A purchase of one unit per amount, skus L1, L2…"""
    return movement("m1", *(line(f"L{i}", a) for i, a in enumerate(amounts, 1)), **extra)


def of_kind(derivation: Derivation, kind: TransactionKind) -> list[Transaction]:
    return [t for t in derivation.transactions if t.kind is kind]


def fired(derivation: Derivation) -> list[str]:
    return [ref.code for ref in derivation.fired]


def funded(points: int) -> Account:
    """An account holding ``points``, given by an operator's adjustment."""
    account = new_account()
    gift = movement("gift", type=MovementType.ADJUSTMENT, amount=Decimal(0), points=points)
    account.record(gift, earn(gift, account=account))
    return account


def record(
    account: Account, subject: Movement, *promotions: PromotionInForce, **extra: Any
) -> Derivation:
    """Derives ``subject`` on ``account`` and records it there, as the write side does."""
    derivation = earn(subject, *promotions, account=account, **extra)
    account.record(subject, derivation)
    return derivation


# WHAT: one benefit kind at a time


def test_fixed_points_are_given_once_per_movement() -> None:
    derivation = earn(sale("30.00", "10.00"), in_force("bonus", FixedPoints(points=50)))

    assert derivation.points_delta == 50
    assert [t.amount for t in of_kind(derivation, POINTS)] == [Decimal(50)]


def test_points_are_split_over_lines_in_proportion_to_their_amounts() -> None:
    derivation = earn(sale("30.00", "10.00"), in_force("bonus", FixedPoints(points=50)))

    (points,) = of_kind(derivation, POINTS)
    assert points.allocation == (Decimal(38), Decimal(12))  # 37.5 and 12.5: tie to the first


def test_points_per_amount_round_down_by_default() -> None:
    assert earn(sale("12.99"), in_force("base", PointsPerAmount())).points_delta == 12


@pytest.mark.parametrize(
    ("amount", "rounding", "points"),
    [
        ("12.49", Rounding.FLOOR, 4),  # 12.49 / 2.50 = 4.996
        ("12.49", Rounding.HALF_UP, 5),
        ("11.24", Rounding.HALF_UP, 4),  # 4.496
        ("11.25", Rounding.HALF_UP, 5),  # 4.5 exactly rounds up
        ("10.01", Rounding.CEILING, 5),  # 4.004
    ],
)
def test_points_per_amount_are_rounded_as_the_promotion_says(
    amount: str, rounding: Rounding, points: int
) -> None:
    per_2_50 = PointsPerAmount(points=1, per=Decimal("2.50"), rounding=rounding)

    assert earn(sale(amount), in_force("base", per_2_50)).points_delta == points


def test_points_per_amount_are_rounded_once_on_the_total_not_per_line() -> None:
    assert earn(sale("0.60", "0.60"), in_force("base", PointsPerAmount())).points_delta == 1


def test_points_per_amount_count_only_the_named_skus_and_departments() -> None:
    lines = (line("A", "10.00"), line("B", "5.00", department="fresh"), line("C", "3.00"))
    only = PointsPerAmount(points=2, skus=("A",), departments=("fresh",))

    derivation = earn(movement("m1", *lines), in_force("base", only))

    assert derivation.points_delta == 30
    assert of_kind(derivation, POINTS)[0].allocation == (Decimal(20), Decimal(10), Decimal(0))


def test_a_multiplier_multiplies_the_points_of_higher_priority_promotions() -> None:
    base = in_force("base", PointsPerAmount(), priority=10)
    triple = in_force("triple", Multiplier(factor=Decimal(3)))

    derivation = earn(sale("20.00"), base, triple)

    assert derivation.points_delta == 60
    assert [(t.promotion, t.amount) for t in derivation.transactions] == [
        ("base", Decimal(20)),
        ("triple", Decimal(40)),
    ]


def test_a_fractional_multiplier_rounds_its_extra_points_down() -> None:
    base = in_force("base", PointsPerAmount(), priority=10)
    half_more = in_force("half-more", Multiplier(factor=Decimal("1.5")))

    assert earn(sale("15.00"), base, half_more).points_delta == 15 + 7


def test_a_multiplier_ignores_promotions_of_lower_priority() -> None:
    base = in_force("base", PointsPerAmount())
    double = in_force("double", Multiplier(factor=Decimal(2)), priority=10)

    derivation = earn(sale("20.00"), base, double)

    assert (derivation.points_delta, fired(derivation)) == (20, ["base"])


def test_points_per_unit_count_whole_units_of_the_named_skus() -> None:
    lines = (line("COFFEE", "9.00", quantity="3"), line("BREAD", "4.00", quantity="2"))
    coffee = PointsPerUnit(points=5, skus=("COFFEE",))

    derivation = earn(movement("m1", *lines), in_force("coffee", coffee))

    assert derivation.points_delta == 15
    assert of_kind(derivation, POINTS)[0].allocation == (Decimal(15), Decimal(0))


def test_points_per_unit_of_a_department_count_whole_units_only() -> None:
    apples = line("APPLES", "5.00", quantity="2.5", department="fresh")
    fresh = PointsPerUnit(points=4, departments=("fresh",))

    assert (
        earn(movement("m1", apples, line("SOAP", "2.00")), in_force("fresh", fresh)).points_delta
        == 8
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B"]),
            st.sampled_from(["fresh", "grocery"]),
            st.decimals(Decimal("0.001"), Decimal(1000), places=3),
        ),
        max_size=6,
    ),
    st.integers(1, 50),
    st.sampled_from([(), ("A",)]),
    st.sampled_from([(), ("fresh",)]),
)
def test_points_per_unit_give_each_named_line_its_quantity_rounded_down(
    items: list[tuple[str, str, Decimal]],
    points: int,
    skus: tuple[str, ...],
    departments: tuple[str, ...],
) -> None:
    lines = [line(sku, "1.00", quantity=str(qty), department=dept) for sku, dept, qty in items]
    everything = not skus and not departments
    expected = [
        int(item.quantity.to_integral_value(ROUND_FLOOR)) * points
        if everything or item.sku in skus or item.department in departments
        else 0
        for item in lines
    ]

    assert eligible_units(lines, skus, departments, points) == expected


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.sampled_from(["fresh", "grocery"]),
            st.decimals(Decimal(0), Decimal(1000), places=2),
        ),
        max_size=6,
    ),
    st.sampled_from([(), ("A",), ("A", "B")]),
    st.sampled_from([(), ("fresh",)]),
)
def test_a_benefit_over_some_lines_weighs_their_amounts_and_none_of_the_others(
    items: list[tuple[str, str, Decimal]],
    skus: tuple[str, ...],
    departments: tuple[str, ...],
) -> None:
    lines = [line(sku, str(amount), department=dept) for sku, dept, amount in items]
    everything = not skus and not departments
    named = [everything or item.sku in skus or item.department in departments for item in lines]
    walk = PromotionWalk(movement("m1", *lines), context(), AT)

    weights = walk.weights(skus, departments)

    units = whole_units([item.amount for item in lines])
    assert weights.units == [u if n else 0 for u, n in zip(units, named, strict=True)]
    assert weights.spend == sum(
        (item.amount for item, n in zip(lines, named, strict=True) if n), Decimal(0)
    )


def test_a_threshold_promotion_fires_from_its_minimum_spend() -> None:
    over_50 = in_force("over-50", FixedPoints(points=100), min_spend=Decimal("50.00"))

    assert earn(sale("49.99"), over_50).fired == ()
    assert earn(sale("30.00", "20.00"), over_50).points_delta == 100


def test_fixed_credits_are_credited_to_the_account() -> None:
    derivation = earn(sale("10.00"), in_force("cashback", FixedCredits(amount=Decimal("2.00"))))

    assert derivation.credits_delta == Decimal("2.00")
    assert [(t.amount, t.currency) for t in of_kind(derivation, CREDITS)] == [
        (Decimal("2.00"), "CREDITS")
    ]


def test_percent_credits_are_rounded_half_up_to_the_cent() -> None:
    five_percent = in_force("cashback", PercentCredits(percent=Decimal(5)))

    assert earn(sale("12.50"), five_percent).credits_delta == Decimal("0.63")  # 0.625


def test_a_campaign_without_credits_gives_no_credits() -> None:
    cashback = in_force(
        "cashback", FixedCredits(amount=Decimal("2.00")), PercentCredits(percent=Decimal(5))
    )

    derivation = earn(sale("10.00"), cashback, campaign=campaign_view(credits=False))

    assert (derivation.transactions, derivation.fired) == ((), ())


def test_a_percent_discount_is_returned_to_the_till_in_the_movement_currency() -> None:
    wine = in_force("wine", PercentDiscount(percent=Decimal(10), skus=("WINE",)))
    lines = (line("WINE", "25.55"), line("BREAD", "4.00"))

    derivation = earn(movement("m1", *lines), wine)

    assert [(t.amount, t.currency) for t in of_kind(derivation, DISCOUNT)] == [
        (Decimal("2.56"), "EUR")
    ]
    assert (derivation.points_delta, derivation.credits_delta) == (0, Decimal(0))


def test_a_fixed_discount_never_exceeds_the_movement_amount() -> None:
    five_off = in_force("five-off", FixedDiscount(amount=Decimal("5.00")))

    assert of_kind(earn(sale("3.00"), five_off), DISCOUNT)[0].amount == Decimal("3.00")
    assert of_kind(earn(sale("8.00"), five_off), DISCOUNT)[0].amount == Decimal("5.00")


def test_stacked_discounts_never_take_off_more_than_the_movement_amount() -> None:
    five_off = FixedDiscount(amount=Decimal("5.00"))

    derivation = earn(sale("8.00"), in_force("a", five_off), in_force("b", five_off))

    assert [t.amount for t in of_kind(derivation, DISCOUNT)] == [Decimal("5.00"), Decimal("3.00")]


def test_benefits_that_give_nothing_make_no_transaction_and_use_no_cap() -> None:
    once_a_day = Caps(per_customer=PeriodCap(period=Period.DAY, uses=1))
    promotions = [
        in_force("all-off", FixedDiscount(amount=Decimal("50.00")), priority=9),
        in_force("more-off", PercentDiscount(percent=Decimal(10)), caps=once_a_day),
        in_force("fresh", PointsPerAmount(departments=("fresh",)), caps=once_a_day),
        in_force("baby-off", PercentDiscount(percent=Decimal(5), departments=("baby",))),
        in_force("baby-credits", PercentCredits(percent=Decimal(5), departments=("baby",))),
        in_force("pennies", PointsPerUnit(points=1, skus=("NONE",)), caps=once_a_day),
        in_force("double", Multiplier(factor=Decimal(2)), priority=-1, caps=once_a_day),
    ]

    derivation = earn(sale("8.00"), *promotions)

    assert fired(derivation) == ["all-off"] and derivation.usage == ()
    assert [t.promotion for t in derivation.transactions] == ["all-off"]


def test_percent_discounts_are_computed_on_listed_amounts_and_cut_to_what_is_left() -> None:
    seventy = PercentDiscount(percent=Decimal(70))

    derivation = earn(sale("10.00"), in_force("a", seventy), in_force("b", seventy))

    assert [t.amount for t in of_kind(derivation, DISCOUNT)] == [Decimal("7.00"), Decimal("3.00")]


def test_a_prize_is_awarded_by_its_code_and_quantity() -> None:
    derivation = earn(sale("10.00"), in_force("mug", PrizeAward(prize="MUG", quantity=2)))

    (prize,) = of_kind(derivation, TransactionKind.PRIZE)
    assert (prize.currency, prize.amount, derivation.points_delta) == ("MUG", Decimal(2), 0)


# WHEN: in the store's time zone


def hour(start: int, end: int) -> HourRange:
    return HourRange(start=time(start), end=time(end))


def test_weekdays_are_read_in_the_store_time_zone() -> None:
    late = sale("10.00", at=LATE_EVENING_UTC)

    thursday = in_force("thursday", FixedPoints(points=10), when=When(weekdays=(4,)))
    wednesday = in_force("wednesday", FixedPoints(points=10), when=When(weekdays=(3,)))

    assert fired(earn(late, thursday, wednesday)) == ["thursday"]
    assert earn(late).local_date == date(2026, 6, 4)


def test_hours_are_read_in_the_store_time_zone() -> None:
    late = sale("10.00", at=LATE_EVENING_UTC)
    night = in_force("night", FixedPoints(points=10), when=When(hours=(hour(1, 2),)))
    utc_evening = in_force("evening", FixedPoints(points=10), when=When(hours=(hour(23, 0),)))

    assert fired(earn(late, night, utc_evening)) == ["night"]


@pytest.mark.parametrize(("start", "end", "fires"), [(10, 12, False), (12, 13, True)])
def test_an_hour_range_includes_its_start_and_excludes_its_end(
    start: int, end: int, fires: bool
) -> None:
    noon = in_force("noon", FixedPoints(points=10), when=When(hours=(hour(start, end),)))

    assert bool(earn(sale("10.00"), noon).fired) is fires  # AT is 12:00 in Rome


def test_an_hour_range_ending_at_00_00_runs_to_midnight() -> None:
    evening = in_force("evening", FixedPoints(points=10), when=When(hours=(hour(22, 0),)))
    at_23_59_rome = datetime(2026, 6, 3, 21, 59, tzinfo=UTC)

    assert fired(earn(sale("10.00", at=at_23_59_rome), evening)) == ["evening"]


def test_validity_dates_are_local_dates_of_the_store() -> None:
    late = sale("10.00", at=LATE_EVENING_UTC)
    until_3rd = in_force("old", FixedPoints(points=10), when=When(ends_on=date(2026, 6, 3)))
    from_4th = in_force("new", FixedPoints(points=10), when=When(starts_on=date(2026, 6, 4)))

    assert fired(earn(late, until_3rd, from_4th)) == ["new"]


def test_a_movement_without_a_location_is_read_in_utc() -> None:
    wednesday = in_force("wednesday", FixedPoints(points=10), when=When(weekdays=(3,)))

    derivation = earn(sale("10.00", at=LATE_EVENING_UTC, location=None), wednesday)

    assert (fired(derivation), derivation.local_date) == (["wednesday"], date(2026, 6, 3))


@given(
    st.builds(
        When,
        starts_on=st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
        ends_on=st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)),
        weekdays=st.sampled_from([(), (3,), (6, 7)]),
        hours=st.sampled_from([(), (hour(9, 12),), (hour(22, 0),)]),
    ),
    st.datetimes(datetime(2025, 12, 1), datetime(2027, 1, 31), timezones=st.just(UTC)),
)
def test_a_promotion_whose_when_names_nothing_holds_at_any_time(when: When, at: datetime) -> None:
    promotion = in_force("p", FixedPoints(points=1), when=when)

    assert promotion.timed is (when != When())
    assert promotion.timed or is_within(when, at)


# WHERE: movement types and network nodes


def test_a_promotion_applies_to_purchases_unless_it_names_other_movement_types() -> None:
    signup = movement("g1", type=MovementType.REGISTRATION)
    welcome = Where(movement_types=(MovementType.REGISTRATION,))

    assert earn(signup, in_force("base", FixedPoints(points=50))).fired == ()
    assert (
        earn(signup, in_force("welcome", FixedPoints(points=50), where=welcome)).points_delta == 50
    )
    assert (
        earn(sale("10.00"), in_force("welcome", FixedPoints(points=50), where=welcome)).fired == ()
    )


@pytest.mark.parametrize(
    ("node", "fires"),
    [("chain", True), ("north", True), ("s1", True), ("t1", True), ("south", False)],
)
def test_a_promotion_on_a_node_covers_its_whole_subtree(node: str, fires: bool) -> None:
    here = in_force("here", FixedPoints(points=10), where=Where(nodes=(node,)))

    assert bool(earn(sale("10.00"), here).fired) is fires


# WHO: a cluster, or everyone


def clusters(code: str, criteria: Criterion, version: int = 1) -> dict[str, ClusterInForce]:
    """Cluster ``code`` as the engine receives it: the version in force at the movement."""
    terms = ClusterTerms(name=code.title(), criteria=criteria)
    in_force_since = AT - timedelta(days=9)
    return {
        code: ClusterInForce(
            id=ids.cluster_id(code),
            code=code,
            version=ClusterVersion(number=version, effective_from=in_force_since, terms=terms),
        )
    }


def young(version: int = 1) -> dict[str, ClusterInForce]:
    return clusters("young", Age(max=35), version)


def aged(years: int) -> CustomerFacts:
    return CustomerFacts(registered=True, birth_date=date(2026 - years, 1, 1))


def test_a_cluster_promotion_fires_for_members_and_records_the_cluster_version() -> None:
    for_young = in_force("young-bonus", FixedPoints(points=10), cluster="young")

    derivation = earn(sale("10.00"), for_young, clusters=young(version=2), facts=aged(30))

    assert fired(derivation) == ["young-bonus"]
    assert derivation.clusters == (VersionRef(id=ids.cluster_id("young"), code="young", version=2),)


def test_a_cluster_promotion_does_not_fire_for_non_members() -> None:
    for_young = in_force("young-bonus", FixedPoints(points=10), cluster="young")

    derivation = earn(sale("10.00"), for_young, clusters=young(), facts=aged(40))

    assert (derivation.fired, derivation.clusters) == ((), ())


def test_an_anonymous_card_is_in_no_profile_cluster() -> None:
    for_young = in_force("young-bonus", FixedPoints(points=10), cluster="young")

    assert earn(sale("10.00"), for_young, clusters=young()).fired == ()


def test_a_cluster_not_in_force_admits_nobody() -> None:
    for_young = in_force("young-bonus", FixedPoints(points=10), cluster="young")

    assert earn(sale("10.00"), for_young, facts=aged(20)).fired == ()


def test_a_promotion_without_a_cluster_is_for_everyone() -> None:
    assert fired(earn(sale("10.00"), in_force("all", FixedPoints(points=10)))) == ["all"]


def test_behaviour_is_judged_before_the_movement_at_hand() -> None:
    spenders = clusters("spenders", TotalSpend(min=Decimal("10.00")))
    loyal = in_force("loyal", FixedPoints(points=10), cluster="spenders")

    account = new_account()

    first = record(account, sale("50.00"), loyal, clusters=spenders)
    second = record(account, sale("5.00", at=AT + timedelta(hours=1)), loyal, clusters=spenders)

    assert (fired(first), fired(second)) == ([], ["loyal"])


# Priority and stacking


def test_every_kind_of_benefit_has_its_rule() -> None:
    assert set(BENEFITS) == set(get_args(Benefit))


def test_promotions_apply_by_priority_then_by_code() -> None:
    promotions = [
        in_force("b", FixedPoints(points=1)),
        in_force("a", FixedPoints(points=1)),
        in_force("z", FixedPoints(points=1), priority=5),
    ]

    assert fired(earn(sale("10.00"), *promotions)) == ["z", "a", "b"]


def test_an_exclusive_promotion_that_fires_stops_those_of_lower_priority() -> None:
    vip = in_force("vip", FixedPoints(points=100), priority=10, exclusive=True)
    base = in_force("base", PointsPerAmount())

    derivation = earn(sale("10.00"), vip, base)

    assert (fired(derivation), derivation.points_delta) == (["vip"], 100)


def test_an_exclusive_promotion_that_does_not_fire_stops_nothing() -> None:
    vip = in_force(
        "vip", FixedPoints(points=100), priority=10, exclusive=True, min_spend=Decimal(1000)
    )

    assert fired(earn(sale("10.00"), vip, in_force("base", PointsPerAmount()))) == ["base"]


def test_an_exclusive_promotion_keeps_what_higher_priorities_gave() -> None:
    first = in_force("first", FixedPoints(points=5), priority=10)
    exclusive = in_force("exclusive", FixedPoints(points=50), exclusive=True)
    last = in_force("last", FixedPoints(points=500), priority=-1)

    derivation = earn(sale("10.00"), first, exclusive, last)

    assert (fired(derivation), derivation.points_delta) == (["first", "exclusive"], 55)


# Caps


def test_points_are_capped_per_movement() -> None:
    capped = in_force("big", FixedPoints(points=500), caps=Caps(per_movement_points=100))

    assert earn(sale("10.00"), capped).points_delta == 100


def test_a_points_cap_leaves_the_other_benefits_whole() -> None:
    capped = in_force(
        "mixed",
        FixedPoints(points=80),
        FixedCredits(amount=Decimal("1.00")),
        caps=Caps(per_movement_points=50),
    )

    derivation = earn(sale("10.00"), capped)

    assert (derivation.points_delta, derivation.credits_delta) == (50, Decimal("1.00"))


def test_a_per_customer_use_cap_counts_uses_per_local_period() -> None:
    once_a_day = in_force(
        "daily",
        FixedPoints(points=10),
        caps=Caps(per_customer=PeriodCap(period=Period.DAY, uses=1)),
    )
    account = new_account()
    record(account, sale("10.00"), once_a_day)

    again = record(account, sale("10.00", at=AT + timedelta(hours=2)), once_a_day)
    tomorrow = record(account, sale("10.00", at=AT + timedelta(days=1)), once_a_day)

    assert (again.fired, fired(tomorrow)) == ((), ["daily"])


def test_a_per_customer_points_cap_cuts_then_stops_the_promotion() -> None:
    monthly = in_force(
        "monthly",
        FixedPoints(points=20),
        caps=Caps(per_customer=PeriodCap(period=Period.MONTH, points=30)),
    )
    account = new_account()

    given = [
        record(account, sale("10.00", at=AT + timedelta(hours=h)), monthly).points_delta
        for h in range(3)
    ]

    assert given == [20, 10, 0]


def test_usage_is_recorded_against_the_local_period_of_the_store() -> None:
    weekly = in_force(
        "weekly",
        FixedPoints(points=20),
        caps=Caps(per_customer=PeriodCap(period=Period.WEEK, uses=2)),
    )
    sunday_night_utc = datetime(2026, 5, 31, 23, 30, tzinfo=UTC)  # Monday 01:30 in Rome

    derivation = earn(sale("10.00", at=sunday_night_utc), weekly)

    assert derivation.usage == (
        UsageDelta(promotion_id=ids.promotion_id("weekly"), period="2026-W23", points=20, uses=1),
    )


def test_a_promotion_budget_caps_the_points_given_in_total() -> None:
    budgeted = in_force("budgeted", FixedPoints(points=50), caps=Caps(budget=BudgetCap(points=100)))
    spent = {ids.promotion_id("budgeted"): (90, 3)}

    derivation = earn(sale("10.00"), budgeted, budgets=spent)

    assert derivation.points_delta == 10
    assert derivation.budgets == (
        UsageDelta(promotion_id=ids.promotion_id("budgeted"), period="budget", points=10, uses=1),
    )


def test_a_promotion_whose_budget_uses_are_spent_does_not_fire() -> None:
    budgeted = in_force("budgeted", FixedPoints(points=50), caps=Caps(budget=BudgetCap(uses=3)))

    spent = {ids.promotion_id("budgeted"): (150, 3)}

    assert earn(sale("10.00"), budgeted, budgets=spent).fired == ()


# Returns


def bought(
    account: Account, *promotions: PromotionInForce, lines: tuple[Line, ...] = ()
) -> Movement:
    lines = lines or (line("A", "30.00", quantity="3"), line("B", "10.00"))
    purchase = movement("m1", *lines)
    record(account, purchase, *promotions)
    return purchase


def give_back(
    account: Account,
    original: Movement,
    *lines: Line,
    movement_id: str = "x1",
    promotions: tuple[PromotionInForce, ...] = (),
) -> Derivation:
    """Derives and records the return of ``lines`` of ``original``."""
    recorded = next(
        e
        for e in account.pending_events
        if isinstance(e, Account.MovementRecorded) and e.movement == original
    )
    back = movement(
        movement_id,
        *lines,
        type=MovementType.RETURN,
        at=AT + timedelta(days=1),
        original_movement_id=original.movement_id,
    )
    was = OriginalMovement(
        source="t1",
        movement=original,
        derivation=recorded.derivation,
        account_version=recorded.originator_version,
        returned_before=account.returned.get(("t1", original.movement_id), ()),
    )
    derivation = earn(back, *promotions, account=account, original=was)
    account.record(back, derivation)
    return derivation


def test_a_return_reverses_in_proportion_to_the_quantity_returned() -> None:
    account = new_account()
    original = bought(account, in_force("base", PointsPerAmount()))

    derivation = give_back(account, original, line("A", "10.00"))

    assert derivation.points_delta == -10
    assert derivation.return_of is not None
    assert derivation.return_of.returned == (Decimal(1), Decimal(0))
    assert account.points == 30


def test_a_return_reverses_credits_line_by_line() -> None:
    account = new_account()
    original = bought(account, in_force("cashback", PercentCredits(percent=Decimal(10))))

    assert give_back(account, original, line("B", "10.00")).credits_delta == Decimal("-1.00")
    assert account.credits == Decimal("3.00")


def test_partial_returns_reverse_exactly_what_the_line_earned_in_the_end() -> None:
    account = new_account()
    original = bought(
        account,
        in_force("bonus", FixedPoints(points=10)),
        lines=(line("A", "30.00", quantity="3"),),
    )

    first = give_back(account, original, line("A", "10.00"))
    rest = give_back(account, original, line("A", "20.00", quantity="2"), movement_id="x2")

    assert (first.points_delta, rest.points_delta, account.points) == (-3, -7, 0)


def test_returning_everything_nets_zero() -> None:
    account = new_account()
    promotions = (
        in_force("base", PointsPerAmount()),
        in_force("cashback", PercentCredits(percent=Decimal(10))),
    )
    original = bought(account, *promotions)

    give_back(account, original, line("A", "30.00", quantity="3"), line("B", "10.00"))

    assert (account.points, account.credits) == (0, Decimal("0.00"))


def test_a_return_cannot_exceed_what_the_original_still_holds() -> None:
    account = new_account()
    original = bought(account, in_force("base", PointsPerAmount()))
    give_back(account, original, line("B", "10.00"))

    with pytest.raises(ReturnExceedsOriginal):
        give_back(account, original, line("B", "10.00"), movement_id="x2")


def test_points_already_spent_are_recorded_as_unrecovered_not_taken_below_zero() -> None:
    account = new_account()
    original = bought(account, in_force("base", PointsPerAmount()))
    prize = movement("p1", type=MovementType.PRIZE_REDEMPTION, amount=Decimal(35), currency="PTS")
    record(account, prize)

    derivation = give_back(account, original, line("A", "30.00", quantity="3"), line("B", "10.00"))

    assert (derivation.points_delta, derivation.unrecovered_points, account.points) == (-5, 35, 0)
    assert "Points already spent, not taken back: 35" in derivation.receipt_messages


def test_a_return_earns_nothing_of_its_own() -> None:
    account = new_account()
    everything = in_force(
        "any", FixedPoints(points=99), where=Where(movement_types=tuple(MovementType))
    )
    original = bought(account)

    derivation = give_back(account, original, line("B", "10.00"), promotions=(everything,))

    assert (derivation.fired, derivation.points_delta) == ((), 0)


def test_a_return_needs_its_original_movement() -> None:
    back = movement("x1", line("A", "1.00"), type=MovementType.RETURN, original_movement_id="m1")

    with pytest.raises(InvalidMovement):
        earn(back)


def test_only_a_purchase_can_be_returned() -> None:
    signup = movement("g1", type=MovementType.REGISTRATION)
    was = OriginalMovement(
        source="t1",
        movement=signup,
        derivation=Derivation(transactions=()),
        account_version=1,
        returned_before=(),
    )
    back = movement("x1", type=MovementType.RETURN, original_movement_id="g1")

    with pytest.raises(InvalidMovement):
        earn(back, original=was)


# Prize redemptions and adjustments


def redeem(points: int) -> Movement:
    return movement(
        "p1", type=MovementType.PRIZE_REDEMPTION, amount=Decimal(points), currency="PTS"
    )


def test_a_prize_redemption_is_refused_when_the_balance_is_short() -> None:
    with pytest.raises(InsufficientPoints):
        earn(redeem(101), account=funded(100))


def test_a_prize_redemption_spends_exactly_its_points() -> None:
    derivation = earn(redeem(100), account=funded(100))

    assert derivation.points_delta == -100
    assert [(t.amount, t.currency) for t in derivation.transactions] == [(Decimal(-100), "PTS")]


def test_an_adjustment_gives_exactly_what_the_operator_entered() -> None:
    fix = movement(
        "a1", type=MovementType.ADJUSTMENT, amount=Decimal(0), points=-30, credits=Decimal("1.50")
    )

    derivation = earn(fix, in_force("base", FixedPoints(points=10)), account=funded(100))

    assert (derivation.points_delta, derivation.credits_delta) == (-30, Decimal("1.50"))
    assert derivation.fired == ()


def test_an_adjustment_cannot_take_the_balance_below_zero() -> None:
    fix = movement("a1", type=MovementType.ADJUSTMENT, amount=Decimal(0), points=-101)

    with pytest.raises(InsufficientPoints):
        earn(fix, account=funded(100))


# Evidence: what fired, and a digest of everything read


def test_the_derivation_records_the_promotion_versions_that_fired() -> None:
    derivation = earn(
        sale("10.00"),
        in_force("base", PointsPerAmount(), version=3),
        in_force("idle", FixedPoints(points=1), min_spend=Decimal(99)),
    )

    assert derivation.fired == (VersionRef(id=ids.promotion_id("base"), code="base", version=3),)
    assert {(t.promotion, t.promotion_version) for t in derivation.transactions} == {("base", 3)}


def test_receipt_messages_tell_the_points_earned_and_the_balance() -> None:
    thanks = in_force("base", PointsPerAmount(), receipt_message="Thank you!")

    derivation = earn(sale("10.00"), thanks, account=funded(5))

    assert derivation.receipt_messages == ("Thank you!", "Points earned: 10", "Points balance: 15")


BASE = sale("10.00")
PROMOTIONS = (in_force("base", PointsPerAmount()),)


def digest(
    subject: Movement = BASE, promotions: tuple[PromotionInForce, ...] = PROMOTIONS, **extra: Any
) -> str:
    return earn(subject, *promotions, **extra).input_digest


def test_the_same_inputs_give_the_same_digest() -> None:
    assert digest() == digest()
    assert len(digest()) == 64


def test_the_digest_is_the_sha256_of_the_inputs_as_one_array_in_a_fixed_order() -> None:
    """Pinned: stored digests must keep matching the inputs of every later release."""
    base = in_force("base", PointsPerAmount(), version=3)
    bonus = in_force("a-bonus", FixedPoints(points=1))
    account, facts, budget = funded(7), aged(30), ids.promotion_id("base")
    inputs = [
        BASE,
        campaign_view().id,
        [bonus.ref, base.ref],
        [young()["young"].ref],
        account.id,
        account.version,
        7,
        "0",
        facts,
        [[budget, 2, 1]],
        None,
    ]
    expected = hashlib.sha256(msgspec.json.encode(inputs, order="deterministic")).hexdigest()

    found = digest(
        promotions=(base, bonus),
        account=account,
        facts=facts,
        clusters=young(),
        budgets={budget: (2, 1)},
    )

    assert found == expected


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: digest(sale("10.01")), id="movement amount"),
        pytest.param(
            lambda: digest(sale("10.00", at=AT + timedelta(seconds=1))), id="movement time"
        ),
        pytest.param(
            lambda: digest(promotions=(in_force("base", PointsPerAmount(), version=2),)),
            id="promotion version",
        ),
        pytest.param(
            lambda: digest(
                promotions=(
                    *PROMOTIONS,
                    in_force("idle", FixedPoints(points=1), min_spend=Decimal(99)),
                )
            ),
            id="promotion added",
        ),
        pytest.param(lambda: digest(account=funded(1)), id="account state"),
        pytest.param(
            lambda: digest(facts=CustomerFacts(card_status=CardStatus.BLOCKED)), id="customer facts"
        ),
        pytest.param(lambda: digest(clusters=young()), id="cluster in force"),
        pytest.param(
            lambda: digest(budgets={ids.promotion_id("base"): (1, 1)}), id="budget consumed"
        ),
        pytest.param(
            lambda: digest(
                campaign=msgspec.structs.replace(campaign_view(), id=ids.campaign_id("other"))
            ),
            id="campaign",
        ),
    ],
)
def test_the_digest_changes_when_any_input_changes(change: Callable[[], str]) -> None:
    assert change() != digest()


# Redemption cancellations


def cancellation_of(account: Account, redemption: Movement) -> Derivation:
    """Derives and records the cancellation of ``redemption``, recorded on ``account``."""
    version, recorded = next(
        (e.originator_version, e)
        for e in account.pending_events
        if isinstance(e, Account.MovementRecorded) and e.movement == redemption
    )
    was = OriginalMovement(
        source="t1",
        movement=redemption,
        derivation=recorded.derivation,
        account_version=version,
        returned_before=account.returned.get(("t1", redemption.movement_id), ()),
    )
    undo = movement(
        "c1",
        type=MovementType.REDEMPTION_CANCELLATION,
        amount=Decimal(0),
        currency="PTS",
        original_movement_id=redemption.movement_id,
    )
    return record(account, undo, original=was)


@given(start=st.integers(1, 10_000), share=st.fractions(0, 1))
def test_a_cancelled_redemption_leaves_the_balance_as_it_was(start: int, share: Any) -> None:
    account = funded(start)
    spent = max(1, int(start * share))
    record(account, redeem(spent))

    derivation = cancellation_of(account, redeem(spent))

    assert derivation.points_delta == spent
    assert account.points == start
    assert derivation.return_of is not None and derivation.return_of.movement_id == "p1"


def test_a_redemption_is_cancelled_once() -> None:
    account = funded(100)
    record(account, redeem(60))
    cancellation_of(account, redeem(60))

    with pytest.raises(AlreadyCancelled):
        cancellation_of(account, redeem(60))
    assert account.points == 100


def test_only_a_prize_redemption_can_be_cancelled() -> None:
    account = new_account()
    original = bought(account, in_force("base", PointsPerAmount()))

    with pytest.raises(InvalidMovement):
        cancellation_of(account, original)


# Byte for byte: what a replay compares


def recorded_program() -> tuple[PromotionInForce, ...]:
    """A program that exercises every benefit kind, caps, a cluster and a multiplier."""
    return (
        in_force("base", PointsPerAmount(points=3, per=Decimal("2.50"), rounding=Rounding.HALF_UP)),
        in_force("fresh", PointsPerUnit(points=2, departments=("fresh",)), priority=2),
        in_force(
            "spend",
            FixedPoints(points=25),
            min_spend=Decimal(20),
            caps=Caps(per_movement_points=10),
            receipt_message="25!",
        ),
        in_force("double", Multiplier(factor=Decimal("1.5")), priority=-5),
        in_force("wine", PercentCredits(percent=Decimal("2.5"), skus=("WINE",)), priority=1),
        in_force("cut", PercentDiscount(percent=Decimal(10), departments=("fresh",))),
        in_force("off", FixedDiscount(amount=Decimal("3.00")), caps=Caps(per_movement_points=5)),
        in_force(
            "gift",
            FixedCredits(amount=Decimal("1.50")),
            PrizeAward(prize="mug"),
            caps=Caps(per_customer=PeriodCap(period=Period.WEEK, points=40, uses=2)),
        ),
        in_force("weekday", FixedPoints(points=7), when=When(weekdays=(3,))),
    )


def recorded_movements() -> list[Movement]:
    basket = (
        line("APPLE", "5.37", quantity="2.150", department="fresh"),
        line("WINE", "12.90"),
        line("BREAD", "1.20", quantity="3", department="bakery"),
        line("SALAD", "3.18", quantity="2", department="fresh"),
    )
    return [
        movement("m1", *basket),
        movement("m2", *basket[1:3], at=LATE_EVENING_UTC),
        movement("m3", line("WINE", "0.99")),
    ]


RECORDED = "5221a413f7fadde2302ad4bc17bdd22ae04ef82cc25904046898780e24944b10"


def test_derivations_are_the_bytes_the_engine_has_always_recorded() -> None:
    """A replay compares derivations with the stored bytes: a faster engine must still give
    these, to the bit (their SHA-256 was taken before the engine was optimised)."""
    encoded = b"\n".join(
        msgspec.json.encode(earn(subject, *recorded_program(), account=funded(30)))
        for subject in recorded_movements()
    )

    assert hashlib.sha256(encoded).hexdigest() == RECORDED


scopes = st.sampled_from([((), ()), (("A",), ()), ((), ("fresh",)), (("B",), ("fresh",))])
split_benefits = st.one_of(
    st.builds(FixedPoints, points=st.integers(1, 500)),
    st.builds(
        lambda scope, points: PointsPerAmount(points=points, skus=scope[0], departments=scope[1]),
        scopes,
        st.integers(1, 5),
    ),
    st.builds(
        lambda scope, percent: PercentCredits(percent=percent, skus=scope[0], departments=scope[1]),
        scopes,
        st.sampled_from([Decimal(1), Decimal("12.5")]),
    ),
    st.builds(FixedDiscount, amount=st.sampled_from([Decimal("0.99"), Decimal("5.00")])),
)
baskets = st.lists(
    st.builds(
        lambda sku, department, amount: line(sku, amount, department=department),
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from(["fresh", "grocery"]),
        st.sampled_from(["0.50", "1.25", "3.99", "10", "7.1", "0"]),
    ),
    min_size=1,
    max_size=5,
)


def reference_split(
    transaction: Transaction, benefit: Any, lines: tuple[Line, ...]
) -> tuple[Decimal, ...]:
    """The benefit's amount allocated afresh over the amounts of the lines it counts."""
    skus, departments = getattr(benefit, "skus", ()), getattr(benefit, "departments", ())
    weights = [
        item.amount
        if (not skus and not departments) or item.sku in skus or item.department in departments
        else Decimal(0)
        for item in lines
    ]
    unit = Decimal(1) if transaction.kind is POINTS else Decimal("0.01")
    return tuple(Decimal(part) * unit for part in allocate(int(transaction.amount / unit), weights))


@given(baskets, st.lists(split_benefits, min_size=1, max_size=4))
def test_each_benefit_splits_over_its_own_lines_as_a_fresh_allocation_would(
    lines: list[Line], benefits: list[Any]
) -> None:
    """The engine weighs a movement's lines once for all its benefits: each split must still
    be the one allocating over that benefit's lines alone gives."""
    promotions = {f"p{i}": in_force(f"p{i}", benefit) for i, benefit in enumerate(benefits)}

    derivation = earn(movement("m1", *lines), *promotions.values())

    for transaction in derivation.transactions:
        (benefit,) = promotions[str(transaction.promotion)].version.terms.benefits
        assert transaction.allocation == reference_split(transaction, benefit, tuple(lines))
