"""Loyalty cards.

Invariants:
- a card's code is unique (its stream id derives from it);
- only an active card earns or spends; a blocked card can be unblocked, a replaced card
  is final and points at its successor, which belongs to the same customer (the balance
  lives on the customer's accounts, so it follows without a transfer).
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import CardBlocked, CardReplaced, InvalidProgram


class CardStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    REPLACED = "replaced"


class Card(Aggregate):
    class Issued(Aggregate.Created):
        code: str
        customer_id: UUID

    class Blocked(Aggregate.Event):
        reason: str

    class Unblocked(Aggregate.Event):
        reason: str

    class Replaced(Aggregate.Event):
        successor: str

    @staticmethod
    def create_id(code: str) -> UUID:
        return ids.card_id(code)

    @classmethod
    def issue(cls, code: str, customer_id: UUID | None = None) -> Card:
        """Issues a card; without a customer it is anonymous (its own customer id)."""
        code = code.strip()
        if not code:
            raise InvalidProgram("a card needs a code")
        return cls(code=code, customer_id=customer_id or ids.customer_id_for_card(code))

    @event(Issued)
    def __init__(self, code: str, customer_id: UUID) -> None:
        self.code = code
        self.customer_id = customer_id
        self.status = CardStatus.ACTIVE
        self.successor: str | None = None

    def check_can_move(self) -> None:
        """Raises unless the card may earn or spend."""
        if self.status is CardStatus.BLOCKED:
            raise CardBlocked(f"card {self.code} is blocked", card=self.code)
        if self.status is CardStatus.REPLACED:
            raise CardReplaced(
                f"card {self.code} was replaced by card {self.successor}",
                card=self.code,
                successor=self.successor,
            )

    def block(self, reason: str) -> None:
        if self.status is CardStatus.REPLACED:
            raise CardReplaced(f"card {self.code} was replaced", card=self.code)
        if self.status is CardStatus.ACTIVE:
            self._block(reason=reason)

    @event(Blocked)
    def _block(self, reason: str) -> None:
        self.status = CardStatus.BLOCKED

    def unblock(self, reason: str) -> None:
        if self.status is CardStatus.BLOCKED:
            self._unblock(reason=reason)

    @event(Unblocked)
    def _unblock(self, reason: str) -> None:
        self.status = CardStatus.ACTIVE

    def replace_with(self, successor: Card) -> None:
        """Retires this card in favour of ``successor``, which must belong to the same customer."""
        if self.status is CardStatus.REPLACED:
            raise CardReplaced(f"card {self.code} was already replaced", card=self.code)
        if successor.customer_id != self.customer_id or successor.code == self.code:
            raise InvalidProgram("a replacement card must be another card of the same customer")
        successor.check_can_move()
        self._replace(successor=successor.code)

    @event(Replaced)
    def _replace(self, successor: str) -> None:
        self.status = CardStatus.REPLACED
        self.successor = successor
