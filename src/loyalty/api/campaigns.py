"""Backoffice API, campaigns and clusters, as the caller may see them: a campaign is seen
by whoever its nodes reach; clusters (named criteria on customers) by every operator."""

from __future__ import annotations

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import FromPath

from loyalty.api.access import Action, caller, promotion_visible, requires
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.movements import MovementDesk
from loyalty.commands.program import Program
from loyalty.domain.campaign import CampaignTerms
from loyalty.domain.cluster import Cluster, ClusterVersion
from loyalty.domain.errors import UnknownCampaign, UnknownCluster


class CampaignView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    terms: CampaignTerms
    promotions: tuple[str, ...]


class ClusterView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    versions: tuple[ClusterVersion, ...]


def cluster_view(cluster: Cluster) -> ClusterView:
    return ClusterView(
        code=cluster.code, name=cluster.versions[-1].terms.name, versions=tuple(cluster.versions)
    )


def program_of(request: Request[object, object, State]) -> Program:
    desk: MovementDesk = request.app.state.services.desk
    return desk.program.current()


def visible_campaigns(request: Request[object, object, State]) -> list[CampaignView]:
    session, program = caller(request), program_of(request)
    assert program.network is not None
    return [
        CampaignView(
            code=campaign.code,
            name=campaign.terms.name,
            terms=campaign.terms,
            promotions=tuple(sorted(p.code for p in program.promotions.get(campaign.id, ()))),
        )
        for campaign in sorted(program.campaigns.values(), key=lambda c: c.code)
        if promotion_visible(session, program.network, campaign.terms.nodes)
    ]


class CampaignsController(Controller):
    path = "/api/v1/backoffice"
    tags = ("Backoffice",)

    @get(
        "/campaigns",
        operation_id="listCampaigns",
        summary="The campaigns that reach the caller's scope, by page",
        sync_to_thread=True,
        guards=[requires(Action.READ_PROMOTIONS)],
    )
    def list_campaigns(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
    ) -> Page[CampaignView]:
        return page_of(visible_campaigns(request), limit, offset, sort, ("code", "name"))

    @get(
        "/campaigns/{code:str}",
        operation_id="getCampaign",
        summary="One campaign",
        sync_to_thread=True,
        guards=[requires(Action.READ_PROMOTIONS)],
    )
    def get_campaign(
        self, request: Request[object, object, State], code: FromPath[str]
    ) -> CampaignView:
        for campaign in visible_campaigns(request):
            if campaign.code == code:
                return campaign
        raise UnknownCampaign(f"no campaign has the code {code!r}", campaign=code)

    @get(
        "/clusters",
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
        "/clusters/{code:str}",
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
