"""Evaluating cluster memberships: dynamic clusters follow behaviour, static ones stay as
they were frozen, erased customers are never members, every evaluation is in the ledger,
and the sizes agree with the scan that counts a cluster's size."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from loyalty.bootstrap import Services
from loyalty.commands.apply import ClusterSpec, CustomerSpec, ProgramFile, read_program
from loyalty.commands.cluster_size import cluster_size
from loyalty.commands.clusters import define_cluster
from loyalty.commands.customers import move_home_store
from loyalty.commands.memberships import (
    Evaluation,
    evaluate_cluster,
    evaluate_dynamic_clusters,
)
from loyalty.commands.privacy import erase
from loyalty.commands.program import ProgramCache
from loyalty.domain import ids
from loyalty.domain.cluster import (
    City,
    ClusterTerms,
    Criterion,
    MembershipKind,
    PurchaseCount,
)
from loyalty.domain.customer import Profile
from loyalty.domain.errors import ClusterFrozen, ClusterNotInForce
from loyalty.domain.membership import ClusterMembership, members_digest
from loyalty.projections.cluster_members import MemberRow, members_of
from tests.builders import Clock, line, program, purchase

TODAY = date(2026, 6, 1)
HOMES = ("s1", "s1", "s2", "s3", None)
CARD_OF = {ids.customer_id_for_card(f"K{n}"): f"K{n}" for n in range(len(HOMES))}


def cluster(
    code: str, criteria: Criterion, membership: MembershipKind = MembershipKind.DYNAMIC
) -> ClusterSpec:
    terms = ClusterTerms(name=code.title(), criteria=criteria, membership=membership)
    return ClusterSpec(code=code, terms=terms)


def customer(n: int) -> CustomerSpec:
    return CustomerSpec(
        cards=(f"K{n}",),
        profile=Profile(first_name=f"N{n}", city="Milano" if n % 2 == 0 else "Roma"),
        signed_up_on=TODAY,
        home_store=HOMES[n],
    )


CLUSTERS = (
    cluster("buyers", PurchaseCount(min=1)),
    cluster("first-buyers", PurchaseCount(min=1), MembershipKind.STATIC),
    cluster("milanesi", City(values=("Milano",))),
)


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    """Five customers K0..K4 (home stores s1, s1, s2, s3, none); the even ones live in
    Milano; K0 bought once. Clusters: buyers (dynamic), first-buyers (static), milanesi."""
    services.applier.apply(the_program())
    clock.advance(hours=2)
    buy(services, "p0", "K0")
    return services


def the_program() -> ProgramFile:
    people = tuple(customer(n) for n in range(len(HOMES)))
    return program(customers=people, cards=(), clusters=CLUSTERS)


def buy(services: Services, movement_id: str, card: str) -> None:
    services.desk.post([purchase(movement_id, line("TV", "9.00"), card=card)])


def evaluate(services: Services, clock: Clock, code: str) -> Evaluation:
    return evaluate_cluster(services.ledger, code, TODAY, "test", now=clock())


def daily_run(services: Services, clock: Clock) -> dict[str, Evaluation]:
    found = evaluate_dynamic_clusters(services.ledger, TODAY, "timer", now=clock())
    return {e.cluster: e for e in found}


def members(services: Services, code: str) -> list[MemberRow]:
    with services.ledger.ledger_recorder.datastore.transaction() as curs:
        rows, _ = members_of(curs, services.settings, code, None, 500, 0)
    return rows


def member_cards(services: Services, code: str) -> set[str]:
    return {CARD_OF[row.customer_id] for row in members(services, code)}


def test_a_dynamic_cluster_follows_what_customers_do(chain: Services, clock: Clock) -> None:
    first = evaluate(chain, clock, "buyers")
    buy(chain, "p1", "K1")
    buy(chain, "p2", "K2")

    second = evaluate(chain, clock, "buyers")

    assert (first.size, first.joined, first.departed) == (1, 1, 0)
    assert (second.size, second.joined, second.departed) == (3, 2, 0)
    assert member_cards(chain, "buyers") == {"K0", "K1", "K2"}


def test_a_static_clusters_members_stay_as_they_were_frozen(chain: Services, clock: Clock) -> None:
    frozen = daily_run(chain, clock)["first-buyers"]
    buy(chain, "p1", "K1")

    later = daily_run(chain, clock)

    assert (frozen.membership, frozen.size) == (MembershipKind.STATIC, 1)
    assert set(later) == {"buyers", "milanesi"}
    assert member_cards(chain, "first-buyers") == {"K0"}
    assert member_cards(chain, "buyers") == {"K0", "K1"}


def test_a_static_cluster_refuses_a_second_evaluation(chain: Services, clock: Clock) -> None:
    evaluate(chain, clock, "first-buyers")

    with pytest.raises(ClusterFrozen) as refused:
        evaluate(chain, clock, "first-buyers")

    assert refused.value.context["version"] == 1


def test_a_new_static_version_is_frozen_by_the_next_evaluation(
    chain: Services, clock: Clock
) -> None:
    daily_run(chain, clock)
    buy(chain, "p1", "K1")
    again = (*CLUSTERS[:1], cluster("first-buyers", PurchaseCount(min=0), MembershipKind.STATIC))
    chain.applier.apply(program(cards=(), clusters=again))

    refrozen = daily_run(chain, clock)["first-buyers"]

    assert (refrozen.version, refrozen.size, refrozen.joined) == (2, 5, 4)
    assert member_cards(chain, "first-buyers") == set(CARD_OF.values())


def test_erased_customers_are_members_no_more(chain: Services, clock: Clock) -> None:
    daily_run(chain, clock)

    erase(chain.ledger, "K0", "test", "asked to be forgotten")

    assert member_cards(chain, "first-buyers") == set()
    assert member_cards(chain, "milanesi") == {"K2", "K4"}
    assert evaluate(chain, clock, "milanesi").departed == 1


def test_a_frozen_list_follows_its_members_home_stores(chain: Services, clock: Clock) -> None:
    daily_run(chain, clock)
    move_home_store(chain.ledger, "K0", "s3", "test")

    daily_run(chain, clock)

    assert [row.home_store for row in members(chain, "first-buyers")] == ["s3"]


def test_every_evaluation_is_recorded_in_the_ledger(chain: Services, clock: Clock) -> None:
    evaluation = evaluate(chain, clock, "milanesi")

    stream = ClusterMembership.create_id("milanesi")
    (_, recorded) = chain.ledger.repository.event_store.get(stream)

    assert isinstance(recorded, ClusterMembership.Evaluated)
    assert (recorded.version, recorded.evaluated_on, recorded.size, recorded.by) == (
        1,
        TODAY,
        3,
        "test",
    )
    milanesi = [ids.customer_id_for_card(card) for card in ("K0", "K2", "K4")]
    assert recorded.members_digest == evaluation.members_digest == members_digest(milanesi)


def test_sizes_agree_with_the_count_of_a_clusters_size(chain: Services, clock: Clock) -> None:
    buy(chain, "p1", "K3")
    evaluations = daily_run(chain, clock)
    program_now = ProgramCache(chain.ledger).current()

    counted = {
        code: cluster_size(chain.ledger, program_now, code, TODAY, None, clock()).members
        for code in evaluations
    }

    assert (
        {code: e.size for code, e in evaluations.items()}
        == counted
        == {
            "buyers": 2,
            "first-buyers": 2,
            "milanesi": 3,
        }
    )


def test_a_cluster_whose_first_version_is_yet_to_come_has_no_members_to_evaluate(
    chain: Services, clock: Clock
) -> None:
    later = cluster("romani", City(values=("Roma",)))
    define_cluster(chain.ledger, later, clock() + timedelta(days=2), clock())

    with pytest.raises(ClusterNotInForce):
        evaluate(chain, clock, "romani")
    assert "romani" not in daily_run(chain, clock)


def test_a_program_file_declares_a_static_cluster(tmp_path: Path) -> None:
    path = tmp_path / "program.toml"
    path.write_text(
        '[network]\ncode = "chain"\nname = "Chain"\n\n[[clusters]]\ncode = "founders"\n'
        '[clusters.terms]\nname = "Founders"\nmembership = "static"\n'
        'criteria = { kind = "registered" }\n'
    )

    (founders,) = read_program(path).clusters

    assert founders.terms.membership is MembershipKind.STATIC


def test_applying_a_program_with_a_static_cluster_again_changes_nothing(
    chain: Services,
) -> None:
    report = chain.applier.apply(the_program())

    assert report.events == 0
