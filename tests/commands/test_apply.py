"""Program as code: applying a file appends only the difference."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pytest

from loyalty.bootstrap import Services
from loyalty.cli import demo_program
from loyalty.commands.apply import ApplyReport, CardRange, read_program
from loyalty.domain import ids
from loyalty.domain.errors import CycleInNetwork, InvalidProgram
from loyalty.domain.network import Network
from loyalty.domain.promotion import PointsPerAmount
from tests.builders import Clock, base_points, chain_nodes, program


def test_applying_the_same_program_twice_changes_nothing(services: Services) -> None:
    first = services.applier.apply(program())
    second = services.applier.apply(program())

    assert first.events > 0
    assert (second.events, second.streams) == (0, 0)


def test_a_changed_promotion_becomes_a_new_version(services: Services, clock: Clock) -> None:
    services.applier.apply(program())
    clock.advance(minutes=5)

    report = services.applier.apply(
        program(promotions=(base_points(benefits=(PointsPerAmount(points=3),)),))
    )

    assert (report.events, report.streams) == (1, 1)
    promotion = services.ledger.repository.get(ids.promotion_id("base"))
    assert [v.number for v in promotion.versions] == [1, 2]  # type: ignore[attr-defined]
    assert promotion.versions[1].effective_from == clock.now  # type: ignore[attr-defined]


def test_a_moved_node_is_moved_and_nothing_else_changes(services: Services) -> None:
    services.applier.apply(program())
    moved = tuple(
        msgspec.structs.replace(n, parent="south") if n.code == "s1" else n for n in chain_nodes()
    )

    report = services.applier.apply(program(nodes=moved))

    network = services.ledger.repository.get(ids.NETWORK_ID)
    assert isinstance(network, Network)
    assert report.events == 1
    assert network.path("t1") == ("chain", "south", "s1", "t1")


def test_a_cycle_in_the_file_is_refused_and_nothing_is_written(services: Services) -> None:
    services.applier.apply(program())
    cyclic = tuple(
        msgspec.structs.replace(n, parent="s1") if n.code == "north" else n for n in chain_nodes()
    )

    with pytest.raises((CycleInNetwork, InvalidProgram)):
        services.applier.apply(program(nodes=cyclic, cards=("C4",)))

    assert services.ledger.load_all([ids.card_id("C4")]) == {}


def test_card_ranges_issue_anonymous_cards(services: Services) -> None:
    services.applier.apply(
        msgspec.structs.replace(
            program(), card_ranges=(CardRange(prefix="X", first=1, last=250, width=4),)
        )
    )

    issued = services.ledger.load_all([ids.card_id("X0001"), ids.card_id("X0250")])

    assert len(issued) == 2


def test_a_program_issuing_a_hundred_thousand_cards_is_applied_in_one_go(
    services: Services,
) -> None:
    """Pipeline mode blocked for good on appends this large (from 55,000 cards): the apply
    runs in a thread so that a hang fails the test instead of stalling the suite."""
    cards = CardRange(prefix="Y", first=1, last=100_000, width=6)
    reports: list[ApplyReport] = []
    applying = threading.Thread(
        target=lambda: reports.append(
            services.applier.apply(msgspec.structs.replace(program(), card_ranges=(cards,)))
        ),
        daemon=True,
    )

    applying.start()
    applying.join(timeout=180)

    assert not applying.is_alive(), "the apply hung"
    assert reports[0].events > 100_000
    assert len(services.ledger.load_all([ids.card_id("Y000001"), ids.card_id("Y100000")])) == 2


def test_credits_in_a_campaign_without_credits_are_refused(services: Services) -> None:
    from decimal import Decimal

    from loyalty.domain.promotion import FixedCredits

    with pytest.raises(InvalidProgram):
        services.applier.apply(
            program(
                credits=False,
                promotions=(base_points(benefits=(FixedCredits(amount=Decimal("1.00")),)),),
            )
        )


def test_the_demo_program_applies_and_reapplies_cleanly(services: Services) -> None:
    demo = read_program(demo_program())

    first = services.applier.apply(demo)
    second = services.applier.apply(demo)

    assert first.events > 1000 and second.events == 0
    assert sum(1 for n in demo.nodes if n.kind == "store") >= 20


def test_a_program_file_with_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "program.json"
    path.write_text('{"network": {"code": "n", "name": "N"}, "stores": []}')

    with pytest.raises(InvalidProgram, match="unknown field"):
        read_program(path)
