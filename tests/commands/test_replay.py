"""Replaying the ledger: every movement derived again from the state that held when it was
recorded gives back, bit for bit, what was stored."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import msgspec
import psycopg
import pytest
from psycopg import sql

from loyalty.adapters.eventstore import schema_of
from loyalty.bootstrap import Services
from loyalty.cli import main
from loyalty.commands import replay as replay_module
from loyalty.commands.apply import ClusterSpec
from loyalty.commands.customers import register
from loyalty.commands.privacy import erase
from loyalty.commands.replay import (
    Difference,
    PartReport,
    Replay,
    ReplayReport,
    Scope,
    Streams,
    last_notification_id,
    merged,
    replay,
)
from loyalty.commands.schemas import Adjust
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.cluster import Age, ClusterTerms
from loyalty.domain.customer import Profile
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


def test_the_streams_read_by_a_replay_answer_any_uuid_equal_to_their_id(
    services: Services,
) -> None:
    mapper = services.ledger.mapper
    account = Account(campaign_id=ids.campaign_id("club"), customer_id=uuid4())
    streams = Streams(mapper)
    for event in account.collect_events():
        streams.append(account.id, mapper.to_stored_event(event))
    same = UUID(str(account.id))

    assert streams[same].id == account.id and streams.get(same) is streams[account.id]
    assert (list(streams), len(streams), streams.get(uuid4())) == ([account.id], 1, None)
    with pytest.raises(KeyError):
        streams[uuid4()]


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


def test_a_stored_derivation_that_differs_only_in_its_evidence_is_found(
    busy: Services, settings: Settings
) -> None:
    """A field that neither the digest nor the balance covers: the stored bytes are compared."""
    tamper(settings, "p2", b'"receipt_messages":["', b'"receipt_messages":["Thanks! ')

    report = replay(busy.ledger)

    assert [(d.movement_id, d.what) for d in report.first_differences] == [("p2", "derivation")]


def test_a_stored_input_digest_that_the_inputs_do_not_give_is_found(
    busy: Services, settings: Settings
) -> None:
    tamper(settings, "p3", b'"input_digest":"', b'"input_digest":"0')

    report = replay(busy.ledger)

    assert [(d.movement_id, d.what) for d in report.first_differences] == [("p3", "inputs")]


def test_a_derivation_stored_before_a_field_was_added_is_no_difference(
    busy: Services, settings: Settings
) -> None:
    """Stored bytes that are not the encoding of today's derivation, but decode to it (the
    field missing takes its default): compared by value, as they always were."""
    tamper(settings, "p2", b',"unrecovered_points":0', b"")

    report = replay(busy.ledger)

    assert report.identical and report.movements == 8


def without_timing(report: ReplayReport) -> ReplayReport:
    return msgspec.structs.replace(
        report, seconds=0.0, movements_per_second=0.0, events_per_second=0.0
    )


def test_the_parts_of_a_replay_split_its_accounts(busy: Services) -> None:
    """Each part compares the movements of its own accounts; together, all of them."""
    whole = replay(busy.ledger, workers=1)
    head = last_notification_id(busy.ledger)

    parts = [
        Replay(busy.ledger, Scope(start=None, end=None, head=head, parts=2, part=p)).run()
        for p in (0, 1)
    ]

    assert [p.movements > 0 for p in parts] == [True, True]
    assert sum(p.movements for p in parts) == whole.movements == 8
    assert sum(p.events for p in parts) == whole.events


def test_a_replay_in_processes_reports_what_one_process_reports(
    busy: Services, settings: Settings, clock: Clock
) -> None:
    tamper(settings, "p2", b'"amount":"15"', b'"amount":"150"')
    tamper(settings, "p3", b'"points_after":', b'"points_after":1')
    tamper(settings, "p4", b'"input_digest":"', b'"input_digest":"0')
    since = clock.now - timedelta(minutes=1)

    everything = [without_timing(replay(busy.ledger, workers=n)) for n in (1, 3)]
    recent = [without_timing(replay(busy.ledger, start=since, workers=n)) for n in (1, 3)]

    assert everything[1] == everything[0] and recent[1] == recent[0]
    assert [(d.movement_id, d.what) for d in everything[0].first_differences] == [
        ("p2", "derivation"),
        ("p3", "balance"),
        ("p4", "inputs"),
    ]
    assert [(d.movement_id, d.what) for d in recent[0].first_differences] == [("p4", "inputs")]


def difference(notification_id: int) -> Difference:
    return Difference(
        notification_id=notification_id,
        account_id=UUID(int=notification_id % 2),
        movement_id=f"m{notification_id}",
        what="balance",
        detail="",
    )


def test_the_parts_reports_merge_into_the_first_differences_in_log_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_module, "MAX_REPORTED", 3)
    parts = [
        PartReport(
            movements=10,
            withheld=0,
            events=20,
            differences=3,
            first_differences=tuple(difference(n) for n in numbers),
        )
        for numbers in ((2, 6, 8), (1, 5, 9))
    ]

    report = merged(parts, seconds=1.0)

    assert [d.notification_id for d in report.first_differences] == [1, 2, 5]
    assert (report.movements, report.events, report.differences) == (20, 40, 6)


def test_an_erased_customer_replays_in_processes_too(services: Services, clock: Clock) -> None:
    """Their movements earned with a cluster of personal facts that no longer open."""
    seniors = ClusterTerms(name="Over 60", criteria=Age(min=60))
    services.applier.apply(
        program(
            clusters=(ClusterSpec(code="seniors", terms=seniors),),
            promotions=(base_points(code="silver", name="Silver", cluster="seniors"),),
        )
    )
    clock.advance(hours=2)
    register(
        services.ledger,
        "C1",
        Profile(first_name="Ada", birth_date=date(1950, 1, 2)),
        date(2026, 5, 1),
    )
    services.desk.post([purchase("p1", line("TV", "40.00")), purchase("p2", card="C2")])
    erase(services.ledger, "C1", "operator:dpo", "request 2026-118")

    report = replay(services.ledger, workers=3)  # C1's account falls to a spawned process

    assert report.identical and (report.movements, report.withheld) == (2, 1)


def test_movement_events_are_plain_json_that_the_replay_decodes_itself(services: Services) -> None:
    """The replay decodes stored movements without the mapper (to keep the derivation's
    bytes): an upcaster, a personal field or a cipher would need the mapper's decoding."""
    mapper = services.ledger.mapper

    assert getattr(Account.MovementRecorded, "class_version", 1) == 1
    assert schema_of(Account.MovementRecorded).personal == {}
    assert (mapper.cipher, mapper.compressor) == (None, None)
