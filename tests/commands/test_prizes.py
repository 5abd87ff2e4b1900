"""Prize redemptions against the real PostgreSQL: points and stock move together or not
at all, a prize is never oversold, a cancellation gives both back once."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import msgspec
import pytest

from loyalty.bootstrap import Services, build_services
from loyalty.commands.movements import Recorded
from loyalty.commands.prizes import (
    Redeem,
    cancel,
    find_redemption,
    load_prize,
    redeem,
)
from loyalty.commands.schemas import MovementReceipt
from loyalty.domain import ids
from loyalty.domain.errors import (
    AlreadyCancelled,
    InsufficientPoints,
    InvalidMovement,
    NoCampaign,
    OutOfStock,
    PrizeNotAvailable,
    UnknownPrize,
    UnknownRedemption,
)
from loyalty.domain.movement import MovementType
from loyalty.domain.prize import Prize
from loyalty.settings import Settings
from tests.builders import Clock, line, prize, program, purchase, redemption


def receipt(outcome: object) -> MovementReceipt:
    assert isinstance(outcome, Recorded), outcome
    return msgspec.json.decode(outcome.body, type=MovementReceipt)


def stock_of(services: Services, code: str = "voucher") -> Prize:
    return load_prize(services.ledger, ids.campaign_id("club"), code)


def balance(services: Services, card: str = "C1") -> int:
    return services.desk.card_view(card, "t1").balance.points


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    prizes = (
        prize(),
        prize("mug", points=30, stock=2),
        prize("summer-hat", points=10, valid_from=date(2026, 7, 1)),
    )
    services.applier.apply(program(prizes=prizes))
    clock.advance(hours=2)
    services.desk.post([purchase("p1", line("TV", "100.00"))])
    return services


def by_api(redemption_id: str, prize: str = "voucher", quantity: int = 1, **extra: str) -> Redeem:
    return Redeem(
        redemption_id=redemption_id,
        card=extra.pop("card", "C1"),
        campaign="club",
        prize=prize,
        quantity=quantity,
        **extra,  # type: ignore[arg-type]
    )


def test_a_redemption_at_a_till_spends_the_points_and_takes_the_pieces(chain: Services) -> None:
    (outcome,) = chain.desk.post([redemption("r1", pieces=3)])

    assert receipt(outcome).balance.points == 70
    assert (stock_of(chain).stock, stock_of(chain).redeemed) == (97, 3)


def test_a_short_balance_takes_no_piece_and_a_short_stock_spends_no_point(chain: Services) -> None:
    too_dear, too_many = chain.desk.post(
        [redemption("r1", pieces=11), redemption("r2", pieces=3, prize="mug", each=30)]
    )

    assert isinstance(too_dear, InsufficientPoints)
    assert isinstance(too_many, OutOfStock) and too_many.context["stock"] == 2
    assert balance(chain) == 100
    assert stock_of(chain).stock == 100 and stock_of(chain, "mug").stock == 2


def test_a_till_must_name_a_prize_of_the_campaign_at_its_price(chain: Services) -> None:
    unknown, wrong_price, no_lines = chain.desk.post(
        [
            redemption("r1", prize="yacht"),
            redemption("r2", prize="mug", each=25),
            msgspec.structs.replace(redemption("r3"), lines=(), amount=Decimal(10)),
        ]
    )

    assert isinstance(unknown, UnknownPrize) and unknown.context["prize"] == "yacht"
    assert isinstance(wrong_price, InvalidMovement)
    assert wrong_price.context["field"] == "lines[0].unit_price"
    assert isinstance(no_lines, InvalidMovement) and no_lines.context["field"] == "lines"


def test_a_prize_is_not_redeemed_outside_its_validity(chain: Services) -> None:
    (outcome,) = chain.desk.post([redemption("r1", prize="summer-hat")])

    assert isinstance(outcome, PrizeNotAvailable)


def test_concurrent_redemptions_never_oversell(
    settings: Settings, chain: Services, clock: Clock
) -> None:
    chain.desk.post(
        [purchase(f"p-{card}", line("TV", "100.00"), card=card) for card in ("C2", "C3")]
    )
    desks = [chain, *(build_services(settings, clock) for _ in range(2))]
    results: list[object] = []
    try:

        def take(index: int, services: Services) -> None:
            command = redemption(f"m{index}", prize="mug", each=30, card=f"C{index + 1}")
            results.extend(services.desk.post([command]))

        threads = [threading.Thread(target=take, args=(i, s)) for i, s in enumerate(desks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for other in desks[1:]:
            other.close()

    assert sum(isinstance(r, Recorded) for r in results) == 2
    assert [type(r) for r in results if not isinstance(r, Recorded)] == [OutOfStock]
    assert stock_of(chain, "mug").stock == 0
    spent = sum(100 - balance(chain, card) for card in ("C1", "C2", "C3"))
    assert spent == 60


def test_a_redemption_over_the_prize_api_is_idempotent(chain: Services) -> None:
    first = redeem(chain.desk, by_api("web-1", quantity=2), by="client:app")
    again = redeem(chain.desk, by_api("web-1", quantity=2), by="client:app")
    other = redeem(chain.desk, by_api("web-1", quantity=3), by="client:app")

    assert isinstance(first, Recorded) and first.status == 201
    assert isinstance(again, Recorded) and (again.status, again.body) == (200, first.body)
    assert other.code == "idempotency_conflict"
    assert balance(chain) == 80 and stock_of(chain).stock == 98


def test_a_redemption_at_a_till_of_another_campaign_or_off_its_dates_is_refused(
    chain: Services, clock: Clock
) -> None:
    wrong_till = redeem(chain.desk, by_api("web-1", terminal="nowhere"), by="client:app")
    too_early = redeem(
        chain.desk,
        by_api("web-2", occurred_at=clock.now.replace(year=2025)),  # type: ignore[arg-type]
        by="client:app",
    )

    assert wrong_till.code == "unknown_node"
    assert isinstance(too_early, NoCampaign)


def test_a_cancellation_gives_back_the_points_and_the_pieces_once(chain: Services) -> None:
    redeem(chain.desk, by_api("web-1", prize="mug", quantity=2), by="client:app")
    found = find_redemption(chain.desk, "web-1", None)
    assert (balance(chain), stock_of(chain, "mug").stock) == (40, 0)

    first = cancel(chain.desk, found, "changed their mind", by="operator:mia")
    again = cancel(chain.desk, found, "clicked twice", by="operator:mia")

    assert receipt(first).balance.points == 100
    assert isinstance(again, Recorded) and (again.status, again.body) == (200, first.body)
    assert stock_of(chain, "mug").stock == 2 and stock_of(chain, "mug").redeemed == 0
    assert find_redemption(chain.desk, "web-1", None).cancelled


def test_a_till_cancels_its_own_redemption_and_the_api_then_refuses(chain: Services) -> None:
    chain.desk.post([redemption("r1", pieces=4)])
    cancellation = msgspec.structs.replace(
        purchase("c1"),
        type=MovementType.REDEMPTION_CANCELLATION,
        original_movement_id="r1",
        amount=Decimal(0),
        currency="PTS",
        lines=(),
    )

    (at_till,) = chain.desk.post([cancellation])
    late = cancel(chain.desk, find_redemption(chain.desk, "r1", "t1"), "again", by="operator:mia")

    assert receipt(at_till).balance.points == 100
    assert [t.amount for t in receipt(at_till).transactions] == [Decimal(40)]
    assert isinstance(late, AlreadyCancelled)
    assert stock_of(chain).stock == 100


def test_only_a_prize_redemption_can_be_cancelled(chain: Services) -> None:
    with pytest.raises(UnknownRedemption):
        find_redemption(chain.desk, "p1", "t1")
    with pytest.raises(UnknownRedemption):
        find_redemption(chain.desk, "web-404", None)


def test_a_program_file_declares_prizes_and_leaves_their_stock_alone(
    services: Services, clock: Clock
) -> None:
    services.applier.apply(program())
    clock.advance(hours=2)
    services.desk.post([purchase("p1", line("TV", "100.00")), redemption("r1", pieces=2)])

    again = services.applier.apply(program())
    cheaper = services.applier.apply(program(prizes=(prize(points=5),)))

    assert again.events == 0
    assert cheaper.events == 1
    assert stock_of(services).stock == 98 and stock_of(services).terms.points == 5
