"""customer360's bulk fold: the log's parts folded account by account in worker processes
(:class:`Part`), merged in log order, then made into every customer's document at once.

A part reads stored movements into Structs of its own (:class:`StoredRecorded`), which keep
a movement's time, type and day as stored text (they are only written out again), and
stream ids as text; each account's movements add up to its share of its customer's
document (:class:`AccountShare`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import msgspec

from loyalty.adapters.documents import Body, DocumentChange
from loyalty.domain.account import Account
from loyalty.domain.movement import MovementType
from loyalty.projections import feed
from loyalty.projections.bulk import Part as LogPart
from loyalty.projections.bulk import StoredRow
from loyalty.projections.customer_documents import (
    ACCOUNTS,
    CARD_CHANGES,
    CARDS,
    CUSTOMERS,
    RECENT,
    card_status,
    customer_fact,
    entry_of,
    local_day,
    new_account,
    new_customer,
    set_card,
    set_field,
)
from loyalty.projections.feed import body_of, topic_of

POSITION_BYTES = 8
RECORDED = topic_of(Account.MovementRecorded)
PURCHASE, RETURN = MovementType.PURCHASE.value, MovementType.RETURN.value
_encoder = msgspec.json.Encoder()


class StoredMovement(msgspec.Struct, frozen=True, gc=False):
    """A movement as the bulk fold reads it: its time and type kept as stored, as they are
    only written out again (parsing and formatting them was a tenth of a fold)."""

    movement_id: str
    type: str
    card: str
    occurred_at: str
    amount: Decimal
    location: feed.Location | None = None

    def time_text(self) -> str:
        """``occurred_at`` as the incremental path writes it (``datetime.isoformat``): as
        stored, but for UTC, which the event store writes ``Z``."""
        text = self.occurred_at
        return text[:-1] + "+00:00" if text[-1:] == "Z" else text


class StoredPoints(msgspec.Struct, frozen=True, gc=False):
    """A transaction as the bulk fold reads it: what it moved, and of what."""

    kind: str
    amount: Decimal


class StoredDerivation(msgspec.Struct, frozen=True, gc=False):
    """A derivation as the bulk fold reads it."""

    transactions: tuple[StoredPoints, ...]
    points_delta: int = 0
    local_date: str | None = None
    """As stored: an ISO date."""

    def points_moved(self) -> tuple[int, int]:
        """The points this movement credited and the points it debited."""
        return feed.points_moved(self.transactions)


class StoredRecorded(msgspec.Struct, frozen=True, gc=False):
    """``Account.MovementRecorded`` as the bulk fold reads it (:class:`StoredMovement`)."""

    movement: StoredMovement
    derivation: StoredDerivation
    points_after: int
    credits_after: Decimal


_recorded = msgspec.json.Decoder(StoredRecorded)


class AccountShare(msgspec.Struct, gc=False):
    """What a run of an account's movements adds to its customer's document."""

    points: int = 0
    credits: Decimal = Decimal(0)
    earned: int = 0
    spent: int = 0
    purchases: int = 0
    returns: int = 0
    spend: Decimal = Decimal(0)
    first_purchase_on: str | None = None
    last_purchase_on: str | None = None
    stores: dict[str, list[int]] = msgspec.field(default_factory=dict)
    """Each store visited: the position of the first visit, and the visits."""
    recent: list[bytes] = msgspec.field(default_factory=list)
    """The run's last :data:`RECENT` movements, newest first, each its position (8 bytes,
    big-endian: bytes order as positions do) then its JSON: a tenth of the memory of its
    dict, and a tenth of the cost of a (position, JSON) pair to hand over."""

    def add(self, position: int, recorded: StoredRecorded) -> None:
        """Adds the account's next movement, at ``position`` in the log."""
        movement = recorded.movement
        derivation = recorded.derivation
        self.points = recorded.points_after
        self.credits = recorded.credits_after
        earned, spent = derivation.points_moved()
        self.earned += earned
        self.spent += spent
        location = movement.location
        store = location.path[-2] if location else None
        if movement.type == PURCHASE:
            self.purchases += 1
            self.spend += movement.amount
            day = derivation.local_date or local_day(
                datetime.fromisoformat(movement.occurred_at), location
            )
            if self.first_purchase_on is None or day < self.first_purchase_on:
                self.first_purchase_on = day
            if self.last_purchase_on is None or day > self.last_purchase_on:
                self.last_purchase_on = day
            if store is not None:
                self.stores.setdefault(store, [position, 0])[1] += 1
        elif movement.type == RETURN:
            self.returns += 1
            self.spend -= movement.amount
        entry = entry_of(
            movement.movement_id,
            movement.type,
            movement.card,
            movement.time_text(),
            store,
            movement.amount,
            derivation.points_delta,
        )
        self.recent.insert(0, position.to_bytes(POSITION_BYTES, "big") + _encoder.encode(entry))
        del self.recent[RECENT:]

    def merge(self, later: AccountShare) -> None:
        """Adds a later run of the account's movements."""
        self.points, self.credits = later.points, later.credits
        self.earned += later.earned
        self.spent += later.spent
        self.add_purchases(later)
        self.recent = [*later.recent, *self.recent][:RECENT]

    def add_purchases(self, other: AccountShare) -> None:
        """Adds the purchases and returns of another run (of this account or another)."""
        self.purchases += other.purchases
        self.returns += other.returns
        self.spend += other.spend
        days = [self.first_purchase_on, other.first_purchase_on]
        self.first_purchase_on = min(filter(None, days), default=None)
        days = [self.last_purchase_on, other.last_purchase_on]
        self.last_purchase_on = max(filter(None, days), default=None)
        for store, (first, visits) in other.stores.items():
            seen = self.stores.setdefault(store, [first, 0])
            seen[0] = min(seen[0], first)
            seen[1] += visits


class Part(msgspec.Struct, gc=False):
    """A run of the log folded: the accounts and cards it opens and issues, each account's
    share of its movements, and the card and customer facts in log order. Streams are
    keyed by their ids as text, as the documents name them (and a text hashes once)."""

    opened: dict[str, tuple[str, str]] = msgspec.field(default_factory=dict)
    """Each account opened: its customer and campaign."""
    issued: dict[str, tuple[str, str]] = msgspec.field(default_factory=dict)
    """Each card issued: its customer and code."""
    shares: dict[str, AccountShare] = msgspec.field(default_factory=dict)
    cards: list[tuple[str, str]] = msgspec.field(default_factory=list)
    """Card facts: the card, its status after."""
    customers: list[tuple[str, str, str | None]] = msgspec.field(default_factory=list)
    """Customer facts: the customer, the field set and its value (:func:`customer_fact`)."""
    events: int = 0

    def add(self, position: int, stream: str, topic: str, state: bytes) -> None:
        """Folds in a stored event: its position, stream id (as text), topic and state."""
        self.events += 1
        if topic == RECORDED:
            share = self.shares.get(stream)
            if share is None:
                share = self.shares[stream] = AccountShare()
            share.add(position, _recorded.decode(state))
            return
        body = body_of(topic, state)
        if isinstance(body, feed.AccountOpened):
            self.opened[stream] = (str(body.customer_id), str(body.campaign_id))
        elif isinstance(body, feed.CardIssued):
            self.issued[stream] = (str(body.customer_id), body.code)
            self.cards.append((stream, "active"))
        elif isinstance(body, CARD_CHANGES):
            self.cards.append((stream, card_status(body)))
        else:
            self.customers.append((stream, *customer_fact(body)))

    def merge(self, later: Part) -> None:
        """Folds in a later run of the log."""
        self.opened |= later.opened
        self.issued |= later.issued
        for account_id, share in later.shares.items():
            if account_id in self.shares:
                self.shares[account_id].merge(share)
            else:
                self.shares[account_id] = share
        self.cards += later.cards
        self.customers += later.customers
        self.events += later.events

    def documents(self) -> Iterator[DocumentChange]:
        """The lookups, then each customer's document, each collection in key order: a
        view keyed by collection and key then adds each key at the end of its index (a
        trial loaded a million documents in 12 s in key order, 20 s in random order)."""
        for key, (customer_id, campaign_id) in sorted(self.opened.items()):
            body = {"customer_id": customer_id, "campaign_id": campaign_id}
            yield DocumentChange(collection=ACCOUNTS, key=key, body=body)
        for key, (customer_id, code) in sorted(self.issued.items()):
            body = {"customer_id": customer_id, "code": code}
            yield DocumentChange(collection=CARDS, key=key, body=body)
        documents: dict[str, Body] = {}

        def document(customer_id: str) -> Body:
            if customer_id not in documents:
                documents[customer_id] = new_customer(customer_id)
            return documents[customer_id]

        for card_id, status in self.cards:
            customer_id, code = self.issued[card_id]
            set_card(document(customer_id), code, status)
        for customer_id, field, value in self.customers:
            set_field(document(customer_id), field, value)
        shares: dict[str, list[tuple[str, AccountShare | None]]] = {}
        for account_id, (customer_id, campaign_id) in self.opened.items():
            document(customer_id)["accounts"][account_id] = new_account(campaign_id)
            shares.setdefault(customer_id, []).append(
                (account_id, self.shares.pop(account_id, None))
            )
        for customer_id in sorted(documents):
            body = document(customer_id)
            add_shares(body, shares.get(customer_id, []))
            documents.pop(customer_id)
            yield DocumentChange(collection=CUSTOMERS, key=customer_id, body=body)


def add_shares(document: Body, shares: list[tuple[str, AccountShare | None]]) -> None:
    """A customer's document with their accounts' movements."""
    moved = [(account_id, share) for account_id, share in shares if share is not None]
    for account_id, share in moved:
        account = document["accounts"][account_id]
        account["points"] = share.points
        account["credits"] = str(share.credits)
        account["earned"] = share.earned
        account["spent"] = share.spent
    whole = every_purchase([share for _, share in moved])
    document["purchases"] = whole.purchases
    document["returns"] = whole.returns
    document["spend"] = str(whole.spend)
    document["first_purchase_on"] = whole.first_purchase_on
    document["last_purchase_on"] = whole.last_purchase_on
    document["stores"] = [
        {"store": store, "visits": visits}
        for store, (_, visits) in sorted(whole.stores.items(), key=lambda s: s[1][0])
    ]
    newest = b",".join(entry[POSITION_BYTES:] for entry in whole.recent[:RECENT])
    document["recent"] = msgspec.Raw(b"[%s]" % newest)


def every_purchase(shares: list[AccountShare]) -> AccountShare:
    """The purchases, returns and latest movements of all a customer's accounts: the one
    account's share itself when there is one (most customers; not a copy), else a new
    share adding them up."""
    if len(shares) == 1:
        return shares[0]
    whole = AccountShare()
    for share in shares:
        whole.add_purchases(share)
        whole.recent += share.recent
    whole.recent.sort(reverse=True)
    return whole


def fold_part(part: LogPart, rows: Iterator[StoredRow]) -> Part:
    """The part's stored events folded (its stream ids read as text)."""
    folded_part = Part()
    for position, stream, _, topic, state in rows:
        folded_part.add(position, stream, topic, state)
    return folded_part
