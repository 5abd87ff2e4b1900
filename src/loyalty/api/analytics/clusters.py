"""Analytics API, clusters: each cluster's membership kind, last evaluation and size; its
members by page; the clusters a customer is in; and re-evaluating a cluster now.

Scope: members are reached through their home store. A scoped caller counts and lists
only the members whose home store lies in their scope (each page is checked against the
members' home stores now); admins, managers and unscoped clients see every member, those
without a home store included, and the chain-wide joined/left counts. A card outside the
scope answers ``404 unknown_card``, as in the Customer API. Members are customer ids and
card codes, never a profile. Lists answer JSON, CSV or Parquet, as ``Accept`` asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath

from loyalty.api.access import Action, actor, caller, covers_everywhere, requires
from loyalty.api.analytics.formats import JSON, accepted, negotiated
from loyalty.api.clusters import program_of
from loyalty.api.customers import card_in_scope
from loyalty.api.lists import Limit, Offset, Page
from loyalty.commands.cluster_size import today
from loyalty.commands.ledger import Ledger
from loyalty.commands.memberships import evaluate_cluster
from loyalty.commands.program import Program
from loyalty.domain.cluster import Cluster, MembershipKind
from loyalty.domain.customer import Customer
from loyalty.domain.errors import UnknownCluster
from loyalty.projections.cluster_members import (
    LatestEvaluation,
    MemberRow,
    cluster_sizes,
    clusters_of,
    latest_evaluations,
    members_of,
)

TABLES = "JSON by default; CSV (Accept: text/csv) or Parquet (application/vnd.apache.parquet)."


class LastEvaluationView(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    evaluated_on: date
    evaluated_at: datetime
    joined: int | None
    """Chain-wide, so only for callers who see the whole chain."""
    departed: int | None


class ClusterMembershipView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    membership: MembershipKind
    version: int | None
    """The version in force now (``None``: none yet)."""
    last_evaluation: LastEvaluationView | None
    size: int
    """Members found by the last evaluation, within the caller's scope."""


class ClusterMemberView(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: UUID
    cards: tuple[str, ...]
    home_store: str | None


class CustomerClusterView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    membership: MembershipKind
    version: int
    """The version whose evaluation took the customer in."""
    evaluated_on: date


def ledger_of(request: Request[object, object, State]) -> Ledger:
    ledger: Ledger = request.app.state.services.ledger
    return ledger


def stores_in_reach(request: Request[object, object, State]) -> list[str] | None:
    """The nodes of the caller's scope (``None``: the whole chain, and customers without
    a home store)."""
    session = caller(request)
    network = request.app.state.services.desk.program.network()
    if covers_everywhere(session, network):
        return None
    return sorted({c for s in session.scope if s in network.nodes for c in network.subtree(s)})


def cluster_named(program: Program, code: str) -> Cluster:
    cluster = program.clusters.get(code)
    if cluster is None:
        raise UnknownCluster(f"no cluster has the code {code!r}", cluster=code)
    return cluster


def summaries(
    request: Request[object, object, State], clusters: Sequence[Cluster]
) -> list[ClusterMembershipView]:
    stores = stores_in_reach(request)
    services = request.app.state.services
    with services.ledger.ledger_recorder.datastore.transaction() as curs:
        sizes = cluster_sizes(curs, services.settings, stores)
        latest = latest_evaluations(curs, services.settings)
    now = services.desk.clock()
    return [
        summary(c, latest.get(c.code), sizes.get(c.code, 0), now, stores is None) for c in clusters
    ]


def summary(
    cluster: Cluster,
    latest: LatestEvaluation | None,
    size: int,
    now: datetime,
    whole_chain: bool,
) -> ClusterMembershipView:
    in_force = cluster.version_at(now)
    terms = (in_force or cluster.current).terms
    evaluated = None
    if latest is not None:
        evaluated = LastEvaluationView(
            version=latest.version,
            evaluated_on=latest.evaluated_on,
            evaluated_at=latest.evaluated_at,
            joined=latest.joined if whole_chain else None,
            departed=latest.departed if whole_chain else None,
        )
    return ClusterMembershipView(
        code=cluster.code,
        name=terms.name,
        membership=terms.membership,
        version=in_force.number if in_force else None,
        last_evaluation=evaluated,
        size=size,
    )


def member_page(
    request: Request[object, object, State], code: str, limit: int, offset: int
) -> Page[ClusterMemberView]:
    stores = stores_in_reach(request)
    services = request.app.state.services
    with services.ledger.ledger_recorder.datastore.transaction() as curs:
        rows, total = members_of(curs, services.settings, code, stores, limit, offset)
    people = ledger_of(request).load_all(row.customer_id for row in rows)
    views = (member_view(row, people.get(row.customer_id), stores) for row in rows)
    items = [view for view in views if view is not None]
    return Page(items=items, total=total, limit=limit, offset=offset)


def member_view(
    row: MemberRow, customer: object, stores: list[str] | None
) -> ClusterMemberView | None:
    """The member, with their cards; ``None`` if they moved out of the caller's scope
    since their home store was recorded (the next daily run records the move)."""
    if not isinstance(customer, Customer):
        return None
    if stores is not None and customer.home_store not in stores:
        return None
    return ClusterMemberView(
        customer_id=row.customer_id, cards=tuple(customer.cards), home_store=customer.home_store
    )


class AnalyticsClustersController(Controller):
    path = "/api/v1/analytics/clusters"
    tags = ("Analytics",)

    @get(
        operation_id="listClusterMemberships",
        summary="Every cluster: membership kind, version, last evaluation, size in scope",
        description=TABLES,
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
        responses={
            200: ResponseSpec(
                list[ClusterMembershipView], generate_examples=False, description="The clusters"
            )
        },
    )
    def list_clusters(self, request: Request[object, object, State]) -> Response[Any]:
        program = program_of(request)
        clusters = [program.clusters[code] for code in sorted(program.clusters)]
        return negotiated(request, summaries(request, clusters), "clusters")

    @get(
        "/{code:str}/members",
        operation_id="listClusterMembers",
        summary="A cluster's members at its last evaluation, within the caller's scope",
        description=f"By customer id, a page at a time. {TABLES} (the page's items)",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
        responses={
            200: ResponseSpec(
                Page[ClusterMemberView], generate_examples=False, description="A page of members"
            )
        },
    )
    def list_members(
        self,
        request: Request[object, object, State],
        code: FromPath[str],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response[Any]:
        cluster_named(program_of(request), code)
        page = member_page(request, code, limit, offset)
        if accepted(request) == JSON:
            return Response(page)
        return negotiated(request, page.items, f"{code}-members")

    @post(
        "/{code:str}/evaluate",
        operation_id="evaluateCluster",
        summary="Evaluate a cluster's members now (a static one only once per version)",
        description="A dynamic cluster's members are replaced by those its criteria take in"
        " today; a static version already evaluated answers 409 cluster_frozen.",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.RUN_ANALYTICS)],
    )
    def evaluate(
        self, request: Request[object, object, State], code: FromPath[str]
    ) -> ClusterMembershipView:
        now = request.app.state.services.desk.clock()
        evaluate_cluster(ledger_of(request), code, today(now), actor(request), now)
        (view,) = summaries(request, [cluster_named(program_of(request), code)])
        return view

    @get(
        "/customers/{card:str}",
        operation_id="listCustomerClusters",
        summary="The clusters a card's holder is a member of (at each one's last evaluation)",
        description=TABLES,
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
        responses={
            200: ResponseSpec(
                list[CustomerClusterView], generate_examples=False, description="Their clusters"
            )
        },
    )
    def customer_clusters(
        self, request: Request[object, object, State], card: FromPath[str]
    ) -> Response[Any]:
        found = card_in_scope(request, card)
        program = program_of(request)
        services = request.app.state.services
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            codes = clusters_of(curs, services.settings, found.customer_id)
            latest = latest_evaluations(curs, services.settings)
        rows = [
            CustomerClusterView(
                code=code,
                name=program.clusters[code].current.terms.name,
                membership=latest[code].membership,
                version=latest[code].version,
                evaluated_on=latest[code].evaluated_on,
            )
            for code in codes
            if code in program.clusters and code in latest
        ]
        return negotiated(request, rows, f"{card}-clusters")
