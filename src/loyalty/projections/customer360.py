"""The customer 360 view: one document per customer with everything the read side knows of
them that is not personal, for the analytics dashboards and the Analytics API.

A ``customers`` document holds: cards and their status, signup day, home store, whether
registered or erased; per campaign account, the balance, points earned and spent; purchases,
returns, net spend, first and last purchase day, visits per store; the last
:data:`RECENT` movements. Segments and clusters are joined when read (they change by runs,
not by events). Two lookup collections map account and card streams to their customer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from loyalty.adapters.documents import Body, DocumentChange
from loyalty.domain.account import Account
from loyalty.domain.movement import MovementType
from loyalty.projections import feed
from loyalty.projections.bulk import Part as LogPart
from loyalty.projections.bulk import StoredRow, merged, parts_of
from loyalty.projections.documents import DocumentModel
from loyalty.projections.feed import CUSTOMER_TOPICS, Fact, body_of, topic_of
from loyalty.rules.schedule import local_time
from loyalty.settings import Settings

CARD_CHANGES = feed.CardBlocked | feed.CardUnblocked | feed.CardReplaced
CUSTOMER_FACTS = feed.CustomerRegistered | feed.HomeStoreSet | feed.CustomerErased
RECENT = 10
"""Movements kept on a customer's document, newest first."""
CUSTOMERS, ACCOUNTS, CARDS = "customers", "accounts", "cards"
POSITION_BYTES = 8
RECORDED = topic_of(Account.MovementRecorded)
PURCHASE, RETURN = MovementType.PURCHASE.value, MovementType.RETURN.value
_encoder = msgspec.json.Encoder()


def new_customer(customer_id: str) -> Body:
    return {
        "customer_id": customer_id,
        "cards": [],
        "registered": False,
        "erased": False,
        "signed_up_on": None,
        "home_store": None,
        "accounts": {},
        "purchases": 0,
        "returns": 0,
        "spend": "0",
        "first_purchase_on": None,
        "last_purchase_on": None,
        "stores": [],
        "recent": [],
    }


def new_account(campaign_id: str | None) -> Body:
    return {"campaign_id": campaign_id, "points": 0, "credits": "0", "earned": 0, "spent": 0}


class Customer360(DocumentModel):
    name = "customer360"
    topics = CUSTOMER_TOPICS

    def changes(self, facts: Sequence[Fact]) -> list[DocumentChange]:
        batch = Batch(self, facts)
        for fact in facts:
            batch.apply(fact)
        return batch.changes()

    def bulk_changes(self, settings: Settings, head: int) -> tuple[Iterator[DocumentChange], int]:
        """Every document of the log up to ``head``: worker processes fold the log's parts
        account by account (:class:`Part`), merged here in log order into each customer's
        document."""
        parts = parts_of(settings, self.generation, head, self.topics)
        texts = [part._replace(stream_ids="text") for part in parts]
        whole = merged(texts, fold_part, Part)
        return whole.documents(), whole.events


class Batch:
    """One batch's documents: read once, changed in log order, written once."""

    def __init__(self, model: Customer360, facts: Sequence[Fact]) -> None:
        view = model.view
        opened = {f.originator_id: f.body for f in facts if isinstance(f.body, feed.AccountOpened)}
        issued = {f.originator_id: f.body for f in facts if isinstance(f.body, feed.CardIssued)}
        self.accounts: dict[str, Body] = {
            str(account): {
                "customer_id": str(body.customer_id),
                "campaign_id": str(body.campaign_id),
            }
            for account, body in opened.items()
        }
        self.cards: dict[str, Body] = {
            str(card): {"customer_id": str(body.customer_id), "code": body.code}
            for card, body in issued.items()
        }
        self.new_lookups = set(self.accounts) | {f"card:{c}" for c in self.cards}
        moved = {str(f.originator_id) for f in facts if isinstance(f.body, feed.MovementRecorded)}
        changed = {str(f.originator_id) for f in facts if isinstance(f.body, CARD_CHANGES)}
        self.accounts |= view.get_many(ACCOUNTS, sorted(moved - self.accounts.keys()))
        self.cards |= view.get_many(CARDS, sorted(changed - self.cards.keys()))
        wanted = {self.customer_of(f) for f in facts}
        self.customers = view.get_many(CUSTOMERS, sorted(wanted))
        self.touched: set[str] = set()

    def customer_of(self, fact: Fact) -> str:
        body = fact.body
        stream = str(fact.originator_id)
        if isinstance(body, feed.AccountOpened | feed.MovementRecorded):
            return str(self.accounts[stream]["customer_id"])
        if isinstance(body, feed.CardIssued | CARD_CHANGES):
            return str(self.cards[stream]["customer_id"])
        return stream

    def document(self, customer_id: str) -> Body:
        self.touched.add(customer_id)
        if customer_id not in self.customers:
            self.customers[customer_id] = new_customer(customer_id)
        return self.customers[customer_id]

    def apply(self, fact: Fact) -> None:
        document = self.document(self.customer_of(fact))
        card = self.cards.get(str(fact.originator_id))
        apply_fact(document, fact, card["code"] if card else None)

    def changes(self) -> list[DocumentChange]:
        found = [
            DocumentChange(collection=ACCOUNTS, key=key, body=body)
            for key, body in self.accounts.items()
            if key in self.new_lookups
        ]
        found += [
            DocumentChange(collection=CARDS, key=key, body=body)
            for key, body in self.cards.items()
            if f"card:{key}" in self.new_lookups
        ]
        found += [
            DocumentChange(
                collection=CUSTOMERS,
                key=key,
                body={k: v for k, v in self.customers[key].items() if k != "key"},
            )
            for key in sorted(self.touched)
        ]
        return found


def apply_fact(document: Body, fact: Fact, card_code: str | None) -> None:
    """A fact's effect on its customer's document (``card_code``: the code of the card a
    card fact names)."""
    body = fact.body
    if isinstance(body, feed.CardIssued):
        set_card(document, body.code, "active")
    elif isinstance(body, CARD_CHANGES):
        if card_code is None:
            raise ValueError(f"card {fact.originator_id} changed before it was issued")
        set_card(document, card_code, card_status(body))
    elif isinstance(body, CUSTOMER_FACTS):
        set_field(document, *customer_fact(body))
    elif isinstance(body, feed.AccountOpened):
        document["accounts"].setdefault(str(fact.originator_id), new_account(str(body.campaign_id)))
    elif isinstance(body, feed.MovementRecorded):
        add_movement(document, str(fact.originator_id), body)


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
            day = derivation.local_date or stored_day(movement)
            if self.first_purchase_on is None or day < self.first_purchase_on:
                self.first_purchase_on = day
            if self.last_purchase_on is None or day > self.last_purchase_on:
                self.last_purchase_on = day
            if store is not None:
                self.stores.setdefault(store, [position, 0])[1] += 1
        elif movement.type == RETURN:
            self.returns += 1
            self.spend -= movement.amount
        entry = {
            "movement_id": movement.movement_id,
            "type": movement.type,
            "card": movement.card,
            "occurred_at": movement.time_text(),
            "store": store,
            "amount": str(movement.amount),
            "points": derivation.points_delta,
        }
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
    document["recent"] = msgspec.json.decode(b"[%s]" % newest)


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


def set_card(document: Body, code: str, status: str) -> None:
    cards: list[Body] = document["cards"]
    for card in cards:
        if card["code"] == code:
            card["status"] = status
            return
    cards.append({"code": code, "status": status})


def card_status(body: Any) -> str:
    if isinstance(body, feed.CardBlocked):
        return "blocked"
    if isinstance(body, feed.CardReplaced):
        return "replaced"
    return "active"


def customer_fact(body: Any) -> tuple[str, str | None]:
    """What a registration, a home store set or an erasure sets on the customer's
    document: the field and its value."""
    if isinstance(body, feed.CustomerRegistered):
        return "signed_up_on", body.signed_up_on.isoformat()
    if isinstance(body, feed.HomeStoreSet):
        return "home_store", body.store
    return "erased", None


def set_field(document: Body, field: str, value: str | None) -> None:
    if field == "signed_up_on":
        document["registered"] = True
        document["signed_up_on"] = value
    elif field == "home_store":
        document["home_store"] = value
    else:
        document["erased"] = True


def store_of(movement: feed.Movement) -> str | None:
    return movement.location.path[-2] if movement.location else None


def stored_day(movement: StoredMovement) -> str:
    """A stored movement's local day, for events recorded before derivations kept it."""
    occurred_at = datetime.fromisoformat(movement.occurred_at)
    if movement.location is None:
        return occurred_at.date().isoformat()
    return local_time(occurred_at, movement.location.timezone).date().isoformat()


def day_of(recorded: feed.MovementRecorded) -> str:
    """The movement's local day (the store's), as an ISO date: as its derivation recorded
    it (events recorded before it did are worked out again)."""
    if recorded.derivation.local_date is not None:
        return recorded.derivation.local_date.isoformat()
    movement = recorded.movement
    if movement.location is None:
        return movement.occurred_at.date().isoformat()
    return local_time(movement.occurred_at, movement.location.timezone).date().isoformat()


def recent_entry(recorded: feed.MovementRecorded, store: str | None) -> Body:
    movement = recorded.movement
    return {
        "movement_id": movement.movement_id,
        "type": movement.type.value,
        "card": movement.card,
        "occurred_at": movement.occurred_at.isoformat(),
        "store": store,
        "amount": str(movement.amount),
        "points": recorded.derivation.points_delta,
    }


def add_visit(document: Body, store: str) -> None:
    stores: list[Body] = document["stores"]
    for visited in stores:
        if visited["store"] == store:
            visited["visits"] += 1
            return
    stores.append({"store": store, "visits": 1})


def add_movement(document: Body, account_id: str, recorded: feed.MovementRecorded) -> None:
    """A movement's effect on its customer's document."""
    movement = recorded.movement
    account = document["accounts"].setdefault(account_id, new_account(None))
    account["points"] = recorded.points_after
    account["credits"] = str(recorded.credits_after)
    earned, spent = recorded.derivation.points_moved()
    account["earned"] += earned
    account["spent"] += spent
    store = store_of(movement)
    if movement.type in (MovementType.PURCHASE, MovementType.RETURN):
        purchase = movement.type is MovementType.PURCHASE
        sign = 1 if purchase else -1
        document["spend"] = str(Decimal(document["spend"]) + sign * movement.amount)
        document["purchases" if purchase else "returns"] += 1
        if purchase:
            day = day_of(recorded)
            document["first_purchase_on"] = min(filter(None, [document["first_purchase_on"], day]))
            document["last_purchase_on"] = max(filter(None, [document["last_purchase_on"], day]))
            if store is not None:
                add_visit(document, store)
    recent: list[Body] = document["recent"]
    recent.insert(0, recent_entry(recorded, store))
    del recent[RECENT:]
