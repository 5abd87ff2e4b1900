"""Prize API over HTTP: the catalog per campaign, redemptions and their cancellation, each
caller within its scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from loyalty.commands.apply import CampaignSpec
from loyalty.domain.campaign import CampaignTerms
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, as_json, line, prize, program, purchase, terminal_key

PRIZES = "/api/v1/prizes"
REDEMPTIONS = "/api/v1/redemptions"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    """The test chain with a second campaign, ``beach``, run by region south only."""
    chain = program(prizes=(prize(), prize("mug", points=30, stock=2)))
    beach = CampaignSpec(
        code="beach",
        terms=CampaignTerms(name="Beach", nodes=("south",), starts_on=date(2026, 1, 1)),
    )
    chain = msgspec.structs.replace(
        chain,
        campaigns=(*chain.campaigns, beach),
        prizes=(*chain.prizes, msgspec.structs.replace(prize("parasol"), campaign="beach")),
    )
    with staffed_client(settings, clock, chain) as test_client:
        clock.advance(hours=2)
        yield test_client


def buy(client: TestClient[Any], movement_id: str, amount: str, card: str = "C1") -> None:
    movement = purchase(movement_id, line("TV", amount), card=card)
    headers = {"authorization": f"Bearer {terminal_key('t1')}"}
    response = client.post("/api/v1/terminal/movements", json=as_json(movement), headers=headers)
    assert response.status_code == 201, response.text


def prize_client(client: TestClient[Any], scope: tuple[str, ...] = ()) -> dict[str, str]:
    """The token of a new API client of the Prize family (a customer app's back end)."""
    registered = client.post(
        "/api/v1/backoffice/clients",
        json={"name": f"app{len(scope)}", "families": ["prize"], "scope": list(scope)},
        headers=bearer(client, "root"),
    )
    assert registered.status_code == 201, registered.text
    token = client.post("/api/v1/auth/token", json={"api_key": registered.json()["api_key"]})
    return {"authorization": f"Bearer {token.json()['access_token']}"}


def redeem(
    client: TestClient[Any], headers: dict[str, str], redemption_id: str, **fields: Any
) -> Any:
    body = {"redemption_id": redemption_id, "card": "C1", "campaign": "club", "prize": "voucher"}
    return client.post(REDEMPTIONS, json={**body, **fields}, headers=headers)


def stock(client: TestClient[Any], code: str = "voucher") -> int:
    found = client.get(f"{PRIZES}/club/{code}", headers=bearer(client, "mia"))
    assert found.status_code == 200, found.text
    return int(found.json()["stock"])


def test_admins_and_managers_keep_the_catalog(client: TestClient[Any]) -> None:
    mia = bearer(client, "mia")
    new = {"code": "kettle", "campaign": "club", "terms": {"name": "Kettle", "points": 500}}

    created = client.post(PRIZES, json={**new, "stock": 10}, headers=mia)
    twice = client.post(PRIZES, json=new, headers=mia)
    dearer = client.put(
        f"{PRIZES}/club/kettle", json={"terms": {"name": "Kettle", "points": 650}}, headers=mia
    )
    restocked = client.post(
        f"{PRIZES}/club/kettle/stock", json={"quantity": 5, "reason": "delivery"}, headers=mia
    )
    overdrawn = client.post(
        f"{PRIZES}/club/kettle/stock", json={"quantity": -16, "reason": "count"}, headers=mia
    )
    by_store = client.post(PRIZES, json=new, headers=bearer(client, "sam"))

    assert created.status_code == 201 and created.json()["stock"] == 10
    assert twice.status_code == 409 and twice.json()["code"] == "duplicate_code"
    assert dearer.json()["terms"]["points"] == 650
    assert restocked.json()["stock"] == 15
    assert overdrawn.status_code == 422 and overdrawn.json()["code"] == "invalid_prize"
    assert by_store.status_code == 403


def test_invalid_prizes_are_refused_with_the_field(client: TestClient[Any]) -> None:
    mia = bearer(client, "mia")
    free = {"code": "gift", "campaign": "club", "terms": {"name": "Gift", "points": 0}}
    unknown = {"code": "gift", "campaign": "nope", "terms": {"name": "Gift", "points": 5}}

    refused = client.post(PRIZES, json=free, headers=mia)
    missing = client.post(PRIZES, json=unknown, headers=mia)

    assert refused.status_code == 422 and refused.json()["field"] == "points"
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_campaign"


def test_a_prize_is_seen_by_whoever_its_campaign_reaches(client: TestClient[Any]) -> None:
    def codes(who: str) -> list[tuple[str, str]]:
        page = client.get(PRIZES, params={"sort": "campaign,code"}, headers=bearer(client, who))
        return [(p["campaign"], p["code"]) for p in page.json()["items"]]

    assert codes("mia") == [("beach", "parasol"), ("club", "mug"), ("club", "voucher")]
    assert codes("sam") == [("club", "mug"), ("club", "voucher")]
    hidden = client.get(f"{PRIZES}/beach/parasol", headers=bearer(client, "sam"))
    assert hidden.status_code == 404 and hidden.json()["code"] == "unknown_campaign"
    filtered = client.get(PRIZES, params={"campaign": "beach"}, headers=bearer(client, "sam"))
    assert filtered.json()["total"] == 0


def test_a_customer_app_redeems_and_cancels_once(client: TestClient[Any]) -> None:
    buy(client, "p1", "100.00")
    app = prize_client(client)

    first = redeem(client, app, "web-1", prize="mug", quantity=2)
    retry = redeem(client, app, "web-1", prize="mug", quantity=2)
    seen = client.get(f"{REDEMPTIONS}/web-1", headers=app)
    assert stock(client, "mug") == 0
    cancelled = client.post(f"{REDEMPTIONS}/web-1/cancel", json={"reason": "sold out"}, headers=app)
    recancelled = client.post(f"{REDEMPTIONS}/web-1/cancel", json={"reason": "?"}, headers=app)

    assert first.status_code == 201 and first.json()["balance"]["points"] == 40
    assert (retry.status_code, retry.content) == (200, first.content)
    assert seen.json()["points"] == 60 and seen.json()["cancelled"] is False
    assert cancelled.status_code == 201 and cancelled.json()["balance"]["points"] == 100
    assert cancelled.json()["receipt_messages"] == ["Points returned: 60", "Points balance: 100"]
    assert (recancelled.status_code, recancelled.content) == (200, cancelled.content)
    assert stock(client, "mug") == 2
    assert client.get(f"{REDEMPTIONS}/web-1", headers=app).json()["cancelled"] is True


def test_a_refused_redemption_changes_neither_points_nor_stock(client: TestClient[Any]) -> None:
    buy(client, "p1", "100.00")
    app = prize_client(client)

    too_dear = redeem(client, app, "web-1", quantity=11)
    too_many = redeem(client, app, "web-2", prize="mug", quantity=3)
    unknown = redeem(client, app, "web-3", prize="yacht")
    balance = client.get("/api/v1/customers/C1/balances", headers=bearer(client, "mia"))

    assert too_dear.status_code == 422 and too_dear.json()["code"] == "insufficient_points"
    assert too_many.status_code == 422 and too_many.json()["code"] == "out_of_stock"
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_prize"
    assert (stock(client), stock(client, "mug")) == (100, 2)
    assert [b["balance"]["points"] for b in balance.json() if b["campaign"] == "club"] == [100]


def test_a_store_manager_redeems_only_at_a_till_of_their_store(client: TestClient[Any]) -> None:
    buy(client, "p1", "100.00")
    sam = bearer(client, "sam")

    at_home = redeem(client, sam, "s-1", terminal="t1")
    nowhere = redeem(client, sam, "s-2")
    elsewhere = redeem(client, sam, "s-3", terminal="t2")
    hers = client.post(f"{REDEMPTIONS}/s-1/cancel", json={"reason": "x"}, headers=sam)

    assert at_home.status_code == 201
    assert nowhere.status_code == 403
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "unknown_node"
    assert hers.status_code == 201


def test_redemptions_made_elsewhere_do_not_exist_for_a_scoped_caller(
    client: TestClient[Any],
) -> None:
    buy(client, "p1", "100.00")
    assert redeem(client, prize_client(client), "web-1").status_code == 201
    assert redeem(client, bearer(client, "mia"), "t2-1", terminal="t2").status_code == 201
    sam = bearer(client, "sam")

    for redemption_id, terminal in (("web-1", None), ("t2-1", None), ("none", None)):
        params = {"terminal": terminal} if terminal else {}
        found = client.get(f"{REDEMPTIONS}/{redemption_id}", params=params, headers=sam)
        cancel = client.post(
            f"{REDEMPTIONS}/{redemption_id}/cancel", json={"reason": "x"}, headers=sam
        )
        assert found.status_code == cancel.status_code == 404
        assert found.json()["code"] == cancel.json()["code"] == "unknown_redemption"


def test_a_scoped_client_must_name_a_till_in_its_scope(client: TestClient[Any]) -> None:
    buy(client, "p1", "100.00")
    south_app = prize_client(client, scope=("south",))

    anywhere = redeem(client, south_app, "web-1")
    at_t1 = redeem(client, south_app, "web-2", terminal="t1")

    assert anywhere.status_code == 403
    assert at_t1.status_code == 404
