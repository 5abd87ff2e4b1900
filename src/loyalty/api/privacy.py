"""Backoffice API, privacy: export everything held on a card's holder (access and
portability), erase them (their data key destroyed, the ledger kept), publish the privacy
policy's texts, and run consent sample checks (JSON, or HTML for people). Admins only,
with a full session."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from loyalty.api.access import Action, actor, requires
from loyalty.commands.consents import (
    SampleReport,
    SampleRequest,
    policy_of,
    publish_policy,
    report_html,
    sample_check,
)
from loyalty.commands.movements import MovementDesk
from loyalty.commands.privacy import CustomerExport, Erasure, erase, export
from loyalty.domain.consent import PolicyText


class EraseCustomer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    """Why (e.g. the request's reference); recorded, so nothing personal here."""


class PolicyChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]


class PolicyController(Controller):
    path = "/api/v1/backoffice/privacy/policies"
    tags = ("Backoffice",)

    @get(
        operation_id="listPolicies",
        summary="Every version of the privacy policy, per locale, with its SHA-256",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIVACY)],
    )
    def list_policies(self, request: Request[object, object, State]) -> list[PolicyText]:
        desk: MovementDesk = request.app.state.services.desk
        texts = policy_of(desk.ledger).texts.values()
        return sorted(texts, key=lambda t: (t.version, t.locale))

    @put(
        "/{locale:str}",
        operation_id="publishPolicy",
        summary="Publish a new version of the policy text in a locale",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIVACY)],
    )
    def publish(
        self,
        request: Request[object, object, State],
        locale: FromPath[str],
        data: JSONBody[PolicyChange],
    ) -> PolicyText:
        desk: MovementDesk = request.app.state.services.desk
        return publish_policy(desk.ledger, locale, data.text, desk.clock(), actor(request))


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
        return erase(desk.ledger, card, actor(request), data.reason)

    @post(
        "/samples",
        operation_id="sampleConsents",
        summary="A consent sample check: a reproducible sample, each trail, its anomalies",
        description=(
            "The same seed over the same log draws the same customers. Answers JSON, or "
            "HTML when the request accepts text/html. The check is recorded (who, "
            "parameters, SHA-256 of the result)."
        ),
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_PRIVACY)],
    )
    def sample(
        self, request: Request[object, object, State], data: JSONBody[SampleRequest]
    ) -> Response[SampleReport]:
        services = request.app.state.services
        delay = timedelta(hours=services.settings.withdrawal_delay_h)
        report = sample_check(services.ledger, data, delay, actor(request))
        if "text/html" in request.headers.get("accept", ""):
            return Response(report_html(report), media_type="text/html")  # type: ignore[arg-type]
        return Response(report)
