"""The POS write path against the real PostgreSQL: groups, idempotency, concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import msgspec
import psycopg
import pytest
from psycopg import sql

from loyalty.bootstrap import Services, build_services
from loyalty.commands import movements
from loyalty.commands.admin import block_card, replace_card
from loyalty.commands.customers import register
from loyalty.commands.movements import Recorded, RecordingFailed
from loyalty.commands.schemas import Adjust, MovementReceipt
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.card import CardStatus
from loyalty.domain.customer import Profile
from loyalty.domain.errors import (
    CardBlocked,
    CardReplaced,
    DuplicateCode,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidMovement,
    NoCampaign,
    TerminalClosed,
    UnknownCard,
    UnknownNode,
    UnknownOriginalMovement,
)
from loyalty.domain.movement import Derivation, Movement, MovementType
from loyalty.domain.promotion import (
    BudgetCap,
    Caps,
    FixedPoints,
    Period,
    PeriodCap,
    PointsPerAmount,
    Where,
)
from loyalty.rules.engine import Context
from loyalty.settings import Settings
from tests.builders import (
    Clock,
    base_points,
    chain_nodes,
    line,
    program,
    purchase,
    redemption,
    return_of,
)


def receipt(outcome: object) -> MovementReceipt:
    assert isinstance(outcome, Recorded), outcome
    return msgspec.json.decode(outcome.body, type=MovementReceipt)


def count(settings: Settings, table: str) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(settings.pg_schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    services.applier.apply(program())
    clock.advance(hours=2)
    return services


def test_a_purchase_earns_points_and_answers_the_receipt(chain: Services) -> None:
    (outcome,) = chain.desk.post([purchase("r1", line("BREAD", "12.50"))])

    assert outcome.status == 201  # type: ignore[union-attr]
    answer = receipt(outcome)
    assert [(t.kind, t.amount, t.promotion, t.promotion_version) for t in answer.transactions] == [
        ("points", Decimal(12), "base", 1)
    ]
    assert answer.balance.points == 12


def test_a_retry_answers_200_with_the_identical_body_and_appends_nothing(
    chain: Services, settings: Settings
) -> None:
    (first,) = chain.desk.post([purchase("r1")])
    events = count(settings, "ledger_events")

    (again,) = chain.desk.post([purchase("r1")])

    assert isinstance(first, Recorded) and isinstance(again, Recorded)
    assert (again.status, again.body) == (200, first.body)
    assert count(settings, "ledger_events") == events


def test_the_same_movement_id_with_another_body_is_a_conflict(chain: Services) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "10.00"))])

    (outcome,) = chain.desk.post([purchase("r1", line("BREAD", "11.00"))])

    assert isinstance(outcome, IdempotencyConflict)


def test_a_movement_twice_in_one_group_is_recorded_once(
    chain: Services, settings: Settings
) -> None:
    first, second, other = chain.desk.post(
        [purchase("r1"), purchase("r1"), purchase("r1", line("MILK", "3.00"))]
    )

    assert isinstance(first, Recorded) and first.status == 201
    assert second == Recorded(200, first.body)
    assert isinstance(other, IdempotencyConflict)
    assert count(settings, "movement_keys") == 1


def test_a_refused_movement_can_be_sent_again_corrected_in_the_same_group(
    chain: Services,
) -> None:
    refused, corrected = chain.desk.post([purchase("r1", card="NOPE"), purchase("r1")])

    assert isinstance(refused, UnknownCard)
    assert isinstance(corrected, Recorded) and corrected.status == 201


def test_one_bad_movement_does_not_spoil_its_group(chain: Services) -> None:
    good, bad, also_good = chain.desk.post(
        [purchase("r1"), purchase("r2", card="NOPE"), purchase("r3", card="C2")]
    )

    assert isinstance(good, Recorded) and isinstance(also_good, Recorded)
    assert isinstance(bad, UnknownCard)


def test_a_fault_on_one_movement_fails_it_alone_and_leaves_no_trace(
    chain: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_derive = movements.derive

    def derive_failing_on_c2(movement: Movement, context: Context) -> Derivation:
        if movement.card == "C2":
            raise ArithmeticError("a fault of ours")
        return real_derive(movement, context)

    monkeypatch.setattr(movements, "derive", derive_failing_on_c2)
    first, faulty, last = chain.desk.post(
        [purchase("r1"), purchase("r2", card="C2"), purchase("r3", line("MILK", "5.00"))]
    )
    monkeypatch.undo()
    (after,) = chain.desk.post([purchase("r4")])

    assert isinstance(faulty, RecordingFailed) and faulty.status == 500
    assert [receipt(o).balance.points for o in (first, last, after)] == [10, 15, 25]


def test_movements_of_one_card_in_one_group_build_on_each_other(chain: Services) -> None:
    outcomes = chain.desk.post([purchase(f"r{i}", line("BREAD", "10.00")) for i in range(5)])

    assert [receipt(o).balance.points for o in outcomes] == [10, 20, 30, 40, 50]


def test_an_unknown_terminal_is_refused(chain: Services) -> None:
    (outcome,) = chain.desk.post([purchase("r1", terminal="t9")])

    assert isinstance(outcome, UnknownNode)


def test_a_closed_store_closes_its_terminals(chain: Services) -> None:
    nodes = chain_nodes()
    closed = tuple(msgspec.structs.replace(n, closed=True) if n.code == "s1" else n for n in nodes)
    chain.applier.apply(program(nodes=closed))

    (outcome,) = chain.desk.post([purchase("r1", terminal="t1")])

    assert isinstance(outcome, TerminalClosed)


def test_a_terminal_outside_every_campaign_is_refused(services: Services, clock: Clock) -> None:
    services.applier.apply(program(campaign_nodes=("north",)))
    clock.advance(hours=2)

    (outcome,) = services.desk.post([purchase("r1", terminal="t3")])

    assert isinstance(outcome, NoCampaign)


def test_a_far_future_movement_is_refused(chain: Services, clock: Clock) -> None:
    (outcome,) = chain.desk.post([purchase("r1", at=clock.now + timedelta(hours=1))])

    assert isinstance(outcome, InvalidMovement) and outcome.context["field"] == "occurred_at"


def test_a_blocked_card_cannot_earn(chain: Services) -> None:
    block_card(chain.ledger, "C1", "lost")

    (outcome,) = chain.desk.post([purchase("r1")])

    assert isinstance(outcome, CardBlocked)


def test_the_balance_follows_a_replaced_card(chain: Services) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "30.00"))])
    replace_card(chain.ledger, "C1", "C1-NEW")

    old, new = chain.desk.post([purchase("r2"), purchase("r3", card="C1-NEW")])

    assert isinstance(old, CardReplaced)
    assert receipt(new).balance.points == 40


def test_a_card_cannot_be_replaced_by_a_card_that_already_exists(chain: Services) -> None:
    with pytest.raises(DuplicateCode):
        replace_card(chain.ledger, "C1", "C2")

    assert chain.desk.card_view("C1", "t1").status is CardStatus.ACTIVE


def test_an_anonymous_card_keeps_its_balance_when_registered(chain: Services, clock: Clock) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "25.00"))])
    register(chain.ledger, "C1", Profile(first_name="Ada", last_name="L"), clock.now.date())

    (outcome,) = chain.desk.post([purchase("r2", line("BREAD", "5.00"))])

    assert receipt(outcome).balance.points == 30
    assert chain.desk.card_view("C1", "t1").registered


def test_a_return_reverses_the_points_of_the_returned_lines(chain: Services) -> None:
    chain.desk.post([purchase("r1", line("WINE", "40.00", "2"), line("BREAD", "10.00"))])

    (outcome,) = chain.desk.post([return_of("x1", "r1", line("WINE", "20.00", "1"))])

    answer = receipt(outcome)
    assert [t.amount for t in answer.transactions] == [Decimal(-20)]
    assert answer.balance.points == 30


def test_a_return_in_the_same_group_as_its_purchase_finds_it(chain: Services) -> None:
    bought, returned = chain.desk.post(
        [
            purchase("r1", line("WINE", "40.00", "2")),
            return_of("x1", "r1", line("WINE", "40.00", "2")),
        ]
    )

    assert receipt(bought).balance.points == 40
    assert receipt(returned).balance.points == 0


def test_a_return_of_an_unknown_movement_is_refused(chain: Services) -> None:
    (outcome,) = chain.desk.post([return_of("x1", "nope", line("WINE", "20.00"))])

    assert isinstance(outcome, UnknownOriginalMovement)


def test_a_prize_redemption_spends_points_but_never_below_zero(chain: Services) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "50.00"))])

    short, spent = chain.desk.post([redemption("p1", pieces=6), redemption("p2", pieces=5)])

    assert isinstance(short, InsufficientPoints)
    assert receipt(spent).balance.points == 0


def test_an_adjustment_corrects_a_balance_and_is_idempotent(chain: Services, clock: Clock) -> None:
    command = Adjust(
        movement_id="adj-1",
        card="C1",
        campaign="club",
        points=25,
        reason="goodwill",
        operator="anna",
        occurred_at=clock.now,
    )

    first, again = chain.desk.adjust(command), chain.desk.adjust(command)

    assert receipt(first).balance.points == 25
    assert isinstance(again, Recorded) and again.status == 200


def test_terminals_cannot_post_adjustments(chain: Services) -> None:
    (outcome,) = chain.desk.post([purchase("r1", type=MovementType.ADJUSTMENT)])

    assert isinstance(outcome, InvalidMovement) and outcome.context["field"] == "type"


def test_a_budget_caps_a_promotion_across_customers(services: Services, clock: Clock) -> None:
    capped = base_points(
        code="bonus",
        name="Bonus for the first two",
        benefits=(FixedPoints(points=10),),
        caps=Caps(budget=BudgetCap(uses=2)),
    )
    services.applier.apply(program(promotions=(capped,)))
    clock.advance(hours=2)

    outcomes = services.desk.post(
        [purchase("r1", card="C1"), purchase("r2", card="C2"), purchase("r3", card="C3")]
    )

    assert [receipt(o).balance.points for o in outcomes] == [10, 10, 0]


def test_concurrent_writers_never_double_spend(
    settings: Settings, services: Services, clock: Clock
) -> None:
    services.applier.apply(program())
    clock.advance(hours=2)
    services.desk.post([purchase("r1", line("BREAD", "100.00"))])
    others = [build_services(settings, clock) for _ in range(3)]
    results: list[object] = []
    try:

        def spend(index: int, desk_services: Services) -> None:
            results.extend(
                desk_services.desk.post([redemption(f"p{index}", pieces=4, terminal="t1")])
            )

        threads = [
            threading.Thread(target=spend, args=(i, s)) for i, s in enumerate([services, *others])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for other in others:
            other.close()

    accepted = [r for r in results if isinstance(r, Recorded)]
    assert len(accepted) == 2
    assert all(isinstance(r, InsufficientPoints) for r in results if not isinstance(r, Recorded))
    assert services.desk.card_view("C1", "t1").balance.points == 20


def test_a_welcome_bonus_fires_once_per_customer(services: Services, clock: Clock) -> None:
    welcome = base_points(
        code="welcome",
        name="Welcome",
        where=Where(movement_types=(MovementType.REGISTRATION,)),
        benefits=(FixedPoints(points=100),),
        caps=Caps(per_customer=PeriodCap(period=Period.EVER, uses=1)),
    )
    services.applier.apply(program(promotions=(base_points(), welcome)))
    clock.advance(hours=2)
    registration = lambda mid: msgspec.structs.replace(  # noqa: E731
        purchase(mid), type=MovementType.REGISTRATION, amount=Decimal(0), lines=()
    )

    first, second = services.desk.post([registration("g1"), registration("g2")])

    assert receipt(first).balance.points == 100
    assert receipt(second).balance.points == 100


def test_a_new_promotion_version_applies_from_its_effective_time_only(
    services: Services, clock: Clock
) -> None:
    services.applier.apply(program())
    before = clock.now + timedelta(minutes=30)
    clock.advance(hours=2)
    doubled = base_points(benefits=(PointsPerAmount(points=2),))
    services.applier.apply(program(promotions=(doubled,)))
    clock.advance(minutes=1)

    late, now = services.desk.post(
        [
            purchase("late", line("BREAD", "10.00"), at=before),
            purchase("now", line("BREAD", "10.00"), card="C2", at=clock.now),
        ]
    )

    assert [(t.amount, t.promotion_version) for t in receipt(late).transactions] == [
        (Decimal(10), 1)
    ]
    assert [(t.amount, t.promotion_version) for t in receipt(now).transactions] == [
        (Decimal(20), 2)
    ]


def test_a_program_change_made_by_another_process_applies_to_the_next_group(
    settings: Settings, chain: Services, clock: Clock
) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "10.00"))])
    elsewhere = build_services(settings, clock)
    try:
        elsewhere.applier.apply(
            program(promotions=(base_points(benefits=(PointsPerAmount(points=3),)),))
        )
    finally:
        elsewhere.close()
    clock.advance(minutes=1)

    (outcome,) = chain.desk.post([purchase("r2", line("BREAD", "10.00"), at=clock.now)])

    assert [(t.amount, t.promotion_version) for t in receipt(outcome).transactions] == [
        (Decimal(30), 2)
    ]


def test_an_account_written_by_another_process_is_caught_up_before_deciding(
    settings: Settings, chain: Services, clock: Clock
) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "10.00"))])
    elsewhere = build_services(settings, clock)
    try:
        elsewhere.desk.post([purchase("r2", line("BREAD", "10.00"))])
    finally:
        elsewhere.close()

    (outcome,) = chain.desk.post([purchase("r3", line("BREAD", "10.00"))])

    assert receipt(outcome).balance.points == 30


def test_a_writer_that_keeps_few_aggregates_reads_the_rest_back_from_the_log(
    settings: Settings, chain: Services, clock: Clock
) -> None:
    forgetful = build_services(msgspec.structs.replace(settings, aggregate_cache=1), clock)
    try:
        outcomes = [
            outcome
            for round in range(3)
            for card in ("C1", "C2", "C3")
            for outcome in forgetful.desk.post(
                [purchase(f"{card}-{round}", line("BREAD", "10.00"), card=card)]
            )
        ]
        cached = len(forgetful.desk.cache)
    finally:
        forgetful.close()

    assert [receipt(o).balance.points for o in outcomes] == [10] * 3 + [20] * 3 + [30] * 3
    assert cached == 1


def test_the_stored_event_records_the_promotion_versions_and_input_digest(chain: Services) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "10.00"))])

    account_id = ids.account_id(ids.campaign_id("club"), ids.customer_id_for_card("C1"))
    account = chain.ledger.repository.get(account_id)
    (recorded,) = [
        e for e in chain.ledger.events.get(account_id) if isinstance(e, Account.MovementRecorded)
    ]

    assert isinstance(account, Account) and account.points == 10
    assert [(ref.id, ref.code, ref.version) for ref in recorded.derivation.fired] == [
        (ids.promotion_id("base"), "base", 1)
    ]
    assert len(recorded.derivation.input_digest) == 64
