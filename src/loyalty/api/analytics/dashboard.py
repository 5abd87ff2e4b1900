"""The dashboards' revenue documents over HTTP: a month's figures per store of the
caller's scope, read from the ``dashboard`` documents (PostgreSQL or MongoDB)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from eventsourcing.persistence import ProgrammingError
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery, Parameter

from loyalty.adapters.documents import DocumentQuery
from loyalty.api.access import Action, caller, requires
from loyalty.api.analytics.formats import negotiated
from loyalty.api.analytics.revenue import Position, caught_up_to, reported_stores
from loyalty.projections.dashboard import STORE_MONTHS, Dashboard
from loyalty.projections.runner import serving_model


class StoreMonth(msgspec.Struct, frozen=True, kw_only=True):
    store: str
    month: str
    revenue: Decimal
    receipts: int
    average_receipt: Decimal | None
    points_issued: int
    points_redeemed: int


Month = Annotated[str, Parameter(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
MAX_STORES = 10_000


class AnalyticsDashboardController(Controller):
    path = "/api/v1/analytics/dashboard"
    tags = ("Analytics",)

    @get(
        operation_id="dashboardMonth",
        summary="A month's revenue, receipts, average receipt and points per store",
        description="One document per store of the caller's scope (JSON, CSV or Parquet).",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def month(
        self,
        request: Request[object, object, State],
        month: FromQuery[Month],
        position: Position = None,
    ) -> Response[Any]:
        caught_up_to(request, Dashboard, position)
        services = request.app.state.services
        stores = reported_stores(caller(request), services.desk.program.network(), None, False)
        datastore = services.ledger.ledger_recorder.datastore
        query = DocumentQuery(equals={"month": month}, sort=(("store", False),), limit=MAX_STORES)
        with serving_model(services.settings, datastore, Dashboard) as model:
            try:
                documents = model.view.find(STORE_MONTHS, query).items
            except ProgrammingError:  # the read model has not run yet: no figures
                documents = []
        found = [
            msgspec.convert(d, StoreMonth, strict=False) for d in documents if d["store"] in stores
        ]
        return negotiated(request, found, f"dashboard-{month}")
