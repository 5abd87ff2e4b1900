"""Recording movements: the POS write path, batched into one transaction per group.

:meth:`MovementDesk.post` takes a group of POS movements and, in one append transaction,
records every one it accepts: the account events, budget consumption and idempotency
records. A movement already recorded under the same (terminal, movement id) answers with
its first receipt (same digest) or :class:`IdempotencyConflict` (different body). If
another process appended to one of the streams meanwhile, the group is decided again on
fresh state (optimistic concurrency): no update is lost, no point spent twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from psycopg.sql import SQL, Identifier

from loyalty.adapters.eventstore import MovementKey
from loyalty.commands.cache import AggregateCache
from loyalty.commands.ledger import Ledger, Statement
from loyalty.commands.program import Program, ProgramCache
from loyalty.commands.schemas import (
    Adjust,
    Balance,
    CardView,
    MovementReceipt,
    PostMovement,
    ReceiptTransaction,
)
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.budget import PromotionBudget
from loyalty.domain.campaign import CampaignView, campaign_for
from loyalty.domain.card import Card
from loyalty.domain.customer import Customer, CustomerFacts
from loyalty.domain.errors import (
    AuthenticationFailed,
    ConcurrentUpdate,
    IdempotencyConflict,
    InvalidMovement,
    LoyaltyError,
    TerminalMismatch,
    UnknownCampaign,
    UnknownCard,
    UnknownOriginalMovement,
    UnknownPrize,
)
from loyalty.domain.movement import (
    CENT,
    REFERS_TO_ORIGINAL,
    Derivation,
    Line,
    Movement,
    MovementType,
    check_movement,
)
from loyalty.domain.prize import Prize
from loyalty.rules.engine import Context, OriginalMovement, derive
from loyalty.rules.schedule import local_time

log = logging.getLogger(__name__)

OPERATOR_SOURCE = "~operator"
ATTEMPTS = 3

_encoder = msgspec.json.Encoder()


class Recorded(NamedTuple):
    """A movement's answer: 201 when first recorded, 200 for a retry; the receipt's JSON;
    for a first recording, the log position that holds it (read-your-writes)."""

    status: int
    body: bytes
    position: int | None = None


Outcome = Recorded | LoyaltyError


class RecordingFailed(LoyaltyError):
    """A movement hit a fault of ours: it alone fails, the rest of its group is recorded."""

    status = 500
    code = "internal_error"


class ProgramChanged(Exception):
    """The program moved on since the group was prepared: prepare it again."""

    def __init__(self, revision: int) -> None:
        super().__init__(revision)
        self.revision = revision


def authenticate(program: Program, key_digest: str, terminal: str) -> None:
    """Refuses a key that is unknown or revoked, or that belongs to another terminal."""
    owner = program.terminal_keys.get(key_digest)
    if owner is None:
        raise AuthenticationFailed("unknown or revoked terminal key")
    if owner != terminal:
        raise TerminalMismatch(
            f"this key belongs to terminal {owner!r}; it cannot post for {terminal!r}"
        )


def request_digest(command: msgspec.Struct) -> bytes:
    return hashlib.sha256(_encoder.encode(command)).digest()


@dataclass
class Pending:
    """A movement of the group, accepted so far, waiting for its account and card."""

    index: int
    source: str
    digest: bytes
    movement: Movement
    campaign: CampaignView
    original_source: str | None = None
    """Where the movement a return or cancellation names was recorded, when it is not
    where this one is (a Prize API cancellation of a till's redemption)."""


class MovementDesk:
    def __init__(
        self,
        ledger: Ledger,
        clock: Callable[[], datetime],
        max_future_skew: timedelta = timedelta(minutes=5),
        *,
        cached_aggregates: int,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.max_future_skew = max_future_skew
        self.program = ProgramCache(ledger)
        self.cache = AggregateCache(ledger, cached_aggregates)
        schema = Identifier(ledger.settings.pg_schema)
        self._existing_keys = SQL(
            "SELECT k.source, k.movement_id, k.request_digest, k.response"
            " FROM {}.movement_keys k JOIN unnest(%b::text[], %b::text[]) AS q(source, movement_id)"
            " USING (source, movement_id)"
        ).format(schema)
        self._originals = SQL(
            "SELECT source, account_version FROM {}.movement_keys"
            " WHERE account_id = %s AND movement_id = %s"
        ).format(schema)

    def post(
        self, commands: Sequence[PostMovement], key_digests: Sequence[str] | None = None
    ) -> list[Outcome]:
        """Records a group of POS movements; one outcome per command, in order.

        With ``key_digests`` (a till's key digest per command), each command is first
        authenticated: the key must be a live terminal key, and of the terminal it names.
        The group is decided on the program snapshot held; if the program has moved on
        meanwhile (checked in the same round trip as the group's reads) the group is
        prepared again on the new one before anything is written.
        """
        program = self.program.loaded()
        while True:
            items = [
                self.prepare(command, program, key_digests[i] if key_digests else None)
                for i, command in enumerate(commands)
            ]
            try:
                return self.record_group(items, program)
            except ProgramChanged as changed:
                program = self.program.at_revision(changed.revision)

    def adjust(self, command: Adjust) -> Outcome:
        """Records an operator's adjustment through the same path as a till's movement."""
        try:
            program = self.program.current()
            campaign = program.campaign_by_code(command.campaign)
            if campaign is None:
                raise UnknownCampaign(f"no campaign has the code {command.campaign!r}")
            if not command.reason.strip():
                raise InvalidMovement("an adjustment needs a reason", field="reason")
            movement = Movement(
                movement_id=command.movement_id,
                type=MovementType.ADJUSTMENT,
                card=command.card,
                occurred_at=command.occurred_at,
                amount=Decimal(0),
                currency="",
                points=command.points,
                credits=command.credits,
                reason=command.reason,
                source=f"operator:{command.operator}",
            )
            check_movement(movement)
            self.check_not_in_future(movement)
        except LoyaltyError as error:
            return error
        pending = Pending(0, OPERATOR_SOURCE, request_digest(command), movement, campaign)
        return self.record_group([pending], program, check_revision=False)[0]

    def prepare(
        self, command: PostMovement, program: Program, key_digest: str | None = None
    ) -> Pending | LoyaltyError:
        """The checks a movement passes before any account is read."""
        try:
            if key_digest is not None:
                authenticate(program, key_digest, command.terminal)
            if command.type is MovementType.ADJUSTMENT:
                raise InvalidMovement(
                    "adjustments are made by operators, not by terminals", field="type"
                )
            location = program.location(command.terminal)
            movement = Movement(
                movement_id=command.movement_id,
                type=command.type,
                card=command.card,
                occurred_at=command.occurred_at,
                amount=command.amount,
                currency=command.currency,
                lines=command.lines,
                location=location,
                original_movement_id=command.original_movement_id,
                source=f"terminal:{command.terminal}",
            )
            check_movement(movement)
            self.check_not_in_future(movement)
            day = local_time(movement.occurred_at, location.timezone).date()
            campaign = program.campaign_at(location, day)
        except LoyaltyError as error:
            return error
        return Pending(0, command.terminal, request_digest(command), movement, campaign)

    def check_not_in_future(self, movement: Movement) -> None:
        if movement.occurred_at.tzinfo is None:
            raise InvalidMovement("occurred_at needs a UTC offset", field="occurred_at")
        if movement.occurred_at > self.clock() + self.max_future_skew:
            raise InvalidMovement(
                "occurred_at is in the future beyond the allowed clock skew",
                field="occurred_at",
            )

    def record_group(
        self,
        items: Sequence[Pending | LoyaltyError],
        program: Program,
        check_revision: bool = True,
    ) -> list[Outcome]:
        for _ in range(ATTEMPTS):
            try:
                return Group(self, indexed(items), program, check_revision).run()
            except IntegrityError:
                continue
            except (ProgramChanged, OperationalError, InterfaceError):
                raise
            except Exception:
                if len(items) == 1:
                    raise
                log.exception("a group of %d movements failed; each is tried alone", len(items))
                break
        return [self.record_alone(item, program) for item in items]

    def record_alone(self, item: Pending | LoyaltyError, program: Program) -> Outcome:
        """One movement in a group of its own, on ``program`` (some of the group it came
        from may be recorded already, so the program is not checked again)."""
        if isinstance(item, LoyaltyError):
            return item
        try:
            return Group(self, indexed([item]), program, check_revision=False).run()[0]
        except IntegrityError:
            return ConcurrentUpdate(
                "the account changed while the movement was recorded; retry",
                movement_id=item.movement.movement_id,
            )
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("movement %r could not be recorded", item.movement.movement_id)
            return RecordingFailed(
                "this movement could not be recorded; it was not written",
                movement_id=item.movement.movement_id,
            )

    def existing_statement(self, keys: Sequence[tuple[str, str]]) -> Statement:
        """The read of the idempotency records already held for ``keys``."""
        return self._existing_keys, ([s for s, _ in keys], [m for _, m in keys])

    def stored_originals(self, account_id: UUID, movement_id: str) -> list[tuple[str, int]]:
        """(source, account version) of each stored movement of the account so named."""
        rows = self.ledger.query(self._originals, (account_id, movement_id))
        return [(source, version) for source, version in rows]

    def stored_event(self, account_id: UUID, version: int) -> Account.MovementRecorded:
        (event,) = self.ledger.events.get(account_id, gt=version - 1, lte=version)
        return cast(Account.MovementRecorded, event)

    def card_view(self, card_code: str, terminal: str) -> CardView:
        """Balance and status of a card at ``terminal``'s campaign today; no personal data."""
        program = self.program.current()
        card = self.cache.fetch([ids.card_id(card_code)]).get(ids.card_id(card_code))
        if not isinstance(card, Card):
            raise UnknownCard(f"no card has the code {card_code!r}", card=card_code)
        location = program.location(terminal)
        day = local_time(self.clock(), location.timezone).date()
        campaign = campaign_for(program.views, location.path, day)
        found = self.cache.fetch(
            [card.customer_id]
            + ([ids.account_id(campaign.id, card.customer_id)] if campaign else [])
        )
        customer = found.get(card.customer_id)
        account = found.get(ids.account_id(campaign.id, card.customer_id)) if campaign else None
        return CardView(
            card=card.code,
            status=card.status,
            registered=isinstance(customer, Customer) and not customer.erased,
            campaign=campaign.code if campaign else None,
            balance=balance_of(account if isinstance(account, Account) else None),
        )


def balance_of(account: Account | None) -> Balance:
    if account is None:
        return Balance(points=0, credits=Decimal("0.00"))
    return Balance(points=account.points, credits=account.credits.quantize(CENT))


class Group:
    """One attempt at recording a group of movements in one transaction.

    The events are appended in the order the movements were decided, each movement's
    account event before the budget and prize events it caused: the log's order is the
    order of decisions, which is what lets an audit replay rebuild each decision's inputs.

    :meth:`decide` reads what the group needs and records its movements on the cached
    aggregates (nothing is written); :meth:`append` writes the result in one statement.
    """

    def __init__(
        self,
        desk: MovementDesk,
        items: Sequence[Pending | LoyaltyError],
        program: Program,
        check_revision: bool,
    ) -> None:
        self.desk = desk
        self.items = items
        self.program = program
        self.check_revision = check_revision
        self.outcomes: list[Outcome | None] = [
            item if isinstance(item, LoyaltyError) else None for item in items
        ]
        self.keys: list[MovementKey] = []
        self.touched: dict[UUID, Aggregate] = {}
        self.accepted: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self.in_group: dict[tuple[UUID, str], tuple[str, int]] = {}
        self.recorded: dict[tuple[UUID, int], Account.MovementRecorded] = {}
        self.events: list[Any] = []
        self.requested: set[UUID] = set()

    def run(self) -> list[Outcome]:
        """Decides and appends: the outcome of each item, in order."""
        try:
            self.decide()
            self.append()
        except Exception:
            self.forget()
            raise
        return self.results()

    def results(self) -> list[Outcome]:
        return cast(list[Outcome], self.outcomes)

    def decide(self) -> None:
        pending = [item for item in self.items if isinstance(item, Pending)]
        aggregates, existing = self.read(pending)
        fresh = [i for i in pending if (i.source, i.movement.movement_id) not in existing]
        aggregates.update(self.load_missing(fresh, aggregates))
        for item in pending:
            key = (item.source, item.movement.movement_id)
            found = existing.get(key) or self.accepted.get(key)
            self.outcomes[item.index] = (
                replay(item, *found) if found else self.record(item, aggregates)
            )
        for aggregate in self.touched.values():
            self.desk.cache.put(aggregate)

    def append(self) -> None:
        """Writes the group in one statement; each movement it recorded learns the log
        position that holds the whole group."""
        if not self.events:
            return
        position = max(self.desk.ledger.record_movements(self.events, self.keys))
        self.outcomes = [
            o._replace(position=position) if isinstance(o, Recorded) and o.status == 201 else o
            for o in self.outcomes
        ]

    def forget(self) -> None:
        """Drops every aggregate the group read from the cache: some may hold events that
        were not stored (the cache reads them afresh next time)."""
        self.desk.cache.forget(self.requested | self.touched.keys())

    def read(
        self, pending: list[Pending]
    ) -> tuple[dict[UUID, object], dict[tuple[str, str], tuple[bytes, bytes]]]:
        """Everything the group needs, in one round trip: the program revision, the
        idempotency records already held, and the cards with (for the cards already
        cached) their customers, accounts and budgets, all brought up to date."""
        desk = self.desk
        for item in pending:
            card_id = ids.card_id(item.movement.card)
            self.requested.add(card_id)
            card = desk.cache.peek(card_id)
            if isinstance(card, Card):
                self.requested.update(self.streams_of(item, card))
        keys = [(item.source, item.movement.movement_id) for item in pending]
        found, (revision_rows, key_rows) = desk.cache.fetch_along(
            self.requested,
            [desk.program.revision_statement, desk.existing_statement(keys)],
        )
        ((revision,),) = revision_rows
        if self.check_revision and revision != self.program.revision:
            raise ProgramChanged(revision)
        existing = {(s, m): (bytes(d), bytes(r)) for s, m, d, r in key_rows}
        return dict(found), existing

    def streams_of(self, item: Pending, card: Card) -> set[UUID]:
        """The streams a movement on ``card`` reads besides the card itself."""
        return {
            card.customer_id,
            ids.account_id(item.campaign.id, card.customer_id),
            *self.program.budgets.get(item.campaign.id, ()),
            *(ids.prize_id(item.campaign.id, line.sku) for line in prize_lines(item.movement)),
        }

    def load_missing(
        self, fresh: list[Pending], aggregates: dict[UUID, object]
    ) -> dict[UUID, object]:
        """The streams of cards that were not cached (or changed customer): a second read."""
        wanted: set[UUID] = set()
        for item in fresh:
            card = aggregates.get(ids.card_id(item.movement.card))
            if isinstance(card, Card):
                wanted.update(self.streams_of(item, card) - self.requested)
        if not wanted:
            return {}
        self.requested.update(wanted)
        return dict(self.desk.cache.fetch(wanted))

    def record(self, item: Pending, aggregates: dict[UUID, object]) -> Outcome:
        movement = item.movement
        try:
            card = aggregates.get(ids.card_id(movement.card))
            if not isinstance(card, Card):
                raise UnknownCard(f"no card has the code {movement.card!r}", card=movement.card)
            card.check_can_move()
            account = self.account(item.campaign.id, card.customer_id, aggregates)
            context = self.context(item, card, account, aggregates)
            stock = self.stock_moved(item, context, aggregates)
            derivation = derive(movement, context)
            account.record(movement, derivation)
        except LoyaltyError as error:
            return error
        budgets = self.consume_budgets(derivation, movement, aggregates)
        prizes = self.move_stock(stock)
        self.touched[account.id] = account
        body = _encoder.encode(receipt_of(movement, derivation, account))
        self.accepted[(item.source, movement.movement_id)] = (item.digest, body)
        self.in_group[(account.id, movement.movement_id)] = (item.source, account.version)
        self.recorded[(account.id, account.version)] = cast(
            Account.MovementRecorded, account.pending_events[-1]
        )
        self.keys.append(
            MovementKey(
                source=item.source,
                movement_id=movement.movement_id,
                request_digest=item.digest,
                response=body,
                account_id=account.id,
                account_version=account.version,
            )
        )
        for aggregate in (account, *budgets, *prizes):
            self.events.extend(aggregate.collect_events())
        return Recorded(201, body)

    def account(
        self, campaign_id: UUID, customer_id: UUID, aggregates: dict[UUID, object]
    ) -> Account:
        account_id = ids.account_id(campaign_id, customer_id)
        account = aggregates.get(account_id)
        if not isinstance(account, Account):
            account = Account(campaign_id=campaign_id, customer_id=customer_id)
            aggregates[account_id] = account
        return account

    def context(
        self, item: Pending, card: Card, account: Account, aggregates: dict[UUID, object]
    ) -> Context:
        movement = item.movement
        original = self.original_of(item, account) if movement.type in REFERS_TO_ORIGINAL else None
        return context_for(
            self.program, item.campaign, movement, card, account, aggregates, original
        )

    def original_of(self, item: Pending, account: Account) -> OriginalMovement:
        """The movement a return or cancellation gives back: stored, or earlier in this
        group; the one recorded at the same place first."""
        movement = item.movement
        wanted = cast(str, movement.original_movement_id)
        candidates = self.desk.stored_originals(account.id, wanted)
        if (account.id, wanted) in self.in_group:
            candidates.append(self.in_group[(account.id, wanted)])
        source = item.original_source or item.source
        same_source = [c for c in candidates if c[0] == source]
        chosen = same_source or candidates
        if not chosen:
            raise UnknownOriginalMovement(
                f"no movement {wanted!r} of this card's account to return", movement_id=wanted
            )
        if len(chosen) > 1:
            raise InvalidMovement(
                f"movement {wanted!r} exists at several terminals; return it at its own terminal",
                field="original_movement_id",
            )
        source, version = chosen[0]
        event = self.recorded_event(account, version)
        return OriginalMovement(
            source=source,
            movement=event.movement,
            derivation=event.derivation,
            account_version=version,
            returned_before=account.returned.get((source, wanted), ()),
        )

    def recorded_event(self, account: Account, version: int) -> Account.MovementRecorded:
        if (account.id, version) in self.recorded:
            return self.recorded[(account.id, version)]
        return self.desk.stored_event(account.id, version)

    def stock_moved(
        self, item: Pending, context: Context, aggregates: dict[UUID, object]
    ) -> StockMove | None:
        """The pieces of prizes a redemption takes or a cancellation puts back; refuses a
        redemption of a prize that is unknown, priced otherwise, not available or short."""
        movement = item.movement
        day = local_time(movement.occurred_at, timezone_of(movement)).date()
        if movement.type is MovementType.PRIZE_REDEMPTION:
            prizes = self.prizes(item.campaign.id, movement.lines, aggregates)
            pieces = check_prize_lines(movement.lines, prizes, item.campaign.code)
            for code, quantity in pieces.items():
                prizes[code].check_redeemable(quantity, day)
            redemption = f"{item.source}/{movement.movement_id}"
            return StockMove(redemption, day, [(prizes[c], q) for c, q in pieces.items()], True)
        if movement.type is MovementType.REDEMPTION_CANCELLATION:
            original = context.original
            assert original is not None
            lines = prize_lines(original.movement)
            prizes = self.prizes(item.campaign.id, lines, aggregates)
            pieces = pieces_per_prize(lines)
            redemption = f"{original.source}/{original.movement.movement_id}"
            taken = [(prizes[c], q) for c, q in pieces.items() if c in prizes]
            return StockMove(redemption, day, taken, False)
        return None

    def prizes(
        self, campaign_id: UUID, lines: Sequence[Line], aggregates: dict[UUID, object]
    ) -> dict[str, Prize]:
        """The campaign's prizes that ``lines`` name and that exist (read if not read yet)."""
        wanted = {ids.prize_id(campaign_id, line.sku): line.sku for line in lines}
        missing = [i for i in wanted if i not in aggregates]
        if missing:
            self.requested.update(missing)
            aggregates.update(self.desk.cache.fetch(missing))
        return {
            code: prize
            for prize_id, code in wanted.items()
            if isinstance(prize := aggregates.get(prize_id), Prize)
        }

    def move_stock(self, move: StockMove | None) -> list[Prize]:
        """Takes or puts back the pieces; the prizes changed."""
        if move is None:
            return []
        for prize, quantity in move.pieces:
            if move.taken:
                prize.redeem(move.redemption, quantity, move.day)
            else:
                prize.release(move.redemption, quantity)
            self.touched[prize.id] = prize
        return [prize for prize, _ in move.pieces]

    def consume_budgets(
        self, derivation: Derivation, movement: Movement, aggregates: dict[UUID, object]
    ) -> list[PromotionBudget]:
        """Records what the movement's promotions took of their budgets; the budgets."""
        consumed = []
        for usage in derivation.budgets:
            budget_id = ids.budget_id(usage.promotion_id)
            budget = aggregates.get(budget_id)
            if not isinstance(budget, PromotionBudget):
                budget = PromotionBudget(promotion_id=usage.promotion_id)
                aggregates[budget_id] = budget
            budget.consume(usage.points, usage.uses, f"{movement.source}/{movement.movement_id}")
            self.touched[budget_id] = budget
            consumed.append(budget)
        return consumed


def context_for(
    program: Program,
    campaign: CampaignView,
    movement: Movement,
    card: Card,
    account: Account,
    aggregates: Mapping[UUID, object],
    original: OriginalMovement | None = None,
) -> Context:
    """What the rule engine reads for ``movement``: the versions in force at its time, the
    customer's facts, the account, the budgets consumed (from ``aggregates``)."""
    customer = aggregates.get(card.customer_id)
    facts = (
        customer.facts(card.status)
        if isinstance(customer, Customer)
        else CustomerFacts(card_status=card.status)
    )
    at = movement.occurred_at.astimezone(UTC)  # once, in the time zone the epochs compare in
    promotions = program.promotions_in_force(campaign.id, at)
    budgets = {}
    for promotion in promotions.with_budget:
        budget = aggregates.get(ids.budget_id(promotion.id))
        if isinstance(budget, PromotionBudget):
            budgets[promotion.id] = (budget.points, budget.uses)
    return Context(
        campaign=campaign,
        account=account,
        promotions=promotions,
        clusters=program.clusters_in_force(at),
        facts=facts,
        budgets=budgets,
        original=original,
    )


class StockMove(NamedTuple):
    """Pieces of prizes a redemption takes (``taken``) or its cancellation puts back."""

    redemption: str
    day: date
    pieces: list[tuple[Prize, int]]
    taken: bool


def timezone_of(movement: Movement) -> str:
    """The time zone of the store it happened at (UTC off the network: the Prize API)."""
    return movement.location.timezone if movement.location else "UTC"


def prize_lines(movement: Movement) -> tuple[Line, ...]:
    """The lines of a prize redemption name its prizes (other movements: none)."""
    return movement.lines if movement.type is MovementType.PRIZE_REDEMPTION else ()


def pieces_per_prize(lines: Sequence[Line]) -> dict[str, int]:
    pieces: dict[str, int] = {}
    for line in lines:
        pieces[line.sku] = pieces.get(line.sku, 0) + int(line.quantity)
    return pieces


def check_prize_lines(
    lines: Sequence[Line], prizes: Mapping[str, Prize], campaign: str
) -> dict[str, int]:
    """Refuses lines that do not name prizes of the campaign at their price, in whole
    pieces; the pieces taken of each prize."""
    if not lines:
        raise InvalidMovement("a prize redemption names its prizes in lines", field="lines")
    for index, line in enumerate(lines):
        prize = prizes.get(line.sku)
        if prize is None:
            raise UnknownPrize(f"campaign {campaign!r} has no prize {line.sku!r}", prize=line.sku)
        field = f"lines[{index}]"
        if line.quantity != line.quantity.to_integral_value():
            raise InvalidMovement("prizes are taken in whole pieces", field=f"{field}.quantity")
        if line.unit_price != prize.terms.points:
            raise InvalidMovement(
                f"prize {line.sku!r} costs {prize.terms.points} points, not {line.unit_price}",
                field=f"{field}.unit_price",
            )
        if line.amount != line.unit_price * line.quantity:
            raise InvalidMovement(
                "a prize line's amount is its unit price times its quantity",
                field=f"{field}.amount",
            )
    return pieces_per_prize(lines)


def indexed(items: Sequence[Pending | LoyaltyError]) -> Sequence[Pending | LoyaltyError]:
    """The items, each pending one told its place in the group."""
    for index, item in enumerate(items):
        if isinstance(item, Pending):
            item.index = index
    return items


def replay(item: Pending, digest: bytes, response: bytes) -> Outcome:
    if digest != item.digest:
        return IdempotencyConflict(
            f"movement {item.movement.movement_id!r} was already recorded with a different body",
            movement_id=item.movement.movement_id,
        )
    return Recorded(200, response)


def receipt_transactions(derivation: Derivation) -> tuple[ReceiptTransaction, ...]:
    """The derived transactions as a till (or a customer) sees them."""
    return tuple(
        ReceiptTransaction(
            kind=t.kind,
            amount=t.amount,
            currency=t.currency,
            promotion=t.promotion,
            promotion_version=t.promotion_version,
        )
        for t in derivation.transactions
    )


def receipt_of(movement: Movement, derivation: Derivation, account: Account) -> MovementReceipt:
    return MovementReceipt(
        movement_id=movement.movement_id,
        card=movement.card,
        transactions=receipt_transactions(derivation),
        balance=balance_of(account),
        receipt_messages=derivation.receipt_messages,
    )
