"""Backoffice API, campaigns and clusters: seen by whoever they reach, changed within one's
scope (clusters by admins and managers), every change keeping the past; and the size of a
cluster, counted as the rule engine would judge each customer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.commands.apply import ClusterSpec, CustomerSpec
from loyalty.domain.cluster import Age, ClusterTerms
from loyalty.domain.customer import Profile
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, as_json, line, program, purchase, terminal_key


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


def test_a_campaign_on_the_whole_network_is_seen_with_its_promotions(
    client: TestClient[Any],
) -> None:
    page = client.get("/api/v1/backoffice/campaigns", headers=bearer(client, "sam")).json()

    (campaign,) = page["items"]
    assert (campaign["code"], campaign["promotions"], campaign["terms"]["nodes"]) == (
        "club",
        ["base"],
        ["chain"],
    )


def test_an_unknown_campaign_or_cluster_answers_404(client: TestClient[Any]) -> None:
    sam = bearer(client, "sam")

    campaign = client.get("/api/v1/backoffice/campaigns/nope", headers=sam)
    cluster = client.get("/api/v1/backoffice/clusters/nope", headers=sam)

    assert campaign.json()["code"] == "unknown_campaign"
    assert cluster.json()["code"] == "unknown_cluster"


def test_clusters_are_listed_with_their_versions(client: TestClient[Any]) -> None:
    young = ClusterSpec(code="young", terms=ClusterTerms(name="Under 30", criteria=Age(max=29)))
    client.app.state.services.applier.apply(program(clusters=(young,)))

    page = client.get("/api/v1/backoffice/clusters", headers=bearer(client, "mia")).json()

    (cluster,) = page["items"]
    assert (cluster["code"], cluster["name"], len(cluster["versions"])) == ("young", "Under 30", 1)
    assert cluster["versions"][0]["terms"]["criteria"] == {"kind": "age", "min": None, "max": 29}


CAMPAIGNS = "/api/v1/backoffice/campaigns"
CLUSTERS = "/api/v1/backoffice/clusters"
TODAY = "2026-06-01"
"""The clock's day (``tests.builders.START``)."""


def campaign_terms(name: str, *nodes: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "nodes": list(nodes), "starts_on": TODAY, **extra}


def launch(client: TestClient[Any], who: str, code: str, *nodes: str, **extra: Any) -> Any:
    body = {"campaign": {"code": code, "terms": campaign_terms(code.title(), *nodes, **extra)}}
    return client.post(CAMPAIGNS, json=body, headers=bearer(client, who))


def campaign_codes(client: TestClient[Any], who: str) -> list[str]:
    page = client.get(CAMPAIGNS, headers=bearer(client, who)).json()
    return [c["code"] for c in page["items"]]


def test_a_store_manager_launches_a_campaign_on_their_store(client: TestClient[Any]) -> None:
    launched = launch(client, "sam", "s1-club", "s1", ends_on="2026-12-31")

    assert launched.status_code == 201, launched.text
    assert (launched.json()["name"], launched.json()["terms"]["nodes"]) == ("S1-Club", ["s1"])
    assert campaign_codes(client, "sam") == ["club", "s1-club"]
    assert campaign_codes(client, "dino") == ["club", "s1-club"]  # s1 lies in north


def test_a_campaign_out_of_reach_is_neither_seen_nor_changed(client: TestClient[Any]) -> None:
    assert launch(client, "root", "south-club", "s3").status_code == 201
    sam = bearer(client, "sam")

    seen = client.get(f"{CAMPAIGNS}/south-club", headers=sam)
    changed = client.put(
        f"{CAMPAIGNS}/south-club", json={"terms": campaign_terms("Mine", "s1")}, headers=sam
    )
    ended = client.post(f"{CAMPAIGNS}/south-club/end", json={}, headers=sam)

    assert campaign_codes(client, "sam") == ["club"]
    assert [r.json()["code"] for r in (seen, changed, ended)] == ["unknown_campaign"] * 3
    assert client.get(f"{CAMPAIGNS}/south-club", headers=bearer(client, "root")).json()["terms"][
        "nodes"
    ] == ["s3"]


def test_a_store_manager_cannot_change_a_campaign_that_reaches_beyond_their_store(
    client: TestClient[Any],
) -> None:
    sam = bearer(client, "sam")

    renamed = client.put(
        f"{CAMPAIGNS}/club", json={"terms": campaign_terms("Sam's club", "chain")}, headers=sam
    )
    ended = client.post(f"{CAMPAIGNS}/club/end", json={}, headers=sam)
    elsewhere = launch(client, "sam", "s2-club", "s2")

    assert (renamed.status_code, renamed.json()["code"]) == (404, "unknown_node")
    assert (ended.status_code, ended.json()["code"]) == (404, "unknown_node")
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "unknown_node")
    assert client.get(f"{CAMPAIGNS}/club", headers=sam).json()["name"] == "Club"


def test_a_scoped_operator_cannot_move_a_campaign_out_of_their_scope(
    client: TestClient[Any],
) -> None:
    launch(client, "dino", "north-club", "north")

    moved = client.put(
        f"{CAMPAIGNS}/north-club",
        json={"terms": campaign_terms("North", "north", "s3")},
        headers=bearer(client, "dino"),
    )
    by_a_manager = client.put(
        f"{CAMPAIGNS}/north-club",
        json={"terms": campaign_terms("North and south", "north", "s3")},
        headers=bearer(client, "mia"),
    )

    assert (moved.status_code, moved.json()["code"]) == (404, "unknown_node")
    assert by_a_manager.status_code == 200, by_a_manager.text
    assert by_a_manager.json()["terms"]["nodes"] == ["north", "s3"]


def test_new_terms_are_in_force_at_once_but_the_days_gone_by_keep_theirs(
    client: TestClient[Any],
) -> None:
    mia = bearer(client, "mia")
    club = client.get(f"{CAMPAIGNS}/club", headers=mia).json()["terms"]

    renamed = client.put(
        f"{CAMPAIGNS}/club", json={"terms": {**club, "name": "Club+"}}, headers=mia
    )
    later_start = client.put(
        f"{CAMPAIGNS}/club", json={"terms": {**club, "starts_on": "2026-07-01"}}, headers=mia
    )
    ended_last_month = client.put(
        f"{CAMPAIGNS}/club", json={"terms": {**club, "ends_on": "2026-05-31"}}, headers=mia
    )

    assert (renamed.status_code, renamed.json()["name"]) == (200, "Club+")
    assert renamed.json()["promotions"] == ["base"]
    assert (later_start.status_code, later_start.json()["field"]) == (422, "terms.starts_on")
    assert (ended_last_month.status_code, ended_last_month.json()["field"]) == (
        422,
        "terms.ends_on",
    )


def test_an_ended_campaign_earns_nothing_after_its_last_day(
    client: TestClient[Any], clock: Clock
) -> None:
    root = bearer(client, "root")

    ended = client.post(f"{CAMPAIGNS}/club/end", json={}, headers=root)
    before = client.post(f"{CAMPAIGNS}/club/end", json={"ends_on": "2026-05-31"}, headers=root)
    extended = client.post(f"{CAMPAIGNS}/club/end", json={"ends_on": "2026-07-01"}, headers=root)
    clock.advance(days=1)

    assert (ended.status_code, ended.json()["terms"]["ends_on"]) == (200, TODAY)
    assert (before.status_code, before.json()["code"]) == (422, "invalid_program")
    assert (extended.status_code, extended.json()["code"]) == (422, "invalid_program")
    refused = post_purchase(client, "p1", "20.00", at=clock.now)
    assert (refused.status_code, refused.json()["code"]) == (422, "no_campaign")


@pytest.mark.parametrize(
    ("campaign", "status", "code"),
    [
        ({"code": "club", "terms": campaign_terms("Again", "s1")}, 409, "duplicate_code"),
        ({"code": "x", "terms": campaign_terms("X", "nowhere")}, 404, "unknown_node"),
        ({"code": "x", "terms": campaign_terms("X")}, 422, "invalid_program"),
        ({"code": "x", "terms": {**campaign_terms("X", "s1"), "starts_on": "2026-05-01"}}, 422,
         "invalid_program"),
        ({"code": "x", "terms": campaign_terms("X", "s1", ends_on="2026-05-31")}, 422,
         "invalid_program"),
        ({"code": " ", "terms": campaign_terms("X", "s1")}, 422, "invalid_program"),
        ({"code": "x", "terms": {"name": "X", "nodes": ["s1"]}}, 422, "invalid_field"),
    ],
)  # fmt: skip
def test_bad_campaigns_say_why(
    client: TestClient[Any], campaign: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(CAMPAIGNS, json={"campaign": campaign}, headers=bearer(client, "root"))

    assert (response.status_code, response.json()["code"]) == (status, code)


MILANO = {"kind": "city", "values": ["Milano"]}
ROMA = {"kind": "city", "values": ["Roma"]}


def define(client: TestClient[Any], who: str, code: str, criteria: Any, **extra: Any) -> Any:
    body = {"cluster": {"code": code, "terms": {"name": code.title(), "criteria": criteria}}}
    return client.post(CLUSTERS, json={**body, **extra}, headers=bearer(client, who))


def test_admins_and_managers_define_clusters_and_give_them_new_versions(
    client: TestClient[Any], clock: Clock
) -> None:
    defined = define(client, "mia", "milanesi", MILANO)
    clock.advance(minutes=5)
    moved = client.post(
        f"{CLUSTERS}/milanesi/versions",
        json={"terms": {"name": "Romani", "criteria": ROMA}},
        headers=bearer(client, "root"),
    )

    assert defined.status_code == 201, defined.text
    versions = moved.json()["versions"]
    assert (moved.status_code, moved.json()["name"]) == (200, "Romani")
    assert [v["terms"]["criteria"]["values"] for v in versions] == [["Milano"], ["Roma"]]
    assert versions[1]["effective_from"] > versions[0]["effective_from"]


def test_store_and_distributor_managers_only_read_clusters(client: TestClient[Any]) -> None:
    define(client, "root", "milanesi", MILANO)

    by_sam = define(client, "sam", "romani", ROMA)
    by_dino = client.post(
        f"{CLUSTERS}/milanesi/versions",
        json={"terms": {"name": "Romani", "criteria": ROMA}},
        headers=bearer(client, "dino"),
    )
    read = client.get(f"{CLUSTERS}/milanesi", headers=bearer(client, "sam"))

    assert (by_sam.status_code, by_dino.status_code) == (403, 403)
    assert read.json()["name"] == "Milanesi"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"cluster": {"code": "young", "terms": {"name": "Again", "criteria": MILANO}}}, 409,
         "duplicate_code"),
        ({"cluster": {"code": "x", "terms": {"name": "X", "criteria": MILANO}},
          "effective_from": "2026-05-31T00:00:00Z"}, 422, "invalid_program"),
        ({"cluster": {"code": "x", "terms": {"name": "X", "criteria": {
            "kind": "spend_in_last_days", "days": 0}}}}, 422, "invalid_program"),
        ({"cluster": {"code": "x", "terms": {"name": "X", "criteria": {
            "kind": "all", "of": []}}}}, 422, "invalid_program"),
        ({"cluster": {"code": "x", "terms": {"name": "X", "criteria": {
            "kind": "age", "min": 40, "max": 30}}}}, 422, "invalid_field"),
        ({"cluster": {"code": "x", "terms": {"name": "X", "criteria": {
            "kind": "horoscope"}}}}, 422, "invalid_field"),
    ],
)  # fmt: skip
def test_bad_clusters_say_why(
    client: TestClient[Any], body: dict[str, Any], status: int, code: str
) -> None:
    define(client, "root", "young", {"kind": "age", "max": 29})

    response = client.post(CLUSTERS, json=body, headers=bearer(client, "root"))

    assert (response.status_code, response.json()["code"]) == (status, code)


def test_a_new_cluster_version_cannot_take_effect_in_the_past(client: TestClient[Any]) -> None:
    define(client, "root", "milanesi", MILANO)

    response = client.post(
        f"{CLUSTERS}/milanesi/versions",
        json={"terms": {"name": "R", "criteria": ROMA}, "effective_from": "2026-05-01T00:00:00Z"},
        headers=bearer(client, "root"),
    )

    assert (response.status_code, response.json()["code"]) == (422, "invalid_program")


def post_purchase(
    client: TestClient[Any],
    movement_id: str,
    amount: str,
    card: str = "C1",
    terminal: str = "t1",
    at: datetime | None = None,
) -> Any:
    movement = purchase(movement_id, line("TV", amount), card=card, terminal=terminal, at=at)
    headers = {"authorization": f"Bearer {terminal_key(terminal)}"}
    return client.post("/api/v1/terminal/movements", json=as_json(movement), headers=headers)


def shopper(card: str, first_name: str, born: date, city: str) -> CustomerSpec:
    profile = Profile(first_name=first_name, birth_date=born, city=city)
    return CustomerSpec(cards=(card,), profile=profile, signed_up_on=date(2026, 1, 10))


@pytest.fixture
def shoppers(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    """Three customers and an anonymous card, each with a purchase today:
    Giulia (25, Milano) spent 100 at s1, Marco (56, Milano) 10 at s2, Anna (27, Roma) 200
    at s3, and the anonymous card C4 500 at s1."""
    chain = program(
        customers=(
            shopper("C1", "Giulia", date(2001, 5, 3), "Milano"),
            shopper("C2", "Marco", date(1970, 2, 1), "Milano"),
            shopper("C3", "Anna", date(1999, 2, 1), "Roma"),
        ),
        cards=("C4",),
    )
    with staffed_client(settings, clock, chain) as test_client:
        clock.advance(hours=2)
        yield test_client


def shop(client: TestClient[Any]) -> None:
    for movement_id, amount, card, terminal in [
        ("g1", "100.00", "C1", "t1"),
        ("m1", "10.00", "C2", "t2"),
        ("a1", "200.00", "C3", "t3"),
        ("x1", "500.00", "C4", "t1"),
    ]:
        posted = post_purchase(client, movement_id, amount, card, terminal)
        assert posted.status_code == 201, posted.text


def preview(client: TestClient[Any], criteria: Any, **extra: Any) -> Any:
    body = {"criteria": criteria, **extra}
    return client.post(f"{CLUSTERS}/preview", json=body, headers=bearer(client, "mia"))


def test_the_preview_counts_the_customers_whose_profile_and_behaviour_match(
    shoppers: TestClient[Any],
) -> None:
    shop(shoppers)
    big_spenders = {"kind": "total_spend", "min": "50.00"}

    young = preview(shoppers, {"kind": "age", "max": 30}).json()
    spending = preview(shoppers, big_spenders).json()
    both = preview(shoppers, {"kind": "all", "of": [MILANO, big_spenders]}).json()
    lapsed = preview(shoppers, {"kind": "last_purchase", "not_within_days": 30}).json()

    assert (young["customers"], young["members"], young["as_of"]) == (3, 2, TODAY)
    assert spending["members"] == 2  # Giulia and Anna; the anonymous card is no customer
    assert both["members"] == 1
    assert lapsed["members"] == 0


def test_the_preview_judges_the_criteria_on_the_day_asked(shoppers: TestClient[Any]) -> None:
    shop(shoppers)
    last_week = {"kind": "spend_in_last_days", "days": 7, "min": "50.00"}

    today = preview(shoppers, last_week).json()
    in_ten_days = preview(shoppers, last_week, as_of="2026-06-11").json()
    yesterday = shoppers.post(
        f"{CLUSTERS}/preview",
        json={"criteria": last_week, "as_of": "2026-05-31"},
        headers={**bearer(shoppers, "root"), "accept-language": "it"},
    )

    assert (today["members"], in_ten_days["members"]) == (2, 0)
    assert (yesterday.status_code, yesterday.json()["code"]) == (422, "preview_date_passed")
    assert yesterday.json()["detail"].endswith("non per il 2026-05-31")


def test_the_preview_takes_behaviour_from_one_campaign_or_from_all(
    shoppers: TestClient[Any],
) -> None:
    assert launch(shoppers, "root", "south-club", "south").status_code == 201
    shop(shoppers)  # Anna's purchase at s3 now goes to south-club
    big_spenders = {"kind": "total_spend", "min": "50.00"}

    anywhere = preview(shoppers, big_spenders).json()
    in_club = preview(shoppers, big_spenders, campaign="club").json()
    in_south = preview(shoppers, big_spenders, campaign="south-club").json()
    unknown = preview(shoppers, big_spenders, campaign="nope")

    assert (anywhere["members"], in_club["members"], in_south["members"]) == (2, 1, 1)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_campaign")


def test_a_clusters_size_follows_its_version_in_force_on_the_day(
    shoppers: TestClient[Any],
) -> None:
    mia = bearer(shoppers, "mia")
    define(shoppers, "mia", "locals", MILANO)
    shoppers.post(
        f"{CLUSTERS}/locals/versions",
        json={
            "terms": {"name": "Locals", "criteria": ROMA},
            "effective_from": "2026-06-05T00:00:00Z",
        },
        headers=mia,
    )

    now = shoppers.get(f"{CLUSTERS}/locals/size", headers=mia).json()
    later = shoppers.get(f"{CLUSTERS}/locals/size", params={"as_of": "2026-06-05"}, headers=mia)

    assert (now["cluster"], now["version"], now["members"]) == ("locals", 1, 2)
    assert (later.json()["version"], later.json()["members"]) == (2, 1)


def test_erased_customers_are_not_counted(shoppers: TestClient[Any]) -> None:
    root = bearer(shoppers, "root")
    erased = shoppers.post(
        "/api/v1/backoffice/privacy/customers/C1/erase", json={"reason": "asked"}, headers=root
    )

    size = preview(shoppers, MILANO).json()

    assert erased.status_code == 200, erased.text
    assert (size["customers"], size["members"]) == (2, 1)


def test_only_those_who_read_every_customer_preview_clusters(shoppers: TestClient[Any]) -> None:
    define(shoppers, "root", "locals", MILANO)

    refused = [
        shoppers.post(
            f"{CLUSTERS}/preview", json={"criteria": MILANO}, headers=bearer(shoppers, who)
        ).status_code
        for who in ("dino", "sam")
    ]
    size = shoppers.get(f"{CLUSTERS}/locals/size", headers=bearer(shoppers, "sam"))

    assert refused == [403, 403] and size.status_code == 403
