"""Backoffice API, translations: the messages the API shows people, per locale, and the
admins' overrides of them (effective at once, without a release)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from loyalty.api.access import Action, caller, requires
from loyalty.api.i18n import catalog
from loyalty.commands.movements import MovementDesk
from loyalty.commands.translations import set_message
from loyalty.domain.translations import check_key


class Messages(msgspec.Struct, frozen=True, kw_only=True):
    locale: str
    messages: dict[str, str]


class MessageText(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


def desk_of(request: Request[object, object, State]) -> MovementDesk:
    desk: MovementDesk = request.app.state.services.desk
    return desk


class TranslationsController(Controller):
    path = "/api/v1/backoffice/translations"
    tags = ("Backoffice",)

    @get(
        "/{locale:str}",
        operation_id="getMessages",
        summary="The messages of a locale (bundled, with the overrides)",
        sync_to_thread=True,
        guards=[requires(Action.READ_TRANSLATIONS)],
    )
    def messages(self, request: Request[object, object, State], locale: FromPath[str]) -> Messages:
        check_key(locale, "code")
        merged = catalog(desk_of(request).program.current().translations)
        return Messages(locale=locale, messages=dict(sorted(merged.get(locale, {}).items())))

    @put(
        "/{locale:str}/{code:str}",
        operation_id="setMessage",
        summary="Override one message of a locale",
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_TRANSLATIONS)],
    )
    def set(
        self,
        request: Request[object, object, State],
        locale: FromPath[str],
        code: FromPath[str],
        data: JSONBody[MessageText],
    ) -> Messages:
        desk = desk_of(request)
        set_message(desk.ledger, locale, code, data.text, caller(request).username)
        merged = catalog(desk.program.current().translations)
        return Messages(locale=locale, messages={code: merged[locale][code]})

    @delete(
        "/{locale:str}/{code:str}",
        operation_id="resetMessage",
        summary="Go back to the bundled message",
        status_code=204,
        sync_to_thread=True,
        guards=[requires(Action.MANAGE_TRANSLATIONS)],
    )
    def reset(
        self, request: Request[object, object, State], locale: FromPath[str], code: FromPath[str]
    ) -> None:
        desk = desk_of(request)
        set_message(desk.ledger, locale, code, None, caller(request).username)
        desk.program.current()
