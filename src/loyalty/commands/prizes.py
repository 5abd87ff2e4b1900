"""The Prize API's side of the ledger: each campaign's prize catalog (list, revise,
restock), and redemptions made away from the tills (a customer's app, an operator) with
their cancellation.

A redemption here is the same ``prize_redemption`` movement a till posts, recorded by the
same desk: the points spent on the account and the pieces taken from each prize are
appended in one transaction, so a prize is never oversold and a balance never goes
negative. Its idempotency key is the caller's ``redemption_id`` under the source
``~prizes``; a cancellation's is the redemption's own, under ``~prize-cancellations``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import msgspec
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import MovementDesk, Outcome, Pending, request_digest
from loyalty.commands.program import Program
from loyalty.commands.schemas import Key
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.campaign import CampaignView
from loyalty.domain.errors import (
    DuplicateCode,
    InvalidMovement,
    LoyaltyError,
    NoCampaign,
    UnknownCampaign,
    UnknownPrize,
    UnknownRedemption,
)
from loyalty.domain.movement import POINTS, Line, Location, Movement, MovementType
from loyalty.domain.prize import Code, Prize, PrizeTerms
from loyalty.rules.schedule import local_time

PRIZE_SOURCE = "~prizes"
CANCELLATION_SOURCE = "~prize-cancellations"
MAX_PIECES = 1000


class PrizeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A prize of a campaign's catalog, as created over the API or declared in a program
    file (where ``stock`` is the stock it starts with: applying a file again leaves the
    stock alone)."""

    code: Code
    campaign: Key
    terms: PrizeTerms
    stock: int = 0


class PrizeView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    campaign: str
    terms: PrizeTerms
    stock: int
    redeemed: int


class Restock(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    quantity: int
    """Pieces added; negative to write pieces off (never below zero)."""
    reason: Annotated[str, msgspec.Meta(max_length=500)]


class Redeem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A redemption away from a till's own API: idempotent on ``redemption_id``."""

    redemption_id: Key
    card: Key
    campaign: Key
    prize: Code
    quantity: Annotated[int, msgspec.Meta(ge=1, le=MAX_PIECES)] = 1
    terminal: Key | None = None
    """The till it is handed over at, if any (scoped operators must name one)."""
    occurred_at: datetime | None = None
    """Default: now."""


class CancelRedemption(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    terminal: Key | None = None
    """The till the redemption was made at; omitted: made over the Prize API."""


class Redemption(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded redemption, as found by its id."""

    redemption_id: str
    source: str
    card: str
    campaign: str
    occurred_at: datetime
    points: int
    lines: tuple[Line, ...]
    terminal: str | None
    cancelled: bool


def view_of(prize: Prize, campaign_code: str) -> PrizeView:
    return PrizeView(
        code=prize.code,
        campaign=campaign_code,
        terms=prize.terms,
        stock=prize.stock,
        redeemed=prize.redeemed,
    )


def campaign_named(program: Program, code: str) -> CampaignView:
    campaign = program.campaign_by_code(code)
    if campaign is None:
        raise UnknownCampaign(f"no campaign has the code {code!r}", campaign=code)
    return campaign


def load_prize(ledger: Ledger, campaign_id: UUID, code: str) -> Prize:
    found = ledger.load_all([ids.prize_id(campaign_id, code)]).get(ids.prize_id(campaign_id, code))
    if not isinstance(found, Prize):
        raise UnknownPrize(f"no prize has the code {code!r}", prize=code)
    return found


def list_prizes(ledger: Ledger) -> list[Prize]:
    """Every prize of every campaign, by campaign and code."""
    query = SQL("SELECT originator_id FROM {}.config_streams WHERE kind = 'prize'")
    rows = ledger.query(query.format(Identifier(ledger.settings.pg_schema)))
    found = ledger.load_all(row[0] for row in rows)
    prizes = [p for p in found.values() if isinstance(p, Prize)]
    return sorted(prizes, key=lambda p: (str(p.campaign_id), p.code))


def add_prize(ledger: Ledger, campaign: CampaignView, spec: PrizeSpec, by: str) -> Prize:
    if ledger.load_all([ids.prize_id(campaign.id, spec.code)]):
        raise DuplicateCode(
            f"campaign {campaign.code!r} already has a prize {spec.code!r}", field="code"
        )
    prize = Prize.list(campaign.id, spec.code, spec.terms, spec.stock, by)
    ledger.save(prize)
    return prize


def revise_prize(ledger: Ledger, prize: Prize, terms: PrizeTerms, by: str) -> Prize:
    prize.revise(terms, by)
    ledger.save(prize)
    return prize


def restock_prize(ledger: Ledger, prize: Prize, change: Restock, by: str) -> Prize:
    prize.restock(change.quantity, change.reason, by)
    ledger.save(prize)
    return prize


def redeem(desk: MovementDesk, command: Redeem, by: str) -> Outcome:
    """Records a redemption: the points it costs leave the account and the pieces the
    prize's stock, together, or nothing happens."""
    try:
        program = desk.program.current()
        campaign = campaign_named(program, command.campaign)
        prize = load_prize(desk.ledger, campaign.id, command.prize)
        occurred_at = command.occurred_at or desk.clock()
        location = program.location(command.terminal) if command.terminal else None
        check_campaign_runs(program, campaign, location, occurred_at)
        points = prize.terms.points * command.quantity
        movement = Movement(
            movement_id=command.redemption_id,
            type=MovementType.PRIZE_REDEMPTION,
            card=command.card,
            occurred_at=occurred_at,
            amount=Decimal(points),
            currency=POINTS,
            lines=(
                Line(
                    sku=prize.code,
                    department="",
                    quantity=Decimal(command.quantity),
                    unit_price=Decimal(prize.terms.points),
                    amount=Decimal(points),
                ),
            ),
            location=location,
            source=f"prize-api:{by}",
        )
        desk.check_not_in_future(movement)
    except LoyaltyError as error:
        return error
    pending = Pending(0, PRIZE_SOURCE, request_digest(command), movement, campaign)
    return desk.record_group([pending], program, check_revision=False)[0]


def check_campaign_runs(
    program: Program, campaign: CampaignView, location: Location | None, at: datetime
) -> None:
    """Refuses a redemption at a till that runs another campaign, or on a day the
    campaign does not run."""
    timezone = location.timezone if location else "UTC"
    day = local_time(at, timezone).date()
    if location is not None:
        running = program.campaign_at(location, day)
        if running.id != campaign.id:
            raise InvalidMovement(
                f"terminal {location.terminal!r} runs campaign {running.code!r}",
                field="campaign",
            )
    elif not campaign.terms.runs_on(day):
        raise NoCampaign(f"campaign {campaign.code!r} does not run on {day.isoformat()}")


def find_redemption(desk: MovementDesk, redemption_id: str, terminal: str | None) -> Redemption:
    """The redemption recorded under ``redemption_id`` at ``terminal`` (none: over the
    Prize API), with whether it was cancelled."""
    source = terminal or PRIZE_SOURCE
    if not is_key(redemption_id) or not is_key(source):
        raise UnknownRedemption(
            f"no redemption {redemption_id!r} was recorded there", redemption=redemption_id
        )
    rows = desk.ledger.query(
        SQL(
            "SELECT account_id, account_version FROM {}.movement_keys"
            " WHERE source = %s AND movement_id = %s"
        ).format(Identifier(desk.ledger.settings.pg_schema)),
        (source, redemption_id),
    )
    if not rows:
        raise UnknownRedemption(
            f"no redemption {redemption_id!r} was recorded there", redemption=redemption_id
        )
    ((account_id, version),) = rows
    movement = desk.stored_event(account_id, version).movement
    account = desk.ledger.load_all([account_id]).get(account_id)
    if movement.type is not MovementType.PRIZE_REDEMPTION or not isinstance(account, Account):
        raise UnknownRedemption(
            f"movement {redemption_id!r} is not a prize redemption", redemption=redemption_id
        )
    campaign = program_campaign(desk.program.current(), account.campaign_id)
    return Redemption(
        redemption_id=redemption_id,
        source=source,
        card=movement.card,
        campaign=campaign.code,
        occurred_at=movement.occurred_at,
        points=int(movement.amount),
        lines=movement.lines,
        terminal=movement.location.terminal if movement.location else None,
        cancelled=(source, redemption_id) in account.returned,
    )


def is_key(text: str) -> bool:
    """Whether ``text`` could be a key (1-64 characters, no control characters)."""
    return 0 < len(text) <= 64 and all(character >= " " for character in text)


def program_campaign(program: Program, campaign_id: UUID) -> CampaignView:
    campaign = program.campaigns[campaign_id]
    return CampaignView(id=campaign.id, code=campaign.code, terms=campaign.terms)


def cancel(desk: MovementDesk, redemption: Redemption, reason: str, by: str) -> Outcome:
    """Gives a redemption back: its points to the account, its pieces to the stock. A
    retry answers the first cancellation's receipt."""
    program = desk.program.current()
    campaign = campaign_named(program, redemption.campaign)
    movement = Movement(
        movement_id=f"{redemption.source}/{redemption.redemption_id}",
        type=MovementType.REDEMPTION_CANCELLATION,
        card=redemption.card,
        occurred_at=desk.clock(),
        amount=Decimal(0),
        currency=POINTS,
        original_movement_id=redemption.redemption_id,
        reason=reason,
        source=f"prize-api:{by}",
    )
    digest = hashlib.sha256(movement.movement_id.encode()).digest()
    pending = Pending(
        0, CANCELLATION_SOURCE, digest, movement, campaign, original_source=redemption.source
    )
    return desk.record_group([pending], program, check_revision=False)[0]
