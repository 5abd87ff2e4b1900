"""Analytics API, revenue: figures by the caller's scope, in JSON, CSV or Parquet, with
read-your-writes through the Ledger-Position of a recorded movement."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import polars as pl
import pytest
from litestar.testing import TestClient

from loyalty.projections.dashboard import Dashboard
from loyalty.projections.revenue import Revenue
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, as_json, line, purchase, terminal_key
from tests.projections.reading import caught_up, record_shape

REVENUE = "/api/v1/analytics/revenue"
DASHBOARD = "/api/v1/analytics/dashboard"
JUNE = {"first": "2026-06-01", "last": "2026-06-30"}


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    quick = msgspec.structs.replace(settings, read_wait_s=0.3)
    with staffed_client(quick, clock) as test_client:
        clock.advance(hours=2)
        yield test_client


def sell(client: TestClient[Any], movement_id: str, terminal: str, amount: str) -> int:
    """Records a purchase at ``terminal``; the log position that holds it."""
    response = client.post(
        "/api/v1/terminal/movements",
        json=as_json(purchase(movement_id, line("BREAD", amount), terminal=terminal)),
        headers={"authorization": f"Bearer {terminal_key(terminal)}"},
    )
    assert response.status_code == 201, response.text
    return int(response.headers["ledger-position"])


def by_store(response: Any) -> dict[str, Decimal]:
    assert response.status_code == 200, response.text
    return {row["group"]["store"]: Decimal(row["figures"]["revenue"]) for row in response.json()}


@pytest.fixture
def sales(client: TestClient[Any], settings: Settings) -> Iterator[int]:
    """Sales at s1 (10.00 and 5.00), s2 (20.00) and s3 (40.00), followed by the read side;
    the position of the last one."""
    sell(client, "a1", "t1", "10.00")
    sell(client, "a2", "t1", "5.00")
    sell(client, "a3", "t2", "20.00")
    last = sell(client, "a4", "t3", "40.00")
    with caught_up(settings, [Revenue]):
        yield last


def test_each_operator_sees_the_figures_of_their_scope(client: TestClient[Any], sales: int) -> None:
    def ask(username: str, **params: str) -> Any:
        return client.get(
            REVENUE, params={**JUNE, "by": "store", **params}, headers=bearer(client, username)
        )

    assert by_store(ask("root", position=str(sales))) == {
        "s1": Decimal("15.00"),
        "s2": Decimal("20.00"),
        "s3": Decimal("40.00"),
    }
    assert by_store(ask("dino")) == {"s1": Decimal("15.00"), "s2": Decimal("20.00")}
    assert by_store(ask("sam")) == {"s1": Decimal("15.00")}
    assert ask("sam", node="s3").status_code == 404
    assert ask("sam", node="s3").json()["code"] == ask("sam", node="nowhere").json()["code"]


def test_a_node_is_broken_down_into_its_children(client: TestClient[Any], sales: int) -> None:
    response = client.get(
        REVENUE,
        params={**JUNE, "grain": "total", "by": "node"},
        headers=bearer(client, "mia"),
    )

    rows = response.json()
    assert {r["group"]["node"]: r["figures"]["revenue"] for r in rows} == {
        "north": "35.00",
        "south": "40.00",
    }
    assert {r["group"]["node"]: r["figures"]["receipts"] for r in rows} == {"north": 3, "south": 1}


def test_figures_come_as_csv_or_parquet_when_asked(client: TestClient[Any], sales: int) -> None:
    root = bearer(client, "root")
    params = {**JUNE, "grain": "total", "by": "store"}

    csv = client.get(REVENUE, params=params, headers={**root, "accept": "text/csv"})
    parquet = client.get(
        REVENUE, params=params, headers={**root, "accept": "application/vnd.apache.parquet"}
    )

    assert csv.headers["content-type"].startswith("text/csv")
    table = pl.read_csv(io.BytesIO(csv.content))
    assert dict(zip(table["group.store"], table["figures.revenue"], strict=True)) == {
        "s1": 15.0,
        "s2": 20.0,
        "s3": 40.0,
    }
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    assert frame.schema["figures.revenue"] == pl.Decimal
    assert sorted(frame["figures.revenue"].to_list()) == [
        Decimal("15.00"),
        Decimal("20.00"),
        Decimal("40.00"),
    ]


def test_a_position_not_reached_in_time_answers_a_retryable_problem(
    client: TestClient[Any],
) -> None:
    position = sell(client, "a1", "t1", "10.00")

    response = client.get(
        REVENUE, params={**JUNE, "position": str(position)}, headers=bearer(client, "root")
    )

    beyond = client.get(
        REVENUE, params={**JUNE, "position": str(position + 1000)}, headers=bearer(client, "root")
    )

    assert response.status_code == 503
    assert response.json()["code"] == "not_caught_up"
    assert response.headers["retry-after"] == "1"
    assert (beyond.status_code, beyond.json()["code"]) == (422, "unknown_position")


def test_figures_stored_in_an_older_shape_answer_a_retryable_problem(
    client: TestClient[Any], settings: Settings, sales: int
) -> None:
    record_shape(settings, Revenue.name, Revenue.shape - 1)

    response = client.get(REVENUE, params=JUNE, headers=bearer(client, "root"))
    status = client.get("/api/v1/analytics/status", headers=bearer(client, "root"))

    assert response.status_code == 503
    assert response.json()["code"] == "read_model_rebuilding"
    assert response.headers["retry-after"] == "30"
    assert {s["name"]: (s["shape"], s["code_shape"]) for s in status.json()}["revenue"] == (
        Revenue.shape - 1,
        Revenue.shape,
    )


def test_bad_queries_are_refused_with_the_field_named(client: TestClient[Any]) -> None:
    root = bearer(client, "root")

    backwards = client.get(
        REVENUE, params={"first": "2026-06-30", "last": "2026-06-01"}, headers=root
    )
    unknown = client.get(REVENUE, params={**JUNE, "by": "planet"}, headers=root)
    twice = client.get(REVENUE, params={**JUNE, "by": "store,store"}, headers=root)

    assert (backwards.status_code, backwards.json()["code"]) == (422, "invalid_query")
    assert (unknown.status_code, unknown.json()["field"]) == (422, "by")
    assert twice.status_code == 422


def test_an_analytics_key_reads_figures_and_a_product_key_does_not(
    client: TestClient[Any], sales: int
) -> None:
    def token(families: list[str]) -> dict[str, str]:
        issued = client.post(
            "/api/v1/backoffice/clients",
            json={"name": f"bi-{families[0]}", "families": families},
            headers=bearer(client, "root"),
        ).json()
        answer = client.post("/api/v1/auth/token", json={"api_key": issued["api_key"]}).json()
        return {"authorization": f"Bearer {answer['access_token']}"}

    analytics = client.get(REVENUE, params=JUNE, headers=token(["analytics"]))
    product = client.get(REVENUE, params=JUNE, headers=token(["product"]))

    assert analytics.status_code == 200
    assert analytics.json()[0]["figures"]["revenue"] == "75.00"
    assert (product.status_code, product.json()["code"]) == (403, "api_family_not_allowed")


def test_the_dashboard_documents_agree_with_the_revenue_figures_within_scope(
    client: TestClient[Any], sales: int, settings: Settings
) -> None:
    def figures(username: str) -> tuple[Any, Any]:
        headers = bearer(client, username)
        dashboard = client.get(DASHBOARD, params={"month": "2026-06"}, headers=headers)
        by_store = client.get(
            REVENUE, params={**JUNE, "grain": "total", "by": "store"}, headers=headers
        )
        return dashboard.json(), by_store.json()

    with caught_up(settings, [Dashboard]):
        documents, revenue = figures("root")
        scoped, _ = figures("sam")

    assert {d["store"]: d["revenue"] for d in documents} == {
        r["group"]["store"]: r["figures"]["revenue"] for r in revenue
    }
    assert {d["store"]: d["receipts"] for d in documents} == {"s1": 2, "s2": 1, "s3": 1}
    assert documents[0]["average_receipt"] == "7.50"
    assert [d["store"] for d in scoped] == ["s1"]
