"""Revenue over any interval, grouped by time and by network node, store, terminal,
department, SKU, customer, card or hour, compared with the interval before or a year
earlier; and where each read model stands against the log."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery, Parameter

from loyalty.api.access import Action, caller, check_in_scope, covers_everywhere, requires
from loyalty.api.analytics.formats import negotiated
from loyalty.commands.auth import Session
from loyalty.domain.errors import InvalidQuery, NotCaughtUp, UnknownPosition
from loyalty.domain.network import Network, NodeKind
from loyalty.projections.analytics import Comparison, Dimension, Grain, RevenueQuery, revenue
from loyalty.projections.log import log_head
from loyalty.projections.models import followers
from loyalty.projections.revenue import Revenue
from loyalty.projections.runner import ReadModel
from loyalty.projections.status import ProjectionStatus, status_of, wait_until
from loyalty.projections.tables import serving_tables

MAX_DAYS = 3660
"""The longest interval one query covers (ten years)."""

Position = Annotated[
    int | None,
    Parameter(
        ge=1,
        description="wait (up to LOYALTY_READ_WAIT_S) until the figures include this log"
        " position: the Ledger-Position header of a recorded movement",
    ),
]


def reported_stores(
    session: Session, network: Network, node: str | None, by_node: bool
) -> dict[str, str]:
    """Each store the query covers, with the node it is reported under: the stores below
    ``node`` (default: the caller's whole scope), under the child of ``node`` that holds
    them when grouping by node."""
    if node is not None:
        check_in_scope(session, network, node)
        bases = [node]
    elif covers_everywhere(session, network):
        bases = [network.root]
    else:
        bases = [code for code in session.scope if code in network.nodes]
    stores: dict[str, str] = {}
    for base in bases:
        depth = len(network.path(base))
        for code in network.subtree(base):
            if network.nodes[code].kind is not NodeKind.STORE:
                continue
            path = network.path(code)
            stores[code] = path[depth] if by_node and len(path) > depth else code
    return stores


def caught_up_to(
    request: Request[object, object, State], model: type[ReadModel], position: int | None
) -> None:
    """Waits until the figures include ``position`` (read-your-writes): a position the log
    has not reached is refused; one the read model does not reach in time answers a
    retryable 503."""
    if position is None:
        return
    services = request.app.state.services
    datastore = services.ledger.ledger_recorder.datastore
    if position > log_head(datastore, services.settings):
        raise UnknownPosition(f"the log has no position {position} yet", position=position)
    if not wait_until(datastore, services.settings, model, position, services.settings.read_wait_s):
        raise NotCaughtUp(
            f"the {model.name} figures have not reached position {position} yet",
            position=position,
            retry_after=1,
        )


def dimensions_of(by: str | None) -> tuple[Dimension, ...]:
    names = [name.strip() for name in (by or "").split(",") if name.strip()]
    try:
        found = tuple(Dimension(name) for name in names)
    except ValueError:
        known = ", ".join(d.value for d in Dimension)
        raise InvalidQuery(f"group by any of {known}", field="by") from None
    if len(set(found)) != len(found):
        raise InvalidQuery("name each dimension once", field="by")
    return found


class AnalyticsRevenueController(Controller):
    path = "/api/v1/analytics"
    tags = ("Analytics",)

    @get(
        "/revenue",
        operation_id="queryRevenue",
        summary="Revenue, receipts, items, average receipt, customers and points",
        description="Over the days first..last (the store's local days), by grain (day, week,"
        " month, quarter, year or total) and by the dimensions of `by` (comma-separated: node,"
        " store, terminal, department, sku, customer, card, hour); `node` limits the stores"
        " to a node's subtree (by=node breaks it down into its children); `compare` adds the"
        " interval before (previous) or a year earlier (year) with absolute and percentage"
        " deltas; `customers=true` counts distinct customers too (exact, from the facts:"
        " slower than the daily rollups other figures come from). JSON, CSV (Accept:"
        " text/csv) or Parquet (application/vnd.apache.parquet).",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def query_revenue(
        self,
        request: Request[object, object, State],
        first: FromQuery[date],
        last: FromQuery[date],
        grain: FromQuery[Grain] = Grain.MONTH,
        by: Annotated[str | None, Parameter(max_length=200)] = None,
        node: Annotated[str | None, Parameter(max_length=64)] = None,
        compare: FromQuery[Comparison] = Comparison.NONE,
        customers: FromQuery[bool] = False,
        position: Position = None,
    ) -> Response[Any]:
        if last < first:
            raise InvalidQuery("last comes before first", field="last")
        if (last - first).days >= MAX_DAYS:
            raise InvalidQuery(f"ask for at most {MAX_DAYS} days at a time", field="last")
        query = RevenueQuery(
            first=first,
            last=last,
            grain=grain,
            by=dimensions_of(by),
            compare=compare,
            customers=customers,
        )
        caught_up_to(request, Revenue, position)
        services = request.app.state.services
        network = services.desk.program.network()
        stores = reported_stores(caller(request), network, node, Dimension.NODE in query.by)
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            tables = serving_tables(curs, services.settings, Revenue.name)
            rows = revenue(curs, tables, query, stores) if tables else []
        return negotiated(request, rows, "revenue")

    @get(
        "/status",
        operation_id="readModelStatus",
        summary="Where each read model stands: position, lag in events and seconds, rate",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def read_model_status(self, request: Request[object, object, State]) -> list[ProjectionStatus]:
        services = request.app.state.services
        datastore = services.ledger.ledger_recorder.datastore
        found = followers(services.settings).values()
        return [status_of(services.settings, datastore, m) for m in found]
