"""Promotion budgets: the points and uses a budget-capped promotion has given out in total.

One stream per capped promotion, appended to in the same transaction as the movements
that consume it, so optimistic concurrency keeps the total within the cap across tills.

Invariant: consumption only grows.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids


class PromotionBudget(Aggregate):
    class Opened(Aggregate.Created):
        promotion_id: UUID

    class Consumed(Aggregate.Event):
        points: int
        uses: int
        movement: str

    @staticmethod
    def create_id(promotion_id: UUID) -> UUID:
        return ids.budget_id(promotion_id)

    @event(Opened)
    def __init__(self, promotion_id: UUID) -> None:
        self.promotion_id = promotion_id
        self.points = 0
        self.uses = 0

    def consume(self, points: int, uses: int, movement: str) -> None:
        if points or uses:
            self._consume(points=points, uses=uses, movement=movement)

    @event(Consumed)
    def _consume(self, points: int, uses: int, movement: str) -> None:
        self.points += points
        self.uses += uses
