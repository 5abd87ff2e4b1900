"""Backoffice API, promotions: list and read them, create them, give them new versions,
activate or deactivate them (each change a version in force from ``effective_from``),
and simulate what a basket would get at a till.

Scope: a promotion is seen by whoever it reaches (its nodes and the caller's scope
overlap, or it has no nodes: everywhere in its campaign); a scoped operator changes only
promotions whose nodes all lie in their scope."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import (
    Action,
    caller,
    check_in_scope,
    check_promotion_changeable,
    promotion_visible,
    requires,
)
from loyalty.api.i18n import localised_line, request_messages
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.apply import PromotionSpec
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import MovementDesk
from loyalty.commands.operators import network_of
from loyalty.commands.promotions import create_promotion, load_promotion, revise_promotion
from loyalty.commands.simulation import SimulatedMovement, Simulation, simulate
from loyalty.domain.errors import UnknownPromotion
from loyalty.domain.promotion import Promotion, PromotionTerms, PromotionVersion


class PromotionView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    campaign: str
    version: int
    active: bool
    name: str
    versions: tuple[PromotionVersion, ...]


class NewVersion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    terms: PromotionTerms
    effective_from: datetime | None = None
    """Default: now; never in the past."""


class Switch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    effective_from: datetime | None = None


class NewPromotion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    promotion: PromotionSpec
    effective_from: datetime | None = None


def view(promotion: Promotion, campaign_code: str) -> PromotionView:
    current = promotion.current
    return PromotionView(
        code=promotion.code,
        campaign=campaign_code,
        version=current.number,
        active=current.terms.active,
        name=current.terms.name,
        versions=tuple(promotion.versions),
    )


def campaign_code(ledger: Ledger, promotion: Promotion) -> str:
    campaign = ledger.load_all([promotion.campaign_id]).get(promotion.campaign_id)
    return str(getattr(campaign, "code", ""))


def visible_promotion(request: Request[object, object, State], code: str) -> Promotion:
    """The promotion, if the caller may see it (else not found, as if it did not exist)."""
    ledger: Ledger = request.app.state.services.ledger
    promotion = load_promotion(ledger, code)
    if not promotion_visible(
        caller(request), network_of(ledger), promotion.current.terms.where.nodes
    ):
        raise UnknownPromotion(f"no promotion has the code {code!r}", promotion=code)
    return promotion


class PromotionsController(Controller):
    path = "/api/v1/backoffice/promotions"
    tags = ("Backoffice",)

    @get(
        operation_id="listPromotions",
        summary="The promotions the caller may see, by page",
        description="Filters: campaign, active. Sortable: code, campaign, name, version.",
        sync_to_thread=True,
        guards=[requires(Action.READ_PROMOTIONS)],
    )
    def list_promotions(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
        campaign: FromQuery[str | None] = None,
        active: FromQuery[bool | None] = None,
    ) -> Page[PromotionView]:
        session = caller(request)
        desk: MovementDesk = request.app.state.services.desk
        program = desk.program.current()
        codes = {c.id: c.code for c in program.campaigns.values()}
        views = [
            view(p, codes.get(campaign_id, ""))
            for campaign_id, promotions in program.promotions.items()
            for p in promotions
            if program.network is not None
            and promotion_visible(session, program.network, p.current.terms.where.nodes)
        ]
        chosen = [
            v
            for v in sorted(views, key=lambda v: v.code)
            if campaign in (None, v.campaign) and active in (None, v.active)
        ]
        return page_of(chosen, limit, offset, sort, ("code", "campaign", "name", "version"))

    @get(
        "/{code:str}",
        operation_id="getPromotion",
        summary="A promotion with all its versions",
        sync_to_thread=True,
        guards=[requires(Action.READ_PROMOTIONS)],
    )
    def get_promotion(
        self, request: Request[object, object, State], code: FromPath[str]
    ) -> PromotionView:
        promotion = visible_promotion(request, code)
        return view(promotion, campaign_code(request.app.state.services.ledger, promotion))

    @post(
        operation_id="createPromotion",
        summary="Create a promotion (its first version, from effective_from or now)",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_PROMOTIONS)],
    )
    def create(
        self, request: Request[object, object, State], data: JSONBody[NewPromotion]
    ) -> PromotionView:
        ledger: Ledger = request.app.state.services.ledger
        spec = data.promotion
        check_promotion_changeable(caller(request), network_of(ledger), spec.terms.where.nodes)
        now = request.app.state.services.desk.clock()
        promotion = create_promotion(ledger, spec, data.effective_from or now, now)
        return view(promotion, spec.campaign)

    @post(
        "/{code:str}/versions",
        operation_id="versionPromotion",
        summary="Give a promotion new terms, in force from effective_from (or now)",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_PROMOTIONS)],
    )
    def new_version(
        self,
        request: Request[object, object, State],
        code: FromPath[str],
        data: JSONBody[NewVersion],
    ) -> PromotionView:
        return self.revise(request, code, lambda _: data.terms, data.effective_from)

    @post(
        "/{code:str}/activate",
        operation_id="activatePromotion",
        summary="Activate a promotion from effective_from (or now)",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_PROMOTIONS)],
    )
    def activate(
        self, request: Request[object, object, State], code: FromPath[str], data: JSONBody[Switch]
    ) -> PromotionView:
        switch = lambda p: msgspec.structs.replace(p.current.terms, active=True)  # noqa: E731
        return self.revise(request, code, switch, data.effective_from)

    @post(
        "/{code:str}/deactivate",
        operation_id="deactivatePromotion",
        summary="Deactivate a promotion from effective_from (or now)",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.CHANGE_PROMOTIONS)],
    )
    def deactivate(
        self, request: Request[object, object, State], code: FromPath[str], data: JSONBody[Switch]
    ) -> PromotionView:
        switch = lambda p: msgspec.structs.replace(p.current.terms, active=False)  # noqa: E731
        return self.revise(request, code, switch, data.effective_from)

    @staticmethod
    def revise(
        request: Request[object, object, State],
        code: str,
        terms_of: Callable[[Promotion], PromotionTerms],
        effective_from: datetime | None,
    ) -> PromotionView:
        ledger: Ledger = request.app.state.services.ledger
        network = network_of(ledger)
        promotion = visible_promotion(request, code)
        terms = terms_of(promotion)
        check_promotion_changeable(caller(request), network, promotion.current.terms.where.nodes)
        check_promotion_changeable(caller(request), network, terms.where.nodes)
        now = request.app.state.services.desk.clock()
        revised = revise_promotion(ledger, promotion, terms, effective_from or now, now)
        return view(revised, campaign_code(ledger, revised))

    @post(
        "/simulate",
        operation_id="simulatePromotions",
        summary="What the promotions in force would give a basket at a till (nothing written)",
        description=(
            "Runs the rule engine on a hypothetical purchase (or registration, or profile "
            "completion) at a terminal in the caller's scope, now or at occurred_at, for a "
            "card or a new anonymous one: the transactions, the promotion versions that "
            "fired, the balance after and the receipt messages."
        ),
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.SIMULATE_PROMOTIONS)],
    )
    def simulate(
        self, request: Request[object, object, State], data: JSONBody[SimulatedMovement]
    ) -> Simulation:
        desk: MovementDesk = request.app.state.services.desk
        network = network_of(desk.ledger)
        check_in_scope(caller(request), network, network.node(data.terminal).code)
        simulation = simulate(desk, data)
        program = desk.program.last
        _, messages = request_messages(request)
        lines = tuple(
            localised_line(m, messages, program.promotion_messages)
            for m in simulation.receipt_messages
        )
        return msgspec.structs.replace(simulation, receipt_messages=lines)
