"""Replaying the ledger: every movement derived again from the state that held when it was
recorded gives back, bit for bit, what was stored."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import msgspec
import psycopg
import pytest
from psycopg import sql

from loyalty.bootstrap import Services
from loyalty.cli import main
from loyalty.commands.replay import replay
from loyalty.commands.schemas import Adjust
from loyalty.domain.movement import MovementType
from loyalty.domain.promotion import BudgetCap, Caps, FixedPoints, Multiplier, PointsPerAmount
from loyalty.settings import Settings
from tests.builders import Clock, base_points, line, program, purchase, redemption, return_of
from tests.test_cli import use_database


@pytest.fixture
def busy(services: Services, clock: Clock) -> Services:
    """A ledger with every kind of movement, a budget, a promotion changed midway."""
    promotions = (
        base_points(),
        base_points(
            code="double", name="Double", benefits=(Multiplier(factor=Decimal(2)),), priority=-1
        ),
        base_points(
            code="first-two",
            name="First two",
            benefits=(FixedPoints(points=7),),
            caps=Caps(budget=BudgetCap(uses=2)),
        ),
    )
    services.applier.apply(program(promotions=promotions))
    clock.advance(hours=2)
    services.desk.post(
        [
            purchase("p1", line("TV", "120.00"), line("BREAD", "3.50", quantity="2")),
            purchase("p2", line("WINE", "15.00"), card="C2"),
            purchase("p3", line("WINE", "9.99"), card="C3"),
        ]
    )
    services.desk.post([return_of("x1", "p1", line("BREAD", "1.75")), redemption("r1", pieces=3)])
    clock.advance(hours=1)
    services.applier.apply(
        program(promotions=(base_points(benefits=(PointsPerAmount(points=3),)), *promotions[1:]))
    )
    clock.advance(minutes=5)
    cancellation = msgspec.structs.replace(
        purchase("c1", at=clock.now),
        type=MovementType.REDEMPTION_CANCELLATION,
        original_movement_id="r1",
        amount=Decimal(0),
        currency="PTS",
        lines=(),
    )
    services.desk.post([purchase("p4", line("TV", "50.00"), at=clock.now), cancellation])
    services.desk.adjust(
        Adjust(
            movement_id="a1",
            card="C2",
            campaign="club",
            points=-5,
            reason="typo",
            operator="mia",
            occurred_at=clock.now,
        )
    )
    return services


def test_a_replay_of_an_untouched_ledger_is_identical(busy: Services) -> None:
    report = replay(busy.ledger)

    assert report.identical and report.first_differences == ()
    assert report.movements == 8


def test_a_replay_only_compares_the_movements_in_its_interval(busy: Services, clock: Clock) -> None:
    report = replay(busy.ledger, start=clock.now - timedelta(minutes=1))

    assert report.identical and report.movements == 3


def tamper(settings: Settings, movement_id: str, old: bytes, new: bytes) -> None:
    """Rewrites the stored event of ``movement_id`` as someone with SQL access could."""
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        table = sql.Identifier(settings.pg_schema, "ledger_events")
        rows = conn.execute(
            sql.SQL("SELECT notification_id, state FROM {} WHERE position(%s in state) > 0").format(
                table
            ),
            (f'"movement_id":"{movement_id}"'.encode(),),
        ).fetchall()
        ((notification_id, state),) = [r for r in rows if old in bytes(r[1])]
        conn.execute(
            sql.SQL("UPDATE {} SET state = %s WHERE notification_id = %s").format(table),
            (bytes(state).replace(old, new, 1), notification_id),
        )


def test_a_stored_transaction_that_the_rules_do_not_give_is_found(
    busy: Services, settings: Settings
) -> None:
    tamper(settings, "p2", b'"amount":"15"', b'"amount":"150"')

    report = replay(busy.ledger)

    assert not report.identical
    assert [(d.movement_id, d.what) for d in report.first_differences] == [("p2", "derivation")]


def test_a_stored_balance_that_does_not_follow_is_found(busy: Services, settings: Settings) -> None:
    tamper(settings, "p3", b'"points_after":', b'"points_after":1')

    report = replay(busy.ledger)

    assert [(d.movement_id, d.what) for d in report.first_differences] == [("p3", "balance")]


def test_audit_replay_prints_the_report_and_exits_1_on_a_difference(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    busy: Services,
    settings: Settings,
) -> None:
    use_database(monkeypatch, settings)

    assert main(["audit", "replay"]) == 0
    tamper(settings, "p2", b'"amount":"15"', b'"amount":"150"')
    assert main(["audit", "replay", "--from", "2026-01-01T00:00:00Z"]) == 1

    out = capsys.readouterr().out
    assert '"identical": false' in out
