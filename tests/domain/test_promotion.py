"""Promotions: versioned rules whose changes never rewrite the past (no I/O)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from loyalty.domain import ids
from loyalty.domain.errors import InvalidProgram
from loyalty.domain.promotion import (
    BudgetCap,
    Caps,
    FixedCredits,
    FixedPoints,
    HourRange,
    Multiplier,
    PercentDiscount,
    Period,
    PeriodCap,
    PointsPerAmount,
    PrizeAward,
    Promotion,
    PromotionTerms,
    PromotionVersion,
    Rounding,
    When,
)
from tests.builders import START

NOW = START
DAY = timedelta(days=1)


def terms(points: int = 10, **changes: Any) -> PromotionTerms:
    changes.setdefault("benefits", (FixedPoints(points=points),))
    return PromotionTerms(name=f"{points} points", **changes)


def promotion(starts: datetime = NOW) -> Promotion:
    return Promotion.create(
        campaign_id=ids.campaign_id("club"),
        code="welcome",
        terms=terms(10),
        effective_from=starts,
        now=NOW,
    )


def in_force_at(subject: Promotion, at: datetime) -> PromotionVersion:
    found = subject.version_at(at)
    assert found is not None, f"no version in force at {at}"
    return found


def test_a_promotion_id_derives_from_its_code() -> None:
    assert promotion().id == ids.promotion_id("welcome")


def test_a_new_promotion_is_version_1_in_force_from_its_start() -> None:
    created = promotion(starts=NOW + DAY)

    assert created.current.number == 1
    assert in_force_at(created, NOW + DAY).number == 1


def test_no_version_is_in_force_before_the_first_takes_effect() -> None:
    assert promotion(starts=NOW + DAY).version_at(NOW + DAY - timedelta(microseconds=1)) is None


def test_a_new_version_takes_effect_from_its_start() -> None:
    revised = promotion()
    switch = NOW + 10 * DAY

    revised.revise(terms(20), effective_from=switch, now=NOW)

    assert in_force_at(revised, switch - timedelta(microseconds=1)).terms == terms(10)
    assert in_force_at(revised, switch).terms == terms(20)
    assert in_force_at(revised, switch).number == 2


def test_the_version_in_force_is_the_latest_that_has_started() -> None:
    revised = promotion()
    revised.revise(terms(20), effective_from=NOW + 10 * DAY, now=NOW)
    revised.revise(terms(30), effective_from=NOW + 20 * DAY, now=NOW + DAY)

    in_force = [in_force_at(revised, NOW + n * DAY).number for n in (0, 9, 10, 19, 20, 365)]

    assert in_force == [1, 1, 2, 2, 3, 3]


def test_a_revision_keeps_the_earlier_versions_unchanged() -> None:
    revised = promotion()

    revised.revise(terms(20), effective_from=NOW + DAY, now=NOW)

    assert [v.terms for v in revised.versions] == [terms(10), terms(20)]
    assert revised.versions[0].effective_from == NOW


def test_a_version_cannot_take_effect_in_the_past() -> None:
    with pytest.raises(InvalidProgram, match="past"):
        promotion().revise(terms(20), effective_from=NOW + DAY, now=NOW + 2 * DAY)


def test_a_version_takes_effect_after_the_version_before_it() -> None:
    revised = promotion(starts=NOW + 5 * DAY)

    with pytest.raises(InvalidProgram, match="after the version before"):
        revised.revise(terms(20), effective_from=NOW + 5 * DAY, now=NOW)


def test_a_version_start_needs_a_utc_offset() -> None:
    with pytest.raises(InvalidProgram, match="UTC offset"):
        promotion(starts=datetime(2026, 6, 2, 8, 0))


def test_deactivating_is_a_new_version_with_the_same_terms_inactive() -> None:
    revised = promotion()

    revised.deactivate(effective_from=NOW + DAY, now=NOW)

    assert revised.current.terms == msgspec.structs.replace(terms(10), active=False)
    assert in_force_at(revised, NOW).terms.active


def test_reactivating_is_one_more_version() -> None:
    revised = promotion()
    revised.deactivate(effective_from=NOW + DAY, now=NOW)

    revised.activate(effective_from=NOW + 2 * DAY, now=NOW)

    assert [v.terms.active for v in revised.versions] == [True, False, True]


def test_invalid_terms_are_refused_when_revising_and_nothing_is_recorded() -> None:
    revised = promotion()

    with pytest.raises(InvalidProgram):
        revised.revise(terms(benefits=()), effective_from=NOW + DAY, now=NOW)
    assert len(revised.versions) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"name": " "},
        {"benefits": ()},
        {"benefits": (FixedPoints(points=0),)},
        {"benefits": (PointsPerAmount(per=Decimal(0)),)},
        {"benefits": (Multiplier(factor=Decimal(1)),)},
        {"benefits": (PercentDiscount(percent=Decimal(0)),)},
        {"benefits": (PercentDiscount(percent=Decimal("100.01")),)},
        {"benefits": (FixedCredits(amount=Decimal("1.005")),)},
        {"benefits": (PrizeAward(prize="MUG", quantity=0),)},
        {"when": When(starts_on=date(2026, 7, 1), ends_on=date(2026, 6, 30))},
        {"when": When(weekdays=(0,))},
        {"when": When(weekdays=(8,))},
        {"when": When(hours=(HourRange(start=time(12), end=time(9)),))},
        {"min_spend": Decimal(0)},
        {"caps": Caps(per_movement_points=0)},
        {"caps": Caps(per_customer=PeriodCap(period=Period.DAY, uses=0))},
        {"caps": Caps(budget=BudgetCap(points=-1))},
    ],
)
def test_terms_the_engine_could_not_apply_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidProgram):
        Promotion.create(
            campaign_id=ids.campaign_id("club"),
            code="bad",
            terms=msgspec.structs.replace(terms(10), **bad),
            effective_from=NOW,
            now=NOW,
        )


def test_an_hour_range_may_end_at_midnight() -> None:
    late = When(hours=(HourRange(start=time(22), end=time(0)),))

    assert promotion().revise(terms(when=late), effective_from=NOW + DAY, now=NOW) is None


def test_a_percentage_of_100_is_allowed() -> None:
    full = terms(benefits=(PercentDiscount(percent=Decimal(100)),))

    assert promotion().revise(full, effective_from=NOW + DAY, now=NOW) is None


def test_terms_decode_from_a_program_file_with_benefits_tagged_by_kind() -> None:
    raw = b"""{"name": "Double", "priority": 5, "min_spend": "20.00",
        "benefits": [{"kind": "points_per_amount", "points": 2, "per": "1", "rounding": "half_up"},
                     {"kind": "prize", "prize": "MUG"}],
        "when": {"weekdays": [6, 7], "hours": [{"start": "18:00:00", "end": "00:00:00"}]},
        "caps": {"per_customer": {"period": "month", "uses": 4}}}"""

    decoded = msgspec.json.decode(raw, type=PromotionTerms)

    assert decoded.benefits == (
        PointsPerAmount(points=2, per=Decimal(1), rounding=Rounding.HALF_UP),
        PrizeAward(prize="MUG"),
    )
    assert decoded.when.hours == (HourRange(start=time(18), end=time(0)),)
    assert decoded.caps.per_customer == PeriodCap(period=Period.MONTH, uses=4)
    assert decoded.min_spend == Decimal("20.00")


def test_terms_with_an_unknown_field_are_refused_when_decoded() -> None:
    raw = b'{"name": "x", "benefits": [{"kind": "fixed_points", "points": 1}], "stack": true}'

    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=PromotionTerms)


def test_a_version_switch_is_an_instant_whatever_offset_the_lookup_uses() -> None:
    revised = promotion()
    revised.revise(terms(20), effective_from=NOW + DAY, now=NOW)
    rome = timezone(timedelta(hours=2))

    assert in_force_at(revised, (NOW + DAY).astimezone(rome)).number == 2
    assert in_force_at(revised, (NOW + DAY - timedelta(seconds=1)).astimezone(rome)).number == 1
