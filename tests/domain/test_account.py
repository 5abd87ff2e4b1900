"""Accounts: the balance and the behaviour the engine reads change only through movements."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.domain import OriginatorVersionError
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.cluster import MAX_LOOKBACK_DAYS, SpendInLastDays
from loyalty.domain.customer import ANONYMOUS
from loyalty.domain.errors import InsufficientPoints
from loyalty.domain.movement import Derivation, Movement, MovementType, ReturnOf, UsageDelta
from loyalty.rules.criteria import matches
from tests.builders import line, movement, new_account

DAY = date(2026, 6, 3)
PROMO = ids.promotion_id("base")


def derived(points: int = 0, credits: str = "0", **evidence: Any) -> Derivation:
    evidence.setdefault("local_date", DAY)
    return Derivation(
        transactions=(), points_delta=points, credits_delta=Decimal(credits), **evidence
    )


def bought(movement_id: str, amount: str) -> Movement:
    return movement(movement_id, line("A", amount))


def returned(movement_id: str, amount: str) -> Movement:
    return movement(
        movement_id, line("A", amount), type=MovementType.RETURN, original_movement_id="m1"
    )


def test_an_account_belongs_to_one_customer_in_one_campaign() -> None:
    account = new_account("C1")

    assert account.id == ids.account_id(ids.campaign_id("club"), ids.customer_id_for_card("C1"))
    assert (account.points, account.credits) == (0, Decimal(0))


def test_a_recorded_movement_moves_the_balance_by_what_was_derived() -> None:
    account = new_account()

    account.record(bought("m1", "10.00"), derived(points=10, credits="0.50"))

    assert (account.points, account.credits) == (10, Decimal("0.50"))


def test_the_recorded_event_carries_the_movement_its_derivation_and_the_balance_after() -> None:
    account = new_account()
    account.record(bought("m1", "10.00"), derived(points=10))

    account.record(bought("m2", "5.00"), derived(points=5))

    event = account.collect_events()[-1]
    assert isinstance(event, Account.MovementRecorded)
    assert (event.movement.movement_id, event.derivation.points_delta) == ("m2", 5)
    assert (event.points_after, event.credits_after) == (15, Decimal(0))


def test_a_stored_movement_applied_from_its_fields_leaves_the_account_its_event_would() -> None:
    account = new_account()
    account.record(bought("m1", "10.00"), derived(points=10, credits="0.50"))
    account.record(returned("r1", "4.00"), derived(points=-4, return_of=None))
    events = account.collect_events()
    from_events = reconstituted(events)
    from_fields = reconstituted(events[:1])

    for recorded in events[1:]:
        apply_fields(from_fields, recorded)

    assert vars(from_fields) == vars(from_events)


def test_a_stored_movement_out_of_its_place_in_the_stream_is_refused() -> None:
    account = new_account()
    account.record(bought("m1", "10.00"), derived(points=10))
    recorded = account.collect_events()[-1]

    with pytest.raises(OriginatorVersionError):
        apply_fields(account, recorded)
    assert (account.points, account.version) == (10, 2)


def apply_fields(account: Account, recorded: object) -> None:
    """Applies a stored ``MovementRecorded`` to ``account`` from its fields, as a replay does."""
    assert isinstance(recorded, Account.MovementRecorded)
    account.apply_recorded(
        recorded.originator_version,
        recorded.timestamp,
        recorded.movement,
        recorded.derivation,
        recorded.points_after,
        recorded.credits_after,
    )


def reconstituted(events: list[Any]) -> Account:
    """The account its stored events make, applied in turn as a repository would."""
    aggregate = None
    for stored in events:
        aggregate = stored.mutate(aggregate)
    assert isinstance(aggregate, Account)
    return aggregate


def test_points_cannot_go_below_zero_and_nothing_is_recorded() -> None:
    account = new_account()
    account.record(bought("m1", "10.00"), derived(points=10))

    with pytest.raises(InsufficientPoints):
        account.record(movement("r1", type=MovementType.PRIZE_REDEMPTION), derived(points=-11))
    assert (account.points, account.version) == (10, 2)


def test_credits_cannot_go_below_zero_either() -> None:
    account = new_account()
    account.record(bought("m1", "10.00"), derived(credits="1.00"))

    with pytest.raises(InsufficientPoints):
        account.record(movement("a1", type=MovementType.ADJUSTMENT), derived(credits="-1.01"))
    assert account.credits == Decimal("1.00")


def test_spending_every_point_leaves_zero() -> None:
    account = new_account()
    account.record(bought("m1", "10.00"), derived(points=10))

    account.record(movement("r1", type=MovementType.PRIZE_REDEMPTION), derived(points=-10))

    assert account.points == 0


def test_usage_against_caps_adds_up_per_promotion_and_period() -> None:
    account = new_account()
    june = UsageDelta(promotion_id=PROMO, period="2026-06", points=20, uses=1)

    account.record(bought("m1", "10.00"), derived(points=20, usage=(june,)))
    account.record(bought("m2", "10.00"), derived(points=20, usage=(june,)))

    assert account.used(PROMO, "2026-06") == (40, 2)
    assert account.used(PROMO, "2026-07") == (0, 0)


def test_a_purchase_counts_as_spend_on_its_local_date() -> None:
    account = new_account()

    account.record(bought("m1", "12.50"), derived(local_date=DAY))

    assert (account.total_spend, account.purchase_count) == (Decimal("12.50"), 1)
    assert account.last_purchase_on == DAY
    assert account.spend_between(DAY, DAY) == Decimal("12.50")
    assert account.spend_between(DAY + timedelta(days=1), DAY + timedelta(days=9)) == 0


def test_a_return_takes_its_amount_off_the_spend_but_not_off_the_purchase_count() -> None:
    account = new_account()
    account.record(bought("m1", "12.50"), derived())

    account.record(returned("x1", "2.50"), derived(local_date=DAY + timedelta(days=1)))

    assert (account.total_spend, account.purchase_count) == (Decimal("10.00"), 1)
    assert account.spend_between(DAY, DAY + timedelta(days=1)) == Decimal("10.00")
    assert account.last_purchase_on == DAY


def test_a_late_recorded_older_purchase_does_not_move_the_last_purchase_back() -> None:
    account = new_account()
    account.record(bought("m1", "1.00"), derived(local_date=DAY))

    account.record(bought("m0", "1.00"), derived(local_date=DAY - timedelta(days=5)))

    assert account.last_purchase_on == DAY


def test_movements_without_a_local_date_leave_the_spend_alone() -> None:
    account = new_account()

    account.record(bought("m1", "1.00"), derived(local_date=None))

    assert (account.total_spend, account.purchase_count, account.last_purchase_on) == (0, 0, None)


def test_non_purchases_are_not_spend() -> None:
    account = new_account()

    account.record(movement("g1", type=MovementType.REGISTRATION), derived(points=50))

    assert (account.total_spend, account.purchase_count) == (0, 0)


def test_daily_spend_older_than_a_leap_year_is_forgotten_but_the_total_stays() -> None:
    account = new_account()
    account.record(bought("m1", "5.00"), derived(local_date=DAY))

    account.record(bought("m2", "7.00"), derived(local_date=DAY + timedelta(days=367)))

    assert account.daily_spend == {DAY + timedelta(days=367): Decimal("7.00")}
    assert account.total_spend == Decimal("12.00")


def test_an_old_day_recorded_late_is_forgotten_at_the_next_purchase_day() -> None:
    account = new_account()
    account.record(bought("m1", "5.00"), derived(local_date=DAY + timedelta(days=300)))
    account.record(bought("m0", "2.00"), derived(local_date=DAY))
    account.record(returned("x1", "1.00"), derived(local_date=DAY - timedelta(days=1)))

    account.record(bought("m2", "7.00"), derived(local_date=DAY + timedelta(days=367)))

    assert account.daily_spend == {
        DAY + timedelta(days=300): Decimal("5.00"),
        DAY + timedelta(days=367): Decimal("7.00"),
    }
    assert account.first_spend_day == DAY + timedelta(days=300)


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 900), st.sampled_from(["1.00", "2.50", "4.00"])),
        max_size=30,
    )
)
def test_the_daily_spend_kept_is_every_day_not_older_than_a_leap_year_at_a_new_purchase_day(
    steps: list[tuple[bool, int, str]],
) -> None:
    account = new_account()
    kept: dict[date, Decimal] = {}
    last: date | None = None
    for index, (purchase, offset, amount) in enumerate(steps):
        day = DAY + timedelta(days=offset)
        made = bought if purchase else returned
        account.record(made(f"m{index}", amount), derived(local_date=day))
        kept[day] = kept.get(day, Decimal(0)) + (Decimal(amount) if purchase else -Decimal(amount))
        if purchase and (last is None or day > last):
            last = day
            kept = {d: v for d, v in kept.items() if d >= day - timedelta(days=MAX_LOOKBACK_DAYS)}

    assert account.daily_spend == kept and list(account.daily_spend) == list(kept)
    assert account.first_spend_day == min(kept, default=None)


def test_an_account_is_the_behaviour_cluster_criteria_read() -> None:
    account = new_account()
    account.record(bought("m1", "30.00"), derived(local_date=DAY - timedelta(days=6)))
    account.record(bought("m2", "20.00"), derived(local_date=DAY))

    assert matches(SpendInLastDays(days=7, min=Decimal("50.00")), ANONYMOUS, account, DAY)
    assert not matches(SpendInLastDays(days=6, min=Decimal("50.00")), ANONYMOUS, account, DAY)


def test_a_return_records_how_much_of_the_original_is_now_returned() -> None:
    account = new_account()
    given_back = ReturnOf(
        terminal="t1", movement_id="m1", account_version=2, returned=(Decimal(1), Decimal(0))
    )

    account.record(returned("x1", "2.50"), derived(return_of=given_back))

    assert account.returned == {("t1", "m1"): (Decimal(1), Decimal(0))}
