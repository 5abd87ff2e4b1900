"""Backoffice API, campaigns: list and read those the caller may see, launch one, change
its terms, end it.

Scope: a campaign is seen by whoever its nodes reach; admins and managers change any,
distributor and store managers only campaigns whose nodes all lie in their scope (a node
outside it answers 404, as a node that does not exist). A change is in force at once but
keeps the days that have passed (see :mod:`loyalty.commands.campaigns`)."""

from __future__ import annotations

from datetime import UTC, date

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from loyalty.api.access import (
    Action,
    caller,
    check_campaign_changeable,
    promotion_visible,
    requires,
)
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.apply import CampaignSpec
from loyalty.commands.campaigns import (
    end_campaign,
    launch_campaign,
    load_campaign,
    revise_campaign,
)
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import MovementDesk
from loyalty.commands.operators import network_of
from loyalty.commands.program import Program
from loyalty.domain.campaign import Campaign, CampaignTerms
from loyalty.domain.errors import UnknownCampaign


class CampaignView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    terms: CampaignTerms
    promotions: tuple[str, ...]


class NewCampaign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    campaign: CampaignSpec
    """The same code and terms as in program files."""


class CampaignUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    terms: CampaignTerms


class CampaignEnd(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ends_on: date | None = None
    """The last day it runs (local at each store): today (UTC, the default) or later."""


def program_of(request: Request[object, object, State]) -> Program:
    desk: MovementDesk = request.app.state.services.desk
    return desk.program.current()


def view(program: Program, campaign: Campaign) -> CampaignView:
    return CampaignView(
        code=campaign.code,
        name=campaign.terms.name,
        terms=campaign.terms,
        promotions=tuple(sorted(p.code for p in program.promotions.get(campaign.id, ()))),
    )


def visible_campaigns(request: Request[object, object, State]) -> list[CampaignView]:
    session, program = caller(request), program_of(request)
    assert program.network is not None
    return [
        view(program, campaign)
        for campaign in sorted(program.campaigns.values(), key=lambda c: c.code)
        if promotion_visible(session, program.network, campaign.terms.nodes)
    ]


def today_of(request: Request[object, object, State]) -> date:
    desk: MovementDesk = request.app.state.services.desk
    return desk.clock().astimezone(UTC).date()


def changeable_campaign(request: Request[object, object, State], code: str) -> Campaign:
    """The campaign, if the caller may see it (else not found) and change it."""
    ledger: Ledger = request.app.state.services.ledger
    network, session = network_of(ledger), caller(request)
    campaign = load_campaign(ledger, code)
    if not promotion_visible(session, network, campaign.terms.nodes):
        raise UnknownCampaign(f"no campaign has the code {code!r}", campaign=code)
    check_campaign_changeable(session, network, campaign.terms.nodes)
    return campaign


class CampaignsController(Controller):
    path = "/api/v1/backoffice/campaigns"
    tags = ("Backoffice",)

    @get(
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
        "/{code:str}",
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

    @post(
        operation_id="createCampaign",
        summary="Launch a campaign on nodes of the caller's scope, from today or later",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CAMPAIGNS)],
    )
    def create(
        self, request: Request[object, object, State], data: JSONBody[NewCampaign]
    ) -> CampaignView:
        ledger: Ledger = request.app.state.services.ledger
        network = network_of(ledger)
        check_campaign_changeable(caller(request), network, data.campaign.terms.nodes)
        campaign = launch_campaign(ledger, network, data.campaign, today_of(request))
        return view(program_of(request), campaign)

    @put(
        "/{code:str}",
        operation_id="changeCampaign",
        summary="Give a campaign new terms, in force at once (the days gone by keep theirs)",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CAMPAIGNS)],
    )
    def change(
        self,
        request: Request[object, object, State],
        code: FromPath[str],
        data: JSONBody[CampaignUpdate],
    ) -> CampaignView:
        ledger: Ledger = request.app.state.services.ledger
        network = network_of(ledger)
        campaign = changeable_campaign(request, code)
        check_campaign_changeable(caller(request), network, data.terms.nodes)
        revised = revise_campaign(ledger, network, campaign, data.terms, today_of(request))
        return view(program_of(request), revised)

    @post(
        "/{code:str}/end",
        operation_id="endCampaign",
        summary="End a campaign: its last day is ends_on (default today), never one gone by",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_CAMPAIGNS)],
    )
    def end(
        self,
        request: Request[object, object, State],
        code: FromPath[str],
        data: JSONBody[CampaignEnd],
    ) -> CampaignView:
        ledger: Ledger = request.app.state.services.ledger
        campaign = changeable_campaign(request, code)
        today = today_of(request)
        ended = end_campaign(ledger, network_of(ledger), campaign, data.ends_on or today, today)
        return view(program_of(request), ended)
