"""Clusters: criteria on profile and behaviour, evaluated on a movement's local date."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from loyalty.domain import ids
from loyalty.domain.card import CardStatus
from loyalty.domain.cluster import (
    Age,
    AllOf,
    AnyOf,
    CardStatusIs,
    City,
    Cluster,
    ClusterTerms,
    Criterion,
    Gender,
    LastPurchase,
    Not,
    PostalCode,
    PurchaseCount,
    Registered,
    Signup,
    SpendInLastDays,
    TotalSpend,
)
from loyalty.domain.customer import ANONYMOUS, CustomerFacts
from loyalty.domain.errors import InvalidProgram
from loyalty.rules.criteria import matches
from tests.builders import START

TODAY = date(2026, 6, 10)


@dataclass
class Spending:
    """A customer's behaviour as the ledger knows it: spend per local date, purchases."""

    daily: dict[date, Decimal] = field(default_factory=dict)
    purchase_count: int = 0

    @property
    def total_spend(self) -> Decimal:
        return sum(self.daily.values(), Decimal(0))

    @property
    def last_purchase_on(self) -> date | None:
        return max(self.daily, default=None)

    def spend_between(self, first: date, last: date) -> Decimal:
        return sum((v for d, v in self.daily.items() if first <= d <= last), Decimal(0))


def spent(**days_ago: str) -> Spending:
    """``spent(d0="10.00", d30="5.00")``: 10.00 today and 5.00 thirty days ago."""
    daily = {TODAY - timedelta(days=int(k[1:])): Decimal(v) for k, v in days_ago.items()}
    return Spending(daily=daily, purchase_count=len(daily))


def member(
    criterion: Criterion, behaviour: Spending | None = None, day: date = TODAY, **facts: Any
) -> bool:
    profile = CustomerFacts(registered=True, **facts) if facts else ANONYMOUS
    return matches(criterion, profile, behaviour or Spending(), day)


def born(years_ago: int, days: int = 0) -> date:
    return TODAY.replace(year=TODAY.year - years_ago) + timedelta(days=days)


def test_age_counts_whole_years_on_the_movement_date() -> None:
    adult = Age(min=18)

    assert member(adult, birth_date=born(18))
    assert not member(adult, birth_date=born(18, days=1))


def test_age_band_bounds_are_inclusive() -> None:
    band = Age(min=18, max=35)

    assert [member(band, birth_date=born(y)) for y in (17, 18, 35, 36)] == [
        False,
        True,
        True,
        False,
    ]


def test_a_leap_day_birthday_comes_of_age_on_the_first_of_march() -> None:
    adult = Age(min=18)
    leapling = date(2008, 2, 29)

    assert not member(adult, day=date(2026, 2, 28), birth_date=leapling)
    assert member(adult, day=date(2026, 3, 1), birth_date=leapling)


def test_a_customer_without_a_birth_date_is_in_no_age_band() -> None:
    assert not member(Age(min=0), city="Milano")


def test_gender_matches_ignoring_case() -> None:
    assert member(Gender(values=("F",)), gender="f")
    assert not member(Gender(values=("F",)), gender="m")


def test_city_matches_ignoring_case_and_surrounding_spaces() -> None:
    cities = City(values=("Milano", "Monza"))

    assert member(cities, city=" MILANO ")
    assert not member(cities, city="Roma")
    assert not member(cities)


def test_postal_code_matches_by_prefix() -> None:
    milan = PostalCode(prefixes=("201", "202"))

    assert member(milan, postal_code="20121")
    assert not member(milan, postal_code="00184")
    assert not member(milan, city="Milano")


def test_signup_dates_are_inclusive() -> None:
    june = Signup(on_or_after=date(2026, 6, 1), on_or_before=date(2026, 6, 30))

    assert member(june, signed_up_on=date(2026, 6, 1))
    assert member(june, signed_up_on=date(2026, 6, 30))
    assert not member(june, signed_up_on=date(2026, 7, 1))
    assert not member(june)


def test_card_status_matches_the_card_of_the_movement() -> None:
    blocked = CardStatusIs(values=(CardStatus.BLOCKED,))

    assert member(blocked, card_status=CardStatus.BLOCKED)
    assert not member(blocked, card_status=CardStatus.ACTIVE)


def test_an_anonymous_card_holder_is_not_registered() -> None:
    assert member(Registered(value=False))
    assert not member(Registered())
    assert member(Registered(), city="Milano")


def test_total_spend_bounds_are_inclusive() -> None:
    big = TotalSpend(min=Decimal("100.00"))

    assert member(big, spent(d1="60.00", d40="40.00"))
    assert not member(big, spent(d1="99.99"))


def test_purchase_count_counts_purchases() -> None:
    regular = PurchaseCount(min=2, max=3)

    assert not member(regular, spent(d1="1.00"))
    assert member(regular, spent(d1="1.00", d2="1.00"))
    assert not member(regular, spent(d1="1.00", d2="1.00", d3="1.00", d4="1.00"))


def test_last_purchase_within_n_days() -> None:
    recent = LastPurchase(within_days=30)

    assert member(recent, spent(d30="1.00"))
    assert not member(recent, spent(d31="1.00"))
    assert not member(recent)


def test_last_purchase_not_within_n_days_includes_who_never_bought() -> None:
    lapsed = LastPurchase(not_within_days=90)

    assert member(lapsed, spent(d91="1.00"))
    assert not member(lapsed, spent(d90="1.00"))
    assert member(lapsed)


def test_spend_in_last_days_counts_n_days_ending_on_the_movement_date() -> None:
    week = SpendInLastDays(days=7, min=Decimal("50.00"))

    assert member(week, spent(d0="20.00", d6="30.00"))
    assert not member(week, spent(d0="20.00", d7="30.00"))


def test_spend_in_last_days_has_an_upper_bound_too() -> None:
    modest = SpendInLastDays(days=30, max=Decimal("10.00"))

    assert member(modest, spent(d3="10.00", d45="500.00"))
    assert not member(modest, spent(d3="10.01"))


def test_all_of_needs_every_criterion_and_any_of_one() -> None:
    young, milanese = Age(max=35), City(values=("Milano",))

    assert member(AllOf(of=(young, milanese)), birth_date=born(30), city="Milano")
    assert not member(AllOf(of=(young, milanese)), birth_date=born(30), city="Roma")
    assert member(AnyOf(of=(young, milanese)), birth_date=born(30), city="Roma")
    assert not member(AnyOf(of=(young, milanese)), birth_date=born(50), city="Roma")


def test_not_inverts_a_criterion() -> None:
    assert member(Not(criterion=City(values=("Roma",))), city="Milano")
    assert not member(Not(criterion=City(values=("Roma",))), city="Roma")


def test_criteria_decode_from_json_as_documented() -> None:
    raw = b"""{"kind": "all", "of": [
        {"kind": "age", "min": 18, "max": 35},
        {"kind": "city", "values": ["Milano", "Monza"]},
        {"kind": "spend_in_last_days", "days": 90, "min": "200.00"}]}"""

    criterion = msgspec.json.decode(raw, type=Criterion)

    assert criterion == AllOf(
        of=(
            Age(min=18, max=35),
            City(values=("Milano", "Monza")),
            SpendInLastDays(days=90, min=Decimal("200.00")),
        )
    )
    assert member(criterion, spent(d89="200.00"), birth_date=born(20), city="Monza")


def define(criteria: Criterion, name: str = "Young") -> Cluster:
    return Cluster.define(
        code="young",
        terms=ClusterTerms(name=name, criteria=criteria),
        effective_from=START,
        now=START,
    )


def test_a_cluster_id_derives_from_its_code() -> None:
    assert define(Age(max=35)).id == ids.cluster_id("young")


def test_a_redefinition_judges_movements_from_its_start_only() -> None:
    cluster = define(Age(max=35))
    switch = START + timedelta(days=7)

    cluster.redefine(ClusterTerms(name="Young", criteria=Age(max=30)), switch, now=START)

    before, after = cluster.version_at(switch - timedelta(seconds=1)), cluster.version_at(switch)
    assert before is not None and before.terms.criteria == Age(max=35)
    assert after is not None and (after.number, after.terms.criteria) == (2, Age(max=30))


def test_a_redefinition_cannot_take_effect_in_the_past() -> None:
    cluster = define(Age(max=35))

    with pytest.raises(InvalidProgram):
        cluster.redefine(
            ClusterTerms(name="Young", criteria=Age(max=30)),
            START,
            now=START + timedelta(days=1),
        )


@pytest.mark.parametrize(
    "criteria",
    [
        AllOf(of=()),
        AnyOf(of=()),
        Not(criterion=AllOf(of=())),
        AllOf(of=(Age(max=35), SpendInLastDays(days=0))),
        SpendInLastDays(days=367),
        LastPurchase(),
    ],
)
def test_criteria_that_cannot_be_evaluated_are_refused(criteria: Criterion) -> None:
    with pytest.raises(InvalidProgram):
        define(criteria)


def test_a_look_back_of_a_whole_leap_year_is_allowed() -> None:
    assert define(SpendInLastDays(days=366)).current.number == 1


def test_a_cluster_needs_a_name() -> None:
    with pytest.raises(InvalidProgram):
        define(Age(max=35), name=" ")


@pytest.mark.parametrize(
    "criterion",
    [
        {"kind": "age", "min": 40, "max": 30},
        {"kind": "total_spend", "min": "100.00", "max": "50.00"},
        {"kind": "purchase_count", "min": 5, "max": 1},
        {"kind": "spend_in_last_days", "days": 30, "min": "9.00", "max": "1.00"},
    ],
)
def test_a_range_that_can_match_nobody_is_refused(criterion: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError, match="must not exceed max"):
        msgspec.convert(criterion, Criterion)
