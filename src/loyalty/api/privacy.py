"""Backoffice API, customers' rights: export everything held on a card's holder (access and
portability) and erase them (their data key destroyed, the ledger kept). Admins only,
with a full session."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from loyalty.api.access import Action, caller, requires
from loyalty.commands.movements import MovementDesk
from loyalty.commands.privacy import CustomerExport, Erasure, erase, export


class EraseCustomer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    """Why (e.g. the request's reference); recorded, so nothing personal here."""


class PrivacyController(Controller):
    path = "/api/v1/backoffice/privacy/customers"
    tags = ("Backoffice",)

    @get(
        "/{card:str}/export",
        operation_id="exportCustomer",
        summary="Everything held on a card's holder: profile, cards, consents, movements",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIVACY)],
    )
    def export(
        self, request: Request[object, object, State], card: FromPath[str]
    ) -> CustomerExport:
        desk: MovementDesk = request.app.state.services.desk
        campaigns = list(desk.program.current().campaigns.values())
        return export(desk.ledger, card, campaigns)

    @post(
        "/{card:str}/erase",
        operation_id="eraseCustomer",
        summary="Erase a card's holder: their profile becomes unreadable for good",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIVACY)],
    )
    def erase(
        self,
        request: Request[object, object, State],
        card: FromPath[str],
        data: JSONBody[EraseCustomer],
    ) -> Erasure:
        desk: MovementDesk = request.app.state.services.desk
        return erase(desk.ledger, card, f"operator:{caller(request).username}", data.reason)
