"""Prizes: what a campaign's points buy, with a points cost, a stock and a validity.

One stream per prize of a campaign. A redemption is a ``prize_redemption`` movement on
the customer's account, and its ``Redeemed`` event on each prize it takes is appended in
the same transaction: optimistic concurrency on the prize stream is what keeps two tills
from selling the last piece twice. Cancelling a redemption gives the pieces back the same
way (``Released``).

Invariants:
- stock is never negative: a redemption takes at most what is left;
- a release puts back what its redemption took (the account, which records the
  cancellation in the same transaction, lets a redemption be cancelled once only);
- the points cost is a positive whole number; validity dates, when given, are ordered.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidPrize, OutOfStock, PrizeNotAvailable
from loyalty.domain.movement import MAX_AMOUNT

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^\S+$")]
MAX_STOCK = 1_000_000_000


class PrizeTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a prize is and costs; the stock is kept apart (it changes with every sale)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    points: int
    """The cost of one piece, in points."""
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    valid_from: date | None = None
    valid_until: date | None = None
    """Both inclusive, in the store's local date (the campaign's dates still apply)."""


def check_terms(terms: PrizeTerms) -> None:
    if not terms.name.strip():
        raise InvalidPrize("a prize needs a name", field="name")
    if not 0 < terms.points <= MAX_AMOUNT:
        raise InvalidPrize(
            f"a prize costs a whole number of points from 1 to {MAX_AMOUNT:,}", field="points"
        )
    if terms.valid_from and terms.valid_until and terms.valid_until < terms.valid_from:
        raise InvalidPrize("valid_until is before valid_from", field="valid_until")


def check_stock(quantity: int, field: str = "stock") -> None:
    if not 0 <= quantity <= MAX_STOCK:
        raise InvalidPrize(f"a stock is from 0 to {MAX_STOCK:,} pieces", field=field)


class Prize(Aggregate):
    class Listed(Aggregate.Created):
        campaign_id: UUID
        code: str
        terms: PrizeTerms
        stock: int
        by: str

    class Revised(Aggregate.Event):
        terms: PrizeTerms
        by: str

    class Restocked(Aggregate.Event):
        quantity: int
        """Pieces added (negative: written off)."""
        reason: str
        by: str

    class Redeemed(Aggregate.Event):
        redemption: str
        quantity: int

    class Released(Aggregate.Event):
        redemption: str
        quantity: int

    @staticmethod
    def create_id(campaign_id: UUID, code: str) -> UUID:
        return ids.prize_id(campaign_id, code)

    @classmethod
    def list(cls, campaign_id: UUID, code: str, terms: PrizeTerms, stock: int, by: str) -> Prize:
        check_terms(terms)
        check_stock(stock)
        return cls(campaign_id=campaign_id, code=code, terms=terms, stock=stock, by=by)

    @event(Listed)
    def __init__(
        self, campaign_id: UUID, code: str, terms: PrizeTerms, stock: int, by: str
    ) -> None:
        self.campaign_id = campaign_id
        self.code = code
        self.terms = terms
        self.stock = stock
        self.redeemed = 0

    def revise(self, terms: PrizeTerms, by: str) -> None:
        check_terms(terms)
        if terms != self.terms:
            self._revise(terms=terms, by=by)

    @event(Revised)
    def _revise(self, terms: PrizeTerms, by: str) -> None:
        self.terms = terms

    def restock(self, quantity: int, reason: str, by: str) -> None:
        """Adds pieces (or writes them off, with a negative ``quantity``)."""
        if not reason.strip():
            raise InvalidPrize("say why the stock changes", field="reason")
        if quantity == 0:
            raise InvalidPrize(
                "a stock change adds or removes at least one piece", field="quantity"
            )
        check_stock(self.stock + quantity, field="quantity")
        self._restock(quantity=quantity, reason=reason, by=by)

    @event(Restocked)
    def _restock(self, quantity: int, reason: str, by: str) -> None:
        self.stock += quantity

    def is_available_on(self, day: date) -> bool:
        terms = self.terms
        return (terms.valid_from is None or terms.valid_from <= day) and (
            terms.valid_until is None or day <= terms.valid_until
        )

    def check_redeemable(self, quantity: int, day: date) -> None:
        """Refuses a redemption of ``quantity`` pieces on local date ``day``."""
        if not self.is_available_on(day):
            raise PrizeNotAvailable(
                f"prize {self.code!r} cannot be redeemed on {day.isoformat()}", prize=self.code
            )
        if quantity > self.stock:
            raise OutOfStock(
                f"prize {self.code!r} has {self.stock} piece(s) left, {quantity} asked",
                prize=self.code,
                stock=self.stock,
            )

    def redeem(self, redemption: str, quantity: int, day: date) -> None:
        self.check_redeemable(quantity, day)
        self._redeem(redemption=redemption, quantity=quantity)

    @event(Redeemed)
    def _redeem(self, redemption: str, quantity: int) -> None:
        self.stock -= quantity
        self.redeemed += quantity

    def release(self, redemption: str, quantity: int) -> None:
        """Puts back the ``quantity`` pieces a cancelled ``redemption`` took."""
        self._release(redemption=redemption, quantity=quantity)

    @event(Released)
    def _release(self, redemption: str, quantity: int) -> None:
        self.stock += quantity
        self.redeemed -= quantity
