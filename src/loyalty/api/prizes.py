"""Prize API: each campaign's prize catalog, and redemptions with their cancellation.

Scope: a prize is seen by whoever its campaign reaches. Admins and managers manage the
catalog. A redemption is made by an admin, a manager or a Prize-family client anywhere,
and by a scoped caller (store or distributor manager, scoped client) only at a till in
its scope; a redemption (and its cancellation) is seen by whoever could have made it
there: to anyone else it does not exist (404).
"""

from __future__ import annotations

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import (
    Action,
    actor,
    caller,
    check_in_scope,
    covers,
    covers_everywhere,
    promotion_visible,
    requires,
)
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.api.terminal import answer_headers, receipt_in_language
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import MovementDesk, Recorded
from loyalty.commands.prizes import (
    CancelRedemption,
    PrizeSpec,
    PrizeView,
    Redeem,
    Redemption,
    Restock,
    add_prize,
    campaign_named,
    cancel,
    find_redemption,
    list_prizes,
    load_prize,
    redeem,
    restock_prize,
    revise_prize,
    view_of,
)
from loyalty.commands.program import Program
from loyalty.commands.schemas import MovementReceipt
from loyalty.domain.campaign import CampaignView
from loyalty.domain.errors import Forbidden, LoyaltyError, UnknownCampaign, UnknownRedemption
from loyalty.domain.network import Network
from loyalty.domain.prize import PrizeTerms

JSON = "application/json"


class ReviseTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    terms: PrizeTerms


def desk_of(request: Request[object, object, State]) -> MovementDesk:
    desk: MovementDesk = request.app.state.services.desk
    return desk


def network_in(program: Program) -> Network:
    assert program.network is not None
    return program.network


def visible_campaign(request: Request[object, object, State], code: str) -> CampaignView:
    """The campaign, if the caller's scope reaches it (else not found)."""
    program = desk_of(request).program.current()
    campaign = campaign_named(program, code)
    if not promotion_visible(caller(request), network_in(program), campaign.terms.nodes):
        raise UnknownCampaign(f"no campaign has the code {code!r}", campaign=code)
    return campaign


def answer(
    request: Request[object, object, State], outcome: Recorded | LoyaltyError
) -> Response[MovementReceipt]:
    """The receipt, in the request's language; a refusal raised as the problem it is."""
    if isinstance(outcome, LoyaltyError):
        raise outcome
    body, locale = receipt_in_language(request, outcome.body)
    return Response(
        body,  # type: ignore[arg-type]
        status_code=outcome.status,
        media_type=JSON,
        headers=answer_headers(locale, outcome),
    )


class PrizesController(Controller):
    path = "/api/v1/prizes"
    tags = ("Prize",)

    @get(
        operation_id="listPrizes",
        summary="The prizes of the campaigns the caller's scope reaches, by page",
        description="Filter: campaign. Sortable: code, campaign, stock, redeemed.",
        sync_to_thread=True,
        guards=[requires(Action.READ_PRIZES)],
    )
    def list_prizes(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
        campaign: FromQuery[str | None] = None,
    ) -> Page[PrizeView]:
        session, program = caller(request), desk_of(request).program.current()
        seen = {
            c.id: c.code
            for c in program.campaigns.values()
            if promotion_visible(session, network_in(program), c.terms.nodes)
            and campaign in (None, c.code)
        }
        views = [
            view_of(p, seen[p.campaign_id])
            for p in list_prizes(desk_of(request).ledger)
            if p.campaign_id in seen
        ]
        return page_of(views, limit, offset, sort, ("code", "campaign", "stock", "redeemed"))

    @post(
        operation_id="createPrize",
        summary="Add a prize to a campaign's catalog, with its first stock",
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIZES)],
    )
    def create(
        self, request: Request[object, object, State], data: JSONBody[PrizeSpec]
    ) -> PrizeView:
        campaign = visible_campaign(request, data.campaign)
        prize = add_prize(desk_of(request).ledger, campaign, data, actor(request))
        return view_of(prize, campaign.code)

    @get(
        "/{campaign:str}/{code:str}",
        operation_id="getPrize",
        summary="A prize: its terms, the pieces left and redeemed",
        sync_to_thread=True,
        guards=[requires(Action.READ_PRIZES)],
    )
    def get_prize(
        self, request: Request[object, object, State], campaign: FromPath[str], code: FromPath[str]
    ) -> PrizeView:
        found = visible_campaign(request, campaign)
        return view_of(load_prize(desk_of(request).ledger, found.id, code), found.code)

    @put(
        "/{campaign:str}/{code:str}",
        operation_id="revisePrize",
        summary="Change a prize's name, cost or validity (its stock is changed apart)",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIZES)],
    )
    def revise(
        self,
        request: Request[object, object, State],
        campaign: FromPath[str],
        code: FromPath[str],
        data: JSONBody[ReviseTerms],
    ) -> PrizeView:
        found = visible_campaign(request, campaign)
        ledger: Ledger = desk_of(request).ledger
        prize = revise_prize(ledger, load_prize(ledger, found.id, code), data.terms, actor(request))
        return view_of(prize, found.code)

    @post(
        "/{campaign:str}/{code:str}/stock",
        operation_id="restockPrize",
        summary="Add pieces to a prize's stock, or write some off, with the reason",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIZES)],
    )
    def restock(
        self,
        request: Request[object, object, State],
        campaign: FromPath[str],
        code: FromPath[str],
        data: JSONBody[Restock],
    ) -> PrizeView:
        found = visible_campaign(request, campaign)
        ledger: Ledger = desk_of(request).ledger
        prize = restock_prize(ledger, load_prize(ledger, found.id, code), data, actor(request))
        return view_of(prize, found.code)


def check_may_redeem_at(request: Request[object, object, State], terminal: str | None) -> None:
    """A scoped caller redeems only at a till of its scope."""
    session, program = caller(request), desk_of(request).program.current()
    network = network_in(program)
    if covers_everywhere(session, network):
        return
    if terminal is None:
        raise Forbidden("name the terminal the prize is handed over at")
    check_in_scope(session, network, network.node(terminal).code)


def reachable_redemption(
    request: Request[object, object, State], redemption_id: str, terminal: str | None
) -> Redemption:
    """The redemption, if the caller could have made it (else not found)."""
    desk = desk_of(request)
    redemption = find_redemption(desk, redemption_id, terminal)
    session, network = caller(request), network_in(desk.program.current())
    if covers_everywhere(session, network):
        return redemption
    if redemption.terminal is None or not covers(session, network, redemption.terminal):
        raise UnknownRedemption(
            f"no redemption {redemption_id!r} was recorded there", redemption=redemption_id
        )
    return redemption


class RedemptionsController(Controller):
    path = "/api/v1/redemptions"
    tags = ("Prize",)

    @post(
        operation_id="redeemPrize",
        summary="Redeem a prize for a card: spends the points and takes the pieces, together",
        description=(
            "Idempotent on redemption_id: a retry answers 200 with the identical receipt. "
            "Refused without a change when the balance is short (insufficient_points), the "
            "stock is short (out_of_stock) or the prize is not valid that day "
            "(prize_not_available)."
        ),
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.REDEEM_PRIZES)],
    )
    def redeem(
        self, request: Request[object, object, State], data: JSONBody[Redeem]
    ) -> Response[MovementReceipt]:
        visible_campaign(request, data.campaign)
        check_may_redeem_at(request, data.terminal)
        return answer(request, redeem(desk_of(request), data, actor(request)))

    @get(
        "/{redemption_id:str}",
        operation_id="getRedemption",
        summary="A redemption: card, campaign, prizes, points, and whether it was cancelled",
        description="terminal: the till it was made at (omitted: made over the Prize API).",
        sync_to_thread=True,
        guards=[requires(Action.REDEEM_PRIZES)],
    )
    def get_redemption(
        self,
        request: Request[object, object, State],
        redemption_id: FromPath[str],
        terminal: FromQuery[str | None] = None,
    ) -> Redemption:
        return reachable_redemption(request, redemption_id, terminal)

    @post(
        "/{redemption_id:str}/cancel",
        operation_id="cancelRedemption",
        summary="Cancel a redemption: its points go back to the account, its pieces to stock",
        description=(
            "Once: a retry answers 200 with the first cancellation's receipt; a redemption "
            "already cancelled at the till answers 422 already_cancelled."
        ),
        status_code=201,
        sync_to_thread=True,
        guards=[requires(Action.REDEEM_PRIZES)],
    )
    def cancel(
        self,
        request: Request[object, object, State],
        redemption_id: FromPath[str],
        data: JSONBody[CancelRedemption],
    ) -> Response[MovementReceipt]:
        redemption = reachable_redemption(request, redemption_id, data.terminal)
        return answer(request, cancel(desk_of(request), redemption, data.reason, actor(request)))
