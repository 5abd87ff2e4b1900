"""Accounts: one per customer per campaign, holding the balance and the ledger of movements.

Every movement that touches an account is one ``MovementRecorded`` event on it, carrying
the movement, the transactions the rule engine derived, the evidence of the derivation
(promotion and cluster versions, input digest) and the balance after it. Optimistic
concurrency on this stream is what stops two tills from spending the same points.

Invariants:
- the points balance is never negative, nor are credits;
- the state the engine reads (usage against caps, spend behaviour, returned quantities)
  changes only through recorded movements.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from heapq import heappop, heappush
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, OriginatorVersionError, event

from loyalty.domain import ids
from loyalty.domain.cluster import MAX_LOOKBACK_DAYS
from loyalty.domain.errors import InsufficientPoints
from loyalty.domain.movement import Derivation, Movement, MovementType

LOOKBACK = timedelta(days=MAX_LOOKBACK_DAYS)
NO_SPEND = Decimal(0)


class Account(Aggregate):
    class Opened(Aggregate.Created):
        campaign_id: UUID
        customer_id: UUID

    class MovementRecorded(Aggregate.Event):
        """Applied by itself rather than through an ``@event`` method, whose generic call
        (the event's attributes filtered down to the method's parameters) was a quarter of
        applying one, and an audit replay applies every one."""

        movement: Movement
        derivation: Derivation
        points_after: int
        credits_after: Decimal

        def apply(self, aggregate: Any) -> None:
            cast(Account, aggregate)._apply_movement(
                self.movement, self.derivation, self.points_after, self.credits_after
            )

    @staticmethod
    def create_id(campaign_id: UUID, customer_id: UUID) -> UUID:
        return ids.account_id(campaign_id, customer_id)

    @event(Opened)
    def __init__(self, campaign_id: UUID, customer_id: UUID) -> None:
        self.campaign_id = campaign_id
        self.customer_id = customer_id
        self.points = 0
        self.credits = Decimal(0)
        self.usage: dict[tuple[UUID, str], tuple[int, int]] = {}
        self.total_spend = Decimal(0)
        self.purchase_count = 0
        self.last_purchase_on: date | None = None
        self.daily_spend: dict[date, Decimal] = {}
        self.spend_days: list[date] = []
        """The days of :attr:`daily_spend` as a heap, earliest first, so that a new purchase
        day finds the days to forget without looking at the others."""
        self.returned: dict[tuple[str, str], tuple[Decimal, ...]] = {}

    def record(self, movement: Movement, derivation: Derivation) -> None:
        """Records a movement with what the engine derived from it."""
        points_after = self.points + derivation.points_delta
        credits_after = self.credits + derivation.credits_delta
        if points_after < 0 or credits_after < 0:
            raise InsufficientPoints(
                f"the balance is {self.points} points and {self.credits} credits",
                points=self.points,
            )
        self.trigger_event(
            self.MovementRecorded,
            movement=movement,
            derivation=derivation,
            points_after=points_after,
            credits_after=credits_after,
        )

    def apply_recorded(
        self,
        version: int,
        timestamp: datetime,
        movement: Movement,
        derivation: Derivation,
        points_after: int,
        credits_after: Decimal,
    ) -> None:
        """What applying a stored ``MovementRecorded`` of ``version`` does (``mutate``: the
        next version only, then the movement, the version and the time), from its fields
        decoded already: an audit replay applies every movement of the log this way rather
        than build each event only to have it taken apart again."""
        if version != self.version + 1:
            raise OriginatorVersionError(version, self.version + 1)
        self._apply_movement(movement, derivation, points_after, credits_after)
        self.version = version
        self.modified_on = timestamp

    def _apply_movement(
        self,
        movement: Movement,
        derivation: Derivation,
        points_after: int,
        credits_after: Decimal,
    ) -> None:
        self.points = points_after
        self.credits = credits_after
        for usage in derivation.usage:
            key = (usage.promotion_id, usage.period)
            points, uses = self.usage.get(key, (0, 0))
            self.usage[key] = (points + usage.points, uses + usage.uses)
        if derivation.local_date is not None:
            self._track_spend(movement, derivation.local_date)
        if derivation.return_of is not None:
            original = derivation.return_of
            self.returned[(original.terminal, original.movement_id)] = original.returned

    @property
    def first_spend_day(self) -> date | None:
        """The earliest day of :attr:`daily_spend` (None while it is empty)."""
        return self.spend_days[0] if self.spend_days else None

    def _track_spend(self, movement: Movement, day: date) -> None:
        if movement.type is MovementType.PURCHASE:
            self.total_spend += movement.amount
            self.purchase_count += 1
            self.daily_spend[day] = self._spent_on(day) + movement.amount
            if self.last_purchase_on is None or day > self.last_purchase_on:
                self.last_purchase_on = day
                self._forget_spend_before(day - LOOKBACK)
        elif movement.type is MovementType.RETURN:
            self.total_spend -= movement.amount
            self.daily_spend[day] = self._spent_on(day) - movement.amount

    def _spent_on(self, day: date) -> Decimal:
        """The spend of ``day`` so far; a day not held yet joins :attr:`spend_days`."""
        spent = self.daily_spend.get(day)
        if spent is None:
            heappush(self.spend_days, day)
            return NO_SPEND
        return spent

    def _forget_spend_before(self, day: date) -> None:
        """Drops the days before ``day``, earliest first from the heap of days (a scan of
        every day on each new purchase day was a twentieth of an audit replay)."""
        days = self.spend_days
        while days and days[0] < day:
            del self.daily_spend[heappop(days)]

    def used(self, promotion_id: UUID, period: str) -> tuple[int, int]:
        """Points and uses a promotion has consumed on this account in ``period``."""
        return self.usage.get((promotion_id, period), (0, 0))

    def spend_between(self, first: date, last: date) -> Decimal:
        return sum(
            (amount for day, amount in self.daily_spend.items() if first <= day <= last),
            Decimal(0),
        )
