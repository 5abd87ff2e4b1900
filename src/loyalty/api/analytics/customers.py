"""The customer 360 view over HTTP: a card's holder as the read side knows them — cards,
accounts, spend, visits, recent movements (the ``customer360`` documents, in PostgreSQL or
MongoDB) — with their latest RFM segment and their clusters. Nothing personal: the profile
stays behind the Customer API. A card outside the caller's scope answers 404."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import ProgrammingError
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import FromPath
from psycopg.sql import SQL, Identifier

from loyalty.api.access import Action, requires
from loyalty.api.analytics.revenue import Position, caught_up_to
from loyalty.api.customers import card_in_scope
from loyalty.api.i18n import request_messages
from loyalty.domain.errors import UnknownCard
from loyalty.projections.cluster_members import clusters_of
from loyalty.projections.customer360 import Customer360
from loyalty.projections.customer_documents import CUSTOMERS
from loyalty.projections.runner import serving_model


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    as_of: date
    segment: str
    name: str
    r: int
    f: int
    m: int


class CustomerView(msgspec.Struct, frozen=True, kw_only=True):
    customer: dict[str, Any]
    """The customer's 360 document (cards, accounts, spend, visits, recent movements)."""
    segment: Segment | None
    """Their segment in the latest RFM run that scored them."""
    clusters: list[str]


def document_of(request: Request[object, object, State], customer_id: UUID) -> dict[str, Any]:
    services = request.app.state.services
    datastore = services.ledger.ledger_recorder.datastore
    with serving_model(services.settings, datastore, Customer360) as model:
        try:
            found = model.view.get(CUSTOMERS, str(customer_id))
        except ProgrammingError:  # the read model has not run yet: it knows nobody
            found = None
    if found is None:
        return {}
    return {k: v for k, v in found.items() if k != "key"}


def latest_segment(request: Request[object, object, State], customer_id: UUID) -> Segment | None:
    services = request.app.state.services
    with services.ledger.ledger_recorder.datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT s.run_id, r.as_of, s.segment, s.r, s.f, s.m FROM {s}.rfm_scores s"
                " JOIN {s}.rfm_runs r USING (run_id) WHERE s.customer_id = %s"
                " ORDER BY r.computed_at DESC LIMIT 1"
            ).format(s=Identifier(services.settings.read_schema)),
            (customer_id,),
        )
        row = curs.fetchone()
    if row is None:
        return None
    names = request_messages(request)[1]
    return Segment(**row, name=names.get(f"segment_{row['segment']}", row["segment"]))


class AnalyticsCustomersController(Controller):
    path = "/api/v1/analytics/customers"
    tags = ("Analytics",)

    @get(
        "/{card:str}",
        operation_id="customer360",
        summary="A card holder's 360 view: cards, balances, spend, visits, segment, clusters",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def customer_360(
        self,
        request: Request[object, object, State],
        card: FromPath[str],
        position: Position = None,
    ) -> CustomerView:
        caught_up_to(request, Customer360, position)
        customer_id = card_in_scope(request, card).customer_id
        document = document_of(request, customer_id)
        if not document:
            raise UnknownCard(f"the read side knows no card {card!r} yet", card=card)
        services = request.app.state.services
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            clusters = clusters_of(curs, services.settings, customer_id)
        return CustomerView(
            customer=document,
            segment=latest_segment(request, customer_id),
            clusters=clusters,
        )
