"""Replaying the ledger: the rule engine run again over every recorded movement.

The log is walked in its global order, rebuilding every stream the engine reads (the
network, campaigns, promotions with their versions, clusters, cards, customers, accounts,
promotion budgets) exactly as it stood when each movement was recorded. Each movement is
derived again with :func:`loyalty.rules.engine.derive`, from the program and the state
that held then, and compared with what was stored, bit for bit: the input digest (the
same inputs were rebuilt), the derivation (transactions, evidence, receipt), and the
balance after it. Later movements build on the stored events, so one difference does not
cascade.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import context_for
from loyalty.commands.program import Program
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.campaign import CampaignView
from loyalty.domain.card import Card
from loyalty.domain.errors import LoyaltyError
from loyalty.domain.movement import REFERS_TO_ORIGINAL, Derivation
from loyalty.rules.engine import OriginalMovement, derive

BATCH = 20_000
MAX_REPORTED = 100
READ_TOPICS = tuple(
    f"loyalty.domain.{module}:"
    for module in (
        "network",
        "campaign",
        "promotion",
        "cluster",
        "card",
        "customer",
        "account",
        "budget",
    )
)
"""The streams the rule engine reads (directly or through the program)."""
PROGRAM_TOPICS = tuple(
    f"loyalty.domain.{module}:" for module in ("network", "campaign", "promotion", "cluster")
)

_encoder = msgspec.json.Encoder(order="deterministic")


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    notification_id: int
    account_id: UUID
    movement_id: str
    what: str
    """``inputs``, ``derivation``, ``balance`` or ``refused``."""
    detail: str


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    identical: bool
    movements: int
    withheld: int
    """Movements of erased customers: checked with the clusters they were recorded in,
    since their personal facts can no longer be read (the input digest covers them)."""
    events: int
    differences: int
    first_differences: tuple[Difference, ...]
    seconds: float
    movements_per_second: float
    events_per_second: float


class Replay:
    """One walk of ``ledger``'s log; compares movements with ``occurred_at`` in
    [``start``, ``end``) (all when not given); earlier ones only rebuild state."""

    def __init__(
        self, ledger: Ledger, start: datetime | None = None, end: datetime | None = None
    ) -> None:
        self.ledger = ledger
        self.start = start
        self.end = end
        self.aggregates: dict[UUID, Any] = {}
        self.program = Program(revision=0)
        self.program_stale = False
        self.config: set[UUID] = set()
        self.differences: list[Difference] = []
        self.found = 0
        self.withheld = 0
        self.erased: set[UUID] | None = None
        schema = Identifier(ledger.settings.pg_schema)
        self._events = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {}.ledger_events WHERE notification_id > %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(schema)

    def run(self) -> ReplayReport:
        started = time.perf_counter()
        movements = events = 0
        after = 0
        while True:
            batch = self.ledger.query(self._events, (after, BATCH))
            for notification_id, originator_id, version, topic, state in batch:
                events += 1
                if not topic.startswith(READ_TOPICS):
                    continue
                stored = StoredEvent(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
                event = self.ledger.mapper.to_domain_event(stored)
                if isinstance(event, Account.MovementRecorded) and self.in_range(event):
                    movements += 1
                    self.check(notification_id, event)
                self.aggregates[originator_id] = event.mutate(  # type: ignore[attr-defined]
                    self.aggregates.get(originator_id)
                )
                if topic.startswith(PROGRAM_TOPICS):
                    self.config.add(originator_id)
                    self.program_stale = True
            if len(batch) < BATCH:
                break
            after = batch[-1][0]
        seconds = time.perf_counter() - started
        return ReplayReport(
            identical=not self.found,
            movements=movements,
            withheld=self.withheld,
            events=events,
            differences=self.found,
            first_differences=tuple(self.differences),
            seconds=round(seconds, 3),
            movements_per_second=round(movements / seconds, 1) if seconds else 0.0,
            events_per_second=round(events / seconds, 1) if seconds else 0.0,
        )

    def in_range(self, event: Account.MovementRecorded) -> bool:
        at = event.movement.occurred_at
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def current_program(self) -> Program:
        if self.program_stale:
            self.program = Program.of(0, [self.aggregates[i] for i in self.config])
            self.program_stale = False
        return self.program

    def check(self, notification_id: int, event: Account.MovementRecorded) -> None:
        """Derives the movement of ``event`` again and records any difference."""
        account = cast(Account, self.aggregates[event.originator_id])
        movement, stored = event.movement, event.derivation

        def differ(what: str, detail: str) -> None:
            self.found += 1
            if len(self.differences) < MAX_REPORTED:
                self.differences.append(
                    Difference(
                        notification_id=notification_id,
                        account_id=account.id,
                        movement_id=movement.movement_id,
                        what=what,
                        detail=detail,
                    )
                )

        program = self.current_program()
        campaign = program.campaigns[account.campaign_id]
        card = self.aggregates.get(ids.card_id(movement.card))
        if not isinstance(card, Card):
            differ("inputs", f"card {movement.card!r} did not exist")
            return
        erased = self.is_erased(card.customer_id)
        try:
            context = context_for(
                program,
                CampaignView(id=campaign.id, code=campaign.code, terms=campaign.terms),
                movement,
                card,
                account,
                self.aggregates,
                self.original(account, stored) if movement.type in REFERS_TO_ORIGINAL else None,
            )
            if erased:
                self.withheld += 1
                known = frozenset(ref.code for ref in stored.clusters)
                context = dataclasses.replace(context, memberships=known)
            replayed = derive(movement, context)
        except LoyaltyError as error:
            differ("refused", f"{error.code}: {error.message}")
            return
        if erased:
            replayed = msgspec.structs.replace(replayed, input_digest=stored.input_digest)
        if replayed.input_digest != stored.input_digest:
            differ("inputs", f"digest {replayed.input_digest} instead of {stored.input_digest}")
        elif _encoder.encode(replayed) != _encoder.encode(stored):
            differ("derivation", _encoder.encode(replayed).decode())
        if (event.points_after, event.credits_after) != (
            account.points + replayed.points_delta,
            account.credits + replayed.credits_delta,
        ):
            differ(
                "balance",
                f"{account.points + replayed.points_delta} points instead of {event.points_after}",
            )

    def is_erased(self, customer_id: UUID) -> bool:
        """Whether the customer's data key was destroyed (their facts no longer open)."""
        if self.erased is None:
            self.erased = self.ledger.keys.destroyed()
        return customer_id in self.erased

    def original(self, account: Account, stored: Derivation) -> OriginalMovement | None:
        """The movement a return or cancellation gave back, as the writer read it."""
        given_back = stored.return_of
        if given_back is None:
            return None
        version = given_back.account_version
        (event,) = self.ledger.events.get(account.id, gt=version - 1, lte=version)
        recorded = cast(Account.MovementRecorded, event)
        return OriginalMovement(
            source=given_back.terminal,
            movement=recorded.movement,
            derivation=recorded.derivation,
            account_version=version,
            returned_before=account.returned.get((given_back.terminal, given_back.movement_id), ()),
        )


def replay(
    ledger: Ledger, start: datetime | None = None, end: datetime | None = None
) -> ReplayReport:
    return Replay(ledger, start, end).run()
