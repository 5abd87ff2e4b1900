"""Backoffice API, promotions: simulate what a basket would get at a till."""

from __future__ import annotations

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.params import JSONBody

from loyalty.api.access import Action, caller, check_in_scope, requires
from loyalty.commands.movements import MovementDesk
from loyalty.commands.operators import network_of
from loyalty.commands.simulation import SimulatedMovement, Simulation, simulate


class PromotionsController(Controller):
    path = "/api/v1/backoffice/promotions"
    tags = ("Backoffice",)

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
        return simulate(desk, data)
