"""The customer 360 view: one document per customer with everything the read side knows of
them that is not personal, for the analytics dashboards and the Analytics API.

A ``customers`` document holds: cards and their status, signup day, home store, whether
registered or erased; per campaign account, the balance, points earned and spent; purchases,
returns, net spend, first and last purchase day, visits per store; the last
:data:`RECENT` movements. Segments and clusters are joined when read (they change by runs,
not by events). Two lookup collections map account and card streams to their customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from loyalty.adapters.documents import Body, DocumentChange
from loyalty.domain.movement import MovementType
from loyalty.projections import feed
from loyalty.projections.documents import DocumentModel
from loyalty.projections.feed import CUSTOMER_TOPICS, Fact
from loyalty.rules.schedule import local_time

CARD_CHANGES = feed.CardBlocked | feed.CardUnblocked | feed.CardReplaced
RECENT = 10
"""Movements kept on a customer's document, newest first."""
CUSTOMERS, ACCOUNTS, CARDS = "customers", "accounts", "cards"


def new_customer(customer_id: UUID) -> Body:
    return {
        "customer_id": str(customer_id),
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
            self.customers[customer_id] = new_customer(UUID(customer_id))
        return self.customers[customer_id]

    def apply(self, fact: Fact) -> None:
        body = fact.body
        document = self.document(self.customer_of(fact))
        if isinstance(body, feed.CardIssued):
            set_card(document, body.code, "active")
        elif isinstance(body, CARD_CHANGES):
            set_card(document, self.cards[str(fact.originator_id)]["code"], card_status(body))
        elif isinstance(body, feed.CustomerRegistered):
            document["registered"] = True
            document["signed_up_on"] = body.signed_up_on.isoformat()
        elif isinstance(body, feed.HomeStoreSet):
            document["home_store"] = body.store
        elif isinstance(body, feed.CustomerErased):
            document["erased"] = True
        elif isinstance(body, feed.AccountOpened):
            document["accounts"].setdefault(
                str(fact.originator_id),
                new_account(str(body.campaign_id)),
            )
        elif isinstance(body, feed.MovementRecorded):
            add_movement(document, str(fact.originator_id), body)

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
    store = movement.location.path[-2] if movement.location else None
    day = (
        local_time(movement.occurred_at, movement.location.timezone).date().isoformat()
        if movement.location
        else movement.occurred_at.date().isoformat()
    )
    if movement.type in (MovementType.PURCHASE, MovementType.RETURN):
        purchase = movement.type is MovementType.PURCHASE
        sign = 1 if purchase else -1
        document["spend"] = str(Decimal(document["spend"]) + sign * movement.amount)
        document["purchases" if purchase else "returns"] += 1
        if purchase:
            document["first_purchase_on"] = min(filter(None, [document["first_purchase_on"], day]))
            document["last_purchase_on"] = max(filter(None, [document["last_purchase_on"], day]))
            if store is not None:
                add_visit(document, store)
    recent: list[dict[str, Any]] = document["recent"]
    recent.insert(
        0,
        {
            "movement_id": movement.movement_id,
            "type": movement.type.value,
            "card": movement.card,
            "occurred_at": movement.occurred_at.isoformat(),
            "store": store,
            "amount": str(movement.amount),
            "points": recorded.derivation.points_delta,
        },
    )
    del recent[RECENT:]
