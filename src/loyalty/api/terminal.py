"""Terminal API: the contract POS systems integrate against."""

from __future__ import annotations

import hashlib
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.dto import MsgspecDTO
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody, Parameter

from loyalty.api.errors import InvalidField, MalformedJson, UnsupportedMediaType
from loyalty.api.i18n import localised_receipt, request_messages
from loyalty.commands.movements import Recorded
from loyalty.commands.schemas import CardView, MovementReceipt, PostMovement
from loyalty.commands.writer import CardJob, GroupCommitWriter, PostJob
from loyalty.domain.errors import AuthenticationFailed

JSON = "application/json"


_movement_decoder = msgspec.json.Decoder(PostMovement)


class StrictMovementBody(MsgspecDTO[PostMovement]):
    """Decodes the body with msgspec, strictly (unknown fields refused), into our errors;
    litestar still documents ``PostMovement`` as the request body."""

    def decode_bytes(self, value: bytes) -> Any:
        try:
            return _movement_decoder.decode(value)
        except msgspec.ValidationError as error:
            message, _, path = str(error).partition(" - at `")
            field = path.rstrip("`").removeprefix("$").lstrip(".") or None
            raise InvalidField(message, field=field) from None
        except msgspec.DecodeError:
            raise MalformedJson("the body is not valid JSON") from None


def terminal_key_digest(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """SHA-256 of the bearer key; the key itself is never kept or logged."""
    scheme, _, key = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationFailed("send the terminal key as 'Authorization: Bearer <key>'")
    return hashlib.sha256(key.strip().encode()).hexdigest()


async def terminal_only(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Refuses, before the body is read, a request without a live terminal key (and a
    movement that is not JSON). The key's digest is left for the handler; the writer
    checks it again, with the terminal it names, against the program it records on."""
    if isinstance(connection, Request) and connection.method == "POST":
        content_type = connection.headers.get("content-type", "").split(";")[0].strip()
        if content_type != JSON:
            raise UnsupportedMediaType("send the movement as application/json")
    digest = terminal_key_digest(connection)
    program = writer_of(connection.app.state).desk.program
    if digest not in program.last.terminal_keys:
        refreshed = await anyio.to_thread.run_sync(program.current)
        if digest not in refreshed.terminal_keys:
            raise AuthenticationFailed("unknown or revoked terminal key")
    connection.state.key_digest = digest


def receipt_in_language(request: Request[object, object, State], body: bytes) -> tuple[bytes, str]:
    """A receipt's JSON in the language the request asks for (``Accept-Language``, else
    ``LOYALTY_DEFAULT_LOCALE``), and that language. The stored receipt, which a retry
    answers, is the engine's English: each answer renders it again."""
    program = request.app.state.services.desk.program.last
    locale, messages = request_messages(request)
    if locale == "en" and not program.translations.get("en"):
        return body, locale
    return localised_receipt(body, messages, program.promotion_messages), locale


POSITION_HEADER = "Ledger-Position"
"""The log position holding a newly recorded movement: an Analytics read given it as
``position`` waits until its figures include the movement (read-your-writes)."""


def answer_headers(locale: str, recorded: Recorded) -> dict[str, str]:
    headers = {"Content-Language": locale}
    if recorded.position is not None:
        headers[POSITION_HEADER] = str(recorded.position)
    return headers


def writer_of(state: State) -> GroupCommitWriter:
    writer: GroupCommitWriter = state.services.writer
    return writer


class TerminalController(Controller):
    path = "/api/v1/terminal"
    tags = ("Terminal",)
    guards = [terminal_only]  # noqa: RUF012 (litestar's own attribute)

    @post(
        "/movements",
        operation_id="postMovement",
        summary="Record a movement and get the benefits to print",
        description=(
            "Idempotent on (terminal, movement_id): a retry answers 200 with the identical "
            "body; the same movement_id with another body answers 409."
        ),
        status_code=201,
        dto=StrictMovementBody,
        return_dto=None,
    )
    async def post_movement(
        self, request: Request[object, object, State], data: JSONBody[PostMovement], state: State
    ) -> Response[MovementReceipt]:
        digest: str = request.state.key_digest
        recorded: Recorded = await writer_of(state).submit(PostJob(digest, data))
        body, locale = receipt_in_language(request, recorded.body)
        return Response(
            body,  # type: ignore[arg-type]
            status_code=recorded.status,
            media_type=JSON,
            headers=answer_headers(locale, recorded),
        )

    @get("/cards/{card:str}", operation_id="getCard", summary="A card's balance and status")
    async def get_card(
        self,
        request: Request[object, object, State],
        state: State,
        card: str = Parameter(max_length=64),
    ) -> CardView:
        job = CardJob(request.state.key_digest, card)
        view: CardView = await writer_of(state).submit(job)
        return view
