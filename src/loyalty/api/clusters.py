"""Backoffice API, clusters: named criteria on customers, read by every operator, defined
and given new versions by admins and managers (they are chain-wide definitions), and
their size previewed by those who may read every customer (admins and managers).

A new version is in force from ``effective_from`` (default now, never in the past), as
for promotions. The size is counted by a scan of the event store (see
:mod:`loyalty.commands.cluster_size`). A cluster's terms say whether its members are
``dynamic`` (re-evaluated, the default) or ``static``: a static version in force at once
has its members evaluated and frozen as it is defined (:mod:`loyalty.commands.memberships`).
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import Action, actor, requires
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.apply import ClusterSpec
from loyalty.commands.cluster_size import ClusterSize, cluster_size, preview_criteria
from loyalty.commands.clusters import define_cluster, load_cluster, redefine_cluster
from loyalty.commands.ledger import Ledger
from loyalty.commands.memberships import evaluate_if_static
from loyalty.commands.movements import MovementDesk
from loyalty.commands.program import Program
from loyalty.domain.cluster import Cluster, ClusterTerms, ClusterVersion, Criterion
from loyalty.domain.errors import UnknownCluster


class ClusterView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    versions: tuple[ClusterVersion, ...]


class NewCluster(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    cluster: ClusterSpec
    """The same code and terms (name, criteria) as in program files."""
    effective_from: datetime | None = None
    """Default: now; never in the past."""


class NewClusterVersion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    terms: ClusterTerms
    effective_from: datetime | None = None
    """Default: now; never in the past, and after the version before."""


class ClusterPreview(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    criteria: Criterion
    as_of: date | None = None
    """The day the criteria are judged on: today (UTC, the default) or later."""
    campaign: str | None = None
    """Behaviour on this campaign's accounts; default: across all of a customer's."""


def cluster_view(cluster: Cluster) -> ClusterView:
    return ClusterView(
        code=cluster.code, name=cluster.versions[-1].terms.name, versions=tuple(cluster.versions)
    )


def program_of(request: Request[object, object, State]) -> Program:
    desk: MovementDesk = request.app.state.services.desk
    return desk.program.current()


class ClustersController(Controller):
    path = "/api/v1/backoffice/clusters"
    tags = ("Backoffice",)

    @get(
        operation_id="listClusters",
        summary="The clusters, by page",
        sync_to_thread=True,
        guards=[requires(Action.READ_PROMOTIONS)],
    )
    def list_clusters(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
    ) -> Page[ClusterView]:
        clusters = [
            cluster_view(c)
            for c in sorted(program_of(request).clusters.values(), key=lambda c: c.code)
        ]
        return page_of(clusters, limit, offset, sort, ("code", "name"))

    @get(
        "/{code:str}",
        operation_id="getCluster",
        summary="One cluster with its versions",
        sync_to_thread=True,
        guards=[requires(Action.READ_PROMOTIONS)],
    )
    def get_cluster(
        self, request: Request[object, object, State], code: FromPath[str]
    ) -> ClusterView:
        cluster = program_of(request).clusters.get(code)
        if cluster is None:
            raise UnknownCluster(f"no cluster has the code {code!r}", cluster=code)
        return cluster_view(cluster)

    @post(
        operation_id="createCluster",
        summary="Define a cluster (its first version, from effective_from or now)",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CLUSTERS)],
    )
    def create(
        self, request: Request[object, object, State], data: JSONBody[NewCluster]
    ) -> ClusterView:
        ledger: Ledger = request.app.state.services.ledger
        now = request.app.state.services.desk.clock()
        cluster = define_cluster(ledger, data.cluster, data.effective_from or now, now)
        evaluate_if_static(ledger, cluster, now, actor(request))
        return cluster_view(cluster)

    @post(
        "/{code:str}/versions",
        operation_id="versionCluster",
        summary="Give a cluster new criteria, in force from effective_from (or now)",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CLUSTERS)],
    )
    def new_version(
        self,
        request: Request[object, object, State],
        code: FromPath[str],
        data: JSONBody[NewClusterVersion],
    ) -> ClusterView:
        ledger: Ledger = request.app.state.services.ledger
        now = request.app.state.services.desk.clock()
        cluster = load_cluster(ledger, code)
        revised = redefine_cluster(ledger, cluster, data.terms, data.effective_from or now, now)
        evaluate_if_static(ledger, revised, now, actor(request))
        return cluster_view(revised)

    @post(
        "/preview",
        operation_id="previewCluster",
        summary="How many customers criteria would take in on a day (nothing is written)",
        description=(
            "Counts the registered customers (not erased) that the criteria take in on "
            "as_of (default today), judged as the rule engine judges them; behaviour on the "
            "accounts of campaign, or across all of a customer's. A scan of every customer."
        ),
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.PREVIEW_CLUSTERS)],
    )
    def preview(
        self, request: Request[object, object, State], data: JSONBody[ClusterPreview]
    ) -> ClusterSize:
        ledger: Ledger = request.app.state.services.ledger
        now = request.app.state.services.desk.clock()
        program = program_of(request)
        return preview_criteria(ledger, program, data.criteria, data.as_of, data.campaign, now)

    @get(
        "/{code:str}/size",
        operation_id="getClusterSize",
        summary="How many customers a cluster takes in on a day, by the version in force",
        sync_to_thread=True,
        guards=[requires(Action.PREVIEW_CLUSTERS)],
    )
    def size(
        self,
        request: Request[object, object, State],
        code: FromPath[str],
        as_of: FromQuery[date | None] = None,
        campaign: FromQuery[str | None] = None,
    ) -> ClusterSize:
        ledger: Ledger = request.app.state.services.ledger
        now = request.app.state.services.desk.clock()
        return cluster_size(ledger, program_of(request), code, as_of, campaign, now)
